import fp from 'fastify-plugin'
import { migrateDatabase, openDatabase, type Db } from '../src/db/client.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Db
  }
}

/** Opens the SQLite database, brings its schema up to date, and closes it when the app closes. */
export default fp(async (app) => {
  const db = openDatabase(app.config.databaseUrl)
  migrateDatabase(db)
  app.decorate('db', db)
  app.addHook('onClose', async () => {
    db.$client.close()
  })
}, { name: 'db', dependencies: ['config'] })
