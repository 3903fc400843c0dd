import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { AuthenticationResponseJSON } from '@simplewebauthn/server'
import { userOf } from '../../plugins/auth.js'
import { errors } from '../../src/domain/errors.js'
import { clientOf } from '../../plugins/login.js'
import { LogoutBody, PasswordResetConfirm, PasswordResetRequest, TokenPair, TokenRequest, VerifyEmailBody } from '../../schemas/auth.js'
import { errorResponse, ref } from '../../schemas/common.js'
import { Accepted, RegisterBody, UserPrivate } from '../../schemas/users.js'
import { startPasswordReset, startVerification } from '../../src/domain/accounts.js'
import { authenticationOptions, verifyPasskeyLogin } from '../../src/domain/mfa/passkeys.js'
import { createUser, findUserByEmail, privateView } from '../../src/domain/users.js'
import { MfaRequired, PasskeyLogin, WebAuthnOptions } from '../../schemas/mfa.js'
import { followResetLink, followVerifyLink } from './links.js'

const AUTH_BODY_LIMIT = 16 * 1024

const authRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRoute', (route) => { route.bodyLimit ??= AUTH_BODY_LIMIT })

  const tooMany = errorResponse('Too many requests; `Retry-After` says when to try again')

  app.post('/register', {
    schema: {
      tags: ['auth'],
      operationId: 'register',
      summary: 'Create an account',
      description: 'The account starts with `email_verified: false`, and a verification link is mailed to the address.',
      body: ref(RegisterBody),
      response: {
        201: { ...ref(UserPrivate), description: 'The account is created; a verification link is on its way' },
        400: errorResponse('Invalid body, or a password that is too common'),
        409: errorResponse('Email or username already taken'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    const user = await createUser(app.db, request.body)
    request.log.info({ userId: user.id }, 'user registered')
    reply.header('cache-control', 'no-store')
    app.afterResponse(async () => {
      await app.mailLink('verify_email', user.id, user.email, () => startVerification(app.db, user, app.config.emailTokenTtl))
    }, request.log)
    return reply.code(201).send(privateView(user))
  })

  app.post('/token', {
    schema: {
      tags: ['auth'],
      operationId: 'createToken',
      summary: 'Log in, or refresh a token pair (OAuth2 token endpoint)',
      description: 'OAuth2 password grant (`grant_type=password`, the default) with `username` (email or ' +
        'username) and `password`, or `grant_type=refresh_token` with `refresh_token`. A refresh token ' +
        'can be used once: each use returns a new pair, and using one twice ends its session.\n\n' +
        '**Second factor.** When the account has an authenticator app on, the right password answers 403 ' +
        '`MFA_REQUIRED` with an `mfa_token` (single use, 5 minutes). Send it with `grant_type=mfa_otp` and ' +
        '`otp` (the app\'s 6-digit code, or a recovery code) for the tokens. A wrong code is 401 `Invalid code`; ' +
        'after 5 the `mfa_token` is void.\n\n' +
        'Every wrong password or code counts towards `LOGIN_FAILURE_LIMIT` (default 10) for the account ' +
        'and client in 15 minutes, counted before it is checked: past it, 429 with `Retry-After`, whatever is sent.',
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: ref(TokenRequest),
      response: {
        200: { ...ref(TokenPair), description: 'A fresh token pair', headers: { 'cache-control': Type.Literal('no-store') } },
        400: errorResponse('Missing parameters or an unsupported grant_type'),
        401: errorResponse('Wrong username or password, an invalid refresh token, an invalid or expired `mfa_token`, or `Invalid code`'),
        403: { ...ref(MfaRequired), description: 'The password is right and a second factor is on: continue with `grant_type=mfa_otp`' },
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    const { grant_type: grantType = 'password', username, password, refresh_token: refreshToken, mfa_token: mfaToken, otp } = request.body
    switch (grantType) {
      case 'refresh_token':
        if (refreshToken === undefined) throw app.httpErrors.badRequest('refresh_token is required for grant_type=refresh_token')
        return await app.tokens.refresh(refreshToken, request.log)
      case 'password':
        if (username === undefined || password === undefined) {
          throw app.httpErrors.badRequest('username and password are required for grant_type=password')
        }
        return await app.login.withPassword(username, password, clientOf(request))
      case 'mfa_otp':
        if (mfaToken === undefined || otp === undefined) throw app.httpErrors.badRequest('mfa_token and otp are required for grant_type=mfa_otp')
        return await app.login.withCode(mfaToken, otp, clientOf(request))
      default:
        throw Object.assign(app.httpErrors.badRequest('Unsupported grant_type: use password, refresh_token or mfa_otp'), { code: 'UNSUPPORTED_GRANT_TYPE' })
    }
  })

  app.post('/passkey/options', {
    schema: {
      tags: ['auth'],
      operationId: 'passkeyLoginOptions',
      summary: 'Start a passkey login',
      description: 'WebAuthn request options for a discoverable credential (no username needed); the challenge is single use and valid 5 minutes. ' +
        'Pass them to `navigator.credentials.get()` and send its answer to `POST /auth/passkey`.',
      response: {
        200: { ...ref(WebAuthnOptions), description: '`PublicKeyCredentialRequestOptionsJSON`' },
        429: tooMany
      }
    }
  }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return await authenticationOptions(app.db, app.relyingParty)
  })

  app.post('/passkey', {
    schema: {
      tags: ['auth'],
      operationId: 'passkeyLogin',
      summary: 'Log in with a passkey',
      description: 'A passkey login is a login with both factors (`amr` `hwk`). An unknown passkey, a bad signature, ' +
        'another origin or rp id, a signature counter that did not move forward, or a used or expired challenge: the one 401.',
      body: ref(PasskeyLogin),
      response: {
        200: { ...ref(TokenPair), description: 'A fresh token pair', headers: { 'cache-control': Type.Literal('no-store') } },
        400: errorResponse('Invalid body'),
        401: errorResponse('`Could not validate credentials`'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    const userId = await verifyPasskeyLogin(app.db, app.relyingParty, request.body.response as unknown as AuthenticationResponseJSON)
    if (userId === undefined) {
      request.log.info('passkey login refused')
      throw errors.invalidCredentials()
    }
    return await app.login.withPasskey(userId, clientOf(request))
  })

  app.post('/password-reset', {
    schema: {
      tags: ['auth'],
      operationId: 'requestPasswordReset',
      summary: 'Mail a password-reset link',
      description: 'Answers 202 with the same body, in the same time, whether or not an account has this address. ' +
        'When one does, a link valid `PASSWORD_RESET_TTL` seconds is mailed to it, voiding earlier ones; at most 3 ' +
        'such mails an account an hour (past that, still 202 and no mail).',
      body: ref(PasswordResetRequest),
      response: {
        202: { ...ref(Accepted), description: 'If an account has this address, a link is on its way to it' },
        400: errorResponse('Invalid body'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    const { email } = request.body
    // Everything that depends on whether the account exists happens after the answer is sent.
    app.afterResponse(async () => {
      const user = await findUserByEmail(app.db, email)
      if (user !== undefined) await app.mailLink('password_reset', user.id, user.email, () => startPasswordReset(app.db, user, app.config.passwordResetTtl))
    }, request.log)
    return reply.code(202).send({ message: 'If an account has this address, a password-reset link has been sent to it' })
  })

  app.post('/password-reset/confirm', {
    schema: {
      tags: ['auth'],
      operationId: 'confirmPasswordReset',
      summary: 'Set a new password with a reset link\'s token',
      description: 'The password changes (the registration rules apply), every session of the account ends, and ' +
        'the link and any other reset link stop working.',
      body: ref(PasswordResetConfirm),
      response: {
        204: Type.Null({ description: 'The password is changed' }),
        400: errorResponse('`Invalid or expired token`, an invalid body, or a password that is too common'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    await followResetLink(app, request, request.body.token, request.body.new_password)
    return reply.code(204).send(null)
  })

  app.post('/verify-email', {
    schema: {
      tags: ['auth'],
      operationId: 'verifyEmail',
      summary: 'Confirm an e-mail address with a mailed link\'s token',
      description: 'The address the link was sent to becomes the account\'s, verified: the registration address, or ' +
        'the new one of an e-mail change (a notice then goes to the old address).',
      body: ref(VerifyEmailBody),
      response: {
        204: Type.Null({ description: 'The address is verified' }),
        400: errorResponse('`Invalid or expired token`, or an invalid body'),
        409: errorResponse('Another account took the address in the meantime'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    await followVerifyLink(app, request, request.body.token)
    return reply.code(204).send(null)
  })

  app.post('/logout', {
    schema: {
      tags: ['auth'],
      operationId: 'logout',
      summary: 'End the session of a refresh token',
      description: 'Idempotent: answers 204 whether or not the token is still valid. The session\'s refresh ' +
        'tokens and the access tokens issued in it stop working.',
      body: ref(LogoutBody),
      response: { 204: Type.Null({ description: 'Logged out' }), 400: errorResponse('Invalid body'), 429: tooMany }
    }
  }, async (request, reply) => {
    await app.tokens.logout(request.body.refresh_token)
    return reply.code(204).send(null)
  })

  app.post('/logout-all', {
    preHandler: app.authenticate,
    schema: {
      tags: ['auth'],
      operationId: 'logoutAll',
      summary: 'End every session of the calling user',
      description: 'Every token issued to the user until now stops working, this one included.',
      response: { 204: Type.Null({ description: 'Logged out everywhere' }), 429: tooMany }
    }
  }, async (request, reply) => {
    const user = userOf(request)
    await app.tokens.logoutAll(user.id)
    request.log.info({ userId: user.id }, 'logged out everywhere')
    return reply.code(204).send(null)
  })
}

export default authRoutes
