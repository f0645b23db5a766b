/**
 * Overlay mode (opt-in, experimental): each column is a WebAssembly memory that V8 allocated,
 * with the column's file mapped over it, so the views are the files' pages with no copy and no
 * external buffer (for Electron's V8 memory cage). The memories are replaced, and the views
 * emptied, on every growth; a column holds at most 4 GiB. Otherwise as mmap mode (mapped.ts).
 */
import { constants as bufferConstants } from 'node:buffer'
import type { NativeVec } from '../../native/binding.js'
import { callNative } from '../errors.js'
import type { VecInternals } from '../internals.js'
import { MappedStorage } from './mapped.js'
import { isMarkedAsUntransferable } from './marks.js'

/** A WebAssembly memory holds at most 4 GiB (65,536 pages); a column's pages stay within it. */
const OVERLAY_MAX_BYTES = 2 ** 32 - 2 ** 16

/** mmap mode's storage, but for where the views come from (and a failed shrink closing the vec). */
export class OverlayStorage extends MappedStorage {
  override readonly mode = 'overlay'
  override readonly maxViewBytes = Math.min(bufferConstants.MAX_LENGTH, OVERLAY_MAX_BYTES)
  override readonly viewLimitFix = "a WebAssembly memory holds at most 4 GiB: open it with mode 'mmap' or 'buffered', or split the data"

  override readonly pack = false

  override opened(native: NativeVec): void {
    // Growing a memory whose buffer Node 24 marked untransferable aborts: the addon asks first.
    if (typeof isMarkedAsUntransferable === 'function') native.askMarks(isMarkedAsUntransferable)
  }

  override shrinkToFit(vec: VecInternals): void {
    try {
      this.refresh(vec, callNative(vec._path, () => vec._native.shrinkToFit()), true)
    } catch (e) {
      // The shrink went through but no new memories could be made: the native vec closed
      // itself (the old memories mapped pages the files no longer have), and so does this one.
      if (!vec._native.isOpen()) vec.close({ flush: false })
      throw e
    }
  }
}
