/**
 * Apache Arrow interop: a vec as an Arrow Table over its own columns, Arrow IPC files out and
 * in. `apache-arrow` is an optional peer dependency, loaded the first time one of these runs.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { open, rename, rm, type FileHandle } from 'node:fs/promises'
import type * as Arrow from 'apache-arrow'
import { MmapVecError, fromSystemError, invalid, type ErrorCode } from './errors.js'
import { checkFileName, checkPath, outputKind, refuseInsideVec, tempBeside } from './paths.js'
import { pushColumns } from './bulk.js'
import type { OpenOptions } from './open.js'
import { MmapVec } from './vec.js'
import { ARRAY_TYPES, MAX_COUNT, normalizeSchema, type AnyColumn, type ColumnSpec, type Schema, type ScalarType } from './schema.js'

type ArrowModule = typeof Arrow

/** An Arrow Table, as `apache-arrow` makes it. */
export type ArrowTable = Arrow.Table

/** Rows `[from, to)` of a vec; the whole vec by default. Outside the vec's rows is `ERANGE`. */
export interface RowRange {
  /** The first row, a whole number; default 0. */
  from?: number
  /** Past the last row, a whole number; default the vec's length. */
  to?: number
}

/** Options of {@link toArrow}. */
export interface ToArrowOptions extends RowRange {
  /**
   * The apache-arrow module to build the Table with: the one the program passes the Table to.
   * By default, the one `require` (CommonJS entry) or `import` (ES module entry) gives. Tables
   * of two instances of apache-arrow (its CommonJS and ES module builds, or a copy a loader
   * such as tsx makes) do not mix: one's IPC writer cannot write the other's Tables.
   */
  arrow?: ArrowModule
}

/** Options of {@link writeArrowIPC} and {@link writeArrowIPCSync}. */
export interface WriteArrowOptions extends RowRange {
  /** Rows per record batch; by default 65536, fewer for wide rows (at most about 8 MiB a batch). */
  batchRows?: number
  /** Called with the rows written so far and the rows to write: once at the start, then after each batch. */
  onProgress?: (rowsDone: number, total: number) => void
}

/**
 * Options of {@link MmapVec.fromArrow} and {@link fromArrowIPC}: those of
 * {@link MmapVec.create} (but `create` and `readOnly`, which are `EINVAL` here), and `schema`
 * and `onProgress`.
 *
 * @typeParam S - the schema given as `schema`, which types the vec
 */
export interface FromArrowOptions<S extends Schema = Schema> extends Omit<OpenOptions, 'create' | 'readOnly'> {
  /**
   * The schema the Arrow columns must have (fields in any order); it types the vec. By
   * default it is read from the Arrow schema.
   */
  schema?: S
  /**
   * Called with the rows read so far and the rows in the source: once at the start, then
   * after each record batch. `total` is undefined for an IPC stream, which does not say.
   */
  onProgress?: (rowsDone: number, total: number | undefined) => void
}

/** The Arrow schema metadata key under which the vec's schema (JSON) is stored. */
export const SCHEMA_METADATA_KEY = 'mmapvec.schema'

const BATCH_BYTES = 8 * 1024 * 1024
const BATCH_ROWS = 65536

let arrowCache: ArrowModule | undefined

/** @internal The error every Arrow function throws when `apache-arrow` cannot be loaded. */
export function missingArrow(): MmapVecError {
  return new MmapVecError(
    'EDEPENDENCY',
    "mmapvec's Arrow functions need the apache-arrow package, which is not installed; install it with: npm install apache-arrow",
  )
}

/** Loads `apache-arrow` (its CommonJS build) on first use. */
function loadArrow(): ArrowModule {
  if (arrowCache !== undefined) return arrowCache
  try {
    // Loaded when first needed, synchronously: apache-arrow is an optional peer dependency.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    arrowCache = require('apache-arrow') as ArrowModule
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e?.code === 'MODULE_NOT_FOUND' && String(e.message).startsWith("Cannot find module 'apache-arrow'")) throw missingArrow()
    throw err
  }
  return arrowCache
}

// ---- mmapvec field types <-> Arrow types ----

function arrowElementType(arrow: ArrowModule, t: ScalarType): Arrow.DataType {
  switch (t) {
    case 'i8':
      return new arrow.Int8()
    case 'u8':
      return new arrow.Uint8()
    case 'i16':
      return new arrow.Int16()
    case 'u16':
      return new arrow.Uint16()
    case 'i32':
      return new arrow.Int32()
    case 'u32':
      return new arrow.Uint32()
    case 'i64':
      return new arrow.Int64()
    case 'u64':
      return new arrow.Uint64()
    case 'f32':
      return new arrow.Float32()
    case 'f64':
      return new arrow.Float64()
    case 'bool':
      return new arrow.Bool()
  }
}

