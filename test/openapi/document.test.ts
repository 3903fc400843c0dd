import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { projectRoot } from '../../src/paths.js'
import { build, isCredentials401, loginAs } from '../helper.js'
import { sample, type Schema } from '../support/openapi-sample.js'

interface Operation {
  operationId?: string
  summary?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, required?: boolean, schema: Schema }>
  requestBody?: { content: Record<string, { schema: Schema }> }
  responses: Record<string, { description?: string, content?: Record<string, { schema: Schema }> }>
}

function operationsOf (doc: { paths: Record<string, Record<string, Operation>> }) {
  return Object.entries(doc.paths)
    .flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op, name: `${method.toUpperCase()} ${path}` })))
}

t.test('the published document', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()

  t.equal(doc.openapi, '3.1.0')
  t.same(doc.components.securitySchemes.OAuth2PasswordBearer.flows, {
    password: { tokenUrl: '/auth/token', scopes: {} }
  }, 'an OAuth2 password flow whose tokenUrl is /auth/token')
  t.same(doc.servers?.map((s: { url: string }) => s.url), ['/'],
    'one relative server: "Try it out" calls the origin the page came from, and generators get a base URL')
  t.same(doc.info.license, { name: 'MIT', identifier: 'MIT' }, 'the license is named, as in LICENSE')
  t.match(readFileSync(join(projectRoot, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 Inkwell contributors\n/, 'LICENSE is the MIT text')

  const names = Object.keys(doc.components.schemas)
  t.notOk(names.includes('Error'), 'no component named Error: generated clients would shadow the built-in Error')
  for (const name of ['ErrorResponse', 'Health', 'TokenRequest', 'UserPrivate', 'UserPublic', 'TokenPair', 'Post', 'PostPage', 'AdminUser', 'AuditPage']) {
    t.ok(names.includes(name), `${name} is a named component`)
  }
  t.notOk(names.some((n) => /^def-\d+$/.test(n)), 'no def-N component names')

  const operations = operationsOf(doc)
  t.ok(operations.length >= 20, `documents every route (${operations.length})`)
  const ids = operations.map(({ op }) => op.operationId)
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique')
  for (const { name, op } of operations) {
    t.ok(op.operationId && op.summary && op.tags?.length, `${name} has an operationId, a summary and tags`)
    for (const [status, response] of Object.entries(op.responses)) {
      // The one exception: the token endpoint's 403 is the error shape plus the `mfa_token` of a login's first step.
      const shape = op.operationId === 'createToken' && status === '403' ? 'MfaRequired' : 'ErrorResponse'
      if (Number(status) >= 400) {
        t.same(response.content, { 'application/json': { schema: { $ref: `#/components/schemas/${shape}` } } },
          `${name} ${status} uses the shared ${shape} schema`)
      }
    }
  }
})

t.test('a document SDK generators take as it is', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const operations = operationsOf(doc)

  const token = operations.find(({ op }) => op.operationId === 'createToken')!.op
  t.same(token.requestBody?.content, {
    'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenRequest' } },
    'application/json': { schema: { $ref: '#/components/schemas/TokenRequest' } }
  }, 'the form and the JSON body of /auth/token are one named TokenRequest')

  const withBody = operations.filter(({ op }) => op.requestBody !== undefined)
  t.ok(withBody.length >= 14, `every route with a body is documented with it (${withBody.length})`)
  for (const { name, op } of withBody) {
    for (const [type, media] of Object.entries(op.requestBody!.content)) {
      t.match(media.schema, { $ref: /^#\/components\/schemas\/[A-Z]\w+$/ }, `${name} ${type}: the body is a named component`)
      t.equal(Object.keys(media.schema).length, 1, `${name} ${type}: the body is only a $ref`)
    }
  }

  const health = operations.find(({ op }) => op.operationId === 'health')!.op
  t.same(health.responses['200']?.content, { 'application/json': { schema: { $ref: '#/components/schemas/Health' } } },
    'GET /health answers a named Health')

  const text = JSON.stringify(doc)
  t.notMatch(text, /Default Response/, 'no response is described as "Default Response"')
  for (const { name, op } of operations) {
    for (const [status, response] of Object.entries(op.responses)) {
      t.ok(response.description && response.description.length >= 5, `${name} ${status} has a description: ${response.description}`)
    }
  }
})

