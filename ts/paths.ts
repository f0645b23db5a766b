/**
 * Paths given to the library: the checks of a vec's path and of a file name, outputs that would
 * land inside a vec (an export, an Arrow file or a new vec written into a vec's own directory
 * would overwrite its files, `export V --out V/header`, or clutter it), and how an output file
 * is written (beside it and renamed over it, or into a pipe or device as it is: replaceFile,
 * outputKind).
 */
import { randomBytes } from 'node:crypto'
import { closeSync, constants as fsConstants, fsyncSync, lstatSync, openSync, readSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { MmapVecError, fromSystemError, invalid } from './errors.js'
import { notUnicode, notUnicodeMessage } from './schema.js'

/** The first bytes of every vec's header file (docs/FORMAT.md). */
const MAGIC = Buffer.from('MMAPVEC\0', 'latin1')

/** Whether `dir` is a vec: a directory whose `header` starts with the format's magic. */
function isVec(dir: string): boolean {
  let fd: number | undefined
  try {
    const header = join(dir, 'header')
    // A vec's header is a regular file; anything else (a FIFO, a device) makes no vec, and
    // opening a FIFO would block. O_NONBLOCK too, for one swapped in after the lstat.
    if (!lstatSync(header).isFile()) return false
    fd = openSync(header, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
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

/**
 * Throws EINVAL unless `path` is a non-empty string the file system can take as given: no NUL
 * byte (which would end it early) and no lone surrogate (which has no UTF-8 form, so the core
 * would open a path with U+FFFD in its place).
 */
export function checkPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path === '') throw invalid(`path must be a non-empty string, got ${String(path)}`)
  if (path.includes('\0')) throw invalid(`${JSON.stringify(path)}: a path cannot hold a NUL byte; remove it`, path)
  if (notUnicode(path)) throw invalid(notUnicodeMessage('the path', path), path)
}

/**
 * A temporary name in `file`'s directory, for a file renamed over `file` when whole. Short and
 * not derived from `file`'s name, which may itself be up to NAME_MAX (255) bytes.
 */
export const tempBeside = (file: string): string => join(dirname(file), `.mmapvec-${process.pid}-${randomBytes(6).toString('hex')}.partial`)

/**
 * How an output is written: `replace` (a new file beside it, renamed over it when whole) for a
 * regular file or a new one; `into` for a named pipe, a device or a socket (`/dev/stdout`),
 * which the rename would replace by a regular file (as root, /dev/null itself). A directory is
 * EINVAL.
 */
export function outputKind(file: string): 'replace' | 'into' {
  let st
  try {
    st = statSync(file)
  } catch {
    return 'replace' // not there (or not reachable: creating the file beside it says why)
  }
  if (st.isDirectory()) throw invalid(`${file}: is a directory; give the path of a file to write`, file)
  return st.isFile() ? 'replace' : 'into'
}

/**
 * Writes `file` whole or not at all: `write` fills `tmp` (a new file beside it, from
 * {@link tempBeside}; `write` gets its descriptor), which is then synced, closed and renamed
 * over `file`. On failure `tmp` is removed, and an operating system error is named as that of
 * creating, writing or renaming `what` (see `fromSystemError`). With an async `write`, it
 * returns a Promise.
 */
export function replaceFile(file: string, tmp: string, what: string, write: (fd: number) => Promise<void>): Promise<void>
export function replaceFile(file: string, tmp: string, what: string, write: (fd: number) => void): void
export function replaceFile(file: string, tmp: string, what: string, write: (fd: number) => void | Promise<void>): void | Promise<void> {
  let fd: number | undefined
  let doing = `creating ${what}`
  const fail = (err: unknown): never => {
    try {
      if (fd !== undefined) closeSync(fd)
      rmSync(tmp, { force: true })
    } catch {
      // A failure to clean up must not hide the error that matters.
    }
    throw fromSystemError(err, file, doing)
  }
  const finish = (written: number): void => {
    try {
      fsyncSync(written)
      closeSync(written)
      fd = undefined
      doing = `renaming ${what} into place`
      renameSync(tmp, file)
    } catch (err) {
      fail(err)
    }
  }
  let writing: void | Promise<void>
  let opened: number
  try {
    opened = fd = openSync(tmp, 'wx')
    doing = `writing ${what}`
    writing = write(opened)
  } catch (err) {
    return fail(err)
  }
  if (writing instanceof Promise) return writing.then(() => finish(opened), fail)
  finish(opened)
}
