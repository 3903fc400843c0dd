import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RegistrationResponseJSON } from '@simplewebauthn/server'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { userOf } from '../../plugins/auth.js'
import { clientOf, reauthenticate } from '../../plugins/login.js'
import { errorResponse, PageQuery, ref } from '../../schemas/common.js'
import {
  Passkey, PasskeyPage, PasskeyParams, PasskeyRegistration, ReauthBody, ReauthWithCodeBody, RecoveryCodes,
  TotpConfirmBody, TotpEnrolment, TotpStartBody, WebAuthnOptions
} from '../../schemas/mfa.js'
import { errors } from '../../src/domain/errors.js'
import { deletePasskey, listPasskeys, registerPasskey, registrationOptions } from '../../src/domain/mfa/passkeys.js'
import { confirmTotp, disableTotp, regenerateRecoveryCodes, startTotp, totpEnabled } from '../../src/domain/mfa/totp.js'

const tooMany = errorResponse('Too many wrong passwords or codes; `Retry-After` says when to try again')
const wrongCredentials = errorResponse('Wrong password, a missing or wrong code (when an authenticator app is on), or an invalid body')

/** The caller's second factors: an authenticator app (TOTP) with its recovery codes, and passkeys. */
const mfaRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const audit = (request: FastifyRequest) => ({ actorId: userOf(request).id, ip: request.ip })

  app.post('/me/mfa/totp', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'startTotp',
      summary: 'Start setting up an authenticator app',
      description: 'Asks for the password again. Returns a new secret (and its `otpauth://` URL for a QR code); ' +
        'nothing is on until `POST /users/me/mfa/totp/confirm` with a code. A new call replaces a secret not yet confirmed.',
      body: ref(TotpStartBody),
      response: {
        200: { ...ref(TotpEnrolment), description: 'The secret to put in the app', headers: { 'cache-control': Type.Literal('no-store') } },
        400: errorResponse('Wrong password, or an invalid body'),
        409: errorResponse('An authenticator app is already on'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const me = userOf(request)
    if (await totpEnabled(app.db, me.id)) throw errors.totpAlreadyOn()
    const stored = await reauthenticate(request, { password: request.body.password })
    return await startTotp(app.db, app.mfaKeys, stored)
  })

  app.post('/me/mfa/totp/confirm', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'confirmTotp',
      summary: 'Turn the authenticator app on with its first code',
      description: 'From now on, logins and re-authentication ask for a code. Returns 10 recovery codes, shown once: ' +
        'each works once in place of a code. Audited as `mfa_totp_enabled`.',
      body: ref(TotpConfirmBody),
      response: {
        200: { ...ref(RecoveryCodes), description: 'TOTP is on; keep these codes somewhere safe', headers: { 'cache-control': Type.Literal('no-store') } },
        400: errorResponse('The code is incorrect, or an invalid body'),
        409: errorResponse('No app is being set up, or one is already on'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const me = userOf(request)
    // A wrong code counts like a wrong password: 6 digits are guessed faster than a password.
    const codes = await app.login.attempt(me.id, clientOf(request), () => confirmTotp(app.db, app.mfaKeys, me.id, request.body.code, audit(request)))
    request.log.info({ userId: me.id }, 'authenticator app turned on')
    return { recovery_codes: codes }
  })

  app.delete('/me/mfa/totp', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'disableTotp',
      summary: 'Turn the authenticator app off',
      description: 'Asks for the password and a code (or a recovery code). The secret and the recovery codes are deleted. Audited as `mfa_totp_disabled`.',
      body: ref(ReauthWithCodeBody),
      response: {
        204: Type.Null({ description: 'TOTP is off' }),
        400: wrongCredentials,
        409: errorResponse('No authenticator app is on'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    if (!await totpEnabled(app.db, me.id)) throw errors.totpOff()
    await reauthenticate(request, request.body)
    await disableTotp(app.db, me.id, audit(request))
    request.log.info({ userId: me.id }, 'authenticator app turned off')
    return reply.code(204).send(null)
  })

  app.post('/me/mfa/recovery-codes', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'regenerateRecoveryCodes',
      summary: 'Replace the recovery codes',
      description: 'Asks for the password and a code. Returns 10 new codes, shown once; the old ones stop working. Audited as `mfa_recovery_codes_regenerated`.',
      body: ref(ReauthWithCodeBody),
      response: {
        200: { ...ref(RecoveryCodes), description: 'The new codes', headers: { 'cache-control': Type.Literal('no-store') } },
        400: wrongCredentials,
        409: errorResponse('No authenticator app is on'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const me = userOf(request)
    if (!await totpEnabled(app.db, me.id)) throw errors.totpOff()
    await reauthenticate(request, request.body)
    return { recovery_codes: await regenerateRecoveryCodes(app.db, app.mfaKeys, me.id, audit(request)) }
  })

  app.post('/me/passkeys/options', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'passkeyRegistrationOptions',
      summary: 'Start registering a passkey',
      description: 'Asks for the password again (and a code when an authenticator app is on). Returns WebAuthn creation ' +
        'options for `navigator.credentials.create()`, excluding the passkeys already registered; the challenge is single use and valid 5 minutes.',
      body: ref(ReauthBody),
      response: {
        200: { ...ref(WebAuthnOptions), description: '`PublicKeyCredentialCreationOptionsJSON`' },
        400: wrongCredentials,
        429: tooMany
      }
    }
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const stored = await reauthenticate(request, request.body)
    return await registrationOptions(app.db, app.relyingParty, stored)
  })

  app.post('/me/passkeys', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'registerPasskey',
      summary: 'Register a passkey',
      description: 'Finishes the ceremony begun with `POST /users/me/passkeys/options`. Audited as `mfa_passkey_added`.',
      body: ref(PasskeyRegistration),
      response: {
        201: { ...ref(Passkey), description: 'The passkey is registered' },
        400: errorResponse('A bad, replayed or expired challenge, another origin or rp id, no user verification, or an invalid body')
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    const passkey = await registerPasskey(app.db, app.relyingParty, me.id, request.body.name,
      request.body.response as unknown as RegistrationResponseJSON, audit(request))
    request.log.info({ userId: me.id, passkeyId: passkey.id }, 'passkey registered')
    return reply.code(201).send(passkey)
  })

  app.get('/me/passkeys', {
    preHandler: app.authenticate,
    schema: {
      tags: ['mfa'],
      operationId: 'listPasskeys',
      summary: 'The calling user\'s passkeys, newest first',
      querystring: PageQuery,
      response: { 200: { ...ref(PasskeyPage), description: 'A page of passkeys' }, 400: errorResponse('Invalid or repeated skip/limit') }
    }
  }, async (request) => await listPasskeys(app.db, userOf(request).id, request.query))

  app.delete('/me/passkeys/:id', {
    preHandler: app.requireActiveUser,
    schema: {
      tags: ['mfa'],
      operationId: 'deletePasskey',
      summary: 'Remove a passkey',
      description: 'Asks for the password again (and a code when an authenticator app is on). Audited as `mfa_passkey_removed`.',
      params: PasskeyParams,
      body: ref(ReauthBody),
      response: {
        204: Type.Null({ description: 'The passkey is removed' }),
        400: errorResponse('Wrong password, a missing or wrong code, an invalid id or body'),
        404: errorResponse('`Passkey not found`: unknown, or another user\'s'),
        429: tooMany
      }
    }
  }, async (request, reply) => {
    const me = userOf(request)
    await reauthenticate(request, request.body)
    await deletePasskey(app.db, me.id, request.params.id, audit(request))
    return reply.code(204).send(null)
  })
}

export default mfaRoutes
