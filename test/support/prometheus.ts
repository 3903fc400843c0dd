/** One sample of the Prometheus text format (version 0.0.4): a name, its labels, a value. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Exposition {
  samples: Sample[]
  /** `# TYPE` of each metric family. */
  types: Map<string, string>
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy

function number (raw: string): number {
  if (raw === '+Inf') return Infinity
  if (raw === '-Inf') return -Infinity
  // Prometheus reads NaN in any case; prom-client writes `Nan`.
  if (/^nan$/i.test(raw)) return NaN
  const value = Number(raw)
  if (Number.isNaN(value)) throw new Error(`not a sample value: ${raw}`)
  return value
}

function labels (raw: string | undefined, line: string): Record<string, string> {
  const result: Record<string, string> = {}
  if (raw === undefined || raw === '') return result
  LABEL.lastIndex = 0
  let consumed = 0
  for (let m = LABEL.exec(raw); m !== null; m = LABEL.exec(raw)) {
    result[m[1]!] = m[2]!.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c))
    consumed = LABEL.lastIndex
  }
  if (consumed !== raw.length) throw new Error(`malformed labels: ${line}`)
  return result
}

/** Parses the whole text; a line that is neither a comment nor a well-formed sample throws. */
export function parseExposition (text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('#')) {
      const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line)
      if (type !== null) types.set(type[1]!, type[2]!)
      continue
    }
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`malformed sample: ${line}`)
    samples.push({ name: m[1]!, labels: labels(m[2], line), value: number(m[3]!) })
  }
  return { samples, types }
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v)

/** The value of the sample with exactly these labels; undefined when there is none. */
export function valueOf (exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return exposition.samples.find((s) => s.name === name && sameLabels(s.labels, labels))?.value
}

/** Every sample of one name, keyed by its labels' values joined in the order given. */
export function series (exposition: Exposition, name: string, keys: string[]): Map<string, number> {
  return new Map(exposition.samples.filter((s) => s.name === name).map((s) => [keys.map((k) => s.labels[k]).join(' '), s.value]))
}

/** What changed between two readings of the same series (zero changes left out). */
export function increments (before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const changed: Record<string, number> = {}
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0)
    if (delta !== 0) changed[key] = delta
  }
  return changed
}
