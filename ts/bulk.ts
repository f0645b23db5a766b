/**
 * `pushMany`, the bulk append: rows from an iterable are read and checked into staging columns,
 * columns are read and checked as given, and then all of them are appended at once, with one
 * growth and one copy (or one write through the file) per column. All or nothing: reading may
 * run user code (iterators, getters, array-likes, Proxies), so nothing about the vec is read or
 * written until all of it has run, and each value is read once.
 */
import type { TypedArray as NativeTypedArray } from '../native/binding.js'
import { callNative, invalid } from './errors.js'
import type { VecInternals } from './internals.js'
import { copyChecked, schemaChanged, valueError } from './rows.js'
import { ARRAY_TYPES, type AnyColumn, type ColumnSpec } from './schema.js'

/** A `pushMany` column this large or larger is written through the file (see {@link pushColumns}). */
const DIRECT_WRITE_BYTES = 64 * 1024

// TypedArray's own accessors, called directly: a Proxy, a subclass or an own property cannot
// stand in for them, so they tell a real TypedArray and its real length.
const TypedArrayPrototype = Object.getPrototypeOf(Int8Array.prototype) as object
// eslint-disable-next-line @typescript-eslint/unbound-method -- unbound on purpose: always called with .call(a)
const accessor = (name: PropertyKey) => Object.getOwnPropertyDescriptor(TypedArrayPrototype, name)!.get!
const tagOf = accessor(Symbol.toStringTag) as (this: unknown) => string | undefined
const lengthOf = accessor('length') as (this: ArrayBufferView) => number
const bufferOf = accessor('buffer') as (this: ArrayBufferView) => ArrayBufferLike
const sliceOf = (TypedArrayPrototype as { slice: (this: ArrayBufferView, start: number, end: number) => unknown }).slice

/** Whether a real TypedArray can be read: false when its buffer was detached, or shrunk under it. */
function readable(a: ArrayBufferView): boolean {
  try {
    // slice validates the array first (detached, or out of bounds of a resized buffer).
    sliceOf.call(a, 0, 0)
    return true
  } catch {
    return false
  }
}

/** The TypedArray's type name ('Float32Array'...), or undefined for anything else. */
function typedArrayKind(a: unknown): string | undefined {
  return typeof a === 'object' && a !== null ? tagOf.call(a) : undefined
}

function typedArrayLength(a: ArrayBufferView): number {
  return lengthOf.call(a)
}

function zeroOrOne(a: Uint8Array): boolean {
  for (let j = 0; j < a.length; j++) if (a[j] > 1) return false
  return true
}

/** The body of `MmapVec.pushMany`: rows (any iterable), or an object of columns. */
export function pushMany(vec: VecInternals, input: unknown): number {
  vec._writable()
  if (input === null || typeof input !== 'object') {
    throw invalid(`${vec._path}: pushMany takes an iterable of rows or an object of columns`, vec._path)
  }
  if (vec._spec.scalar && ArrayBuffer.isView(input)) return pushColumns(vec, { value: input })
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    // Every row is read and checked into staging columns first, then all are appended at
    // once: the iterator (and the rows' getters) may run any code, including calls on this
    // vec, and none of it can see, mix or lose half-pushed rows. All or nothing.
    const spec = vec._spec
    const cols = spec.columns
    let cap = 64
    let staged = cols.map((c) => new ARRAY_TYPES[c.type](cap * c.count))
    let n = 0
    for (const row of input as Iterable<unknown>) {
      if (n === cap) {
        cap *= 2
        staged = staged.map((a, k) => {
          const b = new ARRAY_TYPES[cols[k].type](cap * cols[k].count)
          ;(b as Uint8Array).set(a as Uint8Array)
          return b
        })
      }
      vec._stageRow(row, staged, n)
      n++
    }
    vec._writable()
    if (vec._spec !== spec) throw schemaChanged(vec)
    return pushColumns(vec, Object.fromEntries(cols.map((c, k) => [c.name, staged[k].subarray(0, n * c.count)])))
  }
  if (vec._spec.scalar) throw invalid(`${vec._path}: pushMany on a vec of plain values takes an iterable or a TypedArray`, vec._path)
  return pushColumns(vec, input as Record<string, unknown>)
}

/** The columns read from a `pushMany` input, and what they were. */
interface ReadColumns {
  /** Each column's values, in schema order: the TypedArray given, or a checked copy. */
  src: AnyColumn[]
  /** Whether `src[k]` is the TypedArray given (its length is checked again once all user code ran). */
  given: boolean[]
  rows: number
}

