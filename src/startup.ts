/**
 * Start-up refusals that an operator fixes in the environment: a service named by a configuration
 * variable cannot be reached or used. src/server.ts prints the message alone, one line, and exits 1.
 */
export class StartupError extends Error {
  constructor (readonly variable: string, problem: string, options?: ErrorOptions) {
    super(`${variable}: ${problem}`, options)
    this.name = 'StartupError'
  }
}

/** A URL without its password, fit for a terminal or a log; a SQLite file path as it is. */
export function redactUrl (url: string): string {
  if (!url.includes('://')) return url
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparsable URL)'
  }
}

/** An error's message; Node's AggregateError (a host name with both IPv4 and IPv6 addresses) has none of its own. */
export function describeError (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  if (err.message !== '') return err.message
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(describeError).join('; ')
  return (err as { code?: string }).code ?? err.name
}
