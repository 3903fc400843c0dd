import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyReply } from 'fastify'
import { statusOf } from '../../plugins/errors.js'
import { isDomainError } from '../../src/domain/errors.js'
import { escapeHtml } from '../../src/mail/templates.js'
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../src/policy.js'
import { followResetLink, followVerifyLink } from '../auth/links.js'

// The pages a mailed link opens when APP_URL is left at its default (this server): a newcomer's
// links lead somewhere without a front-end. A GET only shows a form (mail scanners fetch links, and
// a GET must change nothing); the form's POST spends the token, as POST /auth/* would. Plain HTML:
// no script, no style, no third party; the API's JSON routes stay the contract (these are not in the
// OpenAPI document). A front-end of your own takes over by setting APP_URL to it.

/** The API's policy, except that the page's own form may post back to this server. */
const PAGE_CSP = "default-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

const Token = Type.String({ minLength: 1, maxLength: 256 })

function page (reply: FastifyReply, status: number, title: string, body: string) {
  return reply.code(status)
    .header('content-security-policy', PAGE_CSP)
    // The token is in the URL and in the form: no cache keeps either.
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(`<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
      `<title>${escapeHtml(title)} · Inkwell</title></head>\n<body>\n<h1>${escapeHtml(title)}</h1>\n${body}\n</body></html>\n`)
}

const paragraph = (text: string) => `<p>${escapeHtml(text)}</p>`
const hidden = (token: string) => `<input type="hidden" name="token" value="${escapeHtml(token)}">`
const INCOMPLETE = 'This link is incomplete: open the whole link from the mail, or ask for a new one.'

const pagesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  /** A refusal of the domain (an invalid link, a rejected password, an address taken meanwhile) as a page; anything else goes on to the error handler. */
  async function orRefusal (reply: FastifyReply, work: () => Promise<FastifyReply>, again = '') {
    try {
      return await work()
    } catch (err) {
      if (!isDomainError(err)) throw err
      return page(reply, statusOf(err), 'That did not work', paragraph(err.message) + (err.kind === 'invalid' ? again : ''))
    }
  }

  const linkQuery = Type.Object({ token: Type.Optional(Token) }, { additionalProperties: false })

  app.get('/verify-email', { schema: { hide: true, querystring: linkQuery } }, async (request, reply) => {
    const { token } = request.query
    if (token === undefined) return page(reply, 400, 'Confirm your e-mail address', paragraph(INCOMPLETE))
    return page(reply, 200, 'Confirm your e-mail address',
      `<form method="post" action="/verify-email">${hidden(token)}<button type="submit">Confirm my address</button></form>`)
  })

  app.post('/verify-email', {
    schema: { hide: true, body: Type.Object({ token: Token }, { additionalProperties: false }) }
  }, async (request, reply) => orRefusal(reply, async () => {
    await followVerifyLink(app, request, request.body.token)
    return page(reply, 200, 'Your address is confirmed', paragraph('You can close this page.'))
  }))

  const resetForm = (token: string) => '<form method="post" action="/reset-password">' + hidden(token) +
    `<label>New password <input type="password" name="new_password" required minlength="${PASSWORD_MIN_LENGTH}" maxlength="${PASSWORD_MAX_LENGTH}" autocomplete="new-password"></label> ` +
    '<button type="submit">Set the new password</button></form>'

  app.get('/reset-password', { schema: { hide: true, querystring: linkQuery } }, async (request, reply) => {
    const { token } = request.query
    if (token === undefined) return page(reply, 400, 'Choose a new password', paragraph(INCOMPLETE))
    return page(reply, 200, 'Choose a new password', resetForm(token))
  })

  app.post('/reset-password', {
    schema: {
      hide: true,
      body: Type.Object({ token: Token, new_password: Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH }) }, { additionalProperties: false })
    }
  }, async (request, reply) => {
    const { token, new_password: next } = request.body
    return orRefusal(reply, async () => {
      await followResetLink(app, request, token, next)
      return page(reply, 200, 'Your password is changed', paragraph('Every session of the account has ended: log in again with the new password.'))
    }, resetForm(token))
  })
}

export default pagesRoutes