function arrowType(arrow: ArrowModule, c: ColumnSpec): Arrow.DataType {
  const el = arrowElementType(arrow, c.type)
  return c.count === 1 ? el : new arrow.FixedSizeList(c.count, new arrow.Field('item', el, false))
}

/** The mmapvec element type of an Arrow type, or undefined when there is none. */
function elementOf(arrow: ArrowModule, t: Arrow.DataType): ScalarType | undefined {
  if (arrow.DataType.isBool(t)) return 'bool'
  if (arrow.DataType.isInt(t)) {
    const i = t
    return `${i.isSigned ? 'i' : 'u'}${i.bitWidth}` as ScalarType
  }
  if (arrow.DataType.isFloat(t)) {
    const p = t.precision
    return p === arrow.Precision.SINGLE ? 'f32' : p === arrow.Precision.DOUBLE ? 'f64' : undefined
  }
  return undefined
}

const SUPPORTED = 'mmapvec stores Int8..Int64, Uint8..Uint64, Float32, Float64, Bool and FixedSizeList of those, without nulls'

function columnOf(arrow: ArrowModule, f: Arrow.Field, where: string): ColumnSpec {
  // apache-arrow types a Field's type as `any` unless told otherwise.
  const type = f.type as Arrow.DataType
  const el = elementOf(arrow, type)
  if (el !== undefined) return { name: f.name, type: el, count: 1 }
  if (arrow.DataType.isFixedSizeList(type)) {
    const l = type as Arrow.FixedSizeList<Arrow.DataType>
    const inner = elementOf(arrow, l.valueType)
    if (inner !== undefined && l.listSize >= 1 && l.listSize <= MAX_COUNT) return { name: f.name, type: inner, count: l.listSize }
  }
  // Every concrete apache-arrow type has a toString (`Utf8`, `Float16`...); the base class does not declare it.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  throw invalid(`${where}: column '${f.name}' has the Arrow type ${String(type)}, which mmapvec cannot store; ${SUPPORTED}`, where)
}

/** The user-facing schema value of normalized columns (what `MmapVec.create` takes). */
function schemaValue(columns: readonly ColumnSpec[], scalar: boolean): Schema {
  const t = (c: ColumnSpec) => (c.count === 1 ? c.type : ([c.type, c.count] as const))
  if (scalar) return t(columns[0])
  return Object.fromEntries(columns.map((c) => [c.name, t(c)]))
}

const describe = (c: ColumnSpec) => `${c.name}: ${c.count === 1 ? c.type : `[${c.type}, ${c.count}]`}`

interface Plan {
  schema: Schema
  /** The vec's columns in schema order, each with the index of its Arrow column. */
  columns: { spec: ColumnSpec; source: number }[]
}

/**
 * Maps an Arrow schema to a vec schema, checked against `wanted` when given. Throws before
 * anything is created.
 */
function plan(arrow: ArrowModule, s: Arrow.Schema, wanted: Schema | undefined, path: string): Plan {
  const found = s.fields.map((f) => columnOf(arrow, f, path))
  if (found.length === 0) throw invalid(`${path}: the Arrow schema has no columns; a vec needs at least one`, path)
  const seen = new Set<string>()
  for (const c of found) {
    if (c.name === '') throw invalid(`${path}: an Arrow column has an empty name; a vec's fields need names`, path)
    if (seen.has(c.name)) throw invalid(`${path}: two Arrow columns are named '${c.name}'; a vec's fields need distinct names`, path)
    seen.add(c.name)
  }
  if (wanted !== undefined) {
    const spec = normalizeSchema(wanted)
    if (typeof spec === 'string') throw invalid(`${path}: ${spec}`, path)
    const columns = spec.columns.map((c) => ({ spec: c, source: found.findIndex((f) => f.name === c.name) }))
    const same =
      found.length === spec.columns.length &&
      columns.every(({ spec: c, source }) => source >= 0 && found[source].type === c.type && found[source].count === c.count)
    if (!same) {
      throw new MmapVecError(
        'ESCHEMA',
        `${path}: the Arrow columns are { ${found.map(describe).join(', ')} }, the schema given is { ${spec.columns.map(describe).join(', ')} }; pass the schema that matches, or none to take the Arrow one`,
        path,
      )
    }
    return { schema: wanted, columns }
  }
  // A vec of plain values goes out as one column named 'value' with its schema in the metadata;
  // it comes back as a vec of plain values.
  let scalar = false
  const meta = s.metadata.get(SCHEMA_METADATA_KEY)
  if (meta !== undefined && found.length === 1 && found[0].name === 'value') {
    try {
      const stored = normalizeSchema(JSON.parse(meta))
      scalar = typeof stored !== 'string' && stored.scalar && stored.columns[0].type === found[0].type && stored.columns[0].count === found[0].count
    } catch {
      scalar = false
    }
  }
  return { schema: schemaValue(found, scalar), columns: found.map((spec, source) => ({ spec, source })) }
}

