import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { childEnv, program, START_BOUND_MS } from './programs.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const SECRET = 'cli-test-secret-that-is-long-enough-0123456789'

export interface Outcome { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs the CLI (programs.ts) with `args` and `env` (DATABASE_URL at least); killed if it outlives the start bound. */
export function runCli (env: Record<string, string>, ...args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const { command, args: argv } = program('cli', ...args)
    const child = spawn(command, argv, {
      cwd: ROOT,
      env: { ...childEnv(), NODE_ENV: 'test', JWT_SECRET: SECRET, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true // its own process group: the bound's kill reaches whatever it starts
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    }, START_BOUND_MS)
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}

