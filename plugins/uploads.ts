import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { AVATAR_FILE } from '../src/domain/avatars.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Absolute path of UPLOADS_DIR, created at start-up. */
    uploadsDir: string
  }
}

const YEAR_MS = 365 * 24 * 60 * 60 * 1000

/** Serves `GET /avatars/<file>` from UPLOADS_DIR: only stored avatar names, never a listing or a dot file. */
async function avatarFiles (app: FastifyInstance, { root }: { root: string }) {
  app.setNotFoundHandler(async () => {
    throw Object.assign(app.httpErrors.notFound('Avatar not found'), { code: 'AVATAR_NOT_FOUND' })
  })
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    decorateReply: false,
    index: false,
    list: false,
    dotfiles: 'ignore',
    redirect: false,
    // A name is never reused (a new upload gets a new random name), so a response can be cached forever.
    cacheControl: true,
    maxAge: YEAR_MS,
    immutable: true,
    allowedPath: (pathname) => AVATAR_FILE.test(pathname.slice(1)),
    setHeaders: (reply) => { reply.header('x-content-type-options', 'nosniff') }
  })
}

async function uploadsPlugin (app: FastifyInstance) {
  const root = resolve(app.config.uploadsDir)
  await mkdir(root, { recursive: true })
  app.decorate('uploadsDir', root)
  await app.register(avatarFiles, { prefix: '/avatars', root })
}

export default fp(uploadsPlugin, { name: 'uploads', dependencies: ['config', 'errors'] })
