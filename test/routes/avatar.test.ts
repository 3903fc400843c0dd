import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { deflateSync, crc32 } from 'node:zlib'
import type { LightMyRequestResponse } from 'fastify'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import type { App } from '../../src/app.js'
import { UPLOADS_IN_ALL } from '../../routes/users/avatar.js'
import { build, injectWriteFailure, isCredentials401, isError, loginAs, PASSWORD, setActive, type TestUser, updateUserRow } from '../helper.js'
import { parseExposition, valueOf } from '../support/prometheus.js'

const MAX_BYTES = 5 * 1024 * 1024
const AVATAR_URL = /^\/avatars\/[0-9a-f]{32}\.webp$/

interface Part { name: string, filename?: string, type?: string, data: Buffer | string }

/** A multipart/form-data body built by hand, so a test controls every byte and header of it. */
function multipart (parts: Part[]) {
  const boundary = `----inkwell${randomBytes(8).toString('hex')}`
  const chunks: Buffer[] = []
  for (const p of parts) {
    const filename = p.filename === undefined ? '' : `; filename="${p.filename}"`
    const type = p.type === undefined ? '' : `Content-Type: ${p.type}\r\n`
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${filename}\r\n${type}\r\n`))
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data))
    chunks.push(Buffer.from('\r\n'))
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`))
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

function upload (app: App, auth: Record<string, string>, data: Buffer | string, file: Partial<Part> = {}) {
  const body = multipart([{ name: 'file', filename: 'avatar.bin', type: 'application/octet-stream', data, ...file }])
  return app.inject({ method: 'PUT', url: '/users/me/avatar', headers: { ...auth, ...body.headers }, payload: body.payload })
}

/**
 * An upload whose body arrives in two steps: all but its last bytes now, the rest on release(). While
 * held, it is in flight on the server, however fast the engine behind it answers the others.
 */
function heldUpload (app: App, auth: Record<string, string>, data: Buffer) {
  const body = multipart([{ name: 'file', filename: 'avatar.bin', type: 'application/octet-stream', data }])
  const stream = new PassThrough()
  stream.on('error', () => {}) // a refused request may have dropped its body already
  const cut = body.payload.length - 64
  stream.write(body.payload.subarray(0, cut))
  const response = app.inject({ method: 'PUT', url: '/users/me/avatar', headers: { ...auth, ...body.headers }, payload: stream })
  return { response, release: () => { stream.end(body.payload.subarray(cut)) } }
}

const removeAvatar = (app: App, auth: Record<string, string>) =>
  app.inject({ method: 'DELETE', url: '/users/me/avatar', headers: auth })
const me = async (app: App, user: TestUser) => (await app.inject({ url: '/users/me', headers: user.auth })).json()
/** Everything in UPLOADS_DIR, dot files (temporary files) included. */
const filesIn = (app: App) => readdirSync(app.uploadsDir).sort()
const fileOf = (url: string) => url.replace('/avatars/', '')

type Format = 'jpeg' | 'png' | 'webp' | 'gif'

/** A real image of that format, landscape so that the square crop has work to do. */
function image (format: Format, width = 640, height = 480): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 120, b: 40 } } }).toFormat(format).toBuffer()
}

/** A 1-bit PNG of width × height, all zeros: tens of kilobytes that decode to hundreds of megapixels. */
function pngBomb (width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const frame = Buffer.alloc(8 + data.length + 4)
    frame.writeUInt32BE(data.length, 0)
    body.copy(frame, 4)
    frame.writeUInt32BE(crc32(body), 8 + data.length)
    return frame
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 1 // bit depth 1, greyscale, deflate, no filter, no interlace
  const rows = Buffer.alloc((Math.ceil(width / 8) + 1) * height)
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(rows, { level: 9 })), chunk('IEND', Buffer.alloc(0))
  ])
}

/**
 * An upload that succeeded, checked where it lands: the answer is the caller's private view naming a
 * new random .webp, /users/me names the same file, the file is in UPLOADS_DIR and is a 256×256 WebP,
 * and GET avatar_url serves exactly those bytes. Returns avatar_url.
 */
