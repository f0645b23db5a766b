/**
 * Buffered mode: the columns live in memory V8 allocated (where the runtime forbids views of
 * other memory: Electron's V8 memory cage), read from the files at open and copied back to them
 * (compared page by page natively, so unchanged pages stay clean) on flush, autoFlush, shrink,
 * schema change and close. It costs memory equal to the data.
 *
 * A vec collected without `close`, or still open when the process exits normally, is written
 * back here, so that buffered mode loses rows only in a crash, as its documentation says (mmap
 * mode loses nothing then either: its rows are already in the page cache).
 */
import { constants as bufferConstants } from 'node:buffer'
import { markAsUntransferable } from 'node:worker_threads'
import { detachBuffer, type Layout, type NativeVec } from '../../native/binding.js'
import { MmapVecError, callNative } from '../errors.js'
import { setColumns, type VecInternals } from '../internals.js'
import { ARRAY_TYPES, type AnyColumn, type ScalarType } from '../schema.js'
import { VIEW_LIMIT_FIX } from './mapped.js'
import { marksBlockDetaching } from './marks.js'
import { checkBuffers, isDetached, type Storage } from './storage.js'

/**
 * Whether column buffers are marked untransferable, as Node itself marks the external buffers
 * of mmap mode: a `structuredClone` or `postMessage` with the buffer in its transfer list then
 * copies it (Node 20) or throws (Node 22 and later) instead of taking the rows away. Where the
 * mark also keeps this module from detaching its own buffers ({@link marksBlockDetaching}),
 * they stay unmarked, and a transfer is caught at the next write-back instead
 * (`checkBuffers`).
 */
const marking = !marksBlockDetaching

/** A new zeroed column of `n` values in memory V8 allocates (marked; see {@link marking}). */
function newColumn(type: ScalarType, n: number): AnyColumn {
  const a = new ARRAY_TYPES[type](n)
  if (marking) markAsUntransferable(a.buffer)
  return a
}

/**
 * {@link newColumn}, with V8's failure to allocate it (the memory or the address space is
 * exhausted: buffered mode holds every row in memory) as an MmapVecError.
 */
function allocate(path: string, name: string, type: ScalarType, n: number): AnyColumn {
  try {
    return newColumn(type, n)
  } catch (e) {
    if (!(e instanceof RangeError)) throw e
    const bytes = n * ARRAY_TYPES[type].BYTES_PER_ELEMENT
    throw new MmapVecError(
      'EIO',
      `${path}: could not allocate ${bytes} bytes of memory for column '${name}' (${e.message}): buffered mode holds every row in memory; nothing was lost, and the vec keeps its rows and its capacity. Free memory or raise the process's limits, or reserve less at once`,
      path,
      { cause: e },
    )
  }
}

/** Empties every view of a column buffer this module made (a replaced or closed column). */
function detachColumn(a: AnyColumn): void {
  if (isDetached(a)) return // transferred away by the program (see checkBuffers)
  try {
    if (marking) detachBuffer(a.buffer)
    else structuredClone(a.buffer, { transfer: [a.buffer] })
  } catch {
    // The program marked it untransferable itself (Node 24): the stale view keeps reading its
    // copy, which is V8's memory and never the file's.
  }
}

