import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { simpleParser, type AddressObject } from 'mailparser'
import t from 'tap'
import { reply, smtpServer } from '../support/smtp.js'
import { createMailer, type MailerOptions, type MailLogger } from '../../src/mail/mailer.js'
import { projectRoot } from '../../src/paths.js'
import {
  confirmEmailChange, describeDuration, emailChangedNotice, escapeHtml, maskEmail, passwordReset, verifyEmail
} from '../../src/mail/templates.js'

interface Teardown { teardown: (fn: () => unknown) => void }

const run = promisify(execFile)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const FROM = 'Inkwell <no-reply@inkwell.test>'
const TOKEN = 'tok_SECRET_0123456789abcdefghij'
// Hostile on purpose: quotes, an ampersand and markup must reach the HTML part escaped.
const LINK = `https://app.example.com/verify-email?token=${TOKEN}&x="><script>alert(1)</script>`

interface Line { level: 'info' | 'warn' | 'error', obj: Record<string, unknown>, msg: string }

function recorder (): MailLogger & { lines: Line[], text: () => string } {
  const lines: Line[] = []
  const at = (level: Line['level']) => (obj: object, msg: string) => { lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), text: () => JSON.stringify(lines) }
}

function mailer (t: Teardown, options: Partial<MailerOptions> & { port?: number }, log = recorder()) {
  const { port, ...rest } = options
  const m = createMailer({
    from: FROM,
    outboxDir: join(tmpdir(), 'inkwell-unused-outbox'),
    retryDelaysMs: [50, 100],
    timeoutMs: 2000,
    ...(port === undefined ? {} : { smtpUrl: `smtp://127.0.0.1:${port}` }),
    ...rest
  }, log)
  t.teardown(() => m.close())
  return { mailer: m, log }
}

const addresses = (a: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(a) ? a : a === undefined ? [] : [a]).flatMap((o) => o.value.map((v) => v.address))

t.test('each template arrives over SMTP: headers, a text and an HTML part, the link in both and escaped', async (t) => {
  const inbox = await smtpServer(t)
  const { mailer: m, log } = mailer(t, { port: inbox.port })
  const hostileAddress = '"<script>alert(2)</script>"@example.com'
  const templates = {
    verify: verifyEmail(LINK, 86_400),
    reset: passwordReset(LINK, 1800),
    change: confirmEmailChange(LINK, hostileAddress, 86_400),
    notice: emailChangedNotice(maskEmail(hostileAddress))
  }
  for (const [name, content] of Object.entries(templates)) m.send({ to: `${name}@example.com`, ...content, link: LINK })
  await m.idle()
  t.equal(inbox.mails.length, 4, 'four mails delivered')

  const expected = {
    verify: ['Confirm your e-mail address for Inkwell', '24 hours'],
    reset: ['Reset your Inkwell password', '30 minutes'],
    change: ['Confirm your new e-mail address for Inkwell', '24 hours'],
    notice: ['Your Inkwell e-mail address was changed', undefined]
  } as const
  for (const [name, [subject, lifetime]] of Object.entries(expected)) {
    const mail = inbox.mails.find((x) => addresses(x.to)[0] === `${name}@example.com`)
    if (mail === undefined) { t.fail(`${name}: not received`); continue }
    t.equal(mail.subject, subject, `${name}: subject`)
    t.same(mail.from?.value, [{ address: 'no-reply@inkwell.test', name: 'Inkwell' }], `${name}: From is MAIL_FROM`)
    t.same(addresses(mail.to), [`${name}@example.com`], `${name}: To is the one recipient`)
    t.ok(mail.date instanceof Date && !Number.isNaN(mail.date.getTime()), `${name}: a Date`)
    t.match(mail.messageId, /^<[^@\s]+@inkwell\.test>$/, `${name}: a Message-ID`)
    t.equal(mail.headers.get('auto-submitted'), 'auto-generated', `${name}: marked automatic (no auto-replies)`)
    t.type(mail.text, 'string', `${name}: a text part`)
    t.type(mail.html, 'string', `${name}: an HTML part`)
    const html = mail.html as string
    t.notMatch(html, /<script/i, `${name}: no raw <script> in the HTML`)
    if (name === 'notice') {
      t.notOk((mail.text ?? '').includes(TOKEN), 'notice: carries no link')
      t.ok((mail.text ?? '').includes('"***@example.com'), 'notice: the new address, masked')
      t.match(mail.text ?? '', /did not/, 'notice: says what to do if it was not them')
      continue
    }
    t.ok((mail.text ?? '').includes(`\n${LINK}\n`), `${name}: the link, as is, alone on a line of the text`)
    t.ok(html.includes(`<a href="${escapeHtml(LINK)}">${escapeHtml(LINK)}</a>`), `${name}: the link escaped in href and text`)
    t.ok(html.includes(`token=${TOKEN}&amp;x=&quot;&gt;&lt;script&gt;`), `${name}: & " < > escaped`)
    t.ok((mail.text ?? '').includes(`within ${lifetime}`), `${name}: the lifetime in words`)
  }
  const change = inbox.mails.find((x) => addresses(x.to)[0] === 'change@example.com')
  t.ok(change?.text?.includes(hostileAddress), 'the new address in the text as given')
  t.ok(change?.html !== false && change?.html?.includes(escapeHtml(hostileAddress)), 'and escaped in the HTML')

  const sent = log.lines.filter((l) => l.msg === 'mail sent')
  t.equal(sent.length, 4, 'each delivery logged')
  t.same(sent.map((l) => l.obj.to).sort(), ['c***@example.com', 'n***@example.com', 'r***@example.com', 'v***@example.com'], 'with the address masked')
  t.notOk(log.text().includes(TOKEN), 'no log line carries the link or its token over SMTP')
})

