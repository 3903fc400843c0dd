// Runs the tests' TypeScript through tsx (esbuild, with its transform cache), the same loader as the
// servers and CLIs the tests spawn, instead of tap's ts-node, which spends about 3 s of CPU in the
// TypeScript compiler in every test file's process before its first test.
//
// One mend for coverage: tsx leaves `sourcesContent: [null]` in its inline source maps unless
// NODE_V8_COVERAGE is set (tap takes coverage through the inspector instead), and v8-to-istanbul then
// maps every file onto an empty source. The hook in source-map-hook.mjs drops that field, so the report
// reads the sources from disk. It must see tsx's output, so it is registered the way tsx registered
// itself: in this thread where Node has module.registerHooks (22.15 and later, where tsx uses it),
// else on the loader thread (Node 20), after tsx either way (the hook registered last runs first).
import * as module from 'node:module'
import 'tsx'
import { load } from './source-map-hook.mjs'

if (typeof module.registerHooks === 'function') module.registerHooks({ load })
else module.register('./source-map-hook.mjs', import.meta.url)
