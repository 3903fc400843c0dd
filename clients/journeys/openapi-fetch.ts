// A consumer's journey through the openapi-typescript + openapi-fetch client (../index.ts over
// ../schema.d.ts): `tsx clients/journeys/openapi-fetch.ts <base URL> <username>` prints what it saw as
// JSON. test/openapi/sdk-generators.test.ts type-checks it under `strict` and runs it against a real server.
import { generate } from 'otplib'
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

// A second factor: an authenticator app (otplib plays the app), then a login in two steps.
const form = { 'content-type': 'application/x-www-form-urlencoded' } as const
const enrolled = await api.POST('/users/me/mfa/totp', { body: { password } })
if (enrolled.data === undefined) throw new Error(`enrolment failed: ${JSON.stringify(enrolled.error)}`)
const { secret } = enrolled.data
const code = (steps: number) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 })
const confirmed = await api.POST('/users/me/mfa/totp/confirm', { body: { code: await code(-1) } })
token = undefined
const firstStep = await api.POST('/auth/token', { body: { username, password }, headers: form })
const mfaRequired = firstStep.error !== undefined && 'mfa_token' in firstStep.error ? firstStep.error : undefined
if (mfaRequired === undefined) throw new Error(`expected MFA_REQUIRED: ${JSON.stringify(firstStep.error)}`)
const secondStep = await api.POST('/auth/token', { body: { grant_type: 'mfa_otp', mfa_token: mfaRequired.mfa_token, otp: await code(0) }, headers: form })
token = secondStep.data?.access_token
const meAfter = await api.GET('/users/me')

console.log(JSON.stringify({
  registered: { status: registered.response.status, user: registered.data },
  login: { status: login.response.status, token_type: login.data.token_type },
  created: { status: created.response.status, post },
  like: { status: like.response.status },
  listed: { status: page.response.status, post: listed },
  unauthorized: { status: anonymous.response.status, error: unauthorized },
  forbidden: { status: admin.response.status, error: forbidden },
  totp: {
    confirmed: { status: confirmed.response.status, codes: confirmed.data?.recovery_codes.length },
    firstStep: { status: firstStep.response.status, code: mfaRequired.code },
    secondStep: { status: secondStep.response.status, token_type: secondStep.data?.token_type },
    mfa: meAfter.data?.mfa
  }
}))
