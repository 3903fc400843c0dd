import closeWithGrace from 'close-with-grace'
import { DRAIN_MS } from '../plugins/graceful.js'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { StartupError } from './startup.js'

/**
 * What the operator fixes in the environment (an invalid variable; a database or Redis that cannot be
 * reached or used) ends start-up with one line naming the variable, no stack; anything else is thrown.
 */
function exitOnOperatorError (err: unknown): never {
  if (!(err instanceof ConfigError || err instanceof StartupError)) throw err
  console.error(err.message)
  process.exit(1)
}

let config
try {
  config = loadConfig()
} catch (err) {
  exitOnOperatorError(err)
}
const app = await buildApp(config).catch(exitOnOperatorError)
if (config.generatedSecretFile !== undefined) {
  app.log.warn(`JWT_SECRET is not set: using a generated development secret kept in ${config.generatedSecretFile}`)
}

// SIGTERM/SIGINT: drain keep-alive connections (a proxy moves to the other processes), then stop
// accepting, let in-flight requests finish, close the database; 10 s at most.
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ err }, 'server closing on error')
  else app.log.info({ signal }, 'server closing')
  if (err === undefined) await app.drain(DRAIN_MS)
  await app.close()
})

await app.listen({ host: config.host, port: config.port })
