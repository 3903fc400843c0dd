import fp from 'fastify-plugin'
import { AdminUser, AdminUserPage, AuditEntry, AuditPage } from '../schemas/admin.js'
import { PasswordResetConfirm, PasswordResetRequest, TokenPair, VerifyEmailBody } from '../schemas/auth.js'
import { ErrorResponse } from '../schemas/common.js'
import { Post, PostAuthor, PostPage } from '../schemas/posts.js'
import {
  Accepted, ChangeEmailBody, DeleteMeBody, Permission, Role, Session, SessionPage, UserPrivate, UserPublic
} from '../schemas/users.js'

/** Shared models, registered once by $id: the docs show them as named components. */
export default fp(async (app) => {
  for (const schema of [
    ErrorResponse, Role, Permission, UserPublic, UserPrivate, TokenPair,
    PostAuthor, Post, PostPage, AdminUser, AdminUserPage, AuditEntry, AuditPage,
    Accepted, Session, SessionPage, ChangeEmailBody, DeleteMeBody, PasswordResetRequest, PasswordResetConfirm, VerifyEmailBody
  ]) {
    app.addSchema(schema)
  }
}, { name: 'schemas' })
