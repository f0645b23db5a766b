/**
 * Buffered mode keeps rows in memory V8 allocated until they are written back to the files.
 * A vec collected without `close`, or still open when the process exits normally, is written
 * back here, so that buffered mode loses rows only in a crash, as its documentation says (mmap
 * mode loses nothing then either: its rows are already in the page cache).
 */
import type { NativeVec } from '../native/binding.js'
import type { AnyColumn } from './schema.js'

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
  /** The row count, at index 0. */
  hdr: Float64Array
}

/** Copies every row and the row count into the mapped files (compared page by page natively). */
export function writeBack(s: BufferedState): void {
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

/** Writes `s` back when `owner` (its vec) is collected unclosed, or at a normal process exit. */
export function track(owner: object, s: BufferedState): void {
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

/** The vec was closed: nothing is left to write back. */
export function untrack(s: BufferedState): void {
  live.delete(s)
  registry.unregister(s)
}