async function stored (t: Test, app: App, user: TestUser, res: LightMyRequestResponse, what: string): Promise<string> {
  t.equal(res.statusCode, 200, `${what}: 200`)
  const body = res.json()
  t.equal(body.id, user.id, `${what}: the caller's own view`)
  t.equal(body.email, user.email, `${what}: the private one`)
  t.match(body.avatar_url, AVATAR_URL, `${what}: avatar_url names a random .webp`)
  t.equal((await me(app, user)).avatar_url, body.avatar_url, `${what}: the row names it`)
  const file = readFileSync(join(app.uploadsDir, fileOf(body.avatar_url)))
  t.match(await sharp(file).metadata(), { format: 'webp', width: 256, height: 256 }, `${what}: stored as a 256×256 WebP`)
  const served = await app.inject({ url: body.avatar_url })
  t.equal(served.statusCode, 200, `${what}: served`)
  t.ok(served.rawPayload.equals(file), `${what}: the stored bytes`)
  return body.avatar_url as string
}

const UNSUPPORTED = 'The file is not a JPEG, PNG, WebP or GIF image'
const UNREADABLE = 'The image is damaged or truncated and cannot be read'
const WRONG_PARTS = 'Send exactly one part: the file, in the field "file"'

t.test('each accepted format becomes a 256×256 WebP, served as an image with long-lived cache headers', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  t.same(filesIn(app), [], 'UPLOADS_DIR is created, empty')

  let previous: string | undefined
  for (const format of ['jpeg', 'png', 'webp', 'gif'] as const) {
    // Named and declared as something else: only the bytes count.
    const res = await upload(app, alice.auth, await image(format), { filename: 'photo.txt', type: 'text/plain' })
    t.equal(res.statusCode, 200, `${format}: 200`)
    const body = res.json()
    t.match(body.avatar_url, AVATAR_URL, `${format}: avatar_url names a random .webp`)
    t.equal(body.id, alice.id)
    t.equal(body.email, alice.email, `${format}: the private view`)
    t.equal((await me(app, alice)).avatar_url, body.avatar_url, `${format}: /users/me shows it`)
    t.same(filesIn(app), [fileOf(body.avatar_url)], `${format}: exactly one file, the new one (the old one is gone)`)

    const served = await app.inject({ url: body.avatar_url })
    t.equal(served.statusCode, 200, `${format}: GET avatar_url is 200`)
    t.equal(served.headers['content-type'], 'image/webp', `${format}: served as image/webp`)
    t.equal(served.headers['cache-control'], 'public, max-age=31536000, immutable', `${format}: cached for a year, immutable`)
    t.equal(served.headers['x-content-type-options'], 'nosniff')
    const stored = await sharp(served.rawPayload).metadata()
    t.match(stored, { format: 'webp', width: 256, height: 256 }, `${format}: stored at the fixed size, square`)

    if (previous !== undefined) {
      const gone = await app.inject({ url: previous })
      isError(t, gone, 404, 'Avatar not found', `${format}: the replaced avatar`, 'AVATAR_NOT_FOUND')
    }
    previous = body.avatar_url
  }

  const head = await app.inject({ method: 'HEAD', url: previous! })
  t.equal(head.statusCode, 200, 'HEAD works too')
  t.equal(head.headers['content-type'], 'image/webp')
})