t.test('send returns at once however slow the server is; idle() waits for the delivery', async (t) => {
  const inbox = await smtpServer(t, {
    onData (stream, _session, callback) {
      simpleParser(stream).then(async (mail) => { await sleep(600); inbox.mails.push(mail); callback() }, callback)
    }
  })
  const { mailer: m } = mailer(t, { port: inbox.port })
  const started = performance.now()
  const content = verifyEmail(LINK, 3600)
  t.equal(m.send({ to: 'slow@example.com', ...content }), undefined, 'send returns nothing to wait for')
  m.send({ to: 'slow2@example.com', ...content })
  t.equal(inbox.mails.length, 0, 'nothing delivered yet')
  await m.idle()
  t.ok(performance.now() - started >= 550, 'idle waited for the slow server')
  t.equal(inbox.mails.length, 2, 'both delivered once idle resolves')
})

t.test('a temporary refusal (451) is retried and the mail delivered on a later attempt', async (t) => {
  let refusals = 2
  const inbox = await smtpServer(t, {
    onRcptTo (_address, _session, callback) {
      inbox.attempts++
      if (refusals-- > 0) callback(reply(451, 'Try again later'))
      else callback()
    }
  })
  const { mailer: m, log } = mailer(t, { port: inbox.port })
  m.send({ to: 'ada@example.com', ...passwordReset(LINK, 1800) })
  await m.idle()
  t.equal(inbox.attempts, 3, 'two refusals, then accepted')
  t.equal(inbox.mails.length, 1, 'delivered')
  const warns = log.lines.filter((l) => l.level === 'warn')
  t.same(warns.map((l) => l.obj.retryInMs), [50, 100], 'each refusal logged with the wait before the next attempt')
  t.match(warns[0]?.obj, { to: 'a***@example.com', attempt: 1, err: { responseCode: 451 } })
  t.match(log.lines.find((l) => l.msg === 'mail sent')?.obj, { attempt: 3 }, 'the delivery says which attempt made it')
  t.equal(log.lines.filter((l) => l.level === 'error').length, 0, 'no error')
})

