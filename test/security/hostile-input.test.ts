import { createHash } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import t from 'tap'
import type { App } from '../../src/app.js'
import { createUser } from '../../src/domain/users.js'
import { sql } from 'drizzle-orm'
import { build, login, PASSWORD, sqlRows, tableNames } from '../helper.js'
import { resolve, sample, type Schema } from '../support/openapi-sample.js'

// Every operation of the published document gets the same barrage, built from its own schemas:
// a route added tomorrow is attacked without anyone writing a line here.

interface Operation {
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, schema: Schema }>
  requestBody?: { content: Record<string, { schema: Schema }> }
}
interface Hostile { name: string, request: InjectOptions }

const SQL_INJECTIONS = [
  "' OR '1'='1", "1; DROP TABLE users; --", "admin'--", '" OR ""="', "1 UNION SELECT password_hash FROM users",
  "'); DELETE FROM posts; --"
]
const BAD_IDS = [
  'abc', '1.5', '-1', '0', '1e3', 'Infinity', 'NaN', '99999999999999999999', '2147483648', '0x10', '%201', '1%00',
  '1;DROP%20TABLE%20users', '%FF', '..%2F..%2Fetc%2Fpasswd', 'null', 'true', '[]', '9'.repeat(150)
]
const BAD_QUERY_VALUES = ['abc', '-1', '1.5', 'Infinity', '1e400', '9'.repeat(10_000), '0x10', '', 'null', '[]', "1' OR '1'='1"]
const SMUGGLED_FIELDS = ['id', 'role', 'is_active', 'author_id', 'password_hash', 'admin', 'permissions']
const CONTENT_TYPES = [
  'text/plain', 'application/xml', 'text/html', 'application/octet-stream', 'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x', 'application/json-patch+json', 'application/json; charset=utf-16', 'image/png'
]

/** Values of every JSON type but the one the schema wants. */
function wrongTypes (schema: Schema): unknown[] {
  const all: Array<[string, unknown]> = [['string', 'text'], ['integer', 1.5], ['number', '1'], ['boolean', 'true'],
    ['null', null], ['array', ['a']], ['object', { a: 1 }], ['integer', 7]]
  const wanted = [schema.type ?? []].flat()
  return all.filter(([type]) => !wanted.includes(type) && !(type === 'integer' && wanted.includes('number'))).map(([, v]) => v)
}

/** A hash of every row of every table: refused requests must leave it as it was. */
async function snapshot (app: App): Promise<string> {
  const hash = createHash('sha256')
  for (const name of await tableNames(app)) {
    hash.update(name)
    // Rows sorted as text: some tables have no key to order by.
    const rows = (await sqlRows(app, sql.raw(`SELECT * FROM "${name}"`))).map((row) => JSON.stringify(row)).sort()
    hash.update(rows.join('\n'))
  }
  return hash.digest('hex')
}

/** What is wrong with a response, or undefined: 2xx, or 4xx in the one error shape, never 5xx nor a leak. */
function problemWith (res: LightMyRequestResponse): string | undefined {
  if (res.statusCode >= 500) return `${res.statusCode}: ${res.body.slice(0, 200)}`
  if (res.body.includes('$argon2')) return `leaks a password hash: ${res.body.slice(0, 200)}`
  if (res.statusCode < 400) return undefined
  if (/SQLITE|node_modules|at \S+\.(js|ts):\d+/i.test(res.body)) return `leaks internals: ${res.body.slice(0, 200)}`
  let body: Record<string, unknown>
  try {
    body = JSON.parse(res.body)
  } catch {
    return `${res.statusCode} is not JSON: ${res.body.slice(0, 100)}`
  }
  const keys = Object.keys(body).sort().join(',')
  if (keys !== 'error,message,statusCode' && keys !== 'code,error,message,statusCode') return `${res.statusCode} has keys ${keys}`
  if (body.statusCode !== res.statusCode) return `statusCode ${String(body.statusCode)} in a ${res.statusCode}`
  if (body.error !== STATUS_CODES[res.statusCode]) return `error "${String(body.error)}" in a ${res.statusCode}`
  if (typeof body.message !== 'string' || body.message === '') return `${res.statusCode} without a message`
  if (body.code !== undefined && typeof body.code !== 'string') return `${res.statusCode} with a non-string code`
  if (!/^application\/json/.test(String(res.headers['content-type']))) return `${res.statusCode} served as ${String(res.headers['content-type'])}`
  return undefined
}