t.test('what is not an acceptable image is a 415, and nothing is stored', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const kept = await stored(t, app, alice, await upload(app, alice.auth, await image('png')), 'the avatar to keep')
  const jpeg = await image('jpeg')
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'

  const cases: Array<[string, Buffer | string, Partial<Part>, string, string]> = [
    ['a text file', 'just some text\n', { filename: 'notes.txt', type: 'text/plain' }, UNSUPPORTED, 'UNSUPPORTED_IMAGE_TYPE'],
    ['a text file renamed .jpg', 'just some text\n', { filename: 'cat.jpg', type: 'image/jpeg' }, UNSUPPORTED, 'UNSUPPORTED_IMAGE_TYPE'],
    ['an SVG renamed .png', svg, { filename: 'logo.png', type: 'image/png' }, UNSUPPORTED, 'UNSUPPORTED_IMAGE_TYPE'],
    ['a TIFF', await image('tiff' as Format), { filename: 'scan.tiff', type: 'image/tiff' }, UNSUPPORTED, 'UNSUPPORTED_IMAGE_TYPE'],
    ['an empty file', Buffer.alloc(0), { filename: 'empty.png', type: 'image/png' }, UNSUPPORTED, 'UNSUPPORTED_IMAGE_TYPE'],
    ['JPEG magic bytes then junk', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), randomBytes(2000)]), {}, UNREADABLE, 'INVALID_IMAGE'],
    ['a truncated JPEG', jpeg.subarray(0, Math.floor(jpeg.length / 2)), { filename: 'cut.jpg', type: 'image/jpeg' }, UNREADABLE, 'INVALID_IMAGE'],
    ['a truncated PNG', (await image('png')).subarray(0, 300), {}, UNREADABLE, 'INVALID_IMAGE'],
    ['a truncated GIF', (await image('gif')).subarray(0, 300), {}, UNREADABLE, 'INVALID_IMAGE']
  ]
  for (const [what, data, file, message, code] of cases) {
    isError(t, await upload(app, alice.auth, data, file), 415, message, what, code)
  }

  const elsewhere = multipart([{ name: 'bio', data: 'hello' }])
  const patch = await app.inject({ method: 'PATCH', url: '/users/me', headers: { ...alice.auth, ...elsewhere.headers }, payload: elsewhere.payload })
  t.equal(patch.statusCode, 415, 'multipart is parsed on the avatar route only: elsewhere it stays a 415')

  const json = await app.inject({ method: 'PUT', url: '/users/me/avatar', headers: alice.auth, payload: { file: 'x' } })
  isError(t, json, 415, 'Send the file as multipart/form-data, in the field "file"', 'a JSON body', 'NOT_MULTIPART')

  t.equal((await me(app, alice)).avatar_url, kept, 'the previous avatar is kept')
  t.same(filesIn(app), [fileOf(kept)], 'no new file, no temporary file')
})

t.test('a multipart body of the wrong shape is a 400, never a 500', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const png = await image('png', 32, 32)
  const put = (body: { payload: Buffer, headers: Record<string, string> }) =>
    app.inject({ method: 'PUT', url: '/users/me/avatar', headers: { ...alice.auth, ...body.headers }, payload: body.payload })

  const shapes: Array<[string, Part[]]> = [
    ['another field name', [{ name: 'avatar', filename: 'a.png', data: png }]],
    ['a text field instead of a file', [{ name: 'file', data: 'not a file' }]],
    ['a text field before the file', [{ name: 'caption', data: 'hi' }, { name: 'file', filename: 'a.png', data: png }]],
    ['two files', [{ name: 'file', filename: 'a.png', data: png }, { name: 'file', filename: 'b.png', data: png }]],
    ['a __proto__ field', [{ name: '__proto__', filename: 'a.png', data: png }]],
    ['no part at all', []]
  ]
  for (const [what, parts] of shapes) {
    isError(t, await put(multipart(parts)), 400, WRONG_PARTS, what, 'INVALID_MULTIPART')
  }

  const cut = multipart([{ name: 'file', filename: 'a.png', data: png }])
  const truncated = await put({ payload: cut.payload.subarray(0, 150), headers: cut.headers })
  isError(t, truncated, 400, 'Malformed multipart/form-data body', 'a body cut short', 'MALFORMED_MULTIPART')
  const noBoundary = await put({ payload: cut.payload, headers: { 'content-type': 'multipart/form-data' } })
  isError(t, noBoundary, 400, 'Malformed multipart/form-data body', 'no boundary', 'MALFORMED_MULTIPART')
  t.same(filesIn(app), [], 'nothing stored')
})