// ---- vec -> Arrow ----

function checkRange(vec: MmapVec<Schema>, range: RowRange | undefined): [number, number] {
  const len = vec.length
  const from = range?.from ?? 0
  const to = range?.to ?? len
  for (const [k, v] of [['from', from], ['to', to]] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw invalid(`${vec.path}: ${k} must be a whole number >= 0, got ${String(v)}`, vec.path)
    }
  }
  if (from > to || to > len) {
    throw new MmapVecError('ERANGE', `${vec.path}: rows ${from}..${to} are not within the vec's ${len} rows`, vec.path)
  }
  return [from, to]
}

/** Packs 0/1 bytes into an Arrow validity-style bitmap (least significant bit first). */
function packBits(bytes: Uint8Array): Uint8Array {
  const bits = new Uint8Array((bytes.length + 7) >> 3)
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) bits[i >> 3] |= 1 << (i & 7)
  return bits
}

function arrowData(arrow: ArrowModule, type: Arrow.DataType, c: ColumnSpec, values: AnyColumn, rows: number): Arrow.Data {
  if (c.count !== 1) {
    const child = arrowData(arrow, (type as Arrow.FixedSizeList<Arrow.DataType>).valueType, { ...c, count: 1 }, values, rows * c.count)
    return arrow.makeData({ type: type as Arrow.FixedSizeList, length: rows, nullCount: 0, child })
  }
  if (c.type === 'bool') return arrow.makeData({ type: type as Arrow.Bool, length: rows, nullCount: 0, data: packBits(values as Uint8Array) })
  // The vec's own TypedArray: makeData keeps an array of the type's own kind as it is.
  return arrow.makeData({ type: type as Arrow.Int, length: rows, nullCount: 0, data: values as Int32Array })
}

function arrowSchema(arrow: ArrowModule, vec: MmapVec<Schema>): { schema: Arrow.Schema; columns: readonly ColumnSpec[] } {
  const spec = normalizeSchema(vec.schema)
  if (typeof spec === 'string') throw invalid(`${vec.path}: ${spec}`, vec.path)
  const fields = spec.columns.map((c) => new arrow.Field(c.name, arrowType(arrow, c), false))
  const metadata = new Map([[SCHEMA_METADATA_KEY, JSON.stringify(vec.schema)]])
  return { schema: new arrow.Schema(fields, metadata), columns: spec.columns }
}

function recordBatch(arrow: ArrowModule, vec: MmapVec<Schema>, schema: Arrow.Schema, columns: readonly ColumnSpec[], from: number, to: number): Arrow.RecordBatch {
  const cols = vec.columns as unknown as Record<string, AnyColumn>
  const rows = to - from
  const children = columns.map((c, k) => arrowData(arrow, schema.fields[k].type as Arrow.DataType, c, cols[c.name].subarray(from * c.count, to * c.count), rows))
  const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: rows, nullCount: 0, children })
  return new arrow.RecordBatch(schema, data)
}

/**
 * An Arrow Table over the vec's rows (all, or `[from, to)`), in one record batch. Its numeric
 * columns are the vec's own memory, not copies: writes through the vec show in the table and
 * the other way round. `bool` columns are converted (Arrow packs booleans into bits), and
 * array fields are FixedSizeLists over the same memory. The table follows the vec's views: it
 * shows the rows the vec had when it was made; once the vec closes, shrinks, or grows in
 * buffered mode (or past its reservation), its columns are detached, and reading them gives
 * undefined or throws a TypeError, never freed memory. Take a new one then.
 *
 * Columns are not nullable, and the Arrow schema's metadata holds the vec's schema, so that
 * {@link MmapVec.fromArrow} gives back the same kind of vec. Needs the optional peer dependency
 * `apache-arrow`, loaded on first use.
 *
 * @param vec - an open vec
 * @param options - the rows (`from`, `to`), and the apache-arrow module to build with (`arrow`)
 * @returns an apache-arrow Table
 * @throws {@link MmapVecError} `EDEPENDENCY` when apache-arrow is not installed; `ERANGE` for
 *   rows outside the vec; `EINVAL` for a bad option; `ECLOSED` when the vec is closed.
 *
 * @example
 * ```ts
 * import * as arrow from 'apache-arrow'
 * const table = toArrow(v, { from: 0, to: 1000, arrow })
 * console.log(table.numRows, table.getChild('id')?.get(0))
 * ```
 */
export function toArrow<S extends Schema>(vec: MmapVec<S>, options?: ToArrowOptions): ArrowTable {
  return toArrowWith(() => loadArrow(), vec, options)
}

/**
 * @internal {@link toArrow}, loading apache-arrow with `load` unless the options give it: the ES
 * module entry loads the build that `import` gets.
 */
