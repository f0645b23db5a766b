/**
 * mmap mode, the default: the columns are views of the files' pages, so nothing is copied and
 * every write is in the page cache at once. The views come from the native layer; a large vec's
 * columns share one ArrayBuffer (packed), each at its own byte offset.
 */
import { constants as bufferConstants } from 'node:buffer'
import type { Layout, NativeVec } from '../../native/binding.js'
import { callNative } from '../errors.js'
import { setColumns, type VecInternals } from '../internals.js'
import { ARRAY_TYPES, type AnyColumn } from '../schema.js'
import type { Mode, Storage } from './storage.js'

/** A dropped write, for the message of a detached view (see `checkBuffers`). */
/** What lifts the runtime's largest ArrayBuffer: Node 20's is 4 GiB, later ones' far larger. */
export const VIEW_LIMIT_FIX = bufferConstants.MAX_LENGTH <= 2 ** 32 ? 'use Node 22 or newer, or split the data' : 'split the data'

const MAPPED_LOSES = 'every write the vec made to that column since was dropped'

/**
 * Views of the vec's columns, `capacity` rows each, over the native `buffers` (one per stored
 * column, shared when packed) from the byte `offsets` of the stored columns.
 */
export function viewsOver(vec: VecInternals, buffers: readonly ArrayBuffer[], offsets: readonly number[], capacity: number): AnyColumn[] {
  return vec._spec.columns.map((c, k) => new ARRAY_TYPES[c.type](buffers[vec._stored[k]], offsets[vec._stored[k]], capacity * c.count))
}

/** The view of the header's row count over `header` (the mapped header, or its overlay memory). */
export function rowCountView(layout: Layout): Float64Array {
  return new Float64Array(layout.header as ArrayBuffer, layout.lengthOffset, 1)
}

export class MappedStorage implements Storage<VecInternals> {
  readonly mode: Mode = 'mmap'
  // Node 20 cannot make an ArrayBuffer over native memory past 4 GiB; the capacity of a column
  // stays within what a view of it can show.
  readonly maxViewBytes: number = bufferConstants.MAX_LENGTH
  readonly viewLimitFix: string = VIEW_LIMIT_FIX
  // One ArrayBuffer for all columns of a large vec: V8 marks the heap for each new buffer that
  // adds 64 MiB of external memory (docs/DESIGN.md, "Packed columns").
  readonly pack: boolean = true
  readonly writesThrough = true
  readonly detachedLoses = MAPPED_LOSES

  opened(_native: NativeVec): void {}

  header(_vec: VecInternals, layout: Layout): Float64Array {
    return rowCountView(layout)
  }

  refresh(vec: VecInternals, layout: Layout, _fromFiles?: boolean): void {
    vec._cap = layout.capacity
    vec._limit = vec._readOnly ? -1 : vec._cap
    setColumns(vec, viewsOver(vec, layout.buffers, layout.offsets, vec._cap))
  }

  reread(): void {}

  attach(): void {}

  reshape(vec: VecInternals, _from: readonly number[], layout: Layout): void {
    // The header file was replaced: the row count must keep landing in the live one.
    vec._hdr = this.header(vec, layout)
    this.refresh(vec, layout, false)
  }

  prepare(): undefined {
    return undefined
  }

  writeBack(): void {}

  shrinkToFit(vec: VecInternals): void {
    this.refresh(vec, callNative(vec._path, () => vec._native.shrinkToFit()), true)
  }

  release(vec: VecInternals): void {
    vec._native.close()
  }
}