t.test('the 5 MB limit is a 413, enforced while the file streams in', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const kept = await stored(t, app, alice, await upload(app, alice.auth, await image('jpeg')), 'the avatar to keep')
  const jpegStart = Buffer.from([0xff, 0xd8, 0xff, 0xe0])

  const over = Buffer.concat([jpegStart, Buffer.alloc(MAX_BYTES + 1 - jpegStart.length)])
  isError(t, await upload(app, alice.auth, over), 413, 'The file is larger than 5 MB', 'one byte over 5 MiB', 'FILE_TOO_LARGE')
  const big = Buffer.concat([jpegStart, randomBytes(8 * 1024 * 1024)])
  isError(t, await upload(app, alice.auth, big), 413, 'The file is larger than 5 MB', '8 MiB', 'FILE_TOO_LARGE')

  // Exactly at the limit the size is fine, and the content is judged (here: junk after a JPEG header).
  const atLimit = Buffer.concat([jpegStart, Buffer.alloc(MAX_BYTES - jpegStart.length)])
  isError(t, await upload(app, alice.auth, atLimit), 415, UNREADABLE, 'exactly 5 MiB is not a 413: the content is judged', 'INVALID_IMAGE')

  t.equal((await me(app, alice)).avatar_url, kept, 'the previous avatar is kept')
  t.same(filesIn(app), [fileOf(kept)], 'no new file')
})

t.test('over a real socket, the 413 comes while the client is still sending', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const boundary = 'inkwell-boundary'
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.jpg"\r\n` +
    'Content-Type: image/jpeg\r\n\r\n')
  const offered = 256 * 1024 * 1024
  let sent = 0
  const answer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = httpRequest({
      port,
      method: 'PUT',
      path: '/users/me/avatar',
      headers: { ...alice.auth, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': head.length + offered }
    })
    let answered = false
    req.on('response', (res) => {
      answered = true
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => {
        // Like curl, stop sending once the answer is in.
        req.destroy()
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
    req.on('error', (err) => { if (!answered) reject(err) })
    req.write(head)
    const chunk = Buffer.alloc(256 * 1024, 0x41)
    const pump = () => {
      while (!answered && sent < offered) {
        sent += chunk.length
        if (!req.write(chunk)) return req.once('drain', pump)
      }
    }
    pump()
  })
  t.equal(answer.status, 413)
  t.same(JSON.parse(answer.body), { statusCode: 413, error: 'Payload Too Large', message: 'The file is larger than 5 MB', code: 'FILE_TOO_LARGE' })
  t.ok(sent < 64 * 1024 * 1024, `answered after ${(sent / 1024 / 1024).toFixed(1)} MiB of the ${offered / 1024 / 1024} MiB offered`)
  t.same(filesIn(app), [], 'nothing stored')
})

t.test('a decompression bomb is refused before it is decoded', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const bomb = pngBomb(20_000, 20_000)
  t.ok(bomb.length < 100_000, `the bomb is small on the wire (${bomb.length} bytes for 400 megapixels)`)
  const started = Date.now()
  const res = await upload(app, alice.auth, bomb, { filename: 'bomb.png', type: 'image/png' })
  isError(t, res, 413, 'The image is too large: at most 50 megapixels (width × height)', '20000×20000 PNG', 'IMAGE_TOO_MANY_PIXELS')
  t.comment(`refused in ${Date.now() - started} ms`)
  isError(t, await upload(app, alice.auth, pngBomb(100_000, 600)), 413, 'The image is too large: at most 50 megapixels (width × height)', '100000×600 PNG', 'IMAGE_TOO_MANY_PIXELS')
  t.same(filesIn(app), [], 'nothing stored')

  await stored(t, app, alice, await upload(app, alice.auth, await image('png', 8000, 2)), 'an extreme but small strip is fine')
})

