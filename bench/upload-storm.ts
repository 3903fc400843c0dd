// Run by bench/load.ts's uploadStorm in a process of its own: `uploaders` clients, each uploading a
// 5 MB image as an avatar again and again for `seconds`, honouring Retry-After on a 429 or 503 (as a
// well-behaved client does; the caps answer those). Prints a JSON summary on stdout.
import sharp from 'sharp'
import { prng } from './seed.js'

interface Storm { url: string, tokens: string[], uploaders: number, seconds: number }
const storm = JSON.parse(process.env.STORM ?? '') as Storm

/** A noise PNG just under the 5 MiB limit (noise does not compress): the server must decode it whole. */
async function bigImage (): Promise<Buffer> {
  for (let side = 1300; side > 600; side -= 20) {
    const random = prng(side)
    const pixels = Buffer.alloc(side * side * 3)
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.floor(random() * 256)
    const png = await sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer()
    if (png.length <= 5 * 1024 * 1024 - 64 * 1024) return png
  }
  throw new Error('could not make an image under the upload limit')
}

const image = await bigImage()
const statuses: Record<string, number> = {}
const count = (key: string) => { statuses[key] = (statuses[key] ?? 0) + 1 }
const started = Date.now()
const until = started + storm.seconds * 1000

async function uploader (i: number): Promise<void> {
  const token = storm.tokens[i % storm.tokens.length] as string
  while (Date.now() < until) {
    const form = new FormData()
    form.append('file', new Blob([image], { type: 'image/png' }), 'big.png')
    try {
      const res = await fetch(`${storm.url}/users/me/avatar`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: form })
      await res.arrayBuffer()
      count(String(res.status))
      const wait = Number(res.headers.get('retry-after') ?? 0)
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 5) * 1000))
    } catch {
      count('error')
    }
  }
}

await Promise.all(Array.from({ length: storm.uploaders }, (_, i) => uploader(i)))
const seconds = (Date.now() - started) / 1000
process.stdout.write(JSON.stringify({ statuses, storedPerSecond: (statuses['200'] ?? 0) / seconds, imageMiB: image.length / 1024 / 1024 }))