function jsonBodies (schema: Schema, components: Record<string, Schema>, path: string): Array<[string, string | Buffer]> {
  const s = resolve(schema, components)
  const full = sample(s, components, true) as Record<string, unknown>
  const minimal = sample(s, components) as Record<string, unknown>
  const props = Object.entries(s.properties ?? {}).map(([k, v]) => [k, resolve(v, components)] as const)
  const stringProps = props.filter(([, v]) => v.type === 'string').map(([k]) => k)
  const json = (value: unknown) => JSON.stringify(value)
  const out: Array<[string, string | Buffer]> = []

  for (const [key, prop] of props) {
    for (const value of wrongTypes(prop)) out.push([`${key} as ${json(value)}`, json({ ...full, [key]: value })])
  }
  for (const key of s.required ?? []) {
    const rest = { ...minimal }
    delete rest[key]
    out.push([`without ${key}`, json(rest)])
  }
  out.push(['an empty object', '{}'], ['an array', '[]'], ['a string', '"text"'], ['a number', '42'], ['null', 'null'],
    ['nothing', ''], ['truncated JSON', json(full).slice(0, -3)], ['two documents', `${json(full)}${json(full)}`])
  for (const field of SMUGGLED_FIELDS) out.push([`smuggled ${field}`, json({ ...full, [field]: field === 'role' ? 'admin' : 1 })])
  const inner = json(full).slice(1, -1)
  const comma = inner === '' ? '' : ','
  out.push(
    ['__proto__ key', `{"__proto__":{"role":"admin","is_active":true}${comma}${inner}}`],
    ['constructor.prototype key', `{"constructor":{"prototype":{"role":"admin"}}${comma}${inner}}`],
    ['nested __proto__', `{${inner}${comma}"x":{"__proto__":{"role":"admin"}}}`],
    ['duplicate keys', `{${inner}${comma}"role":"user","role":"admin"}`]
  )
  for (const key of stringProps) {
    out.push([`${key} of 100k characters`, json({ ...full, [key]: 'x'.repeat(100_000) })])
    out.push([`${key} of NUL and control characters`, json({ ...full, [key]: 'a\u0000b\u0007\u202e\ufeff' })])
    for (const sql of SQL_INJECTIONS) out.push([`${key} = ${sql}`, json({ ...full, [key]: sql })])
    out.push([`${key} with invalid UTF-8`, Buffer.concat([
      Buffer.from(`{${inner}${comma}"${key}":"a`), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0xc0, 0xaf]), Buffer.from('"}')
    ])])
  }
  out.push(['invalid UTF-8 outside strings', Buffer.concat([Buffer.from('{'), Buffer.from([0xff, 0xfe]), Buffer.from('}')])])
  const depth = path.startsWith('/auth') ? 5_000 : 10_000
  out.push(
    [`arrays nested ${depth} deep`, '['.repeat(depth) + ']'.repeat(depth)],
    [`objects nested ${depth} deep`, '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)],
    [`a field nested ${depth} deep`, `{${inner}${comma}"x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`],
    ['a 2 MiB body', json({ ...full, pad: 'x'.repeat(2 * 1024 * 1024) })]
  )
  return out
}

const MULTIPART_BODIES: Array<[string, string, string]> = [
  ['a text file as the image', 'multipart/form-data; boundary=X',
    '--X\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nnot an image at all\r\n--X--\r\n'],
  ['a field named __proto__', 'multipart/form-data; boundary=X',
    '--X\r\nContent-Disposition: form-data; name="__proto__"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nxx\r\n--X--\r\n'],
  ['no file part', 'multipart/form-data; boundary=X', '--X\r\nContent-Disposition: form-data; name="other"\r\n\r\nvalue\r\n--X--\r\n'],
  ['no closing boundary', 'multipart/form-data; boundary=X', '--X\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nxx'],
  ['no boundary', 'multipart/form-data', '--X\r\n\r\n--X--\r\n'],
  ['a path in the file name', 'multipart/form-data; boundary=X',
    '--X\r\nContent-Disposition: form-data; name="file"; filename="../../etc/passwd"\r\nContent-Type: image/png\r\n\r\nxx\r\n--X--\r\n'],
  ['an empty body', 'multipart/form-data; boundary=X', '']
]