t.test('EXIF metadata, GPS included, does not survive; the orientation it carried is applied', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  // Left half red, right half blue, stored sideways: orientation 6 means "turn 90° clockwise to view".
  const width = 400
  const height = 200
  const pixels = Buffer.alloc(width * height * 3)
  for (let i = 0; i < width * height; i++) pixels.set(i % width < width / 2 ? [255, 0, 0] : [0, 0, 255], i * 3)
  const photo = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .withMetadata({ orientation: 6 })
    .withExif({
      IFD0: { Make: 'InkwellCam', Copyright: 'inkwell-exif-marker' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 0/1', GPSMapDatum: 'WGS-84-inkwell' }
    })
    .withIccProfile('p3')
    .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
    .jpeg().toBuffer()
  const input = await sharp(photo).metadata()
  t.equal(input.orientation, 6, 'the upload carries an orientation')
  t.ok(input.exif?.includes('WGS-84-inkwell') && input.exif.includes('inkwell-exif-marker'), 'the upload carries EXIF with GPS data')
  t.ok(input.icc !== undefined && input.xmp !== undefined, 'and an ICC profile and XMP')

  const url = await stored(t, app, alice, await upload(app, alice.auth, photo, { filename: 'IMG_0001.JPG', type: 'image/jpeg' }), 'the photo')
  const file = (await app.inject({ url })).rawPayload
  const meta = await sharp(file).metadata()
  t.equal(meta.exif, undefined, 'no EXIF in the stored file')
  t.equal(meta.xmp, undefined, 'no XMP')
  t.equal(meta.icc, undefined, 'no ICC profile')
  t.equal(meta.orientation, undefined, 'no orientation tag left')
  t.notOk(file.includes('WGS-84-inkwell') || file.includes('InkwellCam') || file.includes('Exif'), 'no trace of it in the bytes')

  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)]
  const [topR, , topB] = at(128, 10)
  const [bottomR, , bottomB] = at(128, 245)
  t.ok(topR! > 180 && topB! < 80, `turned upright: red on top (${at(128, 10)})`)
  t.ok(bottomB! > 180 && bottomR! < 80, `and blue below (${at(128, 245)})`)
})

t.test('a failure between writing the file and updating the row keeps the old avatar and leaves no orphan', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const old = await stored(t, app, alice, await upload(app, alice.auth, await image('png')), 'the first avatar')

  // The row update itself fails, inside the database, after the new file was written and renamed.
  const undo = await injectWriteFailure(app, 'users', 'UPDATE OF avatar')
  const res = await upload(app, alice.auth, await image('jpeg'))
  t.equal(res.statusCode, 500)
  t.same(res.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' }, 'nothing leaks')
  t.equal((await me(app, alice)).avatar_url, old, 'the row still names the old avatar')
  t.equal((await app.inject({ url: old })).statusCode, 200, 'the old avatar is still served')
  t.same(filesIn(app), [fileOf(old)], 'the new file is gone, and no temporary file is left')

  const removal = await removeAvatar(app, alice.auth)
  t.equal(removal.statusCode, 500, 'removing the avatar while the update fails: 500')
  t.same(filesIn(app), [fileOf(old)], 'a failed removal keeps the file')

  await undo()
  const next = await stored(t, app, alice, await upload(app, alice.auth, await image('jpeg')), 'with the failure gone, the upload works')
  t.same(filesIn(app), [fileOf(next)], 'and replaces the old file')
})

t.test('a failure writing the file keeps the old avatar; a failure removing the old file keeps the new one', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const old = await stored(t, app, alice, await upload(app, alice.auth, await image('png')), 'the first avatar')

  // UPLOADS_DIR disappears (a full or unmounted disk would do the same): the write fails before the row changes.
  renameSync(app.uploadsDir, `${app.uploadsDir}.away`)
  const failed = await upload(app, alice.auth, await image('jpeg'))
  t.equal(failed.statusCode, 500)
  t.same(failed.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  t.equal((await me(app, alice)).avatar_url, old, 'the row still names the old avatar')
  rmSync(app.uploadsDir, { recursive: true, force: true })
  renameSync(`${app.uploadsDir}.away`, app.uploadsDir)
  t.same(filesIn(app), [fileOf(old)], 'nothing else was written')
  t.equal((await app.inject({ url: old })).statusCode, 200, 'the old avatar is still served')

  // The old file cannot be removed (a non-empty directory stands in its place): the new avatar still counts.
  rmSync(join(app.uploadsDir, fileOf(old)))
  mkdirSync(join(app.uploadsDir, fileOf(old), 'stuck'), { recursive: true })
  const replaced = await stored(t, app, alice, await upload(app, alice.auth, await image('jpeg')), 'the upload succeeds, the new avatar in place')
  t.same(filesIn(app), [fileOf(old), fileOf(replaced)].sort(), 'the stuck old entry is left, an orphan')
})

