// plugins/counters.ts: where the limits' counters live, and the warning when they cannot be shared.
import { Writable } from 'node:stream'
import t from 'tap'
import { build } from '../helper.js'
import { TEST_ENGINE } from '../support/services.js'

t.test('without REDIS_URL the counters are per process, and a networked database says so at start-up', async (t) => {
  let log = ''
  const stream = new Writable({ write (chunk, _enc, done) { log += chunk.toString(); done() } })
  const app = await build(t, { LOG_LEVEL: 'warn', REDIS_URL: '' }, { logStream: stream })
  t.equal(app.redis, null, 'no Redis: the counters are kept in this process')
  t.equal(app.db.networked, TEST_ENGINE === 'postgres', 'PostgreSQL is shared by processes on several machines; a SQLite file is not')
  const warned = log.includes('REDIS_URL is not set: the /auth rate limit, the login-failure throttle and the mail limits are counted per process')
  t.equal(warned, app.db.networked, app.db.networked ? 'on PostgreSQL: a warning that N processes allow N times the limits' : 'on SQLite: no warning')
})
