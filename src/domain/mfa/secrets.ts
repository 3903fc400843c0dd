import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto'

/**
 * The keys of the second factors, derived once from MFA_ENCRYPTION_KEY (or JWT_SECRET): one encrypts
 * TOTP secrets at rest (AES-256-GCM, bound to the user's id, so a secret copied to another row does not
 * decrypt), one keys the hashes of recovery codes (a leaked table alone cannot be searched offline).
 * Changing the key voids every authenticator app and recovery code: set MFA_ENCRYPTION_KEY before
 * rotating JWT_SECRET (SECURITY.md).
 */
export interface MfaKeys {
  seal: (plain: string, userId: number) => string
  /** The plain text, or undefined when the box was not sealed with this key for this user. */
  open: (box: string, userId: number) => string | undefined
  codeHash: (userId: number, code: string) => string
}

const VERSION = 'v1'

function derive (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'inkwell', `inkwell:${purpose}:${VERSION}`, 32))
}

export function mfaKeys (secret: string): MfaKeys {
  const sealKey = derive(secret, 'totp-secret')
  const codeKey = derive(secret, 'recovery-code')
  return {
    seal (plain, userId) {
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', sealKey, iv).setAAD(Buffer.from(`totp:${userId}`))
      const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
      return [VERSION, iv.toString('base64url'), sealed.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
    },
    open (box, userId) {
      const [version, iv, sealed, tag] = box.split('.')
      if (version !== VERSION || iv === undefined || sealed === undefined || tag === undefined) return undefined
      try {
        const decipher = createDecipheriv('aes-256-gcm', sealKey, Buffer.from(iv, 'base64url')).setAAD(Buffer.from(`totp:${userId}`))
        decipher.setAuthTag(Buffer.from(tag, 'base64url'))
        return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString('utf8')
      // Stryker disable next-line BlockStatement: without it the function ends here all the same, returning undefined
      } catch {
        return undefined
      }
    },
    codeHash (userId, code) {
      return createHmac('sha256', codeKey).update(`${userId}:${code}`).digest('base64url')
    }
  }
}
