/**
 * Overlay mode (opt-in, experimental): each column is a WebAssembly memory that V8 allocated,
 * with the column's file mapped over it, so the views are the files' pages with no copy and no
 * external buffer (for Electron's V8 memory cage). The memories are replaced, and the views
 * emptied, on every growth; a column holds at most 4 GiB. Otherwise as mmap mode (mapped.ts).
 */
import { constants as bufferConstants } from 'node:buffer'
import type { NativeVec } from '../../native/binding.js'
import { callNative } from '../errors.js'
import { setColumns, type VecInternals } from '../internals.js'
import { MappedStorage, rowCountView, viewsOver } from './mapped.js'
import { isMarkedAsUntransferable } from './marks.js'

/** A WebAssembly memory holds at most 4 GiB (65,536 pages); a column's pages stay within it. */
const OVERLAY_MAX_BYTES = 2 ** 32 - 2 ** 16

/** mmap mode's storage, but for where the views come from (and a failed shrink closing the vec). */
export class OverlayStorage extends MappedStorage {
  override readonly mode = 'overlay'
  override readonly maxViewBytes = Math.min(bufferConstants.MAX_LENGTH, OVERLAY_MAX_BYTES)
  override readonly pack = false

  override opened(native: NativeVec): void {
    // Growing a memory whose buffer Node 24 marked untransferable aborts: the addon asks first.
    if (typeof isMarkedAsUntransferable === 'function') native.askMarks(isMarkedAsUntransferable)
  }

  override header(vec: VecInternals): Float64Array {
    return rowCountView(vec, () => vec._native.overlayHeader())
  }

  override refresh(vec: VecInternals): void {
    // New views first: if a memory cannot be made, the old views, capacity and limit stay.
    const nv = vec._native
    const cap = nv.capacity
    const bufs = callNative(vec._path, () => nv.overlayColumns())
    // A memory starts at its file's start: each column's rows start at its offset in the file.
    const offsets = (JSON.parse(nv.schemaJson) as { columns: { offset: number }[] }).columns.map((c) => c.offset)
    const cols = viewsOver(vec, bufs, offsets, cap)
    vec._cap = cap
    vec._limit = vec._readOnly ? -1 : cap
    setColumns(vec, cols)
  }

  override shrinkToFit(vec: VecInternals): void {
    vec._cap = callNative(vec._path, () => vec._native.shrinkToFit())
    try {
      this.refresh(vec)
    } catch (e) {
      // The old memories are gone (they mapped pages the files no longer have) and no new ones
      // could be made; the rows are safe in the files, so the vec closes rather than keep views
      // whose writes would go nowhere.
      vec.close()
      throw e
    }
  }
}