export function toArrowWith<S extends Schema>(load: () => ArrowModule, vec: MmapVec<S>, options?: ToArrowOptions): ArrowTable {
  checkVec(vec, 'toArrow')
  const v = vec as unknown as MmapVec<Schema>
  v._open() // throws ECLOSED with the vec's path
  if (options !== undefined && (options === null || typeof options !== 'object')) throw invalid(`${v.path}: options must be an object`, v.path)
  for (const k of Object.keys(options ?? {})) {
    if (!['from', 'to', 'arrow'].includes(k)) throw invalid(`${v.path}: unknown option '${k}'; the options are from, to, arrow`, v.path)
  }
  const given = options?.arrow
  if (given !== undefined && (typeof given?.makeData !== 'function' || typeof given?.Table !== 'function')) {
    throw invalid(`${v.path}: the arrow option must be the apache-arrow module (import * as arrow from 'apache-arrow')`, v.path)
  }
  const arrow = given ?? load()
  const [from, to] = checkRange(v, options)
  const { schema, columns } = arrowSchema(arrow, v)
  return new arrow.Table(schema, recordBatch(arrow, v, schema, columns, from, to))
}

/** A sink for apache-arrow's writer that hands over what each `write` produced, batch by batch. */
type ChunkSink = Arrow.AsyncByteQueue & { take(): Buffer }
const sinkClasses = new WeakMap<ArrowModule, new () => ChunkSink>()
function chunkSink(arrow: ArrowModule): ChunkSink {
  let Cls = sinkClasses.get(arrow)
  if (Cls === undefined) {
    // The writer pushes every piece of the file into its sink synchronously. Taking them out
    // after each batch (copied into one Buffer while the vec's views are valid) keeps one batch
    // in memory at a time and lets the file writes wait for the disk.
    Cls = class extends arrow.AsyncByteQueue {
      chunks: Uint8Array[] = []
      bytes = 0
      override write(value: Uint8Array): void {
        if (value.byteLength > 0) {
          this.chunks.push(value)
          this.bytes += value.byteLength
        }
      }
      take(): Buffer {
        const b = Buffer.concat(this.chunks, this.bytes)
        this.chunks = []
        this.bytes = 0
        return b
      }
    }
    sinkClasses.set(arrow, Cls)
  }
  return new Cls()
}

function checkWriteOptions(vec: MmapVec<Schema>, file: unknown, options: WriteArrowOptions | undefined) {
  if (typeof file !== 'string' || file === '') throw invalid(`${vec.path}: the Arrow file must be a non-empty path, got ${String(file)}`, vec.path)
  checkFileName(file, 'the Arrow file')
  if (options !== undefined && (options === null || typeof options !== 'object')) throw invalid(`${vec.path}: options must be an object`, vec.path)
  for (const k of Object.keys(options ?? {})) {
    if (!['from', 'to', 'batchRows', 'onProgress'].includes(k)) {
      throw invalid(`${vec.path}: unknown option '${k}'; the options are from, to, batchRows, onProgress`, vec.path)
    }
  }
  if (options?.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalid(`${vec.path}: onProgress must be a function`, vec.path)
  const b = options?.batchRows
  if (b !== undefined && (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 1)) {
    throw invalid(`${vec.path}: batchRows must be a whole number >= 1, got ${String(b)}`, vec.path)
  }
}

/**
 * The pieces of an IPC file, one Buffer per record batch (the first holds the schema, the last
 * the footer), each built from the vec when it is asked for. The checks run at once, before
 * any file is made.
 */
/** Throws EINVAL unless `vec` is an MmapVec (a structured clone of one, or null, is not). */
function checkVec(vec: unknown, what: string): void {
  if (!(vec instanceof MmapVec)) throw invalid(`${what}: the first argument must be an open MmapVec, got ${vec === null ? 'null' : typeof vec}`)
}

function ipcPieces(vec: MmapVec<Schema>, file: unknown, options: WriteArrowOptions | undefined): Generator<Buffer> {
  checkVec(vec, 'writeArrowIPC')
  vec._open() // throws ECLOSED with the vec's path
  checkWriteOptions(vec, file, options)
  const arrow = loadArrow()
  const [from, to] = checkRange(vec, options)
  const { schema, columns } = arrowSchema(arrow, vec)
  const rowBytes = columns.reduce((n, c) => n + c.count * (c.type === 'bool' ? 1 : ARRAY_TYPES[c.type].BYTES_PER_ELEMENT), 0)
  const batchRows = options?.batchRows ?? Math.max(1, Math.min(BATCH_ROWS, Math.floor(BATCH_BYTES / rowBytes)))
  const sink = chunkSink(arrow)
  const writer = new arrow.RecordBatchFileWriter()
  // Starting with the schema makes a valid file even with no rows.
  writer.reset(sink, schema)
  const total = to - from
  const spec = vec._spec
  return (function* () {
    options?.onProgress?.(0, total)
    yield sink.take()
    for (let at = from; at < to; ) {
      if (vec.closed) throw new MmapVecError('ECLOSED', `${vec.path}: the vec was closed during the Arrow export`, vec.path)
      // The file's schema was written first: batches of another schema would not match it.
      if (vec._spec !== spec) {
        throw new MmapVecError('ESCHEMA', `${vec.path}: the vec's schema changed during the Arrow export (addColumn, dropColumn or renameColumn); export again once it is done`, vec.path)
      }
      if (vec.length < to) {
        throw new MmapVecError('ERANGE', `${vec.path}: the vec shrank to ${vec.length} rows during the Arrow export of rows ${from}..${to}`, vec.path)
      }
      const end = Math.min(to, at + batchRows)
      writer.write(recordBatch(arrow, vec, schema, columns, at, end))
      yield sink.take()
      at = end
      options?.onProgress?.(at - from, total)
    }
    writer.close()
    yield sink.take()
  })()
}

/** Writes all of `data`: a write may take only part of it (at the file size limit, say). */
async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; ) at += (await fh.write(data, at, data.length - at)).bytesWritten
}

