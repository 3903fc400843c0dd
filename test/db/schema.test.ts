// The two engines' schemas (src/db/sqlite/schema.ts, src/db/postgres/schema.ts) declare one model: the
// same tables, the same columns with the same nullability, the same indexes, and the same foreign
// keys, each deleted with what it points at. The domain is typed against one of them and runs on both,
// so a table, column or index added to one engine only would be a bug that only that engine shows.
import { is } from 'drizzle-orm'
import { getTableConfig as pgConfig, PgTable } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import t from 'tap'
import * as pg from '../../src/db/postgres/schema.js'
import * as sqlite from '../../src/db/sqlite/schema.js'

interface Shape {
  columns: string[]
  indexes: string[]
  /** `column → table.column on delete …` */
  foreignKeys: string[]
}

// Differences that are meant: on SQLite the primary key is the table itself, so a deep `skip` walks a
// separate index of the ids (bench/README.md); PostgreSQL's primary-key index is that already.
const ENGINE_ONLY_INDEXES = new Set(['posts_id_idx'])

function shapeOf (table: unknown): Shape {
  const config = is(table, SQLiteTable) ? sqliteConfig(table) : pgConfig(table as PgTable)
  return {
    columns: config.columns.map((c) => `${c.name}${c.notNull ? ' not null' : ''}${c.primary ? ' primary key' : ''}`).sort(),
    indexes: config.indexes.filter((i) => !ENGINE_ONLY_INDEXES.has(i.config.name ?? '')).map((i) => `${i.config.name}${i.config.unique ? ' unique' : ''}`).sort(),
    foreignKeys: config.foreignKeys.map((fk) => {
      const ref = fk.reference()
      const from = ref.columns.map((c) => c.name).join(',')
      const to = ref.foreignColumns.map((c) => c.name).join(',')
      return `${from} → ${getName(ref.foreignTable)}.${to} on delete ${fk.onDelete ?? 'no action'}`
    }).sort()
  }
}

const getName = (table: unknown) => (is(table, SQLiteTable) ? sqliteConfig(table) : pgConfig(table as PgTable)).name

function tablesOf (schema: Record<string, unknown>): Map<string, unknown> {
  return new Map(Object.values(schema).filter((v) => is(v, SQLiteTable) || is(v, PgTable)).map((table) => [getName(table), table]))
}

t.test('both engines declare the same tables, columns, indexes and foreign keys', async (t) => {
  const a = tablesOf(sqlite)
  const b = tablesOf(pg)
  t.same([...a.keys()].sort(), [...b.keys()].sort(), 'the same tables')
  t.ok(a.size >= 13, `every table is compared (${a.size})`)
  for (const [name, table] of a) {
    const other = b.get(name)
    if (other === undefined) continue
    t.same(shapeOf(table), shapeOf(other), `${name}: the same columns, indexes and foreign keys on both engines`)
  }
})

t.test('whatever points at a user or a post goes with it: every foreign key cascades', async (t) => {
  for (const [name, table] of tablesOf(sqlite)) {
    for (const fk of shapeOf(table).foreignKeys) t.match(fk, / on delete cascade$/, `${name}: ${fk}`)
  }
})
