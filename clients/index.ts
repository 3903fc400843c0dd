// A typed Inkwell client: openapi-fetch over the types that `npm run generate:client` writes to
// schema.d.ts from openapi.json. Only this file is written by hand.
import createClient, { type ClientOptions, type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema.js'

export type { components, operations, paths } from './schema.js'
export type Schemas = components['schemas']

/** A client for the server at `baseUrl`, e.g. `http://127.0.0.1:3000` (the document's server is relative: `/`). */
export function createInkwellClient (baseUrl: string, options: Omit<ClientOptions, 'baseUrl'> = {}) {
  return createClient<paths>({ ...options, baseUrl })
}

export type InkwellClient = ReturnType<typeof createInkwellClient>

/** Sends `Authorization: Bearer <token>` whenever `token()` has one: `client.use(bearer(() => token))`. */
export function bearer (token: () => string | undefined): Middleware {
  return {
    onRequest ({ request }) {
      const value = token()
      if (value !== undefined) request.headers.set('authorization', `Bearer ${value}`)
    }
  }
}
