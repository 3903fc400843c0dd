import fp from 'fastify-plugin'
import { createCursors, type Cursors } from '../src/domain/pagination.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Issues and reads the opaque `cursor` of keyset pages (lists of posts). */
    cursors: Cursors
  }
}

/** Page cursors are authenticated with a key derived from JWT_SECRET, so only this server's work. */
export default fp(async (app) => {
  app.decorate('cursors', createCursors(app.config.jwtSecret))
}, { name: 'cursors', dependencies: ['config'] })