/** inkwell_throttled_requests_total for one limit, read from the app's registry (no METRICS_TOKEN needed). */
async function refusals (app: App, limit: string): Promise<number | undefined> {
  return valueOf(parseExposition(await app.metrics.registry.metrics()), 'inkwell_throttled_requests_total', { limit })
}

t.test('uploads in flight are capped, per user and in all: past a cap 429 or 503 with Retry-After, and nothing stored', async (t) => {
  const app = await build(t)
  const users = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(() => loginAs(app)))
  const big = await sharp({ create: { width: 2000, height: 1500, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
    .jpeg().toBuffer()
  const retryAfter = (r: LightMyRequestResponse) => r.headers['retry-after'] === '1'

  // Eight uploads in flight together: each holds its last bytes until the cap has answered the rest
  // (a 503 comes before a body is read), so the cap is tested, not how fast the first ones finish.
  const held = users.map((u) => heldUpload(app, u.auth, big))
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if ((await refusals(app, 'avatar_uploads_in_all') ?? 0) >= users.length - UPLOADS_IN_ALL) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  for (const h of held) h.release()
  const storm = await Promise.all(held.map((h) => h.response))
  const ok = storm.filter((r) => r.statusCode === 200).length
  const busy = storm.filter((r) => r.statusCode === 503)
  for (const [i, r] of storm.entries()) if (r.statusCode === 200) await stored(t, app, users[i]!, r, `${users[i]!.username} in the storm`)
  for (const [i, r] of storm.entries()) if (r.statusCode === 503) t.equal((await me(app, users[i]!)).avatar_url, null, `${users[i]!.username}, refused: no avatar`)
  t.equal(ok + busy.length, users.length, `eight users at once: every answer a 200 or a 503 (${storm.map((r) => r.statusCode).join(',')})`)
  t.equal(ok, UPLOADS_IN_ALL, `${UPLOADS_IN_ALL} read at once, no more (${ok} succeeded)`)
  t.equal(busy.length, users.length - UPLOADS_IN_ALL, 'the rest are refused before their body is read')
  for (const r of busy) isError(t, r, 503, 'Too many uploads in progress; try again shortly', 'past the global cap', 'UPLOADS_BUSY')
  t.ok(busy.every(retryAfter), 'each with Retry-After: 1')
  t.equal(await refusals(app, 'avatar_uploads_in_all'), busy.length, 'each 503 counted in the metrics')

  // The same user racing against themselves: one at a time.
  const alice = users[0]!
  const race = await Promise.all([1, 2, 3].map(() => upload(app, alice.auth, big)))
  const won = race.filter((r) => r.statusCode === 200).length
  const refused = race.filter((r) => r.statusCode === 429)
  const current = (await me(app, alice)).avatar_url
  t.ok(race.some((r) => r.statusCode === 200 && r.json().avatar_url === current), 'alice\'s row names the file of an upload that went through')
  t.same(filesIn(app).filter((f) => f === fileOf(current)), [fileOf(current)], 'and that file is stored')
  t.equal(won + refused.length, 3, `a user's three parallel uploads: 200 or 429 (${race.map((r) => r.statusCode).join(',')})`)
  t.ok(won >= 1 && refused.length >= 1, 'one goes through, a parallel one is refused')
  for (const r of refused) isError(t, r, 429, 'An upload of yours is in progress; try again when it is done', 'past the per-user cap', 'UPLOAD_IN_PROGRESS')
  t.ok(refused.every(retryAfter), 'with Retry-After: 1')
  t.equal(await refusals(app, 'avatar_upload_per_user'), refused.length, 'each 429 counted in the metrics')

  // The slots come back: one after another, everyone gets through.
  const urls: string[] = []
  for (const u of users) urls.push(await stored(t, app, u, await upload(app, u.auth, big), `${u.username} uploads once the storm is over`))
  t.same(filesIn(app), urls.map(fileOf).sort(), 'one file per user, no orphan')
})

t.test('DELETE /users/me/avatar removes the file; so does deleting the account', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const url = await stored(t, app, alice, await upload(app, alice.auth, await image('webp')), 'alice\'s avatar')

  const res = await removeAvatar(app, alice.auth)
  t.equal(res.statusCode, 204)
  t.equal(res.body, '')
  t.equal((await me(app, alice)).avatar_url, null, 'avatar_url is null')
  t.equal((await app.inject({ url: `/users/${alice.id}` })).json().avatar_url, null, 'in the public view too')
  t.same(filesIn(app), [], 'the file is gone')
  t.equal((await app.inject({ url })).statusCode, 404, 'and no longer served')
  const updatedAt = (await app.inject({ url: '/admin/users', headers: (await loginAs(app, 'admin')).auth })).json()
    .items.find((u: { id: number }) => u.id === alice.id).updated_at
  t.equal((await removeAvatar(app, alice.auth)).statusCode, 204, 'idempotent')
  const after = (await app.inject({ url: '/admin/users', headers: (await loginAs(app, 'admin')).auth })).json()
    .items.find((u: { id: number }) => u.id === alice.id).updated_at
  t.equal(after, updatedAt, 'removing no avatar changes nothing')

  const bob = await loginAs(app)
  const bobAvatar = await stored(t, app, bob, await upload(app, bob.auth, await image('png')), 'bob\'s avatar')
  t.same(filesIn(app), [fileOf(bobAvatar)], 'the only file')
  t.equal((await app.inject({ method: 'DELETE', url: '/users/me', headers: bob.auth, payload: { password: PASSWORD } })).statusCode, 204)
  t.same(filesIn(app), [], 'deleting the account removes the file')

  const carol = await loginAs(app)
  const carolAvatar = await stored(t, app, carol, await upload(app, carol.auth, await image('gif')), 'carol\'s avatar')
  t.same(filesIn(app), [fileOf(carolAvatar)], 'the only file')
  const admin = await loginAs(app, 'admin')
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/users/${carol.id}`, headers: admin.auth })).statusCode, 204)
  t.same(filesIn(app), [], 'an admin deleting the account removes the file')
})

t.test('guards: anonymous is the one 401, an inactive account a 403, and neither stores anything', async (t) => {
  const app = await build(t)
  const png = await image('png', 64, 64)
  t.ok(isCredentials401(await upload(app, {}, png)), 'PUT anonymous: the one 401')
  t.ok(isCredentials401(await removeAvatar(app, {})), 'DELETE anonymous: the one 401')
  t.ok(isCredentials401(await upload(app, { authorization: 'Bearer nope' }, png)), 'PUT with a bad token: the one 401')

  const idle = await loginAs(app, 'user', { active: false })
  const inactive = { statusCode: 403, error: 'Forbidden', message: 'Inactive account', code: 'INACTIVE_ACCOUNT' }
  const put = await upload(app, idle.auth, png)
  t.equal(put.statusCode, 403)
  t.same(put.json(), inactive, 'PUT inactive: 403 Inactive account')
  const del = await removeAvatar(app, idle.auth)
  t.equal(del.statusCode, 403)
  t.same(del.json(), inactive, 'DELETE inactive: 403 Inactive account')
  t.same(filesIn(app), [], 'nothing stored')

  await setActive(app, idle.id, true)
  await stored(t, app, idle, await upload(app, idle.auth, png), 'reactivated: allowed')
})

t.test('post authors carry avatar_url', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  const url = (await upload(app, alice.auth, await image('jpeg'))).json().avatar_url
  const post = await app.inject({ method: 'POST', url: '/posts', headers: alice.auth, payload: { title: 'Hello', content: 'World' } })
  t.equal(post.statusCode, 201)
  t.equal(post.json().author.avatar_url, url, 'on the created post')
  t.equal((await app.inject({ url: `/posts/${post.json().id}` })).json().author.avatar_url, url, 'on GET /posts/{id}')
  t.equal((await app.inject({ url: '/posts' })).json().items[0].author.avatar_url, url, 'in the list')
  t.equal((await app.inject({ url: `/users/${alice.id}` })).json().avatar_url, url, 'on the public profile')
})

t.test('/avatars serves stored avatars only: no listing, no dot files, no way out of UPLOADS_DIR', async (t) => {
  const app = await build(t)
  const alice = await loginAs(app)
  await upload(app, alice.auth, await image('png'))
  writeFileSync(join(app.uploadsDir, '.0123456789abcdef0123456789abcdef.webp.tmp'), 'partial')
  writeFileSync(join(app.uploadsDir, 'notes.txt'), 'not an avatar')

  for (const url of [
    '/avatars/0123456789abcdef0123456789abcdef.webp',
    '/avatars/', '/avatars', '/avatars/notes.txt',
    '/avatars/.0123456789abcdef0123456789abcdef.webp.tmp',
    '/avatars/../inkwell.db', '/avatars/..%2finkwell.db', '/avatars/%2e%2e/inkwell.db', '/avatars/..%5cinkwell.db',
    '/avatars/%2e%2e%2f%2e%2e%2fetc%2fpasswd'
  ]) {
    const res = await app.inject({ url })
    t.ok(res.statusCode === 404 || res.statusCode === 403, `${url}: ${res.statusCode}`)
    t.match(res.json(), { statusCode: res.statusCode, error: String, message: String }, `${url}: in the error shape`)
    t.notOk(res.body.includes('SQLite') || res.body.includes('root:'), `${url}: nothing of the file`)
  }
  isError(t, await app.inject({ url: '/avatars/0123456789abcdef0123456789abcdef.webp' }), 404, 'Avatar not found', 'an unknown avatar', 'AVATAR_NOT_FOUND')
})

t.test('the OpenAPI document describes the upload', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/docs/json' })).json()
  const put = doc.paths['/users/me/avatar'].put
  t.equal(put.operationId, 'putMyAvatar')
  t.same(put.tags, ['users'])
  t.same(Object.keys(put.requestBody.content), ['multipart/form-data'])
  t.same(put.requestBody.content['multipart/form-data'].schema, { $ref: '#/components/schemas/AvatarUpload' })
  t.match(doc.components.schemas.AvatarUpload, { type: 'object', properties: { file: { type: 'string', format: 'binary' } } })
  t.same(Object.keys(put.responses).sort(), ['200', '400', '401', '403', '413', '415', '429', '503'])
  t.ok(put.security?.length, 'secured')
  const del = doc.paths['/users/me/avatar'].delete
  t.equal(del.operationId, 'deleteMyAvatar')
  t.same(Object.keys(del.responses).sort(), ['204', '401', '403'])
})

t.test('a hostile avatar name in the database never points a removal or a download outside the uploads folder', async (t) => {
  const app = await build(t)
  const user = await loginAs(app)
  const outside = join(app.uploadsDir, '..', 'precious.webp')
  mkdirSync(app.uploadsDir, { recursive: true })
  writeFileSync(outside, 'not an avatar')
  for (const hostile of ['../precious.webp', '/etc/passwd', '..%2Fprecious.webp', 'precious.webp']) {
    await updateUserRow(app, user.id, { avatar: hostile })
    t.equal((await app.inject({ method: 'DELETE', url: '/users/me/avatar', headers: user.auth })).statusCode, 204, `${hostile}: the removal answers 204`)
    t.ok(existsSync(outside), `${hostile}: the file outside the uploads folder is untouched`)
    t.equal((await app.inject({ url: '/users/me', headers: user.auth })).json().avatar_url, null, `${hostile}: the row no longer names it`)
  }
  t.equal((await app.inject({ url: '/avatars/..%2Fprecious.webp' })).statusCode, 404, 'and it is never served')
})
