import { desc, sql } from 'drizzle-orm'
import type { Db } from './db/client.js'
import { auditLog } from './db/schema.js'
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
export function recordAudit (db: Db, ctx: AuditContext, entry: AuditEntry): void {
  db.insert(auditLog).values({ ...entry, actorId: ctx.actorId, ip: ctx.ip, createdAt: new Date().toISOString() }).run()
}

export function listAudit (db: Db, page: PageRequest) {
  const rows = db.select().from(auditLog).orderBy(desc(auditLog.id)).limit(page.limit).offset(page.skip).all()
  const total = db.select({ n: sql<number>`count(*)` }).from(auditLog).get()?.n ?? 0
  return toPage(rows.map((r) => ({
      id: r.id,
      actor_id: r.actorId,
      action: r.action,
      target_type: r.targetType,
      target_id: r.targetId,
      ip: r.ip,
      details: r.details,
      created_at: r.createdAt
    })), total, page)
}
