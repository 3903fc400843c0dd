// The startup options Inkwell adds to a PostgreSQL URL (src/db/postgres/engine.ts): generic plans,
// without losing what the operator's URL says, and letting the operator's own `-c` win.
import pg from 'pg'
import t from 'tap'
import { withGenericPlans } from '../../src/db/postgres/engine.js'
import { TEST_ENGINE } from '../support/services.js'

t.test('the URL keeps its credentials, host, database and parameters; the options come first', async (t) => {
  const url = new URL(withGenericPlans('postgres://ink%40well:p%20w@db.example:6432/blog?sslmode=require&options=-c%20search_path%3Dtenant_1'))
  t.same([url.username, url.password, url.host, url.pathname], ['ink%40well', 'p%20w', 'db.example:6432', '/blog'])
  t.equal(url.searchParams.get('sslmode'), 'require')
  t.equal(url.searchParams.get('options'), '-c plan_cache_mode=force_generic_plan -c search_path=tenant_1')
  t.equal(new URL(withGenericPlans('postgresql://localhost/blog')).searchParams.get('options'), '-c plan_cache_mode=force_generic_plan')
})

// On the PostgreSQL run (the SQLite run has no server to ask).
if (TEST_ENGINE === 'postgres') t.test('PostgreSQL applies them, and an operator\'s own plan_cache_mode wins', async (t) => {
  const base = process.env.TEST_DATABASE_URL as string
  const show = async (url: string) => {
    const client = new pg.Client({ connectionString: withGenericPlans(url) })
    await client.connect()
    try {
      return (await client.query<{ plan_cache_mode: string }>('show plan_cache_mode')).rows[0]?.plan_cache_mode
    } finally {
      await client.end()
    }
  }
  t.equal(await show(base), 'force_generic_plan')
  const own = new URL(base)
  own.searchParams.set('options', '-c plan_cache_mode=auto')
  t.equal(await show(own.toString()), 'auto')
})
