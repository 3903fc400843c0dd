import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

// Real Chromium for the tests that need a browser: Debian's package, driven by playwright-core.

// Debian's chromium (`apt-get install chromium`; .ci/run installs it). No Playwright browser download.
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// A name that is not loopback to the browser, but resolves to this machine.
export const OTHER_HOST = 'inkwell.test'
export const WAIT = 15_000

export interface Teardown { teardown: (fn: () => unknown) => void }

export async function launch (t: Teardown): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'inkwell-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-proxy-server',
      `--host-resolver-rules=MAP ${OTHER_HOST} 127.0.0.1`
    ]
  })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  context.setDefaultTimeout(WAIT)
  context.setDefaultNavigationTimeout(WAIT)
  return context
}

/** Only this machine is reachable: anything else the page asks for is refused and reported. */
export async function loopbackOnly (context: BrowserContext): Promise<string[]> {
  const refused: string[] = []
  await context.route('**/*', async (route) => {
    const { hostname } = new URL(route.request().url())
    if (hostname === '127.0.0.1' || hostname === OTHER_HOST) return route.continue()
    refused.push(route.request().url())
    return route.abort()
  })
  return refused
}

/** What went wrong in the page, for failure messages. */
export function watchErrors (page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`))
  page.on('requestfailed', (request) => errors.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`))
  page.on('response', (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`)
  })
  return errors
}
