import { connect, type Socket } from 'node:net'

export interface RawResponse {
  /** What the server wrote: one whole response, or whatever came before it closed the socket or the wait ran out. */
  text: string
  status: number | undefined
  /** Milliseconds from connecting until the response was complete or the server closed the socket; undefined if neither. */
  after: number | undefined
  /** With `keepOpen`, the still-open socket, for the caller to watch and destroy. */
  socket: Socket
}

/** Whether `data` holds a complete HTTP/1.1 response framed by Content-Length. */
function complete (data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n')
  if (end === -1) return false
  const length = /\r\ncontent-length: *(\d+)/i.exec(data.subarray(0, end).toString('latin1'))?.[1]
  return length !== undefined && data.length >= end + 4 + Number(length)
}

/**
 * Writes `chunks` to a fresh TCP connection (a chunk that is a number waits that many ms) and
 * collects the answer until it is complete, the server closes the socket, or `waitMs` runs out.
 * The socket is then destroyed, as a client that got its answer would, unless `keepOpen`.
 */
export function rawRequest (port: number, chunks: Array<string | Buffer | number>, waitMs = 5_000, keepOpen = false): Promise<RawResponse> {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = connect({ port, host: '127.0.0.1' })
    let received = Buffer.alloc(0)
    let done = false
    const finish = (after: number | undefined) => {
      if (done) return
      done = true
      clearTimeout(timer)
      if (!keepOpen) socket.destroy()
      const text = received.toString('latin1')
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]
      resolve({ text, status: status === undefined ? undefined : Number(status), after, socket })
    }
    const timer = setTimeout(() => finish(undefined), waitMs)
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      if (complete(received)) finish(Date.now() - started)
    })
    socket.on('error', () => {})
    socket.on('close', () => finish(Date.now() - started))
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        if (socket.destroyed || done) return
        if (typeof chunk === 'number') await new Promise((resolveWait) => setTimeout(resolveWait, chunk))
        else socket.write(chunk)
      }
    })
  })
}

/** The JSON body of a raw HTTP/1.1 response (Content-Length framed). */
export function bodyOf (response: RawResponse): unknown {
  const at = response.text.indexOf('\r\n\r\n')
  return JSON.parse(response.text.slice(at + 4))
}