/**
 * Writes rows of the vec (all, or `[from, to)`) to `file` in the Arrow IPC file format, which
 * Spark, DuckDB, Polars, pyarrow and Arrow Flight read, on any machine. Record batches are
 * built and written one at a time, each waiting for the disk, so memory stays at one batch.
 * The file appears whole or not at all (written beside it, synced, then renamed over it); a
 * named pipe or a device (`/dev/stdout`) is written as it is. Needs the optional peer
 * dependency `apache-arrow`.
 *
 * @param vec - an open vec; it must not be closed or shrunk before the Promise settles
 * @param file - the path of the Arrow file to write (replaced if it exists)
 * @param options - the rows, `batchRows` and `onProgress`; see {@link WriteArrowOptions}
 * @returns a Promise that resolves when the file is written, synced and in place
 * @throws {@link MmapVecError} `EDEPENDENCY` when apache-arrow is not installed; `EINVAL` for a
 *   bad file name (a directory) or option; `ERANGE` for rows outside the vec, or when the vec shrinks
 *   during the export; `ECLOSED` when the vec is (or gets) closed; `ENOENT`, `EACCES`,
 *   `ENOSPC` (a full disk or the file size limit), `EIO` from the file system. The checks before the first write throw at once;
 *   the rest reject the Promise.
 *
 * @example
 * ```ts
 * await writeArrowIPC(v, 'particles.arrow', { onProgress: (done, total) => console.log(done, total) })
 * ```
 */
export async function writeArrowIPC<S extends Schema>(vec: MmapVec<S>, file: string, options?: WriteArrowOptions): Promise<void> {
  const pieces = ipcPieces(vec, file, options)
  refuseInsideVec(file, 'the Arrow file')
  if (outputKind(file) === 'into') {
    let into: FileHandle | undefined
    try {
      into = await open(file, 'w')
      for (const piece of pieces) await writeAll(into, piece)
    } catch (err) {
      throw fromSystemError(err, file, 'writing the Arrow file')
    } finally {
      await into?.close().catch(() => {})
    }
    return
  }
  const tmp = tempBeside(file)
  let fh: FileHandle | undefined
  let doing = 'creating the Arrow file'
  try {
    fh = await open(tmp, 'wx')
    doing = 'writing the Arrow file'
    for (const piece of pieces) await writeAll(fh, piece)
    await fh.sync()
    await fh.close()
    fh = undefined
    doing = 'renaming the Arrow file into place'
    await rename(tmp, file)
  } catch (err) {
    await fh?.close().catch(() => {})
    // A failure to clean up must not hide the error that matters.
    await rm(tmp, { force: true }).catch(() => {})
    throw fromSystemError(err, file, doing)
  }
}

/**
 * Like {@link writeArrowIPC}, blocking the thread until the file is written.
 *
 * @param vec - an open vec
 * @param file - the path of the Arrow file to write (replaced if it exists)
 * @param options - the rows, `batchRows` and `onProgress`; see {@link WriteArrowOptions}
 * @throws {@link MmapVecError} as {@link writeArrowIPC}.
 */
