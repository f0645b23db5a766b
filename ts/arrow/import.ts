/**
 * Arrow to a vec: {@link fromArrowIPC} and `MmapVec.fromArrow` (an in-memory Table, or an
 * Arrow IPC file read one record batch at a time). The vec is made with `createFilled`, which
 * removes it again when anything fails, and filled through `pushMany`'s bulk path.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type * as Arrow from 'apache-arrow'
import { pushColumns } from '../bulk.js'
import { MmapVecError, fromSystemError, invalid, type ErrorCode } from '../errors.js'
import type { VecInternals } from '../internals.js'
import { checkOptionsObject, createFilled, type OpenOptions } from '../open.js'
import { checkFileName, checkPath } from '../paths.js'
import { ARRAY_TYPES, type AnyColumn, type ColumnSpec, type Schema, type ScalarType } from '../schema.js'
// The type only: vec.ts loads this module when MmapVec.fromArrow is first called.
import type { MmapVec } from '../vec.js'
import { loadArrow, plan, type ArrowModule, type ArrowTable, type FromArrowOptions, type Plan } from './types.js'
import { checkIPCMetadata } from './validate.js'

const IMPORT_ROWS = 65536

function checkFromOptions<S extends Schema>(path: unknown, options: FromArrowOptions<S> | undefined): { open: OpenOptions; schema: S | undefined; onProgress: FromArrowOptions<S>['onProgress'] } {
  checkPath(path)
  checkOptionsObject(options, path)
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

function appendBatch(vec: VecInternals, batch: Arrow.RecordBatch, p: Plan): void {
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
  const vec = createFilled(path, p.schema, { ...open, capacity: Math.max(open.capacity ?? 0, table.numRows) }, (vec) => {
    onProgress?.(0, table.numRows)
    for (const batch of table.batches) {
      appendBatch(vec, batch, p)
      onProgress?.(vec.length, table.numRows)
    }
  })
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
    return new MmapVecError('EFORMAT', `${file}: not an Arrow IPC file, or damaged: ${(err as Error)?.message ?? String(err)}; give an Arrow IPC file or stream, written again or a sound copy`, file)
  }
  try {
    const stat = await fh.stat()
    if (stat.isDirectory()) throw new MmapVecError('EIO', `${file}: is a directory, not an Arrow IPC file; give the path of the file`, file)
    let reader: Arrow.AsyncRecordBatchFileReader | Arrow.AsyncRecordBatchStreamReader
    let total: number | undefined
    let p: Plan
    try {
      // Before apache-arrow decodes anything: a damaged vector length makes it allocate
      // without bound or loop for hours (validate.ts).
      if (stat.isFile()) await checkIPCMetadata(fh, file, stat.size)
      reader = await arrow.RecordBatchReader.from(fh)
      await reader.open()
      if (reader.schema === undefined || reader.schema === null) throw new Error('it holds no schema')
      // A damaged schema can hold what apache-arrow's own getters trip over (a list without
      // its child): whatever is not a coded error of the plan is the file's damage.
      p = plan(arrow, reader.schema, schema, path, file)
    } catch (err) {
      throw damaged(err)
    }
    try {
      total = reader.isFile() ? await countRows(arrow, fh, reader.footer as Footer, p, file) : undefined
    } catch (err) {
      throw damaged(err)
    }
    const vec = await createFilled(path, p.schema, { ...openOptions, capacity: Math.max(openOptions.capacity ?? 0, total ?? 0) }, async (vec) => {
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
    })
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
