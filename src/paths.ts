import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root, found from this file whether it runs from src/ or from dist/src/. */
function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'drizzle', 'meta', '_journal.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('Cannot find the drizzle/ migrations folder above ' + import.meta.url)
    dir = parent
  }
  return dir
}

export const projectRoot = findRoot()
export const migrationsFolder = join(projectRoot, 'drizzle')