export function writeArrowIPCSync<S extends Schema>(vec: MmapVec<S>, file: string, options?: WriteArrowOptions): void {
  const pieces = ipcPieces(vec, file, options)
  refuseInsideVec(file, 'the Arrow file')
  if (outputKind(file) === 'into') {
    let into: number | undefined
    try {
      into = openSync(file, 'w')
      for (const piece of pieces) for (let o = 0; o < piece.length; ) o += writeSync(into, piece, o)
    } catch (err) {
      throw fromSystemError(err, file, 'writing the Arrow file')
    } finally {
      if (into !== undefined) closeSync(into)
    }
    return
  }
  const tmp = tempBeside(file)
  let fd: number | undefined
  let doing = 'creating the Arrow file'
  try {
    fd = openSync(tmp, 'wx')
    doing = 'writing the Arrow file'
    for (const piece of pieces) for (let o = 0; o < piece.length; ) o += writeSync(fd, piece, o)
    fsyncSync(fd)
    closeSync(fd)
    fd = undefined
    doing = 'renaming the Arrow file into place'
    renameSync(tmp, file)
  } catch (err) {
    try {
      if (fd !== undefined) closeSync(fd)
      rmSync(tmp, { force: true })
    } catch {
      // A failure to clean up must not hide the error that matters.
    }
    throw fromSystemError(err, file, doing)
  }
}

// ---- Arrow -> vec ----

const IMPORT_ROWS = 65536

function checkFromOptions<S extends Schema>(path: unknown, options: FromArrowOptions<S> | undefined): { open: OpenOptions; schema: S | undefined; onProgress: FromArrowOptions<S>['onProgress'] } {
  checkPath(path)
  if (options !== undefined && (options === null || typeof options !== 'object')) throw invalid(`${path}: options must be an object`, path)
  const { schema, onProgress, ...open } = options ?? {}
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalid(`${path}: onProgress must be a function`, path)
  for (const k of ['create', 'readOnly']) {
    if (k in open) throw invalid(`${path}: fromArrow creates a new vec; the option '${k}' does not apply`, path)
  }
  return { open, schema, onProgress }
}

/** Nulls in a column, its children included. */
function nullsIn(data: Arrow.Data | undefined): number {
  // An empty table's batch may have no data for a column (tableFromArrays of 0 rows).
  if (data === undefined) return 0
  let n = data.nullCount
  for (const child of data.children ?? []) n += nullsIn(child)
  return n
}

function checkNulls(batch: Arrow.RecordBatch, p: Plan, where: string): void {
  for (const { spec, source } of p.columns) {
    const n = nullsIn(batch.data.children[source])
    if (n > 0) throw invalid(`${where}: column '${spec.name}' has ${n} null values; mmapvec columns have no nulls (fill them first)`, where)
  }
}

/** Unpacks `n` Arrow bits from bit `offset` into booleans. */
function unpackBits(bits: Uint8Array, offset: number, n: number): boolean[] {
  const out = new Array<boolean>(n)
  for (let i = 0; i < n; i++) {
    const j = offset + i
    out[i] = (bits[j >> 3] & (1 << (j & 7))) !== 0
  }
  return out
}

/** The values of rows of one Arrow column, as the vec's `pushMany` takes them. */
function columnValues(data: Arrow.Data, c: ColumnSpec): ArrayLike<unknown> {
  // A FixedSizeList's child holds `count` values per row, sliced along with the list.
  const d = c.count === 1 ? data : data.children[0]
  const n = data.length * c.count
  // Numeric values start at the Data's first row; booleans are bits counted from `offset`.
  return c.type === 'bool' ? unpackBits(d.values as Uint8Array, d.offset, n) : (d.values as AnyColumn).subarray(0, n)
}

function appendBatch(vec: MmapVec<Schema>, batch: Arrow.RecordBatch, p: Plan): void {
  for (let at = 0; at < batch.numRows; at += IMPORT_ROWS) {
    // Slices (no copy) keep the boolean arrays that bool columns need to a bounded size.
    const part = at === 0 && batch.numRows <= IMPORT_ROWS ? batch : batch.slice(at, Math.min(batch.numRows, at + IMPORT_ROWS))
    const cols: Record<string, ArrayLike<unknown>> = {}
    for (const { spec, source } of p.columns) cols[spec.name] = columnValues(part.data.children[source], spec)
    pushColumns(vec, cols)
  }
}

function fromArrowTable<S extends Schema>(path: string, table: ArrowTable, options: FromArrowOptions<S> | undefined): MmapVec<S> {
  const { open, schema, onProgress } = checkFromOptions(path, options)
  const arrow = loadArrow()
  const p = plan(arrow, table.schema, schema, path)
  table.batches.forEach((batch, i) => {
    checkBatch(batch, p, path, `record batch ${i} of the Table`, 'EINVAL')
    checkNulls(batch, p, path)
  })
  const vec = MmapVec.create(path, p.schema, { ...open, capacity: Math.max(open.capacity ?? 0, table.numRows) })
  try {
    onProgress?.(0, table.numRows)
    for (const batch of table.batches) {
      appendBatch(vec, batch, p)
      onProgress?.(vec.length, table.numRows)
    }
  } catch (err) {
    vec.close({ flush: false })
    MmapVec.remove(path)
    throw err
  }
  return vec as unknown as MmapVec<S>
}

