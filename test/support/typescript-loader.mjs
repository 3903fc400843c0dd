// Runs the tests' TypeScript through tsx (esbuild, with its transform cache), the same loader as the
// servers and CLIs the tests spawn, instead of tap's ts-node, which spends about 3 s of CPU in the
// TypeScript compiler in every test file's process before its first test.
//
// One mend for coverage: tsx leaves `sourcesContent: [null]` in its inline source maps unless
// NODE_V8_COVERAGE is set (tap takes coverage through the inspector instead), and v8-to-istanbul then
// maps every file onto an empty source. The hook below drops that field, so the report reads the
// sources from disk.
import { register } from 'node:module'
import 'tsx'

register('./source-map-hook.mjs', import.meta.url)
