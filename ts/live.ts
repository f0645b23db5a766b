/**
 * Live readers beside the writer (docs/DESIGN.md, "Live readers"): how the writer publishes its
 * row count for readers, in units of writes that a reader's snapshot never splits, and a
 * reader's refresh, snapshot and wait for the writer's next publish.
 *
 * The writer publishes through its live file's mapping with `Atomics` (mmap and overlay modes):
 * the sequence counter is odd while a unit is under way, and the published count is stored
 * inside it. Buffered mode publishes natively at each write-back, when the rows reach the
 * files; readers follow natively (acquire loads), so the order holds on ARM too.
 */
import type { Layout } from '../native/binding.js'
import { MmapVecError, callNative, invalid } from './errors.js'
import type { VecInternals } from './internals.js'
import { schemaOf, storedOrder, ARRAY_TYPES, type AnyColumn, type NormalizedSchema } from './schema.js'
import { specialise } from './codegen.js'
import { STORES_IN_ORDER } from './store-order.js'

/** How soon after a push the writer publishes it (pushes between are published together). */
const PUBLISH_MS = 1

/** How many times a snapshot copies again when the writer wrote during the copy. */
const SNAPSHOT_TRIES = 1000

/** What a vec publishes through: the live file's words, or stand-ins that reach no one. */
export interface LiveViews {
  live: Int32Array
  seqAt: number
  waitAt: number
  pub: Float64Array
  /** False for the stand-ins: nothing to publish, so pushes never schedule it. */
  real: boolean
}

/** The live file's views in `layout` (a writer in mmap or overlay mode), else stand-ins. */
export function liveViews(layout: Layout): LiveViews {
  const buf = layout.live
  if (buf === undefined) return { live: new Int32Array(32), seqAt: 16, waitAt: 17, pub: new Float64Array(1), real: false }
  return {
    live: new Int32Array(buf),
    seqAt: layout.liveSeqOffset / 4,
    waitAt: layout.liveWaitersOffset / 4,
    pub: new Float64Array(buf, layout.liveLengthOffset, 1),
    real: true,
  }
}

/** Whether units begin and end natively: a real live file on a CPU that reorders stores. */
export function nativeUnits(views: LiveViews): boolean {
  return views.real && !STORES_IN_ORDER
}

/** Begins a unit (the counter goes odd); the caller checked that none is under way. */
export function beginUnit(vec: VecInternals): void {
  if (vec._nativeUnits) callNative(vec._path, () => vec._native.beginUnit())
  else vec._live[vec._seqAt]++
}

/** Ends the unit under way (begun by `batch` or by `set`): publishes the count, wakes readers. */
export function endUnit(vec: VecInternals): void {
  if (vec._nativeUnits) {
    callNative(vec._path, () => vec._native.endUnit())
    return
  }
  const L = vec._live
  vec._pub[0] = vec._len
  // An exchange: the rows and the count are seen before the even counter, and the waiters'
  // count is read after it, so a reader that began to wait meanwhile is woken.
  Atomics.store(L, vec._seqAt, L[vec._seqAt] + 1)
  if (Atomics.load(L, vec._waitAt) !== 0) vec._native.wake()
}

/** Publishes the row count now, as a unit of its own (unless a batch is under way: its end will). */
export function publish(vec: VecInternals): void {
  if (vec._units !== 0 || vec._closed) return
  const L = vec._live
  const s = L[vec._seqAt]
  // Nothing new: the file stays as it is (a vec opened and closed changes no file).
  if (vec._pub[0] === vec._len && (s & 1) === 0) return
  if ((s & 1) === 0) beginUnit(vec)
  endUnit(vec)
}

function publishDue(vec: VecInternals): void {
  vec._pubDue = false
  if (vec._closed) return
  publish(vec)
  // A `set` outside a batch moved the counter without waking anyone.
  if (vec._units === 0 && Atomics.load(vec._live, vec._waitAt) !== 0) vec._native.wake()
}

/** Called by `push` and `set` when no publish is due yet: publishes within {@link PUBLISH_MS}. */
export function schedulePublish(vec: VecInternals): void {
  vec._pubDue = true
  setTimeout(publishDue, PUBLISH_MS, vec).unref()
}

/** `batch(fn)`: `fn`'s writes are one unit for readers. */
export function batch<T>(vec: VecInternals, fn: () => T): T {
  vec._writable()
  if (typeof fn !== 'function') throw invalid(`${vec._path}: batch takes a function, got ${String(fn)}`, vec._path)
  // Buffered mode's units are its write-backs (its rows reach the files only then); its
  // live views are stand-ins, so this only counts the depth there.
  if (vec._units === 0 && (vec._live[vec._seqAt] & 1) === 0) beginUnit(vec)
  vec._units++
  let result: T
  try {
    result = fn()
  } finally {
    vec._units--
    if (vec._units === 0 && !vec._closed) endUnit(vec)
  }
  if (result instanceof Promise) {
    throw invalid(`${vec._path}: batch runs its function synchronously, and this one returned a promise: the writes after its first await were outside the batch. Pass a function that does not await (one tick's writes)`, vec._path)
  }
  return result
}