/** The part of an IPC file's footer that says where its record batches are. */
interface Footer {
  numRecordBatches: number
  getRecordBatch(i: number): { offset: number; metaDataLength: number } | null
}

/** What a record batch's header says: its rows, and the length of each column and buffer. */
interface BatchHeader {
  length: number
  nodes: { length: number }[]
  buffers: { offset: number; length: number }[]
  compression?: unknown
}

/** Bytes of `n` values of type `t` (bools are bits). */
const valueBytes = (t: ScalarType, n: number) => (t === 'bool' ? Math.ceil(n / 8) : n * ARRAY_TYPES[t].BYTES_PER_ELEMENT)

/**
 * Rows in an IPC file, from the headers of its record batches (their bodies are not read),
 * after checking each header against the file: every column as long as the batch, every
 * buffer inside the body and the body inside the file, and every column's values buffer
 * large enough for the rows claimed. The vec's room is made for this count before the bodies
 * are read, so a damaged header must not make it (a 1 KB file claiming 10^9 rows).
 */
async function countRows(arrow: ArrowModule, fh: FileHandle, footer: Footer, p: Plan, file: string): Promise<number> {
  const size = (await fh.stat()).size
  // The header lists the columns in the file's order, each with its nodes and buffers.
  const inFileOrder = [...p.columns].sort((x, y) => x.source - y.source).map((c) => c.spec)
  let total = 0
  for (let i = 0; i < footer.numRecordBatches; i++) {
    const block = footer.getRecordBatch(i)
    if (block === null) throw new Error(`record batch ${i} is missing from the footer`)
    const buf = Buffer.alloc(block.metaDataLength)
    const { bytesRead } = await fh.read(buf, 0, buf.length, block.offset)
    if (bytesRead !== buf.length || buf.length < 8) throw new Error(`the file ends inside the header of record batch ${i}`)
    // An encapsulated message: 0xFFFFFFFF, the metadata's length, the metadata (files from
    // before Arrow 0.15 have no 0xFFFFFFFF).
    const at = buf.readInt32LE(0) === -1 ? 4 : 0
    const message = arrow.Message.decode(buf.subarray(at + 4, at + 4 + buf.readInt32LE(at)))
    if (!message.isRecordBatch()) throw new Error(`block ${i} of the footer is not a record batch`)
    const header = message.header() as unknown as BatchHeader
    const rows = header.length
    const body = message.bodyLength
    if (block.offset + block.metaDataLength + body > size) {
      throw new Error(`record batch ${i} has a body of ${body} bytes, which goes past the end of the file (${size} bytes)`)
    }
    let node = 0
    let buffer = 0
    for (const c of inFileOrder) {
      const claims = (what: string) => new MmapVecError('EFORMAT', `${file}: damaged: record batch ${i} claims ${rows} rows but column '${c.name}' ${what}`, file)
      const n = header.nodes[node++]
      if (n === undefined) throw claims('is missing from it')
      if (n.length !== rows) throw claims(`has ${n.length}`)
      buffer++ // the validity bitmap: nulls are checked on the values read
      const values = rows * c.count
      if (c.count !== 1) {
        // A FixedSizeList: its own node and bitmap, then its child's.
        const child = header.nodes[node++]
        buffer++
        if (child === undefined || child.length !== values) throw claims(`holds ${child?.length ?? 0} values, not ${c.count} a row`)
      }
      const b = header.buffers[buffer++]
      if (b === undefined) throw claims('has no values buffer')
      if (b.offset + b.length > body) throw claims(`has values past the end of the batch's body`)
      // Compressed buffers are smaller than their values: those are checked once read.
      if (header.compression == null && b.length < valueBytes(c.type, values)) {
        const held = c.type === 'bool' ? b.length * 8 : Math.floor(b.length / ARRAY_TYPES[c.type].BYTES_PER_ELEMENT)
        throw claims(`holds only ${held} values${c.count === 1 ? '' : ` (${c.count} a row)`}`)
      }
    }
    total += rows
  }
  return total
}

/**
 * Checks the columns of a record batch, as read, against its row count: a damaged file can
 * make apache-arrow give columns shorter than the batch (it does not check). `what` names the
 * batch; `code` is EFORMAT for a file, EINVAL for a Table a program made.
 */
function checkBatch(batch: Arrow.RecordBatch, p: Plan, where: string, what: string, code: ErrorCode): void {
  const rows = batch.numRows
  for (const { spec, source } of p.columns) {
    const claims = (m: string) => new MmapVecError(code, `${where}: ${what} claims ${rows} rows but column '${spec.name}' ${m}`, where)
    const data = batch.data.children[source]
    if (data === undefined) throw claims('is missing from it')
    if (data.length !== rows) throw claims(`has ${data.length}`)
    const need = rows * spec.count
    const d = spec.count === 1 ? data : data.children[0]
    if (d === undefined || d.length < need) throw claims(`holds ${d?.length ?? 0} values, not ${spec.count} a row`)
    // Numeric values start at the Data's first row; booleans are bits counted from `offset`.
    const values = d.values as ArrayLike<number> | undefined
    const held = values === undefined ? 0 : spec.type === 'bool' ? values.length * 8 - d.offset : values.length
    if (held < need) throw claims(`holds only ${Math.max(0, held)} values${spec.count === 1 ? '' : ` (${spec.count} a row)`}`)
  }
}

