// The newest mail in the development outbox (MAIL_OUTBOX_DIR, default ./data/outbox), decoded:
//   npm run --silent outbox             → To, Subject and the link of the newest mail
//   npm run --silent outbox -- --token  → only its token, for a shell variable
// The .eml files are quoted-printable: `=` is written `=3D` and long lines are wrapped with a
// trailing `=`, so a grep on the raw file finds a damaged link; this reads them decoded.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.MAIL_OUTBOX_DIR ?? join('data', 'outbox')
let names = []
try {
  names = readdirSync(dir).filter((name) => name.endsWith('.eml')).sort()
} catch {
  // no outbox yet
}
if (names.length === 0) {
  console.error(`No mail in ${dir} yet (mails land there when SMTP_URL is unset)`)
  process.exit(1)
}
const raw = readFileSync(join(dir, names[names.length - 1]), 'latin1')
const [head, ...body] = raw.split(/\r?\n\r?\n/)
const header = (name) => new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1] ?? ''
// Quoted-printable (RFC 2045): soft line breaks go, then each =XX is the byte XX.
const bytes = body.join('\n\n').replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)))
const text = Buffer.from(bytes, 'latin1').toString('utf8')
const link = /https?:\/\/\S+\?token=[A-Za-z0-9_-]+/.exec(text)?.[0]
if (process.argv.includes('--token')) {
  const token = link === undefined ? undefined : new URL(link).searchParams.get('token')
  if (token === undefined || token === null) {
    console.error(`The newest mail (${names[names.length - 1]}) has no link`)
    process.exit(1)
  }
  console.log(token)
} else {
  console.log(`To: ${header('To')}\nSubject: ${header('Subject')}\nLink: ${link ?? '(none)'}`)
}
