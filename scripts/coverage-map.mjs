// Which tests count towards coverage. A test that starts our sources in a child process (the real
// server, the CLI, a cluster, migrations racing) counts none: tap follows those children, and they
// run our TypeScript through tsx (esbuild), while tap's own processes transpile it with ts-node;
// V8 ranges of two different transpilations of one file, merged under one URL, garble the report
// (lines every in-process test runs show as uncovered). The same code is covered in-process by the
// app.inject() tests. Decided from the test's source, so a new spawning test cannot be forgotten here.
import { readFileSync } from 'node:fs'

// test/support/programs.ts gives the command for every spawned server and CLI (processes.ts and cli.ts use it).
const SPAWNS_OUR_CODE = /support\/(programs|processes|cli)\.js|['"]--import['"],\s*['"]tsx['"]|['"]\.bin['"],\s*['"]tsx['"]/

export default function coverageMap (testFile) {
  return SPAWNS_OUR_CODE.test(readFileSync(testFile, 'utf8')) ? null : []
}
