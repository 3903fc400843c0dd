import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { bearerToken, userOf } from '../../plugins/auth.js'
import { clientOf } from '../../plugins/login.js'
import { conduitError, LoginBody, RegisterBody, UpdateUserBody, UserResponse } from '../../schemas/conduit.js'
import { startEmailChange, startVerification } from '../../src/domain/accounts.js'
import { clearAvatar } from '../../src/domain/avatars.js'
import { errors } from '../../src/domain/errors.js'
import { avatarUrl, createUser, findUserByLogin, updateProfile } from '../../src/domain/users.js'
import { imageOf, userView } from './views.js'

/** Conduit's users: registration, login, the current user. Tokens are Inkwell sessions (docs/conduit.md). */
const usersRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/users/login', {
    schema: {
      tags: ['User and Authentication'],
      operationId: 'Login',
      summary: 'Existing user login',
      description: 'Inkwell\'s login: the same failure limit (LOGIN_FAILURE_LIMIT wrong passwords in 15 minutes, then 429 with Retry-After), ' +
        'and an account with a second factor logs in through Inkwell\'s /auth/token instead (403). `email` may also be the username.',
      body: LoginBody,
      response: {
        200: { ...UserResponse, description: 'The user, with a new token' },
        401: conduitError('Wrong e-mail or password'),
        403: conduitError('The account has a second factor'),
        429: conduitError('Too many failed logins; Retry-After says when to try again')
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const { email, password } = request.body.user
    const token = await app.conduitLogin.withPassword(email, password, clientOf(request))
    const user = await findUserByLogin(app.db, email)
    if (user === undefined) throw errors.invalidLogin()
    return { user: userView(request, user, token) }
  })

  app.post('/users', {
    schema: {
      tags: ['User and Authentication'],
      operationId: 'CreateUser',
      summary: 'Register a new user',
      description: 'Inkwell\'s registration: its password policy, a verification link mailed to the address, and a session whose token comes back.',
      body: RegisterBody,
      response: { 201: { ...UserResponse, description: 'The user, logged in' }, 429: conduitError('Too many requests from this client') }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const user = await createUser(app.db, request.body.user)
    request.log.info({ userId: user.id }, 'user registered (Conduit)')
    app.afterResponse(async () => {
      await app.mailLink('verify_email', user.id, user.email, () => startVerification(app.db, user, app.config.emailTokenTtl))
    }, request.log)
    const token = await app.tokens.startAccessOnly({ userId: user.id, verifiedHash: user.passwordHash, amr: ['pwd'], client: clientOf(request) }, app.config.conduitTokenTtl)
    if (token === undefined) throw errors.invalidLogin()
    return reply.code(201).send({ user: userView(request, user, token) })
  })

  app.get('/user', {
    preHandler: app.authenticate,
    schema: {
      tags: ['User and Authentication'],
      operationId: 'GetCurrentUser',
      summary: 'Get current user',
      response: { 200: { ...UserResponse, description: 'The caller, with the token they sent' } }
    }
  }, async (request) => ({ user: userView(request, userOf(request), bearerToken(request) ?? '') }))

  app.put('/user', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['User and Authentication'],
      operationId: 'UpdateCurrentUser',
      summary: 'Update current user',
      description: 'Only the fields given change. A new `email` is Inkwell\'s confirmed change: a link goes to the new address, ' +
        'which replaces the old one only when the link is followed (the answer still shows the old one; the old one is told). ' +
        'A new `password` is refused (422): Inkwell changes a password only with the current one, through POST /users/me/password. ' +
        '`image` may only be kept, or removed with `""` or null: pictures are uploaded through PUT /users/me/avatar.',
      body: UpdateUserBody,
      response: { 200: { ...UserResponse, description: 'The user as it is now' } }
    }
  }, async (request) => {
    const me = userOf(request)
    const { email, username, password, bio, image } = request.body.user
    if (password !== undefined) throw errors.passwordChangeElsewhere()
    // `image` may stay as it is, or go ('' or null); a picture is uploaded elsewhere.
    const removeImage = image !== undefined && image !== imageOf(request, avatarUrl(me.avatar))
    if (removeImage && image !== '' && image !== null) throw errors.imageUploadElsewhere()
    // A null bio is an empty one (front-ends send either).
    let user = await updateProfile(app.db, me.id, { username, bio: bio === null ? '' : bio })
    if (removeImage && me.avatar !== null) user = await clearAvatar(app.db, app.uploadsDir, me.id, request.log)
    if (email !== undefined && email.toLowerCase() !== me.email) {
      app.afterResponse(async () => {
        await app.mailLink('email_change', me.id, email.toLowerCase(), () => startEmailChange(app.db, me.id, email, app.config.emailTokenTtl))
      }, request.log)
    }
    return { user: userView(request, user, bearerToken(request) ?? '') }
  })
}

export default usersRoutes
