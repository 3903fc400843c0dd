import { defineConfig } from 'drizzle-kit'

// One config per engine: `npm run db:generate` runs both (DIALECT=postgres picks the second).
const postgres = process.env.DIALECT === 'postgres'

export default defineConfig(postgres
  ? { dialect: 'postgresql', schema: './src/db/postgres/schema.ts', out: './drizzle/postgres' }
  : { dialect: 'sqlite', schema: './src/db/sqlite/schema.ts', out: './drizzle/sqlite' })
