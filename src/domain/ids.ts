import { createHash, randomBytes } from 'node:crypto'

// Random ids for sessions, links and challenges, the hash under which a secret one is stored, and the
// clock in unix seconds: shared by sessions, account links and second factors, owned by none of them.

export const unixNow = () => Math.floor(Date.now() / 1000)

/** `bytes` random bytes, base64url: 16 for an id, 32 for a secret token. */
export function newId (bytes = 16): string {
  return randomBytes(bytes).toString('base64url')
}

/** What is stored of a secret token: its SHA-256, so a leaked table leaks no usable token. */
export function tokenHash (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}