t.test('a server that always refuses: given up after every attempt, logged at error level, nothing thrown', async (t) => {
  const inbox = await smtpServer(t, {
    onRcptTo (address, _session, callback) {
      inbox.attempts++
      // Servers echo the recipient: the log must still not carry it whole.
      callback(reply(451, `4.7.1 <${address.address}>: greylisted, see https://mx.example.net/why?token=${TOKEN}`))
    }
  })
  const { mailer: m, log } = mailer(t, { port: inbox.port })
  const started = performance.now()
  t.doesNotThrow(() => m.send({ to: 'grace@example.com', ...verifyEmail(LINK, 86_400), link: LINK }))
  await m.idle()
  t.equal(inbox.attempts, 3, '1 + retryDelaysMs.length attempts')
  t.ok(performance.now() - started >= 150, 'the waits were honoured')
  t.equal(inbox.mails.length, 0, 'nothing delivered')
  const errors = log.lines.filter((l) => l.level === 'error')
  t.equal(errors.length, 1, 'one error line')
  t.match(errors[0], { msg: /given up/, obj: { to: 'g***@example.com', attempts: 3, err: { responseCode: 451 } } })
  t.notOk(log.text().includes('grace@example.com'), 'the full address is in no log line, the server\'s echo included')
  t.ok(String((errors[0]?.obj.err as { message?: string }).message).includes('<g***@example.com>'), 'the echo is masked')
  t.notOk(log.text().includes(TOKEN), 'no log line carries the token')
  t.notOk(log.text().includes('app.example.com'), 'nor the link')
})

t.test('a permanent refusal (5xx) is not retried', async (t) => {
  const inbox = await smtpServer(t, {
    onRcptTo (_address, _session, callback) { inbox.attempts++; callback(reply(550, '5.1.1 No such user')) }
  })
  const { mailer: m, log } = mailer(t, { port: inbox.port })
  m.send({ to: 'nobody@example.com', ...verifyEmail(LINK, 86_400) })
  await m.idle()
  t.equal(inbox.attempts, 1, 'one attempt')
  t.match(log.lines.filter((l) => l.level === 'error'), [{ msg: /refused for good/, obj: { attempts: 1, err: { responseCode: 550 } } }])
})

t.test('a server that accepts the connection and never greets: each attempt times out, the caller never waits', async (t) => {
  let connections = 0
  const sockets = new Set<net.Socket>()
  const silent = net.createServer((socket) => { connections++; sockets.add(socket); socket.on('error', () => {}) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const s of sockets) s.destroy(); return new Promise<void>((resolve) => silent.close(() => resolve())) })
  const port = (silent.address() as AddressInfo).port

  const { mailer: m, log } = mailer(t, { port, timeoutMs: 300, retryDelaysMs: [50] })
  const started = performance.now()
  m.send({ to: 'hang@example.com', ...verifyEmail(LINK, 86_400), link: LINK })
  t.equal(connections, 0, 'send returned before the mailer had even connected')
  await m.idle()
  const took = performance.now() - started
  t.equal(connections, 2, 'two attempts, each on a connection of its own')
  t.ok(took >= 600 && took < 3000, `bounded by the greeting timeout twice plus the wait (${Math.round(took)} ms)`)
  t.match(log.lines.filter((l) => l.level === 'error'), [{ msg: /given up/, obj: { attempts: 2, err: { code: String } } }])
  t.notOk(log.text().includes(TOKEN), 'no token in the logs')
})

t.test('credentials in SMTP_URL are used; a refused login is given up at once and the password never logged', async (t) => {
  const user = 'mailer@inkwell.test'
  const pass = 'p@ss:w/ord?#'
  const inbox = await smtpServer(t, {
    authOptional: false,
    allowInsecureAuth: true,
    onAuth (auth, _session, callback) {
      inbox.attempts++
      if (auth.username === user && auth.password === pass) callback(null, { user: auth.username })
      else callback(reply(535, 'Authentication failed'))
    }
  })
  const url = (p: string) => `smtp://${encodeURIComponent(user)}:${encodeURIComponent(p)}@127.0.0.1:${inbox.port}`
  const good = mailer(t, { smtpUrl: url(pass) })
  good.mailer.send({ to: 'ada@example.com', ...verifyEmail(LINK, 86_400) })
  await good.mailer.idle()
  t.equal(inbox.mails.length, 1, 'delivered after logging in')

  const bad = mailer(t, { smtpUrl: url('wrong password') })
  bad.mailer.send({ to: 'ada@example.com', ...verifyEmail(LINK, 86_400) })
  await bad.mailer.idle()
  t.equal(inbox.attempts, 2, 'the bad login was tried once (535 is final)')
  t.equal(inbox.mails.length, 1, 'nothing more delivered')
  t.match(bad.log.lines.filter((l) => l.level === 'error'), [{ obj: { err: { code: 'EAUTH', responseCode: 535 } } }])
  t.notOk(bad.log.text().includes('wrong password') || good.log.text().includes(pass), 'no password in the logs')
})

