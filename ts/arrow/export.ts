/**
 * A vec to Arrow: {@link toArrow} (an Arrow Table over the vec's own memory) and
 * {@link writeArrowIPC} / {@link writeArrowIPCSync} (an Arrow IPC file, written one record batch
 * at a time, beside the target and renamed over it when whole).
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import { open, rename, rm, type FileHandle } from 'node:fs/promises'
import type * as Arrow from 'apache-arrow'
import { MmapVecError, fromSystemError, invalid } from '../errors.js'
import { readOptions } from '../open.js'
import { checkFileName, outputKind, refuseInsideVec, replaceFile, tempBeside } from '../paths.js'
import { ARRAY_TYPES, normalizeSchema, type AnyColumn, type ColumnSpec, type Schema } from '../schema.js'
import { MmapVec } from '../vec.js'
import { SCHEMA_METADATA_KEY, arrowType, loadArrow, type ArrowModule, type ArrowTable, type RowRange, type ToArrowOptions, type WriteArrowOptions } from './types.js'

const BATCH_BYTES = 8 * 1024 * 1024
const BATCH_ROWS = 65536

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
 * {@link toArrow}, loading apache-arrow with `load` unless the options give it: the ES
 * module entry loads the build that `import` gets.
 */
export function toArrowWith<S extends Schema>(load: () => ArrowModule, vec: MmapVec<S>, given?: ToArrowOptions): ArrowTable {
  checkVec(vec, 'toArrow')
  const v = vec as unknown as MmapVec<Schema>
  // Read once, before the vec's state is: an option's getter may change the vec.
  const options = readOptions(given, ['from', 'to', 'arrow'], v.path)
  v._open() // throws ECLOSED with the vec's path
  const module = options.arrow
  if (module !== undefined && (typeof module?.makeData !== 'function' || typeof module?.Table !== 'function')) {
    throw invalid(`${v.path}: the arrow option must be the apache-arrow module (import * as arrow from 'apache-arrow')`, v.path)
  }
  const arrow = module ?? load()
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

function checkWriteOptions(vec: MmapVec<Schema>, file: unknown, options: WriteArrowOptions) {
  if (typeof file !== 'string' || file === '') throw invalid(`${vec.path}: the Arrow file must be a non-empty path, got ${String(file)}`, vec.path)
  checkFileName(file, 'the Arrow file')
  if (options?.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalid(`${vec.path}: onProgress must be a function`, vec.path)
  const b = options?.batchRows
  if (b !== undefined && (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 1)) {
    throw invalid(`${vec.path}: batchRows must be a whole number >= 1, got ${String(b)}`, vec.path)
  }
}

/** Throws EINVAL unless `vec` is an MmapVec (a structured clone of one, or null, is not). */
function checkVec(vec: unknown, what: string): void {
  if (!(vec instanceof MmapVec)) throw invalid(`${what}: the first argument must be an open MmapVec, got ${vec === null ? 'null' : typeof vec}`)
}

/**
 * The pieces of an IPC file, one Buffer per record batch (the first holds the schema, the last
 * the footer), each built from the vec when it is asked for. The checks run at once, before
 * any file is made.
 */
function ipcPieces(vec: MmapVec<Schema>, file: unknown, given: WriteArrowOptions | undefined): Generator<Buffer> {
  checkVec(vec, 'writeArrowIPC')
  // Read once, before the vec's state is: an option's getter may change the vec.
  const options = readOptions(given, ['from', 'to', 'batchRows', 'onProgress'], vec.path)
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
 *   `ENOSPC` (a full disk or the file size limit), `EIO` from the file system (or a pipe whose
 *   reader left: its `cause` is the `EPIPE`). The checks before the first write throw at once;
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
  replaceFile(file, tempBeside(file), 'the Arrow file', (fd) => {
    for (const piece of pieces) for (let o = 0; o < piece.length; ) o += writeSync(fd, piece, o)
  })
}
