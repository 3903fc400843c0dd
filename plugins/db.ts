import fp from 'fastify-plugin'
import { migrateDatabase, openDatabase, type Database } from '../src/db/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    db: Database
  }
}

/** Opens the database DATABASE_URL names, brings its schema up to date, and closes it when the app closes. */
export default fp(async (app) => {
  const { databaseUrl, databasePoolSize } = app.config
  await migrateDatabase(databaseUrl)
  const db = openDatabase(databaseUrl, { poolSize: databasePoolSize, log: app.log })
  app.decorate('db', db)
  app.addHook('onClose', async () => {
    await db.close()
  })
}, { name: 'db', dependencies: ['config'] })