t.test('the examples of the main schemas are valid instances of them', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  // OpenAPI 3.1 schemas are JSON Schema 2020-12; `$ref`s point into the document itself.
  const ajv = new Ajv2020.default({ strict: false, allErrors: true })
  addFormats.default(ajv)
  ajv.addSchema({ ...doc, $id: 'inkwell' })
  const schemas = doc.components.schemas as Record<string, Schema & { examples?: unknown[] }>
  for (const name of ['ErrorResponse', 'UserPrivate', 'UserPublic', 'Post', 'PostPage', 'TokenPair', 'TokenRequest', 'RegisterBody', 'Health']) {
    const examples = schemas[name]?.examples ?? []
    t.ok(examples.length > 0, `${name} has an example`)
    const validate = ajv.compile({ $ref: `inkwell#/components/schemas/${name}` })
    for (const example of examples) {
      t.ok(validate(example), `${name}: ${JSON.stringify(example).slice(0, 60)}… is valid ${ajv.errorsText(validate.errors)}`)
    }
  }
  t.notOk(ajv.compile({ $ref: 'inkwell#/components/schemas/Post' })({ ...schemas.Post!.examples![0] as object, like_count: -1 }),
    'a broken example would be caught')
})

/**
 * A response the walk may count as served: never a 5xx, a status the operation documents, and for
 * an error the one error shape with that status in its body.
 */
function served (t: Test, op: Operation, res: LightMyRequestResponse, what: string) {
  t.ok(res.statusCode < 500, `${what}: not a server error${res.statusCode >= 500 ? ` (${res.statusCode} ${res.body})` : ''}`)
  t.ok(op.responses[String(res.statusCode)] !== undefined || op.responses.default !== undefined,
    `${what}: ${res.statusCode} is a documented response`)
  if (res.statusCode >= 400) {
    const body = res.json()
    t.equal(body.statusCode, res.statusCode, `${what}: the error body carries its status`)
    t.equal(typeof body.error, 'string', `${what}: and a reason phrase`)
    t.equal(typeof body.message, 'string', `${what}: and a message`)
    t.same(Object.keys(body).filter((k) => !['statusCode', 'error', 'message', 'code'].includes(k)), [], `${what}: nothing but the error shape`)
  }
}

t.test('security in the document is what the server enforces, route by route', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const components = doc.components.schemas

  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const name = `${method.toUpperCase()} ${path}`
      const url = path.replace(/\{[^}]+\}/g, '999999')
      const query = Object.fromEntries((op.parameters ?? []).filter((p) => p.in === 'query' && p.required)
        .map((p) => [p.name, String(sample(p.schema, components))]))
      const json = op.requestBody?.content['application/json']?.schema
      const payload = json === undefined ? undefined : sample(json, components) as Record<string, unknown>
      const request = { method: method.toUpperCase() as 'GET', url, query, ...(payload !== undefined && { payload }) }

      const anonymous = await app.inject(request)
      served(t, op, anonymous, `${name}, anonymous`)
      const security = JSON.stringify(op.security)
      if (security === '[{"OAuth2PasswordBearer":[]}]') {
        t.ok(isCredentials401(anonymous), `${name}: documented as protected, and anonymous gets the 401`)
        t.ok(op.responses['401'], `${name}: documents its 401`)
        // A fresh user each time: some of these routes end sessions or delete the account.
        const withToken = await app.inject({ ...request, headers: (await loginAs(app)).auth })
        t.not(withToken.statusCode, 401, `${name}: a valid token gets past authentication`)
        served(t, op, withToken, `${name}, with a token`)
      } else if (security === '[{},{"OAuth2PasswordBearer":[]}]') {
        t.not(anonymous.statusCode, 401, `${name}: documented as optional, and anonymous is served`)
        const junk = await app.inject({ ...request, headers: { authorization: 'Bearer junk' } })
        t.not(junk.statusCode, 401, `${name}: an invalid token on an optional route is anonymous`)
        served(t, op, junk, `${name}, with an invalid token`)
      } else {
        t.equal(security, '[]', `${name}: documented as public`)
        if (op.operationId === 'passkeyLogin') {
          // Public, but its body is a credential: a made-up passkey assertion gets the one 401, as documented.
          t.ok(isCredentials401(anonymous), `${name}: documented as public; a made-up assertion gets the one 401`)
        } else {
          t.not(anonymous.statusCode, 401, `${name}: documented as public, and anonymous is not refused`)
        }
      }
      if (op.responses['403'] !== undefined && security !== '[]') {
        t.match(JSON.stringify(op), /Requires/, `${name}: says in its description what it requires`)
      }
    }
  }
})

t.test('Swagger UI is served at /docs', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/docs/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /swagger-ui/i)
})

t.test('the document says what each guard requires, as the guards say it', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  t.equal(doc.paths['/admin/users'].get.description, '**Requires** role `admin`, an active account.', 'an admin route')
  t.match(doc.paths['/posts/{id}'].patch.description, /\*\*Requires\*\* permission `post:edit_own`, an active account\.$/, 'a permission route')
  t.match(doc.paths['/users/me/password'].put.description ?? '', /\*\*Requires\*\* an active account\.$/, 'an active-user route')
  t.equal(doc.paths['/users/me'].get.description?.includes('**Requires**') ?? false, false, 'a route any logged-in user may call requires nothing more')
})
