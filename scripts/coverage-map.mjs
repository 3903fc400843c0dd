// Which tests count towards coverage. A test that starts our sources in a child process (the real
// server, the CLI, a cluster, migrations racing) counts none: with its coverage merged in, the report
// loses nearly every file (214 statements instead of 8,800, tried on 2026-12-07 with the whole suite
// and its children on tsx). The same code is covered in-process by the app.inject() tests. Decided from
// the test's source, so a new spawning test cannot be forgotten here.
import { readFileSync } from 'node:fs'

// test/support/programs.ts gives the command for every spawned server and CLI (processes.ts and cli.ts use it).
const SPAWNS_OUR_CODE = /support\/(programs|processes|cli)\.js|['"]--import['"],\s*['"]tsx['"]|['"]\.bin['"],\s*['"]tsx['"]/

export default function coverageMap (testFile) {
  return SPAWNS_OUR_CODE.test(readFileSync(testFile, 'utf8')) ? null : []
}
