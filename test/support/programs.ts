// How tests start Inkwell's own programs in processes of their own: the server and the CLI.
import { join } from 'node:path'

/**
 * How long a program may take to start (or to refuse to) before a test gives up on it. About 2 s on a
 * quiet machine, nearly all of it loading modules; under `npm test` four test files share two cores,
 * and starts of over 20 s have been seen. A bound, not a timing assertion: it turns a hang into a failure.
 */
export const START_BOUND_MS = 90_000

/**
 * The command that runs `src/<name>.ts` from the repository root: one node process with tsx's loader
 * (whose pid is the program's; tsx's own binary would put a second process in between). Running a
 * compiled build instead was measured no faster: tsx caches its transforms, and loading the modules is
 * what a start costs.
 */
export function program (name: 'server' | 'cli', ...args: string[]): { command: string, args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', join('src', `${name}.ts`), ...args] }
}

/** This process's environment without tap's coverage hooks: instrumenting a child makes every start and exit slower. */
export function childEnv (): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) =>
    !/^(TAP|_TAPJS_)|^NODE_OPTIONS$|^NODE_V8_COVERAGE$/.test(key)))
}