/** What writing a buffered vec back needs, held apart from the vec so that the vec can be collected. */
interface BufferedState {
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

/** What a transferred column took with it, for the message of `checkBuffers`. */
const BUFFERED_LOSES = 'the rows written since the last flush left with it'

/** Copies every row and the row count into the mapped files (compared page by page natively). */
function writeRowsBack(s: BufferedState): void {
  checkBuffers(s.path, (k) => s.names[k], s.cols, BUFFERED_LOSES)
  const len = s.hdr[0]
  // One unit for readers beside the writer: a snapshot never holds half a write-back.
  s.native.beginUnit()
  try {
    s.cols.forEach((a, k) => {
      s.native.writeColumn(s.stored[k], new Uint8Array(a.buffer, a.byteOffset, len * s.counts[k] * a.BYTES_PER_ELEMENT))
    })
    s.native.setLength(len)
  } finally {
    s.native.endUnit()
  }
}

const live = new Set<BufferedState>()
const registry = new FinalizationRegistry<BufferedState>((s) => {
  if (live.delete(s)) finish(s)
})
let exitHooked = false

function finish(s: BufferedState): void {
  try {
    writeRowsBack(s)
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
function track(owner: object, s: BufferedState): void {
  followTeardown(s)
  live.add(s)
  registry.register(owner, s, s)
  if (!exitHooked) {
    exitHooked = true
    // Twice: first, before every listener of the program, even one added before this vec
    // opened (one that throws or calls process.exit ends the exit event there, and on the
    // main thread process.exit runs no environment cleanup hook either), and last, so that
    // rows a program's listener pushes are written back too. A listener added (or prepended)
    // later is put between the two once it is in place.
    process.prependListener('exit', atExit)
    process.on('exit', atExitLast)
    process.on('newListener', (event: string | symbol, listener: unknown) => {
      if (event === 'exit' && listener !== atExit && listener !== atExitLast) queueMicrotask(keepExitOrder)
    })
  }
}

/** Puts {@link atExit} first among the exit listeners again, and {@link atExitLast} last. */
function keepExitOrder(): void {
  const listeners = process.listeners('exit')
  if (listeners[0] !== atExit) {
    process.off('exit', atExit)
    process.prependListener('exit', atExit)
  }
  if (listeners[listeners.length - 1] !== atExitLast) {
    process.off('exit', atExitLast)
    process.on('exit', atExitLast)
  }
}

/**
 * Writes every open buffered vec back as the process exits. The vecs stay open (their lock is
 * the process's until it ends): an exit listener of the program that runs after this one may
 * still push and close.
 */
function atExit(): void {
  writeAllBack()
}

/** {@link atExit}, once more after the program's exit listeners. */
function atExitLast(): void {
  writeAllBack()
}

function writeAllBack(): void {
  for (const s of live) {
    try {
      writeRowsBack(s)
    } catch (e) {
      process.emitWarning(`${s.path}: rows of a buffered vec that was not closed could not be written back: ${String(e)}`)
    }
  }
}

/**
 * Tells the native side which buffers hold `s`'s rows now (call again whenever they change): a
 * worker thread terminated from outside (`worker.terminate()`, `process.exit()` in the main
 * thread) runs no JavaScript, not even its `exit` event, so the addon writes them back from an
 * environment cleanup hook instead.
 */
function followTeardown(s: BufferedState): void {
  s.native.keepForTeardown(s.hdr, s.cols, s.stored)
}

/** The vec was closed: nothing is left to write back. */
function untrack(s: BufferedState): void {
  live.delete(s)
  registry.unregister(s)
}

export class BufferedStorage implements Storage<VecInternals> {
  readonly mode = 'buffered'
  readonly maxViewBytes = bufferConstants.MAX_LENGTH
  readonly viewLimitFix = VIEW_LIMIT_FIX
  readonly pack = false
  // The columns are V8's memory, not the file's: pushMany copies into them.
  readonly writesThrough = false
  readonly detachedLoses = BUFFERED_LOSES
  /** What writing back needs (undefined when read-only, and once closed), kept apart from the vec so that the vec can be collected. */
  private writeBackState: BufferedState | undefined = undefined

  opened(): void {}

  header(_vec: VecInternals, layout: Layout): Float64Array {
    const hdr = new Float64Array(1)
    hdr[0] = layout.length
    return hdr
  }

  /**
   * New V8-allocated buffers, filled from the old ones after a growth, or from the files at
   * open and after a shrink (`fromFiles`).
   */
  refresh(vec: VecInternals, layout: Layout, fromFiles: boolean): void {
    const cap = layout.capacity
    const first = vec._cols.length === 0
    // Every new buffer first: when V8 cannot allocate one, the vec keeps its buffers, capacity
    // and limit (the files keep the room they grew by, for the next growth). After a shrink,
    // the old buffers still hold every row and more: they stay, with the files' capacity.
    let fresh: AnyColumn[]
    try {
      fresh = vec._spec.columns.map((c) => allocate(vec._path, c.name, c.type, cap * c.count))
    } catch (e) {
      if (first || cap > vec._cap) throw e
      vec._cap = cap
      vec._limit = vec._readOnly ? -1 : cap
      return
    }
    const old = vec._cols
    vec._spec.columns.forEach((c, k) => {
      const bytes = new Uint8Array(fresh[k].buffer)
      if (first || fromFiles) {
        // Only the rows: past the length the files hold nothing a vec reads, and a new
        // buffer is zero already (and costs no memory until written).
        const used = bytes.subarray(0, vec._len * c.count * fresh[k].BYTES_PER_ELEMENT)
        callNative(vec._path, () => vec._native.readColumn(vec._stored[k], used))
      } else {
        // Only the rows: copying the whole old capacity would touch (and fault in) every page
        // of it, rows or not.
        const rows = Math.min(vec._len * c.count * fresh[k].BYTES_PER_ELEMENT, old[k].byteLength, bytes.byteLength)
        bytes.set(new Uint8Array(old[k].buffer, old[k].byteOffset, rows))
      }
    })
    vec._cap = cap
    vec._limit = vec._readOnly ? -1 : cap
    setColumns(vec, fresh)
    // The new buffers are what a teardown writes back before the old ones go.
    this.follow(vec)
    // The old buffers are detached, as a moved mapping's views are: a stale view reads as
    // empty instead of silently missing every later change.
    if (!first) for (const a of old) detachColumn(a)
  }

  /** A reader copies the rows from the files again (the views stay). */
  reread(vec: VecInternals): void {
    vec._spec.columns.forEach((c, k) => {
      const a = vec._cols[k]
      const rows = new Uint8Array(a.buffer, a.byteOffset, Math.min(vec._len * c.count, a.length) * a.BYTES_PER_ELEMENT)
      callNative(vec._path, () => vec._native.readColumn(vec._stored[k], rows))
    })
  }

  /** A read-write vec is written back when it is collected unclosed or the process exits. */
  attach(vec: VecInternals): void {
    if (vec._readOnly) return
    this.writeBackState = {
      native: vec._native,
      path: vec._path,
      cols: vec._cols,
      counts: vec._spec.columns.map((c) => c.count),
      stored: vec._stored,
      names: vec._spec.columns.map((c) => c.name),
      hdr: vec._hdr,
    }
    track(vec, this.writeBackState)
  }

  /** The new columns' buffers (capacity rows of zeros), by new position. */
  prepare(vec: VecInternals, spec: { columns: readonly { type: string; count: number; name: string }[] }, from: readonly number[]): (AnyColumn | undefined)[] {
    return spec.columns.map((c, k) => (from[k] >= 0 ? undefined : allocate(vec._path, c.name, c.type as ScalarType, vec._cap * c.count)))
  }

  reshape(vec: VecInternals, from: readonly number[], _layout: Layout, prepared: unknown): void {
    // The capacity is unchanged: kept columns keep their buffers, a new one is the zeroed
    // buffer `prepare` made.
    const old = vec._cols
    const fresh = prepared as (AnyColumn | undefined)[]
    setColumns(
      vec,
      vec._spec.columns.map((c, k) => (from[k] >= 0 ? old[from[k]] : (fresh[k] ?? allocate(vec._path, c.name, c.type, vec._cap * c.count)))),
    )
    this.follow(vec)
    old.forEach((a, j) => {
      if (!from.includes(j)) detachColumn(a)
    })
  }

  writeBack(vec: VecInternals): void {
    const s = this.writeBackState
    if (s !== undefined) callNative(vec._path, () => writeRowsBack(s))
  }

  shrinkToFit(vec: VecInternals): void {
    this.writeBack(vec)
    this.refresh(vec, callNative(vec._path, () => vec._native.shrinkToFit()), true)
  }

  release(vec: VecInternals): void {
    if (this.writeBackState !== undefined) untrack(this.writeBackState)
    this.writeBackState = undefined
    vec._native.close()
    for (const c of vec._cols) detachColumn(c)
  }

  /** What a write-back at collection, exit or teardown sees follows the vec's new views. */
  private follow(vec: VecInternals): void {
    const s = this.writeBackState
    if (s === undefined) return
    s.cols = vec._cols
    s.stored = vec._stored
    s.counts = vec._spec.columns.map((c) => c.count)
    s.names = vec._spec.columns.map((c) => c.name)
    callNative(vec._path, () => followTeardown(s))
  }
}