function hostileRequests (method: string, path: string, op: Operation, components: Record<string, Schema>, validId: () => number): Hostile[] {
  const fill = (id: string) => path.replace(/\{[^}]+\}/g, id)
  const url = () => fill(String(validId()))
  const verb = method.toUpperCase() as 'GET'
  const out: Hostile[] = []
  const add = (name: string, request: Omit<InjectOptions, 'method'>) => out.push({ name, request: { method: verb, ...request } })

  if (/\{[^}]+\}/.test(path)) {
    for (const id of [...BAD_IDS, ...SQL_INJECTIONS.map(encodeURIComponent)]) add(`path id ${id.slice(0, 30)}`, { url: fill(id) })
  }

  const queryParams = (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)
  for (const name of queryParams) {
    for (const value of BAD_QUERY_VALUES) add(`query ${name}=${value.slice(0, 20)}`, { url: `${url()}?${name}=${encodeURIComponent(value)}` })
    add(`query ${name} repeated`, { url: `${url()}?${name}=1&${name}=2` })
    add(`query ${name}[]`, { url: `${url()}?${name}[]=1` })
    add(`query ${name}[$gt]`, { url: `${url()}?${name}[$gt]=0` })
  }
  add('a thousand unknown query parameters', { url: `${url()}?${Array.from({ length: 1000 }, (_, i) => `p${i}=${i}`).join('&')}` })
  add('one parameter repeated a thousand times', { url: `${url()}?p=${Array.from({ length: 1000 }, () => '1').join('&p=')}` })
  add('a 100 KB query parameter', { url: `${url()}?p=${'x'.repeat(100_000)}` })
  add('__proto__ in the query', { url: `${url()}?__proto__[role]=admin&constructor[prototype][role]=admin&__proto__=x` })
  add('invalid percent-encoding in the query', { url: `${url()}?p=%FF%FE%E0%A4&q=%` })

  const content = op.requestBody?.content ?? {}
  const jsonSchema = content['application/json']?.schema
  if (jsonSchema !== undefined) {
    for (const [name, payload] of jsonBodies(jsonSchema, components, path)) {
      add(`body: ${name}`, { url: url(), headers: { 'content-type': 'application/json' }, payload })
    }
    const full = JSON.stringify(sample(jsonSchema, components, true))
    for (const type of CONTENT_TYPES) add(`content-type ${type}`, { url: url(), headers: { 'content-type': type }, payload: full })
    add('a body without content-type', { url: url(), payload: full, headers: { 'content-type': '' } })
  }
  if (content['multipart/form-data'] !== undefined) {
    for (const [name, type, payload] of MULTIPART_BODIES) add(`multipart: ${name}`, { url: url(), headers: { 'content-type': type }, payload })
    add('multipart route sent JSON', { url: url(), headers: { 'content-type': 'application/json' }, payload: '{"file":"x"}' })
  }
  if (content['application/x-www-form-urlencoded'] !== undefined) {
    for (const sql of SQL_INJECTIONS) {
      add(`form username = ${sql}`, { url: url(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `username=${encodeURIComponent(sql)}&password=x` })
    }
    add('form with __proto__', { url: url(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '__proto__[role]=admin&username=a&password=b&username=c' })
    add('form with a repeated grant_type', { url: url(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password&grant_type=refresh_token' })
  }
  if (jsonSchema === undefined && content['multipart/form-data'] === undefined && method !== 'get') {
    add('an unexpected JSON body', { url: url(), headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' })
    add('an unexpected XML body', { url: url(), headers: { 'content-type': 'application/xml' }, payload: '<a/>' })
  }
  return out
}

t.test('hostile input on every documented operation: a 4xx in the error shape or a success, never a 5xx, and refusals change nothing', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const components = doc.components.schemas as Record<string, Schema>

  // The only admin: deleting their own account is refused (the last admin), so the caller survives the barrage.
  const admin = await createUser(app.db, { email: 'hostile-admin@example.com', username: 'hostile_admin', password: PASSWORD, role: 'admin' })
  let token = (await login(app, admin.username)).access
  let targetId = 0
  let postId = 0
  let targets = 0

  /** The caller's token works, and the user and post that valid ids point at exist. */
  async function prepare (): Promise<void> {
    if ((await app.inject({ url: '/users/me', headers: { authorization: `Bearer ${token}` } })).statusCode !== 200) {
      token = (await login(app, admin.username)).access
    }
    if ((await app.inject({ url: `/users/${targetId}` })).statusCode !== 200) {
      targetId = (await createUser(app.db, { email: `target${++targets}@example.com`, username: `target_${targets}`, password: PASSWORD })).id
    }
    if ((await app.inject({ url: `/posts/${postId}` })).statusCode !== 200) {
      const res = await app.inject({ method: 'POST', url: '/posts', headers: { authorization: `Bearer ${token}` }, payload: { title: 'Target', content: 'A post to aim at' } })
      postId = res.json().id
    }
  }

  let sent = 0
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      const authenticated = (op.security ?? []).some((s) => 'OAuth2PasswordBearer' in s)
      const validId = () => path.startsWith('/posts') ? postId : targetId
      const problems: string[] = []
      await prepare()
      let state = await snapshot(app)
      const requests = hostileRequests(method, path, op, components, validId)
      for (const { name: what, request } of requests) {
        const headers: Record<string, string> = { ...(authenticated && { authorization: `Bearer ${token}` }), ...request.headers as Record<string, string> }
        if (headers['content-type'] === '') delete headers['content-type']
        const res = await app.inject({ ...request, headers })
        sent++
        const problem = problemWith(res)
        if (problem !== undefined) problems.push(`${what}: ${problem}`)
        if (res.statusCode >= 400) {
          if (await snapshot(app) !== state) problems.push(`${what}: ${res.statusCode} but the database changed`)
        } else {
          // A success may end the caller's session or delete what valid ids point at: set the stage again.
          // It may also leave work for after the answer (a registration's verification link): let it finish first.
          await app.settled()
          await prepare()
          state = await snapshot(app)
        }
      }
      t.same(problems, [], `${name}: ${requests.length} hostile requests, each a 2xx or a 4xx in shape; no refusal changed the database`)
    }
  }
  t.ok(sent > 1000, `${sent} requests sent`)
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'and the server is still healthy')
  const tables = await tableNames(app)
  t.ok(['users', 'posts', 'likes', 'sessions'].every((name) => tables.includes(name)), 'no table was dropped')
})