/**
 * Creates a vec at `path` from the Arrow IPC file (or stream) `file`, reading it one record
 * batch at a time. The column types must be ones a vec stores (see {@link MmapVec.fromArrow}).
 * On any failure nothing is left at `path`. Needs the optional peer dependency `apache-arrow`.
 *
 * @param path - the new vec's directory
 * @param file - the path of the Arrow IPC file or stream
 * @param options - see {@link FromArrowOptions}
 * @returns a Promise of the new vec, open read-write
 * @throws {@link MmapVecError} `EDEPENDENCY` when apache-arrow is not installed; `ENOENT` when
 *   `file` is missing; `EFORMAT` when it is not Arrow IPC or is damaged; `EINVAL` for a column
 *   type a vec cannot store, a null value or a bad option; `ESCHEMA` when the columns do not
 *   match `options.schema`; `EEXIST` when something is at `path`; as {@link MmapVec.create}
 *   otherwise.
 *
 * @example
 * ```ts
 * const v = await fromArrowIPC('copy.mvec', 'particles.arrow')
 * ```
 */
export async function fromArrowIPC<const S extends Schema = Schema>(path: string, file: string, options?: FromArrowOptions<S>): Promise<MmapVec<S>> {
  const { open: openOptions, schema, onProgress } = checkFromOptions(path, options)
  if (typeof file !== 'string' || file === '') throw invalid(`${path}: the Arrow file must be a non-empty path, got ${String(file)}`, path)
  checkFileName(file, 'the Arrow file')
  const arrow = loadArrow()
  let fh: FileHandle
  try {
    fh = await open(file, 'r')
  } catch (err) {
    throw fromSystemError(err, file, 'opening the Arrow file')
  }
  const damaged = (err: unknown) => {
    // A read error (EIO, EISDIR) is the file system's, not the file's content.
    const io = fromSystemError(err, file, 'reading the Arrow file')
    if (io !== err || err instanceof MmapVecError) return io
    return new MmapVecError('EFORMAT', `${file}: not an Arrow IPC file, or damaged: ${(err as Error)?.message ?? String(err)}`, file)
  }
  try {
    if ((await fh.stat()).isDirectory()) throw new MmapVecError('EIO', `${file}: is a directory, not an Arrow IPC file; give the path of the file`, file)
    let reader: Arrow.AsyncRecordBatchFileReader | Arrow.AsyncRecordBatchStreamReader
    let total: number | undefined
    try {
      reader = await arrow.RecordBatchReader.from(fh)
      await reader.open()
      if (reader.schema === undefined || reader.schema === null) throw new Error('it holds no schema')
    } catch (err) {
      throw damaged(err)
    }
    const p = plan(arrow, reader.schema, schema, path)
    try {
      total = reader.isFile() ? await countRows(arrow, fh, reader.footer as Footer, p, file) : undefined
    } catch (err) {
      throw damaged(err)
    }
    const vec = MmapVec.create(path, p.schema, { ...openOptions, capacity: Math.max(openOptions.capacity ?? 0, total ?? 0) })
    try {
      onProgress?.(0, total)
      let batches = 0
      for (;;) {
        let r: IteratorResult<Arrow.RecordBatch>
        try {
          r = await reader.next()
        } catch (err) {
          throw damaged(err)
        }
        if (r.done === true) break
        checkBatch(r.value, p, file, `damaged: record batch ${batches++}`, 'EFORMAT')
        checkNulls(r.value, p, file)
        appendBatch(vec, r.value, p)
        onProgress?.(vec.length, total)
      }
    } catch (err) {
      vec.close({ flush: false })
      MmapVec.remove(path)
      throw err
    }
    return vec as unknown as MmapVec<S>
  } finally {
    await fh.close()
  }
}

/** The implementation of {@link MmapVec.fromArrow}. */
export function fromArrow<const S extends Schema = Schema>(path: string, source: ArrowTable | string, options?: FromArrowOptions<S>): MmapVec<S> | Promise<MmapVec<S>> {
  if (typeof source === 'string') return fromArrowIPC(path, source, options)
  const arrow = loadArrow()
  if (!arrow.util.isArrowTable(source)) {
    throw invalid(`${String(path)}: fromArrow takes an apache-arrow Table or the path of an Arrow IPC file, got ${Object.prototype.toString.call(source)}`)
  }
  return fromArrowTable(path, source, options)
}
