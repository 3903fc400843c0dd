import { createHmac } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'
import type { Database } from '../db/index.js'
import { errors } from './errors.js'
import { newId } from './ids.js'
import type { NewSession } from './login.js'
import {
  type ClientInfo, createSession, recordRefreshToken, revokeAllSessions,
  revokeSessionOfToken, spendRefreshToken
} from './sessions.js'

// Token issue and rotation: a session's token pairs, the refresh token's own key, rotation that
// spends the old refresh token and records the new one in one transaction, and logout. The access
// token is signed by whoever verifies it (the guards' @fastify/jwt, algorithm pinned there), so the
// service takes its signer; every refusal is the catalogue's one 401.

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

/** The part of a logger the service writes to (pino's, the request's). */
export interface TokenLog {
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
}

export interface TokenSettings {
  accessTokenTtl: number
  refreshTokenTtl: number
  jwtSecret: string
  /** Signs an access token's claims (with the key and algorithm its verifier uses), living `ttl` seconds (default: accessTokenTtl). */
  signAccess: (claims: { sub: string, sid: string, type: 'access', jti: string }, ttl?: number) => string
  log: TokenLog
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
  /**
   * Starts a session whose one access token lives `ttl` seconds, with no refresh token: for clients
   * that never refresh (Conduit's). The session ends when the token does, and like any session it is
   * listed, revocable at once, and ended by logout-all and deactivation. Undefined as for `start`.
   */
  startAccessOnly: (session: NewSession, ttl: number, tx?: Database) => Promise<string | undefined>
  /** Spends a refresh token for a new pair in the same session; throws the 401 otherwise. */
  refresh: (refreshToken: string, log?: TokenLog) => Promise<TokenPair>
  /** Ends the session a refresh token belongs to. Never fails: logout is idempotent. */
  logout: (refreshToken: string) => Promise<void>
  /** Ends every session of the user, so every token issued until now stops working. */
  logoutAll: (userId: number, tx?: Database) => Promise<void>
}

export function createTokenService (db: Database, settings: TokenSettings): TokenService {
  const { accessTokenTtl, refreshTokenTtl, jwtSecret, signAccess } = settings
  // A key of its own: a refresh token can never verify as an access token, nor the reverse.
  const refreshKey = createHmac('sha256', jwtSecret).update('inkwell:refresh-token:v1').digest()
  const signRefresh = createSigner({ key: refreshKey, algorithm: 'HS256', expiresIn: refreshTokenTtl * 1000 })
  const verifyRefresh = createVerifier({
    key: refreshKey,
    algorithms: ['HS256'],
    requiredClaims: ['exp', 'sub', 'sid', 'jti', 'type']
  })

  // jti makes every access token unique, even two issued in the same second.
  const accessToken = (userId: number, sessionId: string, ttl?: number) =>
    signAccess({ sub: String(userId), sid: sessionId, type: 'access', jti: newId() }, ttl)

  async function pair (tx: Database, userId: number, sessionId: string): Promise<TokenPair> {
    const refreshToken = signRefresh({ sub: String(userId), sid: sessionId, jti: newId(32), type: 'refresh' })
    await recordRefreshToken(tx, sessionId, refreshToken, refreshTokenTtl)
    return {
      access_token: accessToken(userId, sessionId),
      refresh_token: refreshToken,
      token_type: 'bearer',
      expires_in: accessTokenTtl
    }
  }

  const service: TokenService = {
    async issue (userId, verifiedHash, client, into = db) {
      const tokens = await service.start({ userId, verifiedHash, client, amr: ['pwd'] }, into)
      if (tokens === undefined) throw errors.invalidLogin()
      return tokens
    },

    async start ({ userId, verifiedHash, client, amr }, into = db) {
      // One transaction: one commit (one fsync) for the session and its first refresh token.
      return await into.transaction(async (tx) => {
        const sessionId = await createSession(tx, userId, verifiedHash, refreshTokenTtl, client, amr)
        return sessionId === undefined ? undefined : await pair(tx, userId, sessionId)
      })
    },

    async startAccessOnly ({ userId, verifiedHash, client, amr }, ttl, into = db) {
      const sessionId = await into.transaction((tx) => createSession(tx, userId, verifiedHash, ttl, client, amr))
      return sessionId === undefined ? undefined : accessToken(userId, sessionId, ttl)
    },

    async refresh (refreshToken, log = settings.log) {
      let claims: RefreshClaims
      try {
        claims = verifyRefresh(refreshToken) as RefreshClaims
      } catch {
        throw errors.invalidCredentials()
      }
      if (claims.type !== 'refresh' || typeof claims.sid !== 'string') throw errors.invalidCredentials()
      // Spending the old token and recording the new one commit together: one fsync, and no
      // state where the old token is spent but its successor does not exist.
      const outcome = await db.transaction(async (tx) => {
        const spent = await spendRefreshToken(tx, refreshToken, claims.sid)
        return spent.ok ? { ...spent, tokens: await pair(tx, spent.userId, spent.sessionId) } : spent
      })
      if (!outcome.ok) {
        // Stryker disable next-line EqualityOperator: chooses between two log lines only; the answer is the same 401
        if (outcome.reason === 'reused') log.warn({ sessionId: claims.sid, userId: claims.sub }, 'refresh token reused: session revoked')
        else log.info({ userId: claims.sub, reason: outcome.reason }, 'refresh refused')
        throw errors.invalidCredentials()
      }
      log.info({ userId: outcome.userId }, 'tokens refreshed')
      return outcome.tokens
    },

    async logout (refreshToken) {
      await revokeSessionOfToken(db, refreshToken)
    },

    async logoutAll (userId, into = db) {
      await revokeAllSessions(into, userId)
    }
  }
  return service
}
