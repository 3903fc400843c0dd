import fp from 'fastify-plugin'
import { AdminUser, AdminUserChange, AdminUserPage, AuditEntry, AuditPage } from '../schemas/admin.js'
import { LogoutBody, PasswordResetConfirm, PasswordResetRequest, TokenPair, TokenRequest, VerifyEmailBody } from '../schemas/auth.js'
import { ErrorResponse, Health } from '../schemas/common.js'
import {
  MfaRequired, MfaSummary, Passkey, PasskeyLogin, PasskeyPage, PasskeyRegistration, RecoveryCodes, ReauthBody, ReauthWithCodeBody,
  TotpConfirmBody, TotpEnrolment, TotpStartBody, WebAuthnOptions
} from '../schemas/mfa.js'
import {
  Comment, CommentPage, CreateCommentBody, CreatePostBody, Post, PostAuthor, PostPage, TagCount, TagPage, UpdatePostBody
} from '../schemas/posts.js'
import {
  Accepted, AvatarUpload, ChangeEmailBody, ChangePasswordBody, DeleteMeBody, Permission, RegisterBody, Role, Session, SessionPage,
  UpdateMeBody, UserPrivate, UserPublic
} from '../schemas/users.js'

/**
 * Shared models, registered once by $id: the docs show them as named components. Every request body is
 * one of them, so each SDK generator names it the same instead of inventing a name per operation.
 */
export default fp(async (app) => {
  for (const schema of [
    ErrorResponse, Health, Role, Permission, MfaSummary, UserPublic, UserPrivate, TokenPair, MfaRequired,
    TotpEnrolment, RecoveryCodes, Passkey, PasskeyPage, WebAuthnOptions,
    ReauthBody, ReauthWithCodeBody, TotpStartBody, TotpConfirmBody, PasskeyRegistration, PasskeyLogin,
    PostAuthor, Post, PostPage, AdminUser, AdminUserPage, AuditEntry, AuditPage,
    Accepted, Session, SessionPage,
    RegisterBody, TokenRequest, LogoutBody, PasswordResetRequest, PasswordResetConfirm, VerifyEmailBody,
    UpdateMeBody, ChangePasswordBody, ChangeEmailBody, DeleteMeBody, AvatarUpload,
    CreatePostBody, UpdatePostBody, AdminUserChange, Comment, CommentPage, CreateCommentBody, TagCount, TagPage
  ]) {
    app.addSchema(schema)
  }
}, { name: 'schemas' })
