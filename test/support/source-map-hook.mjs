// A module-loader hook (registered by typescript-loader.mjs after tsx, so it sees tsx's output):
// removes `sourcesContent` from the inline source map of our own transpiled files. It works both as a
// loader-thread hook (module.register, where nextLoad returns a promise) and as an in-thread one
// (module.registerHooks, where it returns the result).
const INLINE_MAP = /\n\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/

function withoutSourcesContent (url, result) {
  if (!url.startsWith('file:') || url.includes('/node_modules/') || result.source === undefined || result.source === null) return result
  const text = typeof result.source === 'string' ? result.source : Buffer.from(result.source).toString('utf8')
  const found = INLINE_MAP.exec(text)
  if (found === null) return result
  const map = JSON.parse(Buffer.from(found[1], 'base64').toString('utf8'))
  if (map.sourcesContent === undefined) return result
  delete map.sourcesContent
  const inline = Buffer.from(JSON.stringify(map)).toString('base64')
  return { ...result, source: `${text.slice(0, found.index)}\n//# sourceMappingURL=data:application/json;base64,${inline}\n` }
}

export function load (url, context, nextLoad) {
  const result = nextLoad(url, context)
  return typeof result?.then === 'function' ? result.then((r) => withoutSourcesContent(url, r)) : withoutSourcesContent(url, result)
}
