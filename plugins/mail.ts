import fp from 'fastify-plugin'
import { MemoryRateCounter, type RateCounter } from '../src/domain/rate-counter.js'
import { createMailer, type Mailer, type MailerOptions } from '../src/mail/mailer.js'
import {
  confirmEmailChange, emailChangedNotice, maskEmail, passwordReset, recoveryCodeUsedNotice, verifyEmail, type MailContent
} from '../src/mail/templates.js'
import { RedisRateCounter } from '../src/redis/rate-counter.js'

declare module 'fastify' {
  interface FastifyInstance {
    mailer: Mailer
    /** At most 3 mails of one kind to one account an hour (per process, or in Redis for all of them). */
    mailLimit: RateCounter
    /**
     * Runs `task` after the current response is on its way, so a route answers in the same time
     * whatever the task finds (no account, or one to mail). Failures are logged, never thrown.
     */
    afterResponse: (task: () => Promise<void>, log: { error: (o: object, m: string) => void }) => void
    /** Resolves when every afterResponse task so far and every queued mail is done (tests, shutdown). */
    settled: () => Promise<void>
    /**
     * If the account has had fewer than 3 such mails this hour, runs `issue` (which makes the link's
     * token, voiding earlier links, or returns undefined when there is nothing to send) and mails the
     * link, built from APP_URL only (never from the request's Host or X-Forwarded-* headers). Past the
     * cap nothing changes: no token is made, so no earlier link is voided.
     */
    mailLink: (kind: LinkKind, userId: number, to: string, issue: () => Promise<string | undefined>) => Promise<boolean>
    /** Tells the previous address that the account's address changed. */
    mailEmailChanged: (previous: string, next: string) => void
    /** Tells the owner that one of their recovery codes was used, and how many are left. */
    mailRecoveryCodeUsed: (to: string, left: number) => void
  }
}

export type LinkKind = 'verify_email' | 'password_reset' | 'email_change'

export const MAILS_PER_HOUR = 3

export interface MailPluginOptions { mailer?: Partial<Pick<MailerOptions, 'retryDelaysMs' | 'timeoutMs'>> }

/** Account mails: SMTP when SMTP_URL is set, else .eml files in MAIL_OUTBOX_DIR with their links logged. */
export default fp<MailPluginOptions>(async (app, options) => {
  const { smtpUrl, mailFrom, mailOutboxDir, redisKeyPrefix } = app.config
  const mailer = createMailer({
    ...(smtpUrl !== undefined && { smtpUrl }),
    from: mailFrom,
    outboxDir: mailOutboxDir,
    ...options.mailer
  }, app.log)
  if (smtpUrl === undefined) app.log.info({ outbox: mailOutboxDir }, 'SMTP_URL is not set: mails are written to the outbox folder and their links logged')

  const hour = 60 * 60 * 1000
  const mailLimit: RateCounter = app.redis === null
    ? new MemoryRateCounter(MAILS_PER_HOUR, hour)
    : new RedisRateCounter(app.redis, MAILS_PER_HOUR, hour, { prefix: redisKeyPrefix, name: 'mails' })

  const pending = new Set<Promise<void>>()
  app.decorate('mailer', mailer)
  app.decorate('mailLimit', mailLimit)
  app.decorate('afterResponse', (task: () => Promise<void>, log: { error: (o: object, m: string) => void }) => {
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(task)
      .catch((err: unknown) => log.error({ err }, 'background task failed'))
      .finally(() => pending.delete(run))
    pending.add(run)
  })
  app.decorate('settled', async () => {
    while (pending.size > 0) await Promise.all(pending)
    await mailer.idle()
  })
  const { appUrl, passwordResetTtl, emailTokenTtl } = app.config
  const links: Record<LinkKind, { path: string, ttl: number, content: (link: string, ttl: number, to: string) => MailContent }> = {
    verify_email: { path: '/verify-email', ttl: emailTokenTtl, content: (link, ttl) => verifyEmail(link, ttl) },
    email_change: { path: '/verify-email', ttl: emailTokenTtl, content: (link, ttl, to) => confirmEmailChange(link, to, ttl) },
    password_reset: { path: '/reset-password', ttl: passwordResetTtl, content: (link, ttl) => passwordReset(link, ttl) }
  }
  app.decorate('mailLink', async (kind: LinkKind, userId: number, to: string, issue: () => Promise<string | undefined>) => {
    if (!await mailLimit.take(`${kind}:${userId}`)) {
      app.log.warn({ userId, kind }, 'mail limit reached: no mail sent, no link made')
      return false
    }
    const token = await issue()
    if (token === undefined) return false
    const { path, ttl, content } = links[kind]
    const link = `${appUrl}${path}?token=${encodeURIComponent(token)}`
    mailer.send({ to, ...content(link, ttl, to), link })
    return true
  })
  app.decorate('mailEmailChanged', (previous: string, next: string) => {
    mailer.send({ to: previous, ...emailChangedNotice(maskEmail(next)) })
  })

  app.decorate('mailRecoveryCodeUsed', (to: string, left: number) => {
    mailer.send({ to, ...recoveryCodeUsedNotice(left) })
  })

  app.addHook('onClose', async () => {
    await app.settled()
    await mailer.close()
  })
}, { name: 'mail', dependencies: ['config', 'counters'] })
