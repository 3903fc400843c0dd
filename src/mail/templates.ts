/** The three parts of a mail that depend on its kind; the mailer adds From, To, Date and Message-ID. */
export interface MailContent {
  subject: string
  text: string
  html: string
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text made safe for HTML content and for a double- or single-quoted attribute. */
export function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

/**
 * `ada@example.com` → `a***@example.com`: enough for its owner to recognise, too little to harvest.
 * Text without a single `@` (not an address) becomes `***`.
 */
export function maskEmail (address: string): string {
  const at = address.lastIndexOf('@')
  if (at <= 0 || at === address.length - 1) return '***'
  return `${Array.from(address)[0] as string}***@${address.slice(at + 1)}`
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`

/**
 * A lifetime in words, never longer than the real one: 1800 → "30 minutes", 86400 → "24 hours",
 * 604800 → "7 days", 90 → "90 seconds", 1830 → "30 minutes" (rounded down).
 */
export function describeDuration (seconds: number): string {
  if (!Number.isSafeInteger(seconds) || seconds < 1) throw new RangeError(`seconds must be a positive integer, got ${seconds}`)
  if (seconds % 86_400 === 0 && seconds >= 2 * 86_400) return plural(seconds / 86_400, 'day')
  if (seconds % 3600 === 0) return plural(seconds / 3600, 'hour')
  if (seconds % 60 === 0 || seconds >= 120) return plural(Math.floor(seconds / 60), 'minute')
  return plural(seconds, 'second')
}

/** One paragraph of plain text per entry, the link alone on its own line (mail clients make it clickable). */
function build (subject: string, paragraphs: Array<string | { link: string }>): MailContent {
  const text = paragraphs.map((p) => typeof p === 'string' ? p : p.link).join('\n\n') + '\n\n-- \nInkwell\n'
  const body = paragraphs.map((p) => typeof p === 'string'
    ? `<p>${escapeHtml(p)}</p>`
    : `<p><a href="${escapeHtml(p.link)}">${escapeHtml(p.link)}</a></p>`).join('\n')
  const html = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' + escapeHtml(subject) + '</title></head>\n' +
    `<body style="font-family: sans-serif; line-height: 1.5">\n${body}\n<p>— Inkwell</p>\n</body></html>\n`
  return { subject, text, html }
}

const NOT_YOU_IGNORE = 'If you did not ask for this, you can ignore this mail: nothing changes.'

/** To a new account's address (registration, or POST /users/me/verify-email). */
export function verifyEmail (link: string, ttlSeconds: number): MailContent {
  return build('Confirm your e-mail address for Inkwell', [
    'Please confirm that this is your e-mail address for Inkwell by opening this link:',
    { link },
    `The link works once, within ${describeDuration(ttlSeconds)}.`,
    'If you did not create an Inkwell account, you can ignore this mail.'
  ])
}

/** To the account's address, on POST /auth/password-reset. */
export function passwordReset (link: string, ttlSeconds: number): MailContent {
  return build('Reset your Inkwell password', [
    'Someone, hopefully you, asked to reset the password of the Inkwell account with this e-mail address. To choose a new password, open this link:',
    { link },
    `The link works once, within ${describeDuration(ttlSeconds)}; asking again makes this one invalid. Setting a new password logs the account out everywhere.`,
    NOT_YOU_IGNORE + ' Your password stays as it is.'
  ])
}

/** To the NEW address, asking its owner to confirm the change. */
export function confirmEmailChange (link: string, newAddress: string, ttlSeconds: number): MailContent {
  return build('Confirm your new e-mail address for Inkwell', [
    `Someone, hopefully you, asked to change the e-mail address of an Inkwell account to ${newAddress}. To confirm the change, open this link:`,
    { link },
    `The link works once, within ${describeDuration(ttlSeconds)}.`,
    NOT_YOU_IGNORE
  ])
}

/** To the OLD address, once the change is done: the owner learns of it even if someone else made it. */
export function emailChangedNotice (newAddressMasked: string): MailContent {
  return build('Your Inkwell e-mail address was changed', [
    `The e-mail address of your Inkwell account was just changed to ${newAddressMasked}. Mails about the account, password resets included, now go there.`,
    'If you made this change, there is nothing more to do.',
    'If you did not, someone else may control your account: contact the administrators of this Inkwell site at once, and change the password of any other account where you used the same one.'
  ])
}

/** To the account's address, when one of its recovery codes was used to log in or confirm a change. */
export function recoveryCodeUsedNotice (left: number): MailContent {
  return build('A recovery code of your Inkwell account was used', [
    `One of the recovery codes of your Inkwell account was just used in place of a code from your authenticator app. ${left} ${left === 1 ? 'code is' : 'codes are'} left; each works once.`,
    'If this was you, consider making new codes (POST /users/me/mfa/recovery-codes) before you run out.',
    'If it was not, someone has your password and a recovery code: change your password at once, make new recovery codes, and check your sessions.'
  ])
}
