import { parseArgs } from 'node:util'
import { bodyProblem } from '../plugins/validation.js'
import { RegisterBody } from '../schemas/users.js'
import { loadConfig } from './config.js'
import { migrateDatabase, openDatabase } from './db/index.js'
import { isDomainError } from './domain/errors.js'
import { createUser } from './domain/users.js'
import { ROLES, type Role } from './policy.js'
import { redactUrl, StartupError } from './startup.js'

const USAGE = `Usage: npm run cli -- <command>

Commands:
  migrate                          apply pending database migrations
  create-user --email E --username U --password P [--role user|moderator|admin]
                                   create an account (how the first admin is made)`

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  const config = loadConfig()
  if (command === 'migrate') {
    await migrateDatabase(config.databaseUrl)
    console.log(`Migrations applied to ${redactUrl(config.databaseUrl)}`)
    return 0
  }
  if (command === 'create-user') {
    const { values } = parseArgs({
      args: rest,
      options: {
        email: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        role: { type: 'string', default: 'user' }
      },
      strict: true
    })
    const { email, username, password, role } = values
    if (email === undefined || username === undefined || password === undefined) {
      console.error('create-user needs --email, --username and --password\n\n' + USAGE)
      return 2
    }
    if (!ROLES.includes(role as Role)) {
      console.error(`--role must be one of ${ROLES.join(', ')}`)
      return 2
    }
    const problem = validateNewUser(email, username, password)
    if (problem !== undefined) {
      console.error(problem)
      return 2
    }
    await migrateDatabase(config.databaseUrl)
    const db = openDatabase(config.databaseUrl, { poolSize: 1 })
    try {
      const user = await createUser(db, { email, username, password, role: role as Role, emailVerified: true })
      console.log(`Created ${user.role} ${user.username} (id ${user.id})`)
      return 0
    } finally {
      await db.close()
    }
  }
  console.error(USAGE)
  return command === undefined || command === 'help' || command === '--help' ? 0 : 2
}

/** The registration rules of the API (its body schema, then the domain's), named as the CLI's flags. */
function validateNewUser (email: string, username: string, password: string): string | undefined {
  return bodyProblem(RegisterBody, { email, username, password })?.replace(/^body\/(\w+)/, '--$1')
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: Error & { code?: string }) => {
  // Our own refusals (a duplicate, a bad argument) are told plainly; anything else with its stack.
  const expected = isDomainError(err) || err instanceof StartupError || err.name === 'ConfigError' || err.code?.startsWith('ERR_PARSE_ARGS') === true
  console.error(expected ? err.message : err)
  process.exitCode = expected ? 2 : 1
})
