import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createTransport, type SendMailOptions, type SentMessageInfo } from 'nodemailer'
import { concurrencyLimit } from '../domain/limit.js'
import { maskEmail } from './templates.js'

export interface MailMessage {
  to: string
  subject: string
  text: string
  html: string
  /** The action link, logged when mails go to the outbox (never when they go over SMTP). */
  link?: string
}

export interface MailerOptions {
  /** smtp:// or smtps:// (implicit TLS), credentials in the URL allowed; unset: mails go to outboxDir. */
  smtpUrl?: string
  from: string
  outboxDir: string
  /** Waits between attempts; default [1000, 5000, 15000] (so 4 attempts). */
  retryDelaysMs?: number[]
  /** Per-attempt bound on connect, greeting and socket inactivity, ms (default 10_000); a whole attempt is bounded at 3×. */
  timeoutMs?: number
  /** Attempts in progress at once (default 4); the others wait their turn. */
  concurrency?: number
  /** Mails queued or being retried at most (default 1000); past it a mail is dropped with an error log. */
  maxQueued?: number
}

export interface MailLogger {
  info: (o: object, m: string) => void
  warn: (o: object, m: string) => void
  error: (o: object, m: string) => void
}

export interface Mailer {
  /** Queues the mail and returns at once: never throws, never blocks the caller. */
  send (message: MailMessage): void
  /** Resolves when every mail queued so far was delivered or given up (tests, shutdown). */
  idle (): Promise<void>
  /** Takes no more mails, cancels waits between retries (those mails are given up), lets attempts in progress finish, then closes. */
  close (): Promise<void>
}

const DEFAULT_RETRY_DELAYS_MS = [1000, 5000, 15_000]
const DEFAULT_TIMEOUT_MS = 10_000

/** What of a failure may be logged: codes, and the server's text with addresses masked and links cut. */
function describeError (err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: 'non-error thrown' }
  const e = err as Error & { code?: unknown, responseCode?: unknown, command?: unknown }
  const message = e.message
    .replace(/[^\s<>"'(),;:]+@[^\s<>"'(),;:]+/g, (address) => maskEmail(address))
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S*/gi, '[link]')
    .slice(0, 300)
  return {
    name: e.name,
    message,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.responseCode === 'number' ? { responseCode: e.responseCode } : {}),
    ...(typeof e.command === 'string' ? { command: e.command.replace(/<[^>]*>/g, '<…>') } : {})
  }
}

/**
 * One plain `local@domain`: no control character (CR/LF header injection), space, list separator,
 * angle bracket or quote, so nothing can turn it into a second recipient or a display name.
 */
// eslint-disable-next-line no-control-regex
const PLAIN_ADDRESS = /^[^\u0000-\u0020\u007f@<>,;:"()[\]\\]+@[^\u0000-\u0020\u007f@<>,;:"()[\]\\]+$/

/** A 5xx reply is the server's final word (unknown mailbox, bad credentials): retrying cannot help. */
const isPermanent = (err: unknown) => {
  const code = (err as { responseCode?: unknown } | undefined)?.responseCode
  return typeof code === 'number' && code >= 500 && code < 600
}

