import net from 'node:net'

export interface TcpProxy {
  /** The local port clients connect to; the same after cut() and restore(). */
  readonly port: number
  /** Destroys every open connection and closes the listener, so new connections are refused. */
  cut (): Promise<void>
  /**
   * Listens again on the same port and forwards again. Connections hung by hang() are destroyed:
   * bytes were dropped on them, so their protocol state is lost (as a real black hole ends in a reset).
   */
  restore (): Promise<void>
  /** Black hole: keeps accepting connections and reading from them, but forwards nothing either way. */
  hang (): void
  /** Destroys every connection and stops listening for good. */
  close (): Promise<void>
}

interface Pair { client: net.Socket, upstream?: net.Socket, hung: boolean }

/**
 * A TCP proxy on 127.0.0.1 for fault tests: point a client at `port`, then cut, hang and restore the
 * path to the real server (Redis, PostgreSQL) without touching the server, which other work shares.
 */
export async function startProxy (targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<Pair>()
  let hanging = false
  let closed = false
  let server: net.Server | undefined
  let port = 0

  const swallow = (socket: net.Socket) => {
    socket.removeAllListeners('data')
    socket.on('data', () => {})
    socket.resume()
  }

  const blackHole = (pair: Pair) => {
    pair.hung = true
    if (pair.upstream !== undefined) {
      pair.client.unpipe(pair.upstream)
      pair.upstream.unpipe(pair.client)
      swallow(pair.upstream)
    }
    swallow(pair.client)
  }

  const destroy = (pair: Pair) => {
    pair.client.destroy()
    pair.upstream?.destroy()
    pairs.delete(pair)
  }

  const accept = (client: net.Socket) => {
    const pair: Pair = { client, hung: false }
    pairs.add(pair)
    client.on('error', () => {})
    client.on('close', () => destroy(pair))
    if (hanging) { blackHole(pair); return }
    const upstream = net.connect(targetPort, targetHost)
    pair.upstream = upstream
    upstream.on('error', () => {})
    upstream.on('close', () => destroy(pair))
    client.pipe(upstream)
    upstream.pipe(client)
  }

  const listen = () => new Promise<void>((resolve, reject) => {
    const s = net.createServer(accept)
    s.once('error', reject)
    s.listen(port, '127.0.0.1', () => {
      s.off('error', reject)
      server = s
      port = (s.address() as net.AddressInfo).port
      resolve()
    })
  })

  const stopListening = async () => {
    const s = server
    server = undefined
    for (const pair of [...pairs]) destroy(pair)
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()))
  }

  await listen()

  return {
    get port () { return port },
    async cut () {
      hanging = false
      await stopListening()
    },
    async restore () {
      if (closed) throw new Error('the proxy is closed')
      hanging = false
      for (const pair of [...pairs]) if (pair.hung) destroy(pair)
      if (server === undefined) await listen()
    },
    hang () {
      hanging = true
      for (const pair of pairs) if (!pair.hung) blackHole(pair)
    },
    async close () {
      closed = true
      await stopListening()
    }
  }
}
