import type { Readable } from 'node:stream'
import fastifyMultipart from '@fastify/multipart'
import { httpErrors } from '@fastify/sensible'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export const UPLOAD_MAX_BYTES = 5 * 1024 * 1024

const tooLarge = () => Object.assign(
  httpErrors.payloadTooLarge(`The file is larger than ${UPLOAD_MAX_BYTES / 1024 / 1024} MB`), { code: 'FILE_TOO_LARGE' })
const notMultipart = (field: string) => Object.assign(
  httpErrors.unsupportedMediaType(`Send the file as multipart/form-data, in the field "${field}"`), { code: 'NOT_MULTIPART' })
const wrongParts = (field: string) => Object.assign(
  httpErrors.badRequest(`Send exactly one part: the file, in the field "${field}"`), { code: 'INVALID_MULTIPART' })

/** Our messages for the plugin's errors; anything else from the parser means a malformed body. */
function uploadError (err: unknown, field: string) {
  const code = (err as { code?: unknown }).code
  if (code === 'FILE_TOO_LARGE' || code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge()
  if (code === 'INVALID_MULTIPART' || code === 'FST_PARTS_LIMIT' || code === 'FST_FILES_LIMIT' ||
    code === 'FST_FIELDS_LIMIT' || code === 'FST_PROTO_VIOLATION') return wrongParts(field)
  return Object.assign(httpErrors.badRequest('Malformed multipart/form-data body'), { code: 'MALFORMED_MULTIPART' })
}

/**
 * Collects a file part, failing the moment the parser reports the size limit: the part's stream would
 * otherwise only end when the client has finished sending, however much that is.
 */
async function collect (file: Readable & { truncated?: boolean }): Promise<Buffer> {
  const chunks: Buffer[] = []
  let over = false
  // Destroying the part makes the plugin stop feeding the parser, and ends the loop below at once.
  file.once('limit', () => { over = true; file.destroy() })
  try {
    for await (const chunk of file) chunks.push(chunk as Buffer)
  } catch (err) {
    if (!over) throw err
  }
  if (over || file.truncated === true) throw tooLarge()
  return Buffer.concat(chunks)
}

/**
 * Reads the single file part of a multipart body, sent in `field`. The size limit is enforced by the
 * parser while the part streams in, so no more than the limit is ever held in memory.
 */
export async function readSingleFile (request: FastifyRequest, field: string): Promise<Buffer> {
  if (!request.isMultipart()) throw notMultipart(field)
  let file: Buffer | undefined
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file' || part.fieldname !== field) throw wrongParts(field)
      file = await collect(part.file)
    }
  } catch (err) {
    const refusal = uploadError(err, field)
    // The parser has stopped reading: the rest of the body is discarded as it comes, never buffered, so the
    // client reads the answer at once and the connection stays usable (requestTimeout bounds a slow sender).
    // Closing the socket instead could reset it before the client has read the 413.
    request.raw.resume()
    throw refusal
  }
  if (file === undefined) throw wrongParts(field)
  return file
}

async function multipartPlugin (app: FastifyInstance) {
  await app.register(fastifyMultipart, {
    // One part, and that part a file: a text field or a second file ends the parsing at once.
    limits: { fileSize: UPLOAD_MAX_BYTES, files: 1, fields: 0, parts: 1, headerPairs: 20 },
    throwFileSizeLimit: true
  })
}

export default fp(multipartPlugin, { name: 'multipart', dependencies: ['errors'] })
