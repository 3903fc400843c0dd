import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import sharp from 'sharp'
import type { Database, UserRow } from '../db/index.js'
import { errors } from './errors.js'
import { concurrencyLimit } from './limit.js'
import { setAvatar } from './users.js'

export const AVATAR_SIZE = 256
/** Width × height of the upload; a larger image (a decompression bomb) is refused before decoding. */
export const AVATAR_MAX_PIXELS = 50_000_000
/** The only names ever stored or served: random, so a URL can be cached forever. */
export const AVATAR_FILE = /^[0-9a-f]{32}\.webp$/

export interface Logger { warn: (obj: object, msg: string) => void }

type Format = 'jpeg' | 'png' | 'webp' | 'gif'

/** The format by the file's first bytes, whatever its name or declared type said. */
function sniff (b: Buffer): Format | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg'
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png'
  if (b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp'
  const gif = b.toString('latin1', 0, 6)
  if (gif === 'GIF87a' || gif === 'GIF89a') return 'gif'
  return undefined
}


// sharp decodes and encodes on libuv's thread pool, never on the event loop. The pool (4 threads by
// default) also runs argon2 and fs, so at most two images are processed at a time; others wait their turn.
const limited = concurrencyLimit(2)

/** Images being decoded and re-encoded, and waiting for their turn, in this process (the metrics' gauges). */
export const imageProcessingLoad = limited.load

/**
 * Turns an upload into the stored avatar: oriented upright, cropped to a centred square, resized,
 * re-encoded as WebP with no metadata (EXIF, GPS, ICC all dropped). Bad input is always a 4xx.
 */
export async function processAvatar (upload: Buffer): Promise<Buffer> {
  const format = sniff(upload)
  // Only bytes that start like one of the four formats reach libvips at all (no SVG, TIFF, HEIF...).
  if (format === undefined) throw errors.imageTypeUnsupported()
  const refuse = (err: Error): never => {
    throw /pixel limit/.test(err.message) ? errors.imageTooManyPixels(AVATAR_MAX_PIXELS / 1e6) : errors.imageUnreadable()
  }
  return limited(async () => {
    // 'error' refuses truncated and corrupt data; only the first frame of an animation is read.
    const image = sharp(upload, { limitInputPixels: AVATAR_MAX_PIXELS, failOn: 'error', autoOrient: true })
    const { format: decodedAs } = await image.metadata().catch(refuse)
    // The loader libvips picked must agree with the magic bytes. It always has (its JPEG, PNG, GIF and
    // WebP loaders take precedence on these signatures); the check keeps that an invariant, not a hope.
    /* c8 ignore next */
    if (decodedAs !== format) throw errors.imageTypeUnsupported()
    return image.resize(AVATAR_SIZE, AVATAR_SIZE, { fit: 'cover' }).webp({ quality: 82 }).toBuffer().catch(refuse)
  })
}

/** Makes a directory entry (a rename or an unlink) durable, as SQLite's synchronous=FULL does for rows. */
async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes the image under a fresh random name: a temporary file first, flushed, then renamed. */
async function writeAvatarFile (dir: string, image: Buffer): Promise<string> {
  const name = `${randomBytes(16).toString('hex')}.webp`
  // A dot file: never served, and never mistaken for an avatar while it is being written.
  const temp = join(dir, `.${name}.tmp`)
  try {
    const handle = await open(temp, 'wx', 0o644)
    try {
      await handle.writeFile(image)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, join(dir, name))
    await syncDir(dir)
    return name
  } catch (err) {
    await Promise.all([rm(temp, { force: true }), rm(join(dir, name), { force: true })])
    throw err
  }
}

/** Removes a stored avatar. A failure leaves an orphan file and a warning, never a broken avatar. */
export async function removeAvatarFile (dir: string, name: string | null, log: Logger): Promise<void> {
  // Only names this module made: a value in the database can never point the unlink elsewhere.
  if (name === null || !AVATAR_FILE.test(name)) return
  try {
    await rm(join(dir, name), { force: true })
  } catch (err) {
    log.warn({ err, file: name }, 'could not remove an avatar file')
  }
}

/**
 * Stores a new avatar for the user. The file is complete on disk before the row points at it, and the
 * previous file is removed only once the row is committed: any failure keeps the old avatar, no orphan.
 */
export async function replaceAvatar (db: Database, dir: string, userId: number, upload: Buffer, log: Logger): Promise<UserRow> {
  const image = await processAvatar(upload)
  const name = await writeAvatarFile(dir, image)
  let change: Awaited<ReturnType<typeof setAvatar>>
  try {
    change = await setAvatar(db, userId, name)
  } catch (err) {
    await removeAvatarFile(dir, name, log)
    throw err
  }
  await removeAvatarFile(dir, change.previous, log)
  return change.user
}

/** Clears the user's avatar; the file goes once the row no longer names it. */
export async function clearAvatar (db: Database, dir: string, userId: number, log: Logger): Promise<UserRow> {
  const change = await setAvatar(db, userId, null)
  await removeAvatarFile(dir, change.previous, log)
  return change.user
}
