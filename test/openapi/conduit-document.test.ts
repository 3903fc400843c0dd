import Ajv2020 from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import t from 'tap'
import { build, PASSWORD } from '../helper.js'

// The Conduit API's own document (/api/docs/json), generated from its routes: the RealWorld
// specification's paths, methods, operation ids and status codes (version 1.1.0, written out here),
// and answers that its schemas describe.

const SPECIFICATION: Array<[method: string, path: string, operationId: string, statuses: string[], auth: 'required' | 'optional' | 'none']> = [
  ['post', '/users/login', 'Login', ['200', '401', '422'], 'none'],
  ['post', '/users', 'CreateUser', ['201', '422'], 'none'],
  ['get', '/user', 'GetCurrentUser', ['200', '401', '422'], 'required'],
  ['put', '/user', 'UpdateCurrentUser', ['200', '401', '422'], 'required'],
  ['get', '/profiles/{username}', 'GetProfileByUsername', ['200', '401', '422'], 'optional'],
  ['post', '/profiles/{username}/follow', 'FollowUserByUsername', ['200', '401', '422'], 'required'],
  ['delete', '/profiles/{username}/follow', 'UnfollowUserByUsername', ['200', '401', '422'], 'required'],
  ['get', '/articles/feed', 'GetArticlesFeed', ['200', '401', '422'], 'required'],
  ['get', '/articles', 'GetArticles', ['200', '401', '422'], 'optional'],
  ['post', '/articles', 'CreateArticle', ['201', '401', '422'], 'required'],
  ['get', '/articles/{slug}', 'GetArticle', ['200', '422'], 'optional'],
  ['put', '/articles/{slug}', 'UpdateArticle', ['200', '401', '422'], 'required'],
  ['delete', '/articles/{slug}', 'DeleteArticle', ['204', '401', '422'], 'required'],
  ['get', '/articles/{slug}/comments', 'GetArticleComments', ['200', '401', '422'], 'optional'],
  ['post', '/articles/{slug}/comments', 'CreateArticleComment', ['200', '401', '422'], 'required'],
  ['delete', '/articles/{slug}/comments/{id}', 'DeleteArticleComment', ['204', '401', '422'], 'required'],
  ['post', '/articles/{slug}/favorite', 'CreateArticleFavorite', ['200', '401', '422'], 'required'],
  ['delete', '/articles/{slug}/favorite', 'DeleteArticleFavorite', ['200', '401', '422'], 'required'],
  ['get', '/tags', 'GetTags', ['200', '422'], 'none']
]

interface Operation { operationId: string, security?: unknown[], responses: Record<string, { content?: Record<string, { schema: object }> }> }

t.test('/api/docs/json: the specification\'s operations, generated from the routes', async (t) => {
  const app = await build(t)
  const res = await app.inject({ url: '/api/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json() as { openapi: string, servers: { url: string }[], paths: Record<string, Record<string, Operation>>, components: { schemas?: object, securitySchemes: Record<string, object> } }
  t.equal(doc.openapi, '3.1.0')
  t.same(doc.servers, [{ url: '/api' }], 'paths are relative to /api, as the specification\'s server is')
  t.same(doc.components.securitySchemes.Token, {
    type: 'apiKey', in: 'header', name: 'Authorization', description: doc.components.securitySchemes.Token && (doc.components.securitySchemes.Token as { description: string }).description
  }, 'the Token scheme: an API key in Authorization')
  t.same(doc.components.schemas ?? {}, {}, 'none of Inkwell\'s own models')

  const served = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`)).sort()
  t.same(served, SPECIFICATION.map(([method, path]) => `${method} ${path}`).sort(), 'exactly the specification\'s paths and methods')
  for (const [method, path, operationId, statuses, auth] of SPECIFICATION) {
    const op = doc.paths[path]?.[method]
    if (!t.ok(op, `${method} ${path} is documented`) || op === undefined) continue
    t.equal(op.operationId, operationId, `${method} ${path}: operationId ${operationId}`)
    const documented = Object.keys(op.responses)
    t.same(statuses.filter((s) => !documented.includes(s)), [], `${operationId}: every status of the specification (${statuses.join(', ')}) is documented`)
    const security = auth === 'required' ? [{ Token: [] }] : auth === 'optional' ? [{}, { Token: [] }] : []
    t.same(op.security, security, `${operationId}: security ${auth}`)
    t.match(op.responses['422']?.content?.['application/json']?.schema, { properties: { errors: { properties: { body: { type: 'array' } } } } }, `${operationId}: 422 is Conduit's error`)
  }

  const main = (await app.inject({ url: '/docs/json' })).json() as { paths: Record<string, unknown> }
  t.same(Object.keys(main.paths).filter((p) => p.startsWith('/api')), [], 'Inkwell\'s own document leaves /api to this one')

  // Live answers match the document's schemas (a front-end's generated client reads them so).
  const ajv = new Ajv2020.default({ strict: false, allErrors: true })
  addFormats.default(ajv)
  const check = (method: string, path: string, status: string, body: unknown) => {
    const schema = doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema
    if (!t.ok(schema, `${method} ${path} ${status}: a schema`) || schema === undefined) return
    const valid = ajv.validate(schema, body)
    t.ok(valid, `${method} ${path} ${status}: the answer matches (${ajv.errorsText()})`)
  }
  const reg = await app.inject({ method: 'POST', url: '/api/users', payload: { user: { username: 'jake', email: 'jake@example.com', password: PASSWORD } } })
  check('post', '/users', '201', reg.json())
  const headers = { authorization: `Token ${reg.json().user.token}` }
  const art = await app.inject({ method: 'POST', url: '/api/articles', headers, payload: { article: { title: 'T', description: 'D', body: 'B', tagList: ['x'] } } })
  check('post', '/articles', '201', art.json())
  check('get', '/articles', '200', (await app.inject({ url: '/api/articles', headers })).json())
  check('get', '/articles/{slug}', '200', (await app.inject({ url: `/api/articles/${art.json().article.slug}` })).json())
  check('get', '/tags', '200', (await app.inject({ url: '/api/tags' })).json())
  check('get', '/profiles/{username}', '200', (await app.inject({ url: '/api/profiles/jake' })).json())
  check('get', '/user', '401', (await app.inject({ url: '/api/user' })).json())
  check('post', '/users', '422', (await app.inject({ method: 'POST', url: '/api/users', payload: {} })).json())
})
