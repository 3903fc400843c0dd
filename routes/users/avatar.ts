import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { userOf } from '../../plugins/auth.js'
import multipartPlugin, { readSingleFile, UPLOAD_MAX_BYTES } from '../../plugins/multipart.js'
import { errorResponse, ref } from '../../schemas/common.js'
import { AvatarUpload, UserPrivate } from '../../schemas/users.js'
import { AVATAR_MAX_PIXELS, AVATAR_SIZE, clearAvatar, replaceAvatar } from '../../src/domain/avatars.js'
import { privateView } from '../../src/domain/users.js'

/** Uploads read at once, per user and in all: each may hold 5 MB in memory until sharp's turn comes. */
export const UPLOADS_PER_USER = 1
export const UPLOADS_IN_ALL = 4

const avatarRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Here, not in app.ts: only these routes parse multipart; elsewhere it stays Fastify's 415.
  await app.register(multipartPlugin)

  const inFlight = new Map<number, number>()
  let total = 0
  app.metrics.sampled('inkwell_avatar_uploads_in_flight', `Avatar uploads being received or processed (at most ${UPLOADS_IN_ALL})`, () => total)
  const busy = (error: Error, code: string) => Object.assign(error, { code, expose: true, headers: { 'retry-after': '1' } })

  /** Takes an upload slot before the body is read, and gives it back when the response is done (or the client gone). */
  async function uploadSlot (request: FastifyRequest, reply: FastifyReply) {
    const id = userOf(request).id
    const mine = inFlight.get(id) ?? 0
    if (mine >= UPLOADS_PER_USER) {
      app.metrics.refused('avatar_upload_per_user')
      throw busy(app.httpErrors.tooManyRequests('An upload of yours is in progress; try again when it is done'), 'UPLOAD_IN_PROGRESS')
    }
    if (total >= UPLOADS_IN_ALL) {
      app.metrics.refused('avatar_uploads_in_all')
      throw busy(app.httpErrors.serviceUnavailable('Too many uploads in progress; try again shortly'), 'UPLOADS_BUSY')
    }
    inFlight.set(id, mine + 1)
    total++
    reply.raw.once('close', () => {
      total--
      const left = (inFlight.get(id) ?? 1) - 1
      if (left === 0) inFlight.delete(id)
      else inFlight.set(id, left)
    })
  }

  app.put('/me/avatar', {
    preHandler: [app.requireActiveUser, uploadSlot],
    // The body is a stream, read only after the guard by readSingleFile, which enforces what the schema
    // says (one file part named `file`); Ajv never sees it, so the schema serves the OpenAPI document.
    validatorCompiler: () => () => true,
    schema: {
      tags: ['users'],
      operationId: 'putMyAvatar',
      summary: 'Upload the calling user\'s profile picture',
      description: `A JPEG, PNG, WebP or GIF of at most ${UPLOAD_MAX_BYTES / 1024 / 1024} MB and ` +
        `${AVATAR_MAX_PIXELS / 1e6} megapixels, recognised by its content. It is stored as a ` +
        `${AVATAR_SIZE}×${AVATAR_SIZE} WebP, cropped to a centred square, without metadata; ` +
        '`avatar_url` then names a new path, whose response may be cached forever.',
      consumes: ['multipart/form-data'],
      body: ref(AvatarUpload),
      response: {
        200: { ...ref(UserPrivate), description: 'The user, with the new `avatar_url`' },
        400: errorResponse('Not one file part in the field `file`, or a malformed multipart body'),
        413: errorResponse('The file is over 5 MB, or the image has too many pixels'),
        415: errorResponse('Not multipart/form-data, or the file is not a readable JPEG, PNG, WebP or GIF image'),
        429: errorResponse(`The caller has ${UPLOADS_PER_USER} upload in progress already; \`Retry-After\` says when to try again`),
        503: errorResponse(`${UPLOADS_IN_ALL} uploads are in progress on this server; \`Retry-After\` says when to try again`)
      }
    }
  }, async (request) => {
    const me = userOf(request)
    const upload = await readSingleFile(request, 'file')
    const user = await replaceAvatar(app.db, app.uploadsDir, me.id, upload, request.log)
    request.log.info({ userId: me.id, avatar: user.avatar }, 'avatar changed')
    return privateView(user)
  })

  app.delete('/me/avatar', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['users'],
      operationId: 'deleteMyAvatar',
      summary: 'Remove the calling user\'s profile picture',
      description: 'Idempotent: 204 whether or not there was one. The file is deleted too.',
      response: { 204: Type.Null({ description: 'Removed' }) }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    await clearAvatar(app.db, app.uploadsDir, me.id, request.log)
    return reply.code(204).send(null)
  })
}

export default avatarRoutes