/** Resolves after ms, or at once when the signal aborts. */
function pause (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** `2026-05-01T12-30-00.123Z-<hex>.eml`: sorts by time; no `:`, which some file systems refuse. */
const outboxName = () => `${new Date().toISOString().replace(/:/g, '-')}-${randomBytes(6).toString('hex')}.eml`

/**
 * Sends account mails in the background. With `smtpUrl` each mail gets up to 1 + retryDelaysMs.length
 * attempts (a 5xx reply ends it at once), and a final failure is logged at error level and the mail
 * dropped. Without it, each mail is written as an .eml file to outboxDir and its link logged (development).
 * Logs name recipients masked (`a***@example.com`); over SMTP they never carry the link.
 */
export function createMailer (options: MailerOptions, logger: MailLogger): Mailer {
  // A logger that throws must not break delivery, nor make idle() reject.
  const log: MailLogger = {
    info: (o, m) => { try { logger.info(o, m) } catch { /* ignored */ } },
    warn: (o, m) => { try { logger.warn(o, m) } catch { /* ignored */ } },
    error: (o, m) => { try { logger.error(o, m) } catch { /* ignored */ } }
  }
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const concurrency = options.concurrency ?? 4
  const maxQueued = options.maxQueued ?? 1000
  for (const [name, value] of [['timeoutMs', timeoutMs], ['concurrency', concurrency], ['maxQueued', maxQueued]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`)
  }
  if (!delays.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError('retryDelaysMs must be non-negative integers')

  const smtp = options.smtpUrl !== undefined && options.smtpUrl !== ''
  const common = { disableFileAccess: true, disableUrlAccess: true }
  const transport: { sendMail (mail: SendMailOptions): Promise<SentMessageInfo>, close (): void } = smtp
    ? createTransport({
      url: options.smtpUrl,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      dnsTimeout: timeoutMs,
      ...common
    })
    : createTransport({ streamTransport: true, buffer: true, newline: 'windows', ...common })
  const outboxDir = resolve(options.outboxDir)

  const pending = new Set<Promise<void>>()
  const closing = new AbortController()
  /** Runs fn when fewer than `concurrency` attempts are in progress. */
  const inTurn = concurrencyLimit(concurrency)

  const compose = (message: MailMessage) => ({
    from: options.from,
    // An address object, not a string: nodemailer parses no list out of it, so one recipient it stays.
    to: { name: '', address: message.to },
    subject: message.subject,
    text: message.text,
    html: message.html,
    headers: { 'Auto-Submitted': 'auto-generated' }
  })

  async function deliver (message: MailMessage): Promise<void> {
    const to = maskEmail(message.to)
    const mail = compose(message)
    if (!smtp) {
      const info = await inTurn(() => transport.sendMail(mail))
      await mkdir(outboxDir, { recursive: true, mode: 0o700 })
      const file = join(outboxDir, outboxName())
      await writeFile(file, info.message as Buffer, { mode: 0o600, flag: 'wx' })
      log.info({ to, subject: message.subject, file, link: message.link, messageId: info.messageId }, 'mail written to the outbox (SMTP_URL is unset)')
      return
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const info = await inTurn(() => transport.sendMail({ ...mail, signal: AbortSignal.timeout(3 * timeoutMs) }))
        log.info({ to, subject: message.subject, attempt, messageId: info.messageId }, 'mail sent')
        return
      } catch (err) {
        const delay = delays[attempt - 1]
        const error = describeError(err)
        if (isPermanent(err) || delay === undefined || closing.signal.aborted) {
          log.error({ to, subject: message.subject, attempts: attempt, err: error },
            isPermanent(err) ? 'mail refused for good by the SMTP server: dropped' : 'mail could not be sent: given up')
          return
        }
        log.warn({ to, subject: message.subject, attempt, retryInMs: delay, err: error }, 'mail not sent yet: will retry')
        await pause(delay, closing.signal)
        if (closing.signal.aborted) {
          log.error({ to, subject: message.subject, attempts: attempt, err: error }, 'mail could not be sent before shutdown: given up')
          return
        }
      }
    }
  }

  function send (message: MailMessage): void {
    try {
      const to = maskEmail(String(message.to))
      if (closing.signal.aborted) {
        log.error({ to, subject: message.subject }, 'mail dropped: the mailer is closed')
        return
      }
      if (typeof message.to !== 'string' || !PLAIN_ADDRESS.test(message.to)) {
        log.error({ to }, 'mail dropped: not a single e-mail address')
        return
      }
      if (pending.size >= maxQueued) {
        log.error({ to, subject: message.subject, queued: pending.size }, 'mail dropped: too many mails queued')
        return
      }
      const job: Promise<void> = deliver(message)
        .catch((err: unknown) => { log.error({ to, subject: message.subject, err: describeError(err) }, 'mail could not be sent: dropped') })
        .finally(() => { pending.delete(job) })
      pending.add(job)
    } catch (err) {
      // send never throws: whatever went wrong here is the mail's problem, not the request's
      log.error({ err: describeError(err) }, 'mail dropped: could not be queued')
    }
  }

  async function idle (): Promise<void> {
    await Promise.all(Array.from(pending))
  }

  async function close (): Promise<void> {
    closing.abort()
    await idle()
    transport.close()
  }

  return { send, idle, close }
}
