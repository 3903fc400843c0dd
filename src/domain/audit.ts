import { count, desc } from 'drizzle-orm'
import type { Database } from '../db/index.js'
import { toPage, type PageRequest } from './pagination.js'

export interface AuditContext {
  actorId: number | null
  ip: string | null
}

export interface AuditEntry {
  action: string
  targetType: string
  targetId: number | null
  details: Record<string, unknown>
}

/** Call inside the transaction of the change it records, so neither can exist without the other. */
export async function recordAudit (tx: Database, ctx: AuditContext, entry: AuditEntry): Promise<void> {
  await tx.q.insert(tx.t.auditLog).values({ ...entry, actorId: ctx.actorId, ip: ctx.ip, createdAt: new Date().toISOString() })
}

export async function listAudit (db: Database, page: PageRequest) {
  const { auditLog } = db.t
  const [rows, [counted]] = await Promise.all([
    db.q.select().from(auditLog).orderBy(desc(auditLog.id)).limit(page.limit).offset(page.skip),
    db.q.select({ n: count() }).from(auditLog)
  ])
  return toPage(rows.map((r) => ({
    id: r.id,
    actor_id: r.actorId,
    action: r.action,
    target_type: r.targetType,
    target_id: r.targetId,
    ip: r.ip,
    details: r.details,
    created_at: r.createdAt
  })), counted?.n ?? 0, page)
}
