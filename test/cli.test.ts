import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { runCli } from './support/cli.js'

const cli = (databaseUrl: string, ...args: string[]) => runCli({ DATABASE_URL: databaseUrl }, ...args)

function tempDatabase (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'inkwell-cli-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'inkwell.db')
}

function openReadOnly (t: { teardown: (fn: () => void) => void }, file: string) {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  t.teardown(() => db.close())
  return db
}

interface UserRow { id: number, email: string, username: string, role: string, is_active: number, password_hash: string }

const EXPECTED_TABLES = ['audit_log', 'likes', 'posts', 'refresh_tokens', 'sessions', 'users']
const count = (db: Database.Database, sql: string) => (db.prepare(sql).get() as { n: number }).n

t.test('migrate, then create-user while another connection holds the database open', async (t) => {
  const file = tempDatabase(t)

  const first = await cli(file, 'migrate')
  t.equal(first.code, 0, 'migrate exits 0')
  t.equal(first.stderr, '', 'nothing on stderr')
  const tables = (openReadOnly(t, file).prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>)
    .map((r) => r.name)
  for (const table of EXPECTED_TABLES) t.ok(tables.includes(table), `table ${table} exists`)

  // Another connection holds the database open in WAL mode from here on, as a running server would.
  const server = new Database(file)
  t.teardown(() => server.close())
  server.pragma('journal_mode = WAL')
  t.equal(server.pragma('journal_mode', { simple: true }), 'wal', 'the other connection uses WAL')
  const applied = count(server, 'SELECT count(*) AS n FROM __drizzle_migrations')
  t.ok(applied > 0, 'the migrations are recorded')
  t.equal(count(server, 'SELECT count(*) AS n FROM users'), 0, 'no users yet')
  const findUser = server.prepare('SELECT id, email, username, role, is_active, password_hash FROM users WHERE username = ?')

  const password = 'the first admin passphrase'
  const [again, created, badRole, noPassword, noEmail, noValue] = await Promise.all([
    cli(file, 'migrate'),
    cli(file, 'create-user', '--email', 'Root@Example.com', '--username', 'root', '--password', password, '--role', 'admin'),
    cli(file, 'create-user', '--email', 'boss@example.com', '--username', 'boss', '--password', password, '--role', 'superuser'),
    cli(file, 'create-user', '--email', 'nopass@example.com', '--username', 'nopass', '--role', 'user'),
    cli(file, 'create-user', '--username', 'nomail', '--password', password),
    cli(file, 'create-user', '--email', 'novalue@example.com', '--username', 'novalue', '--password')
  ])

  t.equal(again.code, 0, 'a second migrate exits 0')
  t.equal(count(server, 'SELECT count(*) AS n FROM __drizzle_migrations'), applied, 'and applies nothing twice')

  t.equal(created.code, 0, 'an admin is created: exits 0')
  t.match(created.stdout, /root/, 'and says whom it created')
  const root = findUser.get('root') as UserRow | undefined
  t.ok(root, 'the user exists, seen through the other connection')
  t.equal(root?.role, 'admin', 'with role admin')
  t.equal(root?.is_active, 1, 'active')
  t.equal(root?.email.toLowerCase(), 'root@example.com')
  t.match(root?.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'the password is stored as an argon2id hash')
  t.notMatch(root?.password_hash, password, 'never in clear')

  t.not(badRole.code, 0, 'a bad --role: non-zero exit')
  t.match(badRole.stderr, /--role/, 'and the message names --role')
  t.equal(findUser.get('boss'), undefined, 'and no user is created')

  t.not(noPassword.code, 0, 'no --password: non-zero exit')
  t.match(noPassword.stderr, /--password/, 'and the message names --password')
  t.equal(findUser.get('nopass'), undefined, 'and no user is created')

  t.not(noEmail.code, 0, 'no --email: non-zero exit')
  t.match(noEmail.stderr, /--email/, 'and the message names --email')
  t.equal(findUser.get('nomail'), undefined, 'and no user is created')

  t.not(noValue.code, 0, '--password without a value: non-zero exit')
  t.match(noValue.stderr, /--password/, 'and the message names --password')
  t.equal(findUser.get('novalue'), undefined, 'and no user is created')

  const [sameEmail, sameUsername, weak, badEmail, shortName] = await Promise.all([
    cli(file, 'create-user', '--email', 'root@example.com', '--username', 'other', '--password', password),
    cli(file, 'create-user', '--email', 'other@example.com', '--username', 'ROOT', '--password', password),
    cli(file, 'create-user', '--email', 'weak@example.com', '--username', 'weak', '--password', 'password123'),
    cli(file, 'create-user', '--email', 'not-an-address', '--username', 'bademail', '--password', password),
    cli(file, 'create-user', '--email', 'short@example.com', '--username', 'ab', '--password', password)
  ])
  // The API's own registration schema decides, in the words its 400 would use, naming the flag.
  t.equal(badEmail.code, 2, 'an address that is not one: exit 2')
  t.equal(badEmail.stderr.trim(), '--email must match format "email"', 'the schema\'s words, naming --email')
  t.equal(shortName.code, 2, 'a two-letter username: exit 2')
  t.equal(shortName.stderr.trim(), '--username must NOT have fewer than 3 characters', 'the schema\'s bound, naming --username')
  t.equal(findUser.get('bademail') ?? findUser.get('ab'), undefined, 'and no user is created')
  t.not(sameEmail.code, 0, 'a duplicate email: non-zero exit')
  t.match(sameEmail.stderr, /Email already registered/, 'with a message')
  t.not(sameUsername.code, 0, 'a duplicate username, in another case: non-zero exit')
  t.match(sameUsername.stderr, /Username already taken/, 'with a message')
  t.not(weak.code, 0, 'a common password: non-zero exit')
  t.match(weak.stderr, /too common/, 'with a message')
  // (A missing option value is reported by node:util parseArgs with its stack trace; not checked here.)
  for (const [name, out] of Object.entries({ sameEmail, sameUsername, weak, badRole, noPassword, noEmail, badEmail, shortName })) {
    t.notMatch(out.stderr, /\n\s+at /, `${name}: a message, no stack trace`)
  }
  t.equal(count(server, 'SELECT count(*) AS n FROM users'), 1, 'only the one user exists')
})
