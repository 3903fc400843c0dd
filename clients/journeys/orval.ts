// A consumer's journey through orval's fetch client (../orval/inkwell.ts, `--client fetch`, otherwise its
// defaults): `tsx clients/journeys/orval.ts <base URL> <username>` prints what it saw as JSON.
// test/openapi/sdk-generators.test.ts type-checks it under `strict` and runs it against a real server.
import { adminListUsers, createPost, createToken, type ErrorResponse, getMe, likePost, listPosts, type Post, register } from '../orval/inkwell.js'

const [baseUrl = 'http://127.0.0.1:3000', username = 'ada'] = process.argv.slice(2)
const password = 'correct horse battery staple'

// orval's fetch client requests the document's relative paths (`/posts`), which a page on the API's
// origin resolves against its own address. Node has no page: it is given the API's address here.
const fetchFromNode = globalThis.fetch
globalThis.fetch = (input, init) => fetchFromNode(new URL(input instanceof Request ? input.url : String(input), baseUrl), init)
const signal = AbortSignal.timeout(30_000)

const registered = await register({ email: `${username}@example.com`, username, password }, { signal })

// orval sends the token request as a form, the first media type the document lists for it.
const login = await createToken({ username, password }, { signal })
if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.data)}`)
const auth = { signal, headers: { authorization: `Bearer ${login.data.access_token}` } }

const created = await createPost({ title: `Hello from ${username}`, content: 'Written through orval.' }, auth)
if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.data)}`)
const post: Post = created.data
const like = await likePost(post.id, auth)
const page = await listPosts({ limit: 100 }, auth)
const listed = page.status === 200 ? page.data.items.find((item) => item.id === post.id) : undefined

// Each status has its own type: a 401 or 403 carries the document's ErrorResponse.
const anonymous = await getMe({ signal })
const unauthorized: ErrorResponse | undefined = anonymous.status === 401 ? anonymous.data : undefined
const admin = await adminListUsers(undefined, auth)
const forbidden: ErrorResponse | undefined = admin.status === 403 ? admin.data : undefined

console.log(JSON.stringify({
  registered: { status: registered.status, user: registered.data },
  login: { status: login.status, token_type: login.data.token_type },
  created: { status: created.status, post },
  like: { status: like.status },
  listed: { status: page.status, post: listed },
  unauthorized: { status: anonymous.status, error: unauthorized },
  forbidden: { status: admin.status, error: forbidden }
}))