t.test('without SMTP_URL each mail is an .eml file in the outbox, and its link is logged', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-outbox-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const outboxDir = join(dir, 'not', 'yet') // created when needed
  const { mailer: m, log } = mailer(t, { outboxDir })
  const content = passwordReset(LINK, 1800)
  m.send({ to: 'ada@example.com', ...content, link: LINK })
  await m.idle()

  const files = readdirSync(outboxDir)
  t.equal(files.length, 1, 'one file')
  const name = files[0] as string
  t.match(name, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-[0-9a-f]{12}\.eml$/, 'named <ISO time>-<random>.eml')
  const file = join(outboxDir, name)
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only')
  const raw = readFileSync(file)
  t.ok(raw.includes('\r\n'), 'CRLF line ends, as RFC 822 has them')
  const mail = await simpleParser(raw)
  t.equal(mail.subject, content.subject, 'subject')
  t.same(addresses(mail.to), ['ada@example.com'], 'To')
  t.same(mail.from?.value, [{ address: 'no-reply@inkwell.test', name: 'Inkwell' }], 'From')
  t.ok(mail.date instanceof Date && typeof mail.messageId === 'string', 'Date and Message-ID')
  t.equal(mail.text, content.text, 'the text part as given')
  t.equal((mail.html as string).trim(), content.html.trim(), 'the HTML part as given')

  t.match(log.lines, [{ level: 'info', obj: { file, link: LINK, to: 'a***@example.com' } }], 'one info line with the file path and the link')
  t.notOk(log.text().includes('ada@example.com'), 'the address masked there too')

  // Two in the same millisecond still make two files.
  m.send({ to: 'ada@example.com', ...content })
  m.send({ to: 'ada@example.com', ...content })
  await m.idle()
  t.equal(readdirSync(outboxDir).length, 3, 'one file per mail')
})

t.test('npm run outbox reads the newest mail decoded: its link whole, or only its token', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-outbox-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { mailer: m } = mailer(t, { outboxDir: dir })
  const older = `http://localhost:3000/reset-password?token=${'o'.repeat(43)}`
  const token = 'Ab-_'.repeat(10) + 'xyz' // 43 base64url characters, as the API makes them
  const link = `http://localhost:3000/verify-email?token=${token}`
  m.send({ to: 'ada@example.com', ...passwordReset(older, 1800), link: older })
  await m.idle()
  await sleep(5) // the files sort by their millisecond
  m.send({ to: 'ada@example.com', ...verifyEmail(link, 86_400), link })
  await m.idle()
  const newest = readdirSync(dir).sort().at(-1) as string
  t.match(readFileSync(join(dir, newest), 'latin1'), /token=3D/, 'the raw file is quoted-printable: a grep would find =3D, not the token')

  const outbox = (...args: string[]) => run(process.execPath, [join(projectRoot, 'scripts', 'outbox.mjs'), ...args], { env: { ...process.env, MAIL_OUTBOX_DIR: dir } })
  t.equal((await outbox('--token')).stdout.trim(), token, '--token: the newest mail\'s token, whole')
  const shown = (await outbox()).stdout
  t.match(shown, `To: ada@example.com\nSubject: ${verifyEmail(link, 86_400).subject}\nLink: ${link}\n`, 'To, Subject and the whole link')

  const empty = mkdtempSync(join(tmpdir(), 'inkwell-outbox-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const refused = await run(process.execPath, [join(projectRoot, 'scripts', 'outbox.mjs')], { env: { ...process.env, MAIL_OUTBOX_DIR: empty } }).catch((err: { code: number, stderr: string }) => err)
  t.match(refused, { code: 1, stderr: /No mail in .* yet/ }, 'an empty outbox: exit 1 and why')
})

t.test('an outbox that cannot be written is logged, not thrown', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-outbox-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const blocker = join(dir, 'file')
  rmSync(blocker, { force: true })
  await import('node:fs/promises').then((fs) => fs.writeFile(blocker, 'not a directory'))
  const { mailer: m, log } = mailer(t, { outboxDir: join(blocker, 'outbox') })
  t.doesNotThrow(() => m.send({ to: 'ada@example.com', ...verifyEmail(LINK, 60) }))
  await m.idle()
  t.match(log.lines, [{ level: 'error', msg: /dropped/, obj: { to: 'a***@example.com', err: { code: 'ENOTDIR' } } }])
})

