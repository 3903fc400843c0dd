import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'
import { loggableError } from '../src/db/database.js'
import { isDomainError, type DomainError, type DomainErrorKind } from '../src/domain/errors.js'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

function body (statusCode: number, message: string, code?: string) {
  return code === undefined
    ? { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
    : { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code }
}

/**
 * Messages that come from a parser rather than from us are replaced, so no library text leaks.
 * Fastify reports `__proto__`/`constructor.prototype` keys (refused against prototype poisoning) the same way.
 */
function clientMessage (err: FastifyError): string {
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) return 'Body is not valid JSON'
  return err.message
}

/** The one place where the domain's kinds of refusal become HTTP statuses. */
const STATUS_OF_KIND: Record<DomainErrorKind, number> = {
  invalid: 400, unauthenticated: 401, forbidden: 403, not_found: 404, conflict: 409, too_large: 413, unsupported: 415, throttled: 429
}

/** Answers that may come while the client is still sending the body they refuse. */
const REFUSES_BODY = new Set([400, 413, 415])

/** The HTTP status of a domain refusal. */
export const statusOf = (err: DomainError): number => STATUS_OF_KIND[err.kind]

function sendDomainError (err: DomainError, request: FastifyRequest, reply: FastifyReply) {
  const status = statusOf(err)
  if (REFUSES_BODY.has(status)) lingerOnUnreadBody(request, reply)
  // RFC 6750: a refused credential names the scheme to use; RFC 6585: a 429 says when to come back.
  if (err.kind === 'unauthenticated') reply.header('www-authenticate', 'Bearer')
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  return reply.code(status).send({ ...body(status, err.message, err.code), ...err.extra })
}

// A refused body is still read, and thrown away, up to these bounds, as nginx's lingering close does.
const LINGER_BYTES = 64 * 1024 * 1024
const LINGER_MS = 30_000

/**
 * Fastify answers a refused body (413, or a parse error) with `Connection: close`, and Node then closes
 * the socket while the client is still sending: the client sees a reset (EPIPE) instead of its 413.
 * Instead, the rest of the body is read and discarded, within bounds, while the answer goes out.
 */
function lingerOnUnreadBody (request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw
  if (raw.complete || raw.destroyed) return
  // Fastify's parser asked for `Connection: close` on the reply; a close Fastify set on the raw response
  // while it shuts down stays (the drain's own is set later, at send: plugins/graceful.ts).
  const closing = reply.raw.getHeader('connection')
  reply.removeHeader('connection')
  if (closing !== undefined) reply.raw.setHeader('connection', closing)
  let seen = 0
  // Destroying an unfinished request destroys its socket; under app.inject() there is no real socket.
  const cut = () => { raw.destroy() }
  const timer = setTimeout(cut, LINGER_MS).unref()
  raw.on('data', (chunk: Buffer) => {
    seen += chunk.length
    if (seen > LINGER_BYTES) cut()
  })
  raw.once('close', () => clearTimeout(timer))
  raw.resume()
}

/**
 * One shape for every error; a 5xx never says more than its name. A database or Redis that cannot be
 * reached is a 503 with Retry-After (the client may simply try again), not a 500: nothing is broken
 * in the request, and the pool reconnects by itself when the service is back.
 */
export default fp(async (app) => {
  app.setErrorHandler((err: FastifyError & { headers?: Record<string, string>, expose?: boolean }, request, reply) => {
    if (app.db.isUnavailable(err) || app.redisUnavailable(err)) {
      request.log.error({ err: loggableError(err) }, 'database or Redis unavailable')
      return reply.code(503).header('retry-after', '5')
        .send(body(503, 'The service is temporarily unavailable; try again shortly', 'SERVICE_UNAVAILABLE'))
    }
    if (app.db.isForeignKeyViolation(err)) {
      // Something the request refers to was deleted while it ran (a racing delete).
      return reply.code(409).send(body(409, 'A resource this request refers to was removed meanwhile; try again', 'CONCURRENT_CHANGE'))
    }
    if (isDomainError(err)) return sendDomainError(err, request, reply)
    const status = err.validation ? 400 : (err.statusCode ?? 500)
    if (status >= 500 && err.expose !== true) {
      request.log.error({ err: loggableError(err) }, 'request failed')
      return reply.code(500).send(body(500, 'Internal Server Error'))
    }
    if (err.headers !== undefined) reply.headers(err.headers)
    if (REFUSES_BODY.has(status)) lingerOnUnreadBody(request, reply)
    const code = typeof err.code === 'string' ? err.code : undefined
    return reply.code(status).send(body(status, clientMessage(err), code))
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(body(404, `Route ${request.method} ${request.url.split('?')[0]} not found`, 'ROUTE_NOT_FOUND'))
  })
}, { name: 'errors', dependencies: ['db', 'counters'] })
