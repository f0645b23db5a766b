/**
 * How a vec's columns reach JavaScript: one interface, three implementations, one of which is
 * chosen when the vec opens (open.ts) and kept for its life:
 *
 * - `mapped.ts`, mode `'mmap'`: views of the files' pages (zero copy), packed into one
 *   ArrayBuffer for a large vec;
 * - `buffered.ts`, mode `'buffered'`: copies in memory V8 allocates, read from the files at open
 *   and written back on flush, autoFlush and close (Electron's V8 memory cage);
 * - `overlay.ts`, mode `'overlay'`: WebAssembly memories with the files mapped over them.
 *
 * The vec calls its storage at open, growth, shrink, schema change, flush and close. The hot
 * path (the generated `push`, `get`, `set`) never does: it reads the fields a storage sets
 * (`_c0`..., `_limit`, `_hdr`).
 */
import type { Layout, NativeVec } from '../../native/binding.js'
import { MmapVecError } from '../errors.js'
import type { AnyColumn } from '../schema.js'

/**
 * How a vec's columns reach JavaScript: `'mmap'` (views of the file's pages), `'buffered'`
 * (copies in memory V8 allocates, written back on flush and close) or `'overlay'` (WebAssembly
 * memories with the files mapped over them; experimental); see {@link OpenOptions.mode}.
 */
export type Mode = 'mmap' | 'buffered' | 'overlay'

/**
 * One vec's storage. `V` is the vec as its storage sees it (`VecInternals`, internals.ts): a
 * type parameter, so that this file, which internals.ts names, names nothing of the vec.
 */
export interface Storage<V> {
  /** What {@link MmapVec.mode} says. */
  readonly mode: Mode
  /** The largest column, in bytes, that one view can show in this mode (for the native open). */
  readonly maxViewBytes: number
  /** What a program can do about a column past {@link maxViewBytes}, for the message. */
  readonly viewLimitFix: string
  /** Whether the native open packs a large vec's columns into one ArrayBuffer. */
  readonly pack: boolean
  /**
   * Whether the columns are the files' own pages, so that `pushMany` may write a large column
   * through the file (pwrite) instead of copying it into the views.
   */
  readonly writesThrough: boolean
  /** What a column buffer the program detached took with it (see {@link checkBuffers}). */
  readonly detachedLoses: string
  /** Called once the native vec is open, before the vec is made over it. */
  opened(native: NativeVec): void
  /** The row count's view: an f64 at index 0, which the native side reads as the header's. */
  header(vec: V, layout: Layout): Float64Array
  /**
   * Takes new full-capacity views and the capacity from `layout`: at open, after a growth, and
   * after a shrink (`fromFiles`: the files hold the rows, the old views do not).
   */
  refresh(vec: V, layout: Layout, fromFiles: boolean): void
  /**
   * A reader's refresh that kept the views (only the row count changed): buffered mode copies
   * the rows from the files again; the others' views are the files' pages already.
   */
  reread(vec: V): void
  /** Called once the vec is made (its views taken). */
  attach(vec: V): void
  /**
   * After a schema change (the vec's schema, spec and stored order are the new ones): the new
   * views, `from[k]` being the old position of new column `k`, or -1 for a new column.
   */
  reshape(vec: V, from: readonly number[], layout: Layout, prepared: unknown): void
  /**
   * Before a schema change reaches the files: makes what the new schema (`spec`, `from` as for
   * {@link reshape}) needs in memory, handed to `reshape` as `prepared`; throws to refuse the
   * change while nothing has changed.
   */
  prepare(vec: V, spec: { columns: readonly { type: string; count: number; name: string }[] }, from: readonly number[]): unknown
  /** Puts every row and the row count in the files, before a flush, shrink, schema change or close. */
  writeBack(vec: V): void
  /** Gives back the files' space past the last row and takes the new views. */
  shrinkToFit(vec: V): void
  /** Closes the native vec and empties the views. */
  release(vec: V): void
}

/** Whether the column's buffer was detached (transferred, or emptied by mmapvec). */
export function isDetached(a: AnyColumn): boolean {
  return (a.buffer as { detached?: boolean }).detached === true
}

/**
 * Throws EINVAL when the program detached one of the vec's column buffers: a buffered column
 * transferred away (an unmarked buffer, see buffered.ts) took the rows written since the last
 * write-back with it; an mmap view detached with `ArrayBuffer.prototype.transfer` (Node 22 and
 * later let a program do that to an external buffer) dropped every write made through the vec
 * to it since (`lost` says which). Checked before anything is written back or flushed, so the
 * files keep what they had.
 */
export function checkBuffers(path: string, nameOf: (k: number) => string, cols: readonly AnyColumn[], lost: string): void {
  const k = cols.findIndex(isDetached)
  if (k < 0) return
  throw new MmapVecError(
    'EINVAL',
    `${path}: the buffer of column '${nameOf(k)}' was detached by the program (transferred with structuredClone, postMessage or ArrayBuffer.prototype.transfer), and ${lost}; nothing was written back or flushed, so the files keep what they had. Close the vec and open it again, and post copies (column.slice()) instead of a vec's buffers`,
    path,
  )
}
