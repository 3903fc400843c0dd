import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createTokenService, type TokenService } from '../src/domain/tokens.js'

export type { TokenPair, TokenService } from '../src/domain/tokens.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
  }
}

/** The token service (src/domain/tokens.ts), signing access tokens with the guards' @fastify/jwt. */
async function tokensPlugin (app: FastifyInstance) {
  const { accessTokenTtl, refreshTokenTtl, jwtSecret } = app.config
  app.decorate('tokens', createTokenService(app.db, {
    accessTokenTtl,
    refreshTokenTtl,
    jwtSecret,
    signAccess: (claims, ttl) => ttl === undefined ? app.jwt.sign(claims) : app.jwt.sign(claims, { expiresIn: `${ttl}s` }),
    log: app.log
  }))
}

export default fp(tokensPlugin, { name: 'tokens', dependencies: ['config', 'db', 'auth'] })
