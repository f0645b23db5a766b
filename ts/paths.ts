/**
 * Outputs that would land inside a vec: an export, an Arrow file or a new vec written into a
 * vec's own directory would overwrite its files (`export V --out V/header`) or clutter it.
 */
import { closeSync, openSync, readSync, realpathSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { MmapVecError } from './errors.js'
import { notUnicode } from './schema.js'

/** The first bytes of every vec's header file (docs/FORMAT.md). */
const MAGIC = Buffer.from('MMAPVEC\0', 'latin1')

/** Whether `dir` is a vec: a directory whose `header` starts with the format's magic. */
function isVec(dir: string): boolean {
  let fd: number | undefined
  try {
    // O_NONBLOCK: a FIFO put in place of a header must not hang this check.
    fd = openSync(join(dir, 'header'), 'r', 0o666)
    const b = Buffer.alloc(MAGIC.length)
    return readSync(fd, b, 0, b.length, 0) === b.length && b.equals(MAGIC)
  } catch {
    return false
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** The real path of `p`'s deepest existing ancestor (itself when it exists), joined with the rest. */
function realish(p: string): string {
  const abs = resolve(p)
  try {
    return realpathSync(abs)
  } catch {
    const up = dirname(abs)
    return up === abs ? abs : join(realish(up), basename(abs))
  }
}

/** The vec that `path` is, or lies inside (following symlinks), if any. */
export function enclosingVec(path: string): string | undefined {
  for (let dir = realish(path); ; dir = dirname(dir)) {
    if (isVec(dir)) return dir
    if (dirname(dir) === dir) return undefined
  }
}

/**
 * Throws EINVAL when `path` (an output: `what` names it) is a vec or lies inside one, before
 * anything is written. The message names `shown` (the output itself, when `path` is its parent).
 */
export function refuseInsideVec(path: string, what: string, shown = path): void {
  const vec = enclosingVec(path)
  if (vec === undefined) return
  const where = realish(path) === vec ? `is the vec ${vec}` : `is inside the vec ${vec}`
  throw new MmapVecError('EINVAL', `${shown}: ${what} ${where}, and writing there would overwrite or clutter the vec's own files; write it outside the vec's directory`, shown)
}

/**
 * Throws EINVAL for a file name the file system cannot take as given: a NUL byte (which would
 * end it early) or a lone surrogate (which has no UTF-8 form, so another name would be used).
 */
export function checkFileName(file: string, what: string): void {
  if (file.includes('\0')) throw new MmapVecError('EINVAL', `${JSON.stringify(file)}: ${what} cannot have a NUL byte in its name; remove it`, file)
  if (notUnicode(file)) throw new MmapVecError('EINVAL', `${JSON.stringify(file)}: ${what}'s name is not valid Unicode (a lone UTF-16 surrogate); use well-formed text`, file)
}
