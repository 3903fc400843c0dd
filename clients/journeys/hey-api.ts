// A consumer's journey through the @hey-api/openapi-ts client (../hey-api, generated with its defaults):
// `tsx clients/journeys/hey-api.ts <base URL> <username>` prints what it saw as JSON.
// test/openapi/sdk-generators.test.ts type-checks it under `strict` and runs it against a real server.
import { client } from '../hey-api/client.gen.js'
import { urlSearchParamsBodySerializer } from '../hey-api/client/index.js'
import { adminListUsers, createPost, createToken, type ErrorResponse, getMe, likePost, listPosts, type Post, register } from '../hey-api/index.js'

const [baseUrl = 'http://127.0.0.1:3000', username = 'ada'] = process.argv.slice(2)
const password = 'correct horse battery staple'
let token: string | undefined
// The document's server is relative (`/`): a client outside the browser says where the API is.
client.setConfig({ baseUrl, auth: () => token, signal: AbortSignal.timeout(30_000) })

const registered = await register({ body: { email: `${username}@example.com`, username, password } })

// OAuth2 clients log in with a form: the generated call defaults to JSON, so ask for the form.
const login = await createToken({
  body: { username, password },
  ...urlSearchParamsBodySerializer,
  headers: { 'Content-Type': 'application/x-www-form-urlencoded' }
})
if (login.data === undefined) throw new Error(`login failed: ${JSON.stringify(login.error)}`)
token = login.data.access_token

const created = await createPost({ body: { title: `Hello from ${username}`, content: 'Written through @hey-api/openapi-ts.' } })
if (created.data === undefined) throw new Error(`create failed: ${JSON.stringify(created.error)}`)
const post: Post = created.data
const like = await likePost({ path: { id: post.id } })
const page = await listPosts({ query: { limit: 100 } })
const listed = page.data?.items.find((item) => item.id === post.id)

// Errors come back typed as the document's ErrorResponse.
token = undefined
const anonymous = await getMe()
const unauthorized: ErrorResponse | undefined = anonymous.error
token = login.data.access_token
const admin = await adminListUsers()
const forbidden: ErrorResponse | undefined = admin.error

console.log(JSON.stringify({
  registered: { status: registered.response.status, user: registered.data },
  login: { status: login.response.status, token_type: login.data.token_type },
  created: { status: created.response.status, post },
  like: { status: like.response.status },
  listed: { status: page.response.status, post: listed },
  unauthorized: { status: anonymous.response.status, error: unauthorized },
  forbidden: { status: admin.response.status, error: forbidden }
}))
