/**
 * Buffered mode keeps rows in memory V8 allocated until they are written back to the files.
 * A vec collected without `close`, or still open when the process exits normally, is written
 * back here, so that buffered mode loses rows only in a crash, as its documentation says (mmap
 * mode loses nothing then either: its rows are already in the page cache).
 */
import { markAsUntransferable } from 'node:worker_threads'
import { detachBuffer, type NativeVec } from '../native/binding.js'
import { MmapVecError } from './errors.js'
import { marksBlockDetaching } from './marks.js'
import { ARRAY_TYPES, type AnyColumn, type ScalarType } from './schema.js'

/**
 * Whether column buffers are marked untransferable, as Node itself marks the external buffers
 * of mmap mode: a `structuredClone` or `postMessage` with the buffer in its transfer list then
 * copies it (Node 20) or throws (Node 22 and later) instead of taking the rows away. Where the
 * mark also keeps this module from detaching its own buffers ({@link marksBlockDetaching}),
 * they stay unmarked, and a transfer is caught at the next write-back instead
 * ({@link checkBuffers}).
 */
const marking = !marksBlockDetaching

/** A new zeroed column of `n` values in memory V8 allocates (marked; see {@link marking}). */
export function newColumn(type: ScalarType, n: number): AnyColumn {
  const a = new ARRAY_TYPES[type](n)
  if (marking) markAsUntransferable(a.buffer)
  return a
}

/** Empties every view of a column buffer this module made (a replaced or closed column). */
export function detachColumn(a: AnyColumn): void {
  if (isDetached(a)) return // transferred away by the program (see checkBuffers)
  try {
    if (marking) detachBuffer(a.buffer)
    else structuredClone(a.buffer, { transfer: [a.buffer] })
  } catch {
    // The program marked it untransferable itself (Node 24): the stale view keeps reading its
    // copy, which is V8's memory and never the file's.
  }
}

function isDetached(a: AnyColumn): boolean {
  return (a.buffer as { detached?: boolean }).detached === true
}

/**
 * Throws EINVAL when the program detached one of the vec's column buffers: a buffered column
 * transferred away (an unmarked buffer, see {@link marking}) took the rows written since the last
 * write-back with it; an mmap view detached with `ArrayBuffer.prototype.transfer` (Node 22 and
 * later let a program do that to an external buffer) dropped every write made through the vec to
 * it since. Checked before anything is written back or flushed, so the files keep what they had.
 */
export function checkBuffers(path: string, nameOf: (k: number) => string, cols: readonly AnyColumn[], buffered: boolean): void {
  const k = cols.findIndex(isDetached)
  if (k < 0) return
  const lost = buffered ? 'the rows written since the last flush left with it' : "every write the vec made to that column since was dropped"
  throw new MmapVecError(
    'EINVAL',
    `${path}: the buffer of column '${nameOf(k)}' was detached by the program (transferred with structuredClone, postMessage or ArrayBuffer.prototype.transfer), and ${lost}; nothing was written back or flushed, so the files keep what they had. Close the vec and open it again, and post copies (column.slice()) instead of a vec's buffers`,
    path,
  )
}

/** What writing a buffered vec back needs, held apart from the vec so that the vec can be collected. */
export interface BufferedState {
  native: NativeVec
  path: string
  /** Full-capacity columns, in schema order. */
  cols: AnyColumn[]
  /** Values per row of each column. */
  counts: number[]
  /** Stored column index of each column. */
  stored: number[]
  /** Each column's name, for errors. */
  names: string[]
  /** The row count, at index 0. */
  hdr: Float64Array
}

/** Copies every row and the row count into the mapped files (compared page by page natively). */
export function writeBack(s: BufferedState): void {
  checkBuffers(s.path, (k) => s.names[k], s.cols, true)
  const len = s.hdr[0]
  s.cols.forEach((a, k) => {
    s.native.writeColumn(s.stored[k], new Uint8Array(a.buffer, a.byteOffset, len * s.counts[k] * a.BYTES_PER_ELEMENT))
  })
  s.native.setLength(len)
}

const live = new Set<BufferedState>()
const registry = new FinalizationRegistry<BufferedState>((s) => {
  if (live.delete(s)) finish(s)
})
let exitHooked = false

function finish(s: BufferedState): void {
  try {
    writeBack(s)
  } catch (e) {
    process.emitWarning(`${s.path}: rows of a buffered vec that was not closed could not be written back: ${String(e)}`)
  } finally {
    s.native.close()
  }
}

/**
 * Writes `s` back when `owner` (its vec) is collected unclosed, at a normal process exit, or
 * when the thread's environment is torn down with it open (see {@link followTeardown}).
 */
export function track(owner: object, s: BufferedState): void {
  followTeardown(s)
  live.add(s)
  registry.register(owner, s, s)
  if (!exitHooked) {
    exitHooked = true
    process.on('exit', () => {
      for (const s of live) finish(s)
      live.clear()
    })
  }
}

/**
 * Tells the native side which buffers hold `s`'s rows now (call again whenever they change): a
 * worker thread terminated from outside (`worker.terminate()`, `process.exit()` in the main
 * thread) runs no JavaScript, not even its `exit` event, so the addon writes them back from an
 * environment cleanup hook instead.
 */
export function followTeardown(s: BufferedState): void {
  s.native.keepForTeardown(s.hdr, s.cols, s.stored)
}

/** The vec was closed: nothing is left to write back. */
export function untrack(s: BufferedState): void {
  live.delete(s)
  registry.unregister(s)
}
