import { sql } from 'drizzle-orm'
import type { App } from '../../src/app.js'
import { sqliteClientOf } from '../../src/db/sqlite/engine.js'
import { sqlRows } from '../helper.js'

/** SQLite's plan for a statement, one line per step (`SEARCH posts USING ...`), parameters left null. */
export function sqlitePlanOf (app: App, text: string): string[] {
  const params = (text.match(/\?/g) ?? []).length
  const rows = sqliteClientOf(app.db).prepare(`EXPLAIN QUERY PLAN ${text}`).all(...Array<null>(params).fill(null)) as { detail: string }[]
  return rows.map((r) => r.detail)
}

/** A node of PostgreSQL's EXPLAIN (FORMAT JSON) plan, with the fields the checks read. */
export interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Index Cond'?: string
  'Scan Direction'?: string
  'Subplan Name'?: string
  Plans?: PlanNode[]
}

/** A node with the nodes above it, nearest first. */
export interface PlanStep { node: PlanNode, ancestors: PlanNode[] }

/**
 * The planner settings the PostgreSQL plans are taken under. On a table of a few dozen rows the
 * planner rightly reads the whole table, or joins whole tables by hash or merge, whatever the
 * indexes: these settings ask instead whether every step CAN be an index lookup. None of them makes a
 * missing index appear: a disabled node type is still chosen, and shows in the plan, when nothing
 * else can run the query.
 * - enable_seqscan: a Seq Scan left in the plan means no index serves the query.
 * - enable_hashjoin, enable_mergejoin: a join must be a nested loop, whose inner side is an index
 *   lookup per row or shows as a scan without an index condition (caught by the checks).
 * - enable_bitmapscan: a bitmap scan returns rows in table order, so on a small table the planner
 *   sorts an author's few posts rather than walk posts_author_idx backwards; off, the plan shows
 *   whether the index gives the order, which is what a deep page of a prolific author needs.
 */
export const PLANNER_SETTINGS = ['enable_seqscan', 'enable_hashjoin', 'enable_mergejoin', 'enable_bitmapscan']

let prepared = 0

/**
 * PostgreSQL's generic plan for a statement as the API sends it ($1, $2... placeholders), in the app's
 * own schema: prepared (the parameter types inferred from the query), planned without parameter
 * values (force_generic_plan, as a prepared statement used many times is), executed with NULLs by
 * EXPLAIN, which runs nothing. The settings are SET LOCAL, so they end with the transaction.
 */
export async function postgresPlanOf (app: App, text: string): Promise<PlanNode> {
  const name = `query_plan_${process.pid}_${++prepared}`
  const params = Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))
  const args = params === 0 ? '' : `(${Array<string>(params).fill('NULL').join(', ')})`
  return await app.db.transaction(async (tx) => {
    const run = (statement: string) => tx.q.execute(sql.raw(statement))
    for (const setting of PLANNER_SETTINGS) await run(`SET LOCAL ${setting} = off`)
    await run('SET LOCAL plan_cache_mode = force_generic_plan')
    await run(`PREPARE ${name} AS ${text}`)
    const { rows } = await run(`EXPLAIN (FORMAT JSON) EXECUTE ${name}${args}`)
    // Prepared statements belong to the connection, not the transaction: the pool's connection is reused.
    await run(`DEALLOCATE ${name}`)
    const plan = (rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] } | undefined)?.['QUERY PLAN'][0].Plan
    if (plan === undefined) throw new Error(`EXPLAIN returned no plan for ${text}`)
    return plan
  })
}

/** An index of the app's schema: its table, and its first key as plans print it (`author_id`, `lower(username)`). */
export interface IndexInfo { table: string, leading: string }

/** The indexes of the app's own schema, by name. */
export async function postgresIndexes (app: App): Promise<Map<string, IndexInfo>> {
  const rows = await sqlRows<{ name: string, table: string, leading: string }>(app, sql.raw(
    `select i.relname as name, t.relname as "table", pg_get_indexdef(x.indexrelid, 1, true) as leading
       from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
      where t.relnamespace = current_schema()::regnamespace`))
  return new Map(rows.map((r) => [r.name, { table: r.table, leading: r.leading }]))
}

/**
 * Whether an index scan searches its index rather than walking it: its condition constrains the
 * index's first key (`(author_id = $2)`). A condition on a later key alone, which PostgreSQL accepts,
 * still reads the whole index.
 */
export function searchesIndex (node: PlanNode, indexes: Map<string, IndexInfo>): boolean {
  const cond = node['Index Cond']
  const leading = indexes.get(node['Index Name'] ?? '')?.leading
  if (cond === undefined || leading === undefined) return false
  return cond.includes(`(${leading} `)
}

/** Every node of a plan, depth first, each with its ancestors. */
export function planSteps (root: PlanNode): PlanStep[] {
  const steps: PlanStep[] = []
  const walk = (node: PlanNode, ancestors: PlanNode[]) => {
    steps.push({ node, ancestors })
    for (const child of node.Plans ?? []) walk(child, [node, ...ancestors])
  }
  walk(root, [])
  return steps
}

/** `Index Scan Backward using posts_author_idx on posts`: a node as the checks name it. */
export function describeNode (node: PlanNode): string {
  return [
    node['Node Type'],
    node['Scan Direction'] === 'Backward' ? ' Backward' : '',
    node['Index Name'] === undefined ? '' : ` using ${node['Index Name']}`,
    node['Relation Name'] === undefined ? '' : ` on ${node['Relation Name']}`
  ].join('')
}

/** The plan on one line, for messages: `Nested Loop > Index Scan using sessions_pkey on sessions (id = $1) > ...`. */
export function describePlan (root: PlanNode): string {
  return planSteps(root).map(({ node, ancestors }) =>
    `${'-'.repeat(ancestors.length)}${describeNode(node)}${node['Index Cond'] === undefined ? '' : ` ${node['Index Cond']}`}`).join(' | ')
}
