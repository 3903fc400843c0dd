import fastifyCors from '@fastify/cors'
import fastifyHelmet from '@fastify/helmet'
import type { FastifyInstance } from 'fastify'
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

/** Security headers on every response, and CORS only for the origins configured in CORS_ORIGINS. */
async function securityPlugin (app: FastifyInstance) {
  const { corsOrigins } = app.config
  const crossOrigin = corsOrigins.length > 0

  // Registered before the docs routes exist, so it sees them as they are added.
  app.addHook('onRoute', (route) => {
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) {
      route.config = {
        ...route.config,
        helmet: { contentSecurityPolicy: { useDefaults: false, directives: DOCS_CSP } }
      } as typeof route.config
    }
  })

  await app.register(fastifyHelmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: API_CSP },
    frameguard: { action: 'deny' },
    // Ignored by browsers over plain HTTP; binds once a TLS proxy serves this host (ASVS 3.4.1: a year, subdomains too).
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    // Tokens travel in a header, never in cookies, so a no-cors load (an <img> of an avatar) carries no credentials:
    // allowed cross-origin exactly when the operator opened the API to other origins.
    crossOriginResourcePolicy: { policy: crossOrigin ? 'cross-origin' : 'same-origin' }
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