/** `refresh()`: takes the writer's latest published state; true when anything changed. */
export function refresh(vec: VecInternals): boolean {
  vec._open()
  if (!vec._readOnly) return false
  const r = callNative(vec._path, () => vec._native.refresh())
  if (r === null) return false
  const layout = r.layout
  if (layout !== undefined && !sameColumns(vec._spec, layout)) {
    reshapeReader(vec, layout)
    return true
  }
  vec._len = smallInt(r.length)
  if (layout !== undefined) vec._storage.refresh(vec, layout, true)
  else vec._storage.reread(vec)
  vec._columnsCache = undefined
  return true
}

/** A length as a small integer where it fits (see the vec's constructor). */
function smallInt(n: number): number {
  return n <= 0x3fffffff ? n | 0 : n
}

/** Whether `layout` stores exactly `spec`'s columns (names, types, widths). */
function sameColumns(spec: NormalizedSchema, layout: Layout): boolean {
  return (
    layout.scalar === spec.scalar &&
    layout.columns.length === spec.columns.length &&
    spec.columns.every((c) => layout.columns.some((s) => s.name === c.name && s.type === c.type && s.count === c.count))
  )
}

/**
 * A reader takes on the writer's new schema: the fields it had keep their order, new ones come
 * after in stored order; the per-schema code and every view are made anew (the native side
 * opened the vec again, and emptied the old views).
 */
function reshapeReader(vec: VecInternals, layout: Layout): void {
  const stored = layout.columns.map(({ name, type, count }) => ({ name, type: type as AnyColumnType, count }))
  const kept = vec._spec.columns.filter((c) => stored.some((s) => s.name === c.name && s.type === c.type && s.count === c.count))
  const added = stored.filter((s) => !kept.some((c) => c.name === s.name))
  const spec: NormalizedSchema = { scalar: layout.scalar, columns: [...kept, ...added] }
  vec._schema = schemaOf(spec)
  vec._spec = spec
  vec._stored = storedOrder(spec, layout.columns)
  Object.setPrototypeOf(vec, specialise(spec).prototype as object)
  vec._hdr = vec._storage.header(vec, layout)
  vec._len = smallInt(layout.length)
  vec._storage.refresh(vec, layout, true)
  vec._columnsCache = undefined
}

type AnyColumnType = NormalizedSchema['columns'][number]['type']

/** What {@link MmapVec.snapshot} returns: copies of columns between two units of writes. */
export interface Snapshot<C> {
  /** The rows the copies hold. */
  length: number
  /** One TypedArray per field asked for, `length * width` long, typed as `columns` is. */
  columns: C
}

/** `snapshot(fields?)`: copies of the given columns as they were between two of the writer's units. */
export function snapshot(vec: VecInternals, fields: readonly string[] | undefined): Snapshot<Record<string, AnyColumn>> {
  vec._open()
  if (fields !== undefined && !Array.isArray(fields)) {
    throw invalid(`${vec._path}: snapshot takes an array of field names, got ${String(fields)}`, vec._path)
  }
  for (let tries = 0; tries < SNAPSHOT_TRIES; tries++) {
    const st = callNative(vec._path, () => vec._native.snapshotState())
    if (st === null) {
      // The writer changed the schema: follow it first.
      refresh(vec)
      continue
    }
    const ks = picked(vec, fields)
    const length = st.length
    const columns: Record<string, AnyColumn> = {}
    for (const k of ks) {
      const c = vec._spec.columns[k]
      const a = new ARRAY_TYPES[c.type](length * c.count)
      // Buffered writers snapshot their own memory; everyone else copies from the mapping.
      if (!vec._readOnly && !vec._storage.writesThrough) a.set(vec._cols[k].subarray(0, length * c.count) as never)
      else callNative(vec._path, () => vec._native.readColumn(vec._stored[k], new Uint8Array(a.buffer)))
      columns[c.name] = a
    }
    if (callNative(vec._path, () => vec._native.snapshotStill(st.seq))) return { length, columns }
  }
  throw new MmapVecError('ELOCKED', `${vec._path}: the writer wrote during each of ${SNAPSHOT_TRIES} copies; snapshot fewer columns, or have the writer write in batches`, vec._path)
}

/** The schema positions of `fields` (every field when undefined), refusing unknown names. */
function picked(vec: VecInternals, fields: readonly string[] | undefined): number[] {
  if (fields === undefined) return vec._spec.columns.map((_, k) => k)
  return fields.map((f) => {
    const k = vec._spec.columns.findIndex((c) => c.name === f)
    if (k < 0) throw invalid(`${vec._path}: snapshot: no field ${JSON.stringify(String(f))}; the fields are ${vec._spec.columns.map((c) => c.name).join(', ')}`, vec._path)
    return k
  })
}

/** `changed({ timeoutMs })`: resolves true once the writer publishes after the last refresh. */
export function changed(vec: VecInternals, timeoutMs: number): Promise<boolean> {
  vec._open()
  if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
    throw invalid(`${vec._path}: changed: timeoutMs must be a number >= 0, got ${String(timeoutMs)}`, vec._path)
  }
  return callNative(vec._path, () => vec._native.changed(timeoutMs))
}
