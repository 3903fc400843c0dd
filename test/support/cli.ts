import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx')
const SECRET = 'cli-test-secret-that-is-long-enough-0123456789'
const TIMEOUT_MS = 20_000

export interface Outcome { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs `tsx src/cli.ts ...args` with `env` (DATABASE_URL at least); killed if it outlives the bound. */
export function runCli (env: Record<string, string>, ...args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, ['src/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'test', JWT_SECRET: SECRET, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true // its own process group: tsx runs the CLI in a node process of its own
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
    }, TIMEOUT_MS)
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }) })
  })
}

