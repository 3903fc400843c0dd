// Writes the OpenAPI document the server publishes at /docs/json to openapi.json (or stdout with -).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { projectRoot } from '../src/paths.js'

const config = loadConfig({ DATABASE_URL: ':memory:', LOG_LEVEL: 'silent' })
const app = await buildApp(config, { logger: false })
await app.ready()
const json = JSON.stringify(app.swagger(), null, 2) + '\n'
await app.close()
if (process.argv[2] === '-') process.stdout.write(json)
else writeFileSync(join(projectRoot, 'openapi.json'), json)