t.test('close() cuts the waits between retries short, and later mails are dropped with a log line', async (t) => {
  const inbox = await smtpServer(t, {
    onRcptTo (_address, _session, callback) { inbox.attempts++; callback(reply(421, 'Busy')) }
  })
  const { mailer: m, log } = mailer(t, { port: inbox.port, retryDelaysMs: [60_000] })
  m.send({ to: 'ada@example.com', ...verifyEmail(LINK, 60) })
  while (!log.lines.some((l) => l.level === 'warn')) await sleep(10)
  const started = performance.now()
  await m.close()
  t.ok(performance.now() - started < 30_000, 'close did not wait the minute')
  t.match(log.lines.filter((l) => l.level === 'error'), [{ msg: /before shutdown/, obj: { attempts: 1 } }])
  t.doesNotThrow(() => m.send({ to: 'ada@example.com', ...verifyEmail(LINK, 60) }))
  t.match(log.lines.at(-1), { level: 'error', msg: /closed/ })
  await m.idle()
  t.equal(inbox.attempts, 1, 'no attempt after close')
})

t.test('a recipient that is not one plain address is refused before any connection', async (t) => {
  const inbox = await smtpServer(t)
  const { mailer: m, log } = mailer(t, { port: inbox.port })
  const refused = ['ada@example.com\r\nBcc: eve@example.com', 'ada@example.com\nX: y', 'not an address',
    'ada@example.com, eve@example.com', 'ada@example.com>, <eve@example.com', 'Ada <ada@example.com>', '"a b"@example.com']
  for (const to of refused) t.doesNotThrow(() => m.send({ to, ...verifyEmail(LINK, 60) }))
  await m.idle()
  t.equal(log.lines.filter((l) => l.level === 'error' && l.msg === 'mail dropped: not a single e-mail address').length, refused.length,
    'control characters, lists, display names and non-addresses dropped')
  t.equal(inbox.connections, 0, 'no connection made')
  m.send({ to: 'o\'brien+tag@sub.example.co.uk', ...verifyEmail(LINK, 60) })
  await m.idle()
  t.same(inbox.mails.flatMap((mail) => addresses(mail.to)), ['o\'brien+tag@sub.example.co.uk'], 'an unusual but plain address goes through')
})

t.test('a logger that throws breaks neither send nor idle', async (t) => {
  const inbox = await smtpServer(t)
  const boom = () => { throw new Error('logger down') }
  const m = createMailer({ from: FROM, outboxDir: tmpdir(), smtpUrl: `smtp://127.0.0.1:${inbox.port}` }, { info: boom, warn: boom, error: boom })
  t.teardown(() => m.close())
  t.doesNotThrow(() => m.send({ to: 'ada@example.com', ...verifyEmail(LINK, 60) }))
  await m.idle()
  t.equal(inbox.mails.length, 1, 'delivered all the same')
})

t.test('maskEmail and lifetimes in words', async (t) => {
  t.equal(maskEmail('ada@example.com'), 'a***@example.com')
  t.equal(maskEmail('a@example.com'), 'a***@example.com')
  t.equal(maskEmail('émile@exemple.fr'), 'é***@exemple.fr', 'the first character, not the first byte or code unit')
  t.equal(maskEmail('"a@b"@example.com'), '"***@example.com', 'the domain is after the last @')
  for (const bad of ['', 'ada', '@example.com', 'ada@']) t.equal(maskEmail(bad), '***', `"${bad}" → ***`)

  const cases: Array<[number, string]> = [
    [1, '1 second'], [90, '90 seconds'], [60, '1 minute'], [1800, '30 minutes'], [1830, '30 minutes'],
    [3600, '1 hour'], [86_400, '24 hours'], [172_800, '2 days'], [604_800, '7 days'], [90_000, '25 hours']
  ]
  for (const [seconds, words] of cases) t.equal(describeDuration(seconds), words, `${seconds} s → ${words}`)
  t.throws(() => describeDuration(0), RangeError)
  t.throws(() => describeDuration(1.5), RangeError)
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
})
