import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'

interface Teardown { teardown: (fn: () => unknown) => void }

export interface Inbox { port: number, mails: ParsedMail[], attempts: number, connections: number }

/** A real SMTP server on 127.0.0.1 that parses what it receives; `hooks` may refuse or delay. */
export async function smtpServer (t: Teardown, hooks: Partial<SMTPServerOptions> = {}): Promise<Inbox> {
  const inbox: Inbox = { port: 0, mails: [], attempts: 0, connections: 0 }
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onConnect (_session, callback) { inbox.connections++; callback() },
    onData (stream, _session, callback) {
      simpleParser(stream).then((mail) => { inbox.mails.push(mail); callback() }, callback)
    },
    ...hooks
  })
  server.on('error', () => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  inbox.port = (server.server.address() as AddressInfo).port
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return inbox
}

/** An SMTP error reply as smtp-server sends it. */
export function reply (code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code })
}


/** Waits for the first received mail that `match` accepts (by default any addressed to `to`). */
export async function waitForMail (inbox: Inbox, to: string, match: (mail: ParsedMail) => boolean = () => true, timeoutMs = 10_000): Promise<ParsedMail> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = inbox.mails.find((m) => addressesOf(m).includes(to.toLowerCase()) && match(m))
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`no mail to ${to} within ${timeoutMs} ms (got ${inbox.mails.length})`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export function addressesOf (mail: ParsedMail): string[] {
  const to = mail.to === undefined ? [] : [mail.to].flat()
  return to.flatMap((a) => a.value.map((v) => (v.address ?? '').toLowerCase()))
}

/** The link in a mail's text part, and its `token` query parameter. */
export function linkOf (mail: ParsedMail): { link: URL, token: string } {
  const found = /https?:\/\/\S+\?token=[A-Za-z0-9_-]+/.exec(mail.text ?? '')
  if (found === null) throw new Error(`no link in mail "${mail.subject}"`)
  const link = new URL(found[0])
  return { link, token: link.searchParams.get('token') ?? '' }
}
