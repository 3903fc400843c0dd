import fastifyCors from '@fastify/cors'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import helmet, { type HelmetOptions } from 'helmet'
import fp from 'fastify-plugin'

/** Where @fastify/swagger-ui serves its page, assets and document (plugins/swagger.ts). */
export const DOCS_PREFIX = '/docs'

/** The API answers JSON and images: a browser may load nothing on their behalf, nor frame them. */
export const API_CSP = {
  'default-src': ["'none'"],
  // Implied by default-src, spelled out as ASVS 3.4.3 asks.
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"]
}

/**
 * Swagger UI's page: its scripts and styles are files of this server, but React sets inline
 * styles, icons are data: URIs and "Try it out" shows image responses from blob: URLs.
 * No `upgrade-insecure-requests`: on plain HTTP under any host name but localhost the browser
 * would re-request every asset over https and the page would stay blank.
 */
export const DOCS_CSP = {
  'default-src': ["'self'"],
  'base-uri': ["'none'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:', 'blob:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'"]
}

/** The headers helmet would set for these options, computed once instead of on every request. */
export function helmetHeaders (options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader (name: string, value: unknown) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { delete headers[name.toLowerCase()] }
  }
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, () => {})
  return headers
}

/** Security headers on every response, and CORS only for the origins configured in CORS_ORIGINS. */
async function securityPlugin (app: FastifyInstance) {
  const { corsOrigins } = app.config
  const crossOrigin = corsOrigins.length > 0

  const common: HelmetOptions = {
    frameguard: { action: 'deny' },
    // Ignored by browsers over plain HTTP; binds once a TLS proxy serves this host (ASVS 3.4.1: a year, subdomains too).
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    // Tokens travel in a header, never in cookies, so a no-cors load (an <img> of an avatar) carries no credentials:
    // allowed cross-origin exactly when the operator opened the API to other origins.
    crossOriginResourcePolicy: { policy: crossOrigin ? 'cross-origin' : 'same-origin' }
  }
  // helmet is the source of the values; building its middleware per request cost a quarter of a
  // /users/me (measured with bench/), so the two header sets are computed once here.
  const apiHeaders = helmetHeaders({ ...common, contentSecurityPolicy: { useDefaults: false, directives: API_CSP } })
  const docsHeaders = helmetHeaders({ ...common, contentSecurityPolicy: { useDefaults: false, directives: DOCS_CSP } })

  // onRequest, so that errors (404, 401, 413...) carry the headers too. A request with credentials
  // gets a private answer: no cache may keep it. The request id ties a response to its log lines.
  // Nothing here reads the route (request.routeOptions builds an object on every access): Swagger UI's
  // routes swap in their own policy with a hook of their own, added as they are declared.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(apiHeaders)
    reply.header('x-request-id', request.id)
    if (request.headers.authorization !== undefined) reply.header('cache-control', 'no-store')
    done()
  })
  const docsOnly = Object.fromEntries(Object.entries(docsHeaders).filter(([name, value]) => apiHeaders[name] !== value))
  const useDocsHeaders: onRequestHookHandler = (_request, reply, done) => {
    reply.headers(docsOnly)
    done()
  }
  app.addHook('onRoute', (route) => {
    if (route.url !== DOCS_PREFIX && !route.url.startsWith(`${DOCS_PREFIX}/`)) return
    const own = route.onRequest === undefined ? [] : Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]
    // Route hooks run after the instance's: these headers replace the API's.
    route.onRequest = [...own, useDocsHeaders]
  })

  // Closed by default: without CORS_ORIGINS no Access-Control-* header is ever sent.
  if (crossOrigin) {
    await app.register(fastifyCors, {
      origin: corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['Retry-After'],
      // Bearer tokens, not cookies: a browser has no ambient credential to send.
      credentials: false,
      maxAge: 600,
      // An OPTIONS without Origin is answered 204 rather than with the plugin's text/plain 400 outside our error shape.
      strictPreflight: false
    })
  }
}

export default fp(securityPlugin, { name: 'security', dependencies: ['config'] })
