import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { userOf } from '../../plugins/auth.js'
import { AdminUser, AdminUserChange, AdminUserPage, AuditPage } from '../../schemas/admin.js'
import { errorResponse, IdParams, PageQuery, ref } from '../../schemas/common.js'
import { listAudit } from '../../src/domain/audit.js'
import { removeAvatarFile } from '../../src/domain/avatars.js'
import { adminView, changeUserStanding, deleteUser, listUsers } from '../../src/domain/users.js'

const adminRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // Once for the whole prefix: a route added below is guarded without anyone remembering to.
  app.protect(app.requireRole('admin'))
  // ADMIN_MFA_REQUIRED: an admin's session must have been opened with a second factor as well.
  if (app.config.adminMfaRequired) app.protect(app.requireSecondFactor)

  const audit = (request: FastifyRequest) => ({ actorId: userOf(request).id, ip: request.ip })

  app.get('/users', {
    schema: {
      tags: ['admin'],
      operationId: 'adminListUsers',
      summary: 'All users, newest first, with their email, role and active flag',
      querystring: PageQuery,
      response: { 200: { ...ref(AdminUserPage), description: 'A page of every user' }, 400: errorResponse('Invalid or repeated skip/limit') }
    }
  }, async (request) => listUsers(app.db, request.query))

  app.patch('/users/:id', {
    schema: {
      tags: ['admin'],
      operationId: 'adminUpdateUser',
      summary: 'Change a user\'s role or active flag (audited)',
      params: IdParams,
      body: ref(AdminUserChange),
      response: {
        200: { ...ref(AdminUser), description: 'The user as it is now' },
        400: errorResponse('Invalid id or body, or an unknown field'),
        404: errorResponse('User not found'),
        409: errorResponse('The last active admin cannot be demoted or deactivated')
      }
    }
  }, async (request) => {
    const { role, is_active: isActive } = request.body
    const user = await changeUserStanding(app.db, request.params.id, { role, isActive }, audit(request))
    request.log.info({ userId: userOf(request).id, targetId: user.id, role, isActive }, 'admin changed a user')
    return adminView(user)
  })

  app.delete('/users/:id', {
    schema: {
      tags: ['admin'],
      operationId: 'adminDeleteUser',
      summary: 'Delete a user with their posts and likes (audited)',
      params: IdParams,
      response: {
        204: Type.Null({ description: 'Deleted' }),
        400: errorResponse('The id is not a positive integer'),
        404: errorResponse('User not found'),
        409: errorResponse('The last active admin cannot be deleted')
      }
    }
  }, async (request, reply) => {
    const avatar = await deleteUser(app.db, request.params.id, audit(request))
    await removeAvatarFile(app.uploadsDir, avatar, request.log)
    request.log.info({ userId: userOf(request).id, targetId: request.params.id }, 'admin deleted a user')
    return reply.code(204).send(null)
  })

  app.get('/audit', {
    schema: {
      tags: ['admin'],
      operationId: 'adminListAudit',
      summary: 'The audit log, newest first',
      querystring: PageQuery,
      response: { 200: { ...ref(AuditPage), description: 'A page of the audit log, newest first' }, 400: errorResponse('Invalid or repeated skip/limit') }
    }
  }, async (request) => listAudit(app.db, request.query))
}

export default adminRoutes
