import { createHmac } from 'node:crypto'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { createSigner, createVerifier } from 'fast-jwt'
import fp from 'fastify-plugin'
import type { Database } from '../src/db/index.js'
import { newId } from '../src/domain/ids.js'
import {
  type ClientInfo, createSession, recordRefreshToken, revokeAllSessions,
  revokeSessionOfToken, spendRefreshToken
} from '../src/domain/sessions.js'
import type { NewSession } from '../src/domain/login.js'
import { errors } from '../src/domain/errors.js'
import { credentialsError } from './auth.js'

export interface TokenPair {
  access_token: string
  refresh_token: string
  token_type: 'bearer'
  expires_in: number
}

interface RefreshClaims {
  sub: string
  sid: string
  jti: string
  type: 'refresh'
}

export interface TokenService {
  /**
   * Starts a new session for the user and returns its first token pair, if `verifiedHash` (the
   * password hash the caller checked) is still the user's; otherwise throws the login's 401.
   * Inside a caller's transaction (`tx`), joins it.
   */
  issue: (userId: number, verifiedHash: string, client: ClientInfo, tx?: Database) => Promise<TokenPair>
  /**
   * Starts a session as the login service asks (with its `amr`) and returns its first pair, or
   * undefined when the verified password is no longer the account's (or the account is gone).
   */
  start: (session: NewSession, tx?: Database) => Promise<TokenPair | undefined>
  /** Spends a refresh token for a new pair in the same session; throws the 401 otherwise. */
  refresh: (refreshToken: string, log?: FastifyBaseLogger) => Promise<TokenPair>
  /** Ends the session a refresh token belongs to. Never fails: logout is idempotent. */
  logout: (refreshToken: string) => Promise<void>
  /** Ends every session of the user, so every token issued until now stops working. */
  logoutAll: (userId: number, tx?: Database) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
  }
}

async function tokensPlugin (app: FastifyInstance) {
  const { accessTokenTtl, refreshTokenTtl, jwtSecret } = app.config
  // A key of its own: a refresh token can never verify as an access token, nor the reverse.
  const refreshKey = createHmac('sha256', jwtSecret).update('inkwell:refresh-token:v1').digest()
  const signRefresh = createSigner({ key: refreshKey, algorithm: 'HS256', expiresIn: refreshTokenTtl * 1000 })
  const verifyRefresh = createVerifier({
    key: refreshKey,
    algorithms: ['HS256'],
    requiredClaims: ['exp', 'sub', 'sid', 'jti', 'type']
  })

  async function pair (tx: Database, userId: number, sessionId: string): Promise<TokenPair> {
    const sub = String(userId)
    const refreshToken = signRefresh({ sub, sid: sessionId, jti: newId(32), type: 'refresh' })
    await recordRefreshToken(tx, sessionId, refreshToken, refreshTokenTtl)
    return {
      // jti makes every access token unique, even two issued in the same second.
      access_token: app.jwt.sign({ sub, sid: sessionId, type: 'access', jti: newId() }),
      refresh_token: refreshToken,
      token_type: 'bearer',
      expires_in: accessTokenTtl
    }
  }

  const service: TokenService = {
    async issue (userId, verifiedHash, client, db = app.db) {
      const tokens = await service.start({ userId, verifiedHash, client, amr: ['pwd'] }, db)
      if (tokens === undefined) throw errors.invalidLogin()
      return tokens
    },

    async start ({ userId, verifiedHash, client, amr }, db = app.db) {
      // One transaction: one commit (one fsync) for the session and its first refresh token.
      return await db.transaction(async (tx) => {
        const sessionId = await createSession(tx, userId, verifiedHash, refreshTokenTtl, client, amr)
        return sessionId === undefined ? undefined : await pair(tx, userId, sessionId)
      })
    },

    async refresh (refreshToken, log = app.log) {
      let claims: RefreshClaims
      try {
        claims = verifyRefresh(refreshToken) as RefreshClaims
      } catch {
        throw credentialsError()
      }
      if (claims.type !== 'refresh' || typeof claims.sid !== 'string') throw credentialsError()
      // Spending the old token and recording the new one commit together: one fsync, and no
      // state where the old token is spent but its successor does not exist.
      const outcome = await app.db.transaction(async (tx) => {
        const spent = await spendRefreshToken(tx, refreshToken, claims.sid)
        return spent.ok ? { ...spent, tokens: await pair(tx, spent.userId, spent.sessionId) } : spent
      })
      if (!outcome.ok) {
        // Stryker disable next-line EqualityOperator: chooses between two log lines only; the answer is the same 401
        if (outcome.reason === 'reused') log.warn({ sessionId: claims.sid, userId: claims.sub }, 'refresh token reused: session revoked')
        else log.info({ userId: claims.sub, reason: outcome.reason }, 'refresh refused')
        throw credentialsError()
      }
      log.info({ userId: outcome.userId }, 'tokens refreshed')
      return outcome.tokens
    },

    async logout (refreshToken) {
      await revokeSessionOfToken(app.db, refreshToken)
    },

    async logoutAll (userId, db = app.db) {
      await revokeAllSessions(db, userId)
    }
  }
  app.decorate('tokens', service)
}

export default fp(tokensPlugin, { name: 'tokens', dependencies: ['config', 'db', 'auth'] })
