// `npm run mutate`: StrykerJS puts one-line bugs (mutants) into the security-critical code, one at a
// time, and runs the tests that reach each; a mutant no test notices is a missing test. Scope, score
// and how long it takes: test/README.md, "Mutation testing".

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])

/**
 * Log statements (`request.log.info(...)`, `log.warn(...)`) are not mutated: what a log line says is
 * not behaviour the tests assert here (the tests run with the log silenced; what must never reach the
 * log is tested on the real server's log in test/security/headers.test.ts and test/server.test.ts).
 */
const logCalls = {
  kind: 'Ignore',
  name: 'log-calls',
  value: {
    shouldIgnore (path) {
      const call = path.isExpressionStatement() ? path.node.expression : undefined
      if (call?.type !== 'CallExpression' || call.callee.type !== 'MemberExpression') return undefined
      const { object, property } = call.callee
      const onLogger = (object.type === 'Identifier' && object.name === 'log') ||
        (object.type === 'MemberExpression' && object.property.type === 'Identifier' && object.property.name === 'log')
      if (onLogger && property.type === 'Identifier' && LOG_LEVELS.has(property.name)) return 'a log statement: not behaviour the tests assert'
      return undefined
    }
  }
}

export const strykerPlugins = [logCalls]

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  plugins: ['@stryker-mutator/*', import.meta.url],
  ignorers: ['log-calls'],
  packageManager: 'npm',
  testRunner: 'tap',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: 'perTest',
  // 2 cores: one test process each (each test file also runs argon2 on the thread pool).
  concurrency: 2,
  timeoutMS: 10000,
  // Reruns test only the mutants whose code or covering test files changed.
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  mutate: [
    'plugins/auth.ts', // guards, bearer parsing, claims checks
    'src/domain/tokens.ts', // token pairs, refresh rotation, logout
    'src/domain/sessions.ts', // sessions, refresh-token spending and reuse detection
    'src/domain/ids.ts', // random ids and the hashes stored of secret tokens
    'src/domain/passwords.ts', // argon2id parameters, OpaqueString preparation, password rules
    'src/domain/login-throttle.ts', // the failed-login throttle (in memory)
    'src/domain/login.ts', // the login and re-authentication flows: reservation, dummy hash, second factor, sessions
    'src/domain/mfa/totp.ts', // enrolment, confirmation, single-use steps
    'src/domain/mfa/recovery-codes.ts', // generation, normalisation, single use
    'src/domain/mfa/challenges.ts', // the mfa_token: lifetime, 5 codes, single use
    'src/domain/mfa/secrets.ts', // sealing TOTP secrets, keyed code hashes
    'src/policy.ts', // the role table
    'src/domain/users.ts:185-200', // admin rules: counting active admins, the user read in the transaction,
    'src/domain/users.ts:227-277', // deletion and standing changes with their audit and the last-admin rule
    'routes/admin/index.ts:13-15', // the admin prefix guard and the audit context
    'routes/admin/index.ts:41-45',
    'routes/admin/index.ts:60-64',
    'src/domain/posts.ts:266-280', // post ownership: 404 first, then 403 unless the role overrides
    'src/domain/comments.ts:116-125' // comment ownership: the post, the comment on it, then 403 unless comment:delete_any
  ],
  tap: {
    // Fastest and most pointed first: a mutant stops at the first file that fails (forceBail).
    testFiles: [
      'test/domain/login-throttle.test.ts',
      'test/domain/mfa.test.ts',
      'test/routes/mfa-totp.test.ts',
      'test/security/bursts.test.ts',
      'test/plugins/authenticate.test.ts',
      'test/routes/admin.test.ts',
      'test/routes/posts.test.ts',
      'test/routes/comments.test.ts',
      'test/routes/passwords.test.ts',
      'test/security/throttling.test.ts',
      'test/routes/auth.test.ts',
      'test/routes/sessions.test.ts',
      'test/routes/likes.test.ts',
      'test/routes/avatar.test.ts',
      'test/openapi/document.test.ts', // the docs follow the guards (guardsOf)
      'test/routes/passkeys-browser.test.ts' // passkey login (Chromium): last, it is the slowest
    ],
    nodeArgs: ['--import', 'tsx'],
    forceBail: true
  },
  ignorePatterns: ['dist', 'data', 'coverage', '.tap', 'bench', 'clients'],
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // `npm run mutate` fails below 90 %.
  thresholds: { high: 95, low: 90, break: 90 },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always'
}
