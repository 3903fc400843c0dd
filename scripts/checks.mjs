// The static checks before the tests: the type-check, ESLint and the OpenAPI document's lint, run at
// once (tsc is single-threaded, and this machine has two cores). Each one's output is printed whole,
// in this order, once all have ended; the exit code is non-zero when any failed.
import { spawn } from 'node:child_process'

const CHECKS = ['typecheck', 'lint', 'lint:openapi']

function run (script) {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => { output += chunk })
    child.stderr.on('data', (chunk) => { output += chunk })
    child.on('close', (code) => resolve({ script, code, output }))
  })
}

const results = await Promise.all(CHECKS.map(run))
for (const { script, code, output } of results) {
  process.stdout.write(`> ${script}: ${code === 0 ? 'passed' : `failed (exit ${code})`}\n${output}`)
}
process.exitCode = results.some((r) => r.code !== 0) ? 1 : 0