/** Reads and checks every column of `input` (user code may run), copying those not given as TypedArrays. */
function readColumns(vec: VecInternals, cols: readonly ColumnSpec[], input: Record<string, unknown>): ReadColumns {
  let rows = -1
  const src: AnyColumn[] = []
  const given: boolean[] = []
  for (const [k, c] of cols.entries()) {
    const a = input[c.name]
    const field = vec._spec.scalar ? 'values' : `column '${c.name}'`
    const kind = typedArrayKind(a)
    const ragged = (len: number) => invalid(`${vec._path}: pushMany: ${field} has ${len} values, not a multiple of its width ${c.count}`, vec._path)
    let len: number
    if (kind !== undefined) {
      // A TypedArray: its elements are read without running any code. Numbers go into
      // number columns (converted as TypedArray.set does), bigints into i64/u64 columns,
      // and a bool column takes a Uint8Array of 0 and 1 (what `columns` gives for it).
      const ok = c.type === 'bool' ? kind === 'Uint8Array' : (c.type === 'i64' || c.type === 'u64') === kind.startsWith('Big')
      if (!ok) throw valueError(vec, k, a)
      len = typedArrayLength(a as ArrayBufferView)
      src.push(a as AnyColumn)
      given.push(true)
    } else {
      if (a === null || typeof a !== 'object' || typeof (a as ArrayLike<unknown>).length !== 'number') {
        throw invalid(`${vec._path}: pushMany: ${field} is missing or not an array`, vec._path)
      }
      len = (a as ArrayLike<unknown>).length
      if (!Number.isSafeInteger(len) || len < 0) throw invalid(`${vec._path}: pushMany: ${field} has a length of ${len}, not a whole number`, vec._path)
      // Checked before the copy, which runs the array-like's getters.
      if (len % c.count !== 0) throw ragged(len)
      const copy = new ARRAY_TYPES[c.type](len)
      if (!copyChecked(a as ArrayLike<unknown>, len, c.type, copy)) throw valueError(vec, k, a)
      src.push(copy)
      given.push(false)
    }
    if (len % c.count !== 0) throw ragged(len)
    const n = len / c.count
    if (rows >= 0 && n !== rows) {
      throw invalid(`${vec._path}: pushMany: ${field} has ${n} rows, the columns before it ${rows}`, vec._path)
    }
    rows = n
  }
  for (const name of Object.keys(input)) {
    if (!cols.some((c) => c.name === name)) throw invalid(`${vec._path}: pushMany: no field named '${name}'`, vec._path)
  }
  return { src, given, rows }
}

/**
 * Throws EINVAL for a TypedArray given that user code run after it was checked detached,
 * resized, or (a bool column's Uint8Array) that holds a byte other than 0 and 1.
 */
function checkGiven(vec: VecInternals, cols: readonly ColumnSpec[], { src, given, rows }: ReadColumns): void {
  cols.forEach((c, k) => {
    if (given[k] && !readable(src[k])) {
      throw invalid(`${vec._path}: pushMany: ${vec._spec.scalar ? 'the values given are' : `column '${c.name}' is`} a TypedArray whose buffer was detached (transferred, or a view of this vec from before a growth) or shrunk under it; pass a live copy (slice())`, vec._path)
    }
    if (given[k] && typedArrayLength(src[k]) !== rows * c.count) {
      throw invalid(`${vec._path}: pushMany: column '${c.name}' was detached or resized while the columns were read; pass columns nothing else changes`, vec._path)
    }
    if (given[k] && c.type === 'bool' && !zeroOrOne(src[k] as Uint8Array)) {
      throw invalid(`${vec._path}: pushMany: ${vec._spec.scalar ? 'values' : `column '${c.name}'`} is a Uint8Array for a bool field, so every byte must be 0 or 1`, vec._path)
    }
  })
}

/**
 * The bulk path of `pushMany`: reads and checks every column, then copies each at once (large
 * ones through the file, where the columns are the file's pages).
 */
export function pushColumns(vec: VecInternals, input: Record<string, unknown>): number {
  const spec = vec._spec
  const cols = spec.columns
  const read = readColumns(vec, cols, input)
  const { src, given, rows } = read
  // No user code runs from here on. It may have closed the vec, changed its schema, or
  // detached a TypedArray checked before it (a transfer in a later getter).
  vec._writable()
  if (vec._spec !== spec) throw schemaChanged(vec)
  checkGiven(vec, cols, read)
  const start = vec._len
  const grows = start + rows > vec._cap
  // A column given as a view of this vec (`v.columns.x.subarray(...)`) would be detached by
  // the growth (buffered mode replaces every buffer, mmap mode a column that moves): copy it.
  const ours = grows ? new Set<unknown>(vec._cols.map((d) => d.buffer)) : undefined
  for (const [k, a] of src.entries()) {
    if (ours !== undefined && given[k] && ours.has(bufferOf.call(a))) src[k] = (a as Float32Array).slice()
  }
  // Large columns of the column's own type go to the file directly (pwrite): a copy into the
  // mapping makes the kernel zero each fresh page before overwriting it, a write of whole
  // pages does not (docs/DESIGN.md). Buffered mode's columns are V8's memory, not the file's
  // (its storage does not write through).
  const direct = cols.map((c, k) => vec._storage.writesThrough && src[k] instanceof ARRAY_TYPES[c.type] && (src[k] as ArrayBufferView).byteLength >= DIRECT_WRITE_BYTES)
  if (grows) {
    vec._grow(start + rows, true, direct.some(Boolean))
    cols.forEach((c, k) => {
      // An older view of this vec's memory, detached by the growth: nothing is written yet.
      if (typedArrayLength(src[k]) !== rows * c.count) {
        throw invalid(`${vec._path}: pushMany: column '${c.name}' was a view of this vec that growing it detached; pass a copy (slice())`, vec._path)
      }
    })
  }
  cols.forEach((c, k) => {
    const a = src[k]
    if (direct[k]) {
      callNative(vec._path, () => vec._native.writeRows(vec._stored[k], start, a as unknown as NativeTypedArray))
    } else {
      ;(vec._cols[k] as { set(a: ArrayLike<unknown>, o: number): void }).set(a, start * c.count)
    }
  })
  vec._setLength(start + rows)
  return vec._len
}
