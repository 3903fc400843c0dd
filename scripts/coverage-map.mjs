// Tests that spawn the real server or CLI (through tsx) count no coverage: tap follows those child
// processes, and their differently-transpiled copies of our sources garble the merged report.
// The same code is covered in-process by the app.inject() tests.
const SPAWNING = /(^|\/)(server|cli|crash)\.test\.ts$/

export default function coverageMap (testFile) {
  return SPAWNING.test(testFile) ? null : []
}
