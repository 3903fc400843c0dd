// A consumer's journey through the openapi-typescript + openapi-fetch client (../index.ts over
// ../schema.d.ts): `tsx clients/journeys/openapi-fetch.ts <base URL> <username>` prints what it saw as
// JSON. test/sdk-generators.test.ts type-checks it under `strict` and runs it against a real server.
import { bearer, createInkwellClient, type Schemas } from '../index.js'

const [baseUrl = 'http://127.0.0.1:3000', username = 'ada'] = process.argv.slice(2)
const password = 'correct horse battery staple'
const api = createInkwellClient(baseUrl, { signal: AbortSignal.timeout(30_000) })
let token: string | undefined
api.use(bearer(() => token))

const registered = await api.POST('/auth/register', { body: { email: `${username}@example.com`, username, password } })

// OAuth2 clients log in with a form; openapi-fetch encodes the body as the content type says.
const login = await api.POST('/auth/token', {
  body: { username, password },
  headers: { 'content-type': 'application/x-www-form-urlencoded' }
})
if (login.data === undefined) throw new Error(`login failed: ${JSON.stringify(login.error)}`)
token = login.data.access_token

const created = await api.POST('/posts', { body: { title: `Hello from ${username}`, content: 'Written through openapi-fetch.' } })
if (created.data === undefined) throw new Error(`create failed: ${JSON.stringify(created.error)}`)
const post: Schemas['Post'] = created.data
const like = await api.PUT('/posts/{id}/like', { params: { path: { id: post.id } } })
const page = await api.GET('/posts', { params: { query: { limit: 100 } } })
const listed = page.data?.items.find((item) => item.id === post.id)

// Errors come back typed as the document's ErrorResponse.
token = undefined
const anonymous = await api.GET('/users/me')
const unauthorized: Schemas['ErrorResponse'] | undefined = anonymous.error
token = login.data.access_token
const admin = await api.GET('/admin/users')
const forbidden: Schemas['ErrorResponse'] | undefined = admin.error

console.log(JSON.stringify({
  registered: { status: registered.response.status, user: registered.data },
  login: { status: login.response.status, token_type: login.data.token_type },
  created: { status: created.response.status, post },
  like: { status: like.response.status },
  listed: { status: page.response.status, post: listed },
  unauthorized: { status: anonymous.response.status, error: unauthorized },
  forbidden: { status: admin.response.status, error: forbidden }
}))
