/**
 * The file formats `export` writes and `import` reads, as one table: a new format is one more
 * entry. CSV and JSON lines stream rows as text; Arrow IPC is binary and goes through the
 * package's own Arrow support (`writeArrowIPC`, `fromArrowIPC`), one record batch at a time.
 */
import { CsvError, parse, type Parser } from 'csv-parse'
import { stringify } from 'csv-stringify/sync'
import { closeSync, createReadStream, fstatSync, open, type ReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { Transform, type Readable, type Writable } from 'node:stream'
import { promisify } from 'node:util'
import { fromSystemError } from '../errors.js'
import { MmapVec, MmapVecError, fromArrowIPC, writeArrowIPC, type Schema } from '../index.js'
import { createFilled } from '../open.js'
import { normalizeSchema, type AnyColumn, type NormalizedSchema } from '../schema.js'
import { Interrupted, Progress, Sink } from './io.js'
import { cellFormatter, elementFormatter, keepLostNumbers, parseElement } from './values.js'

/** Rows `[from, to)` of an open vec, with its columns in schema order. */
export interface Slice {
  vec: MmapVec
  spec: NormalizedSchema
  from: number
  to: number
}

export interface Format {
  readonly name: string
  /** File name endings that pick this format for `import` and `export --out`. */
  readonly extensions: readonly string[]
  readonly description: string
  /** Writes the rows of `slice` to `sink`. */
  write?: (slice: Slice, sink: Sink) => Promise<void>
  /** For binary formats written whole: writes the rows of `slice` to `file` (whole or not at all). */
  writeFile?: (slice: Slice, file: string, stop: () => void) => Promise<void>
  /** Reads the rows of `file` into a new vec at `path`; returns the row count. */
  read?: (file: string, path: string, schema: Schema | undefined, stop: () => void, aborted: AbortSignal) => Promise<number>
}

/** The vec's columns in schema order (`values` of a scalar vec is its one column). */
export function columnsOf(slice: Slice): AnyColumn[] {
  const all = slice.vec.columns as unknown as Record<string, AnyColumn>
  return slice.spec.columns.map((c) => all[c.name])
}

/** Calls `each(i)` for every row of the slice, updating a progress bar by chunks. */
async function forRows(slice: Slice, label: string, each: (i: number) => Promise<void>): Promise<void> {
  const progress = new Progress(label, slice.to - slice.from, 'rows')
  try {
    for (let i = slice.from; i < slice.to; i++) {
      await each(i)
      if ((i & 0xfff) === 0) progress.update(i - slice.from)
    }
    progress.update(slice.to - slice.from)
  } finally {
    progress.stop()
  }
}

/** The names that `names` holds more than once (in linear time: a header can have 2^20 of them). */
function repeated(names: readonly string[]): string[] {
  const seen = new Set<string>()
  return names.filter((n) => seen.size === seen.add(n).size)
}

/** CSV header names: a field, or for array fields one name per element, `pos[0]`, `pos[1]`... */
export function csvNames(spec: NormalizedSchema): string[] {
  const names = spec.columns.flatMap((c) => (c.count === 1 ? [c.name] : Array.from({ length: c.count }, (_, j) => `${c.name}[${j}]`)))
  const twice = repeated(names)[0]
  if (twice !== undefined) {
    throw new MmapVecError('EINVAL', `CSV cannot tell the columns apart: '${twice}' names a field and an element of an array field; use jsonl`)
  }
  return names
}

const csv: Format = {
  name: 'csv',
  extensions: ['.csv'],
  description: 'comma-separated values with a header row; array fields as pos[0],pos[1],...',
  async write(slice, sink) {
    await sink.write(stringify([csvNames(slice.spec)]))
    const cols = columnsOf(slice)
    const cells = slice.spec.columns.map((c) => ({ el: elementFormatter(c.type, 'text'), n: c.count }))
    await forRows(slice, 'export', async (i) => {
      const parts: string[] = []
      cells.forEach(({ el, n }, k) => {
        for (let j = 0; j < n; j++) parts.push(el(cols[k][i * n + j]))
      })
      await sink.write(parts.join(',') + '\n')
    })
  },
  read: (file, path, schema, stop, aborted) => importRows(file, path, needSchema(schema, 'csv'), csvRows, stop, aborted),
}

const jsonl: Format = {
  name: 'jsonl',
  extensions: ['.jsonl', '.ndjson'],
  description: 'one JSON object per row (a plain value per row for vecs of plain values)',
  async write(slice, sink) {
    const line = jsonLine(slice)
    await forRows(slice, 'export', (i) => sink.write(line(i) + '\n'))
  },
  read: (file, path, schema, stop, aborted) => importRows(file, path, needSchema(schema, 'jsonl'), jsonlRows, stop, aborted),
}

const arrow: Format = {
  name: 'arrow',
  extensions: ['.arrow', '.feather', '.ipc'],
  description: 'Apache Arrow IPC file (binary; needs --out, and the apache-arrow package)',
  async writeFile(slice, file, stop) {
    const progress = new Progress('export', slice.to - slice.from, 'rows')
    try {
      const onProgress = (done: number) => {
        stop()
        progress.update(done)
      }
      await writeArrowIPC(slice.vec, file, { from: slice.from, to: slice.to, onProgress })
    } finally {
      progress.stop()
    }
  },
  async read(file, path, schema, stop) {
    const progress = new Progress('import', 0, 'rows')
    try {
      // The Arrow file says its types; --schema, when given, must match it (and orders the fields).
      const v = await fromArrowIPC(path, file, {
        schema,
        onProgress: (done, total) => {
          stop()
          progress.update(done, total)
        },
      })
      const n = v.length
      v.close()
      return n
    } finally {
      progress.stop()
    }
  },
}

export const FORMATS: readonly Format[] = [csv, jsonl, arrow]

/** The format named `name`, or the one whose extension `file` has. */
export function findFormat(name: string | undefined, file: string | undefined): Format | undefined {
  if (name !== undefined) return FORMATS.find((f) => f.name === name)
  const lower = file?.toLowerCase()
  return FORMATS.find((f) => f.extensions.some((e) => lower?.endsWith(e)))
}

/** A JSON line per row: `{"pos":[1,2,3],"id":"7"}`, or the bare value for vecs of plain values. */
export function jsonLine(slice: Slice): (i: number) => string {
  const cols = columnsOf(slice)
  const cells = slice.spec.columns.map((c) => cellFormatter(c, 'json'))
  if (slice.spec.scalar) return (i) => cells[0](cols[0], i)
  const keys = slice.spec.columns.map((c) => JSON.stringify(c.name))
  return (i) => {
    let s = '{'
    for (let k = 0; k < cells.length; k++) s += (k === 0 ? '' : ',') + keys[k] + ':' + cells[k](cols[k], i)
    return s + '}'
  }
}

function needSchema(schema: Schema | undefined, format: string): Schema {
  if (schema === undefined) {
    throw new UsageError(
      `${format} does not say the types of its values: pass --schema, e.g. --schema '{"pos":["f32",3],"id":"u32"}' (mmapvec info --json <vec> prints a vec's schema)`,
    )
  }
  return schema
}

/** A mistake in how the command was called (exit code 2). */
export class UsageError extends Error {}

type RowSource = (input: Readable, file: string, spec: NormalizedSchema) => AsyncIterable<unknown>

/**
 * Opens the input once (a FIFO gives its data to one open only), before any vec is made, so
 * that a missing or unreadable input fails with its own error and leaves nothing behind.
 */
async function openInput(file: string): Promise<number> {
  let fd: number
  try {
    fd = await promisify(open)(file, 'r')
  } catch (err) {
    throw fromSystemError(err, file, 'opening the input')
  }
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd)
    throw new MmapVecError('EIO', `${file}: is a directory, not a file to import; give the path of the file`, file)
  }
  return fd
}

/**
 * Creates the vec at `path` and pushes the rows `source` reads from `file`. On any failure the
 * new vec is removed, so a failed import leaves nothing behind (an import killed half-way
 * leaves a vec of the rows read so far).
 */
/**
 * `rows`, ending with `aborted`'s reason as soon as it fires, also while a read waits for more
 * input (a pipe whose writer is idle: the read itself cannot be cancelled).
 */
async function* abortable<T>(rows: AsyncIterable<T>, aborted: AbortSignal): AsyncGenerator<T> {
  const it = rows[Symbol.asyncIterator]()
  let onAbort: () => void = () => {}
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(aborted.reason as Error)
    aborted.addEventListener('abort', onAbort, { once: true })
  })
  // Observed here, so that an abort after the last row is no unhandled rejection.
  stopped.catch(() => {})
  try {
    for (;;) {
      const next = await Promise.race([it.next(), stopped])
      if (next.done === true) return
      yield next.value
    }
  } finally {
    aborted.removeEventListener('abort', onAbort)
    // Not awaited once aborted: the source may still wait in its read.
    if (aborted.aborted) void it.return?.()
    else await it.return?.()
  }
}

async function importRows(file: string, path: string, schema: Schema, source: RowSource, stop: () => void, aborted: AbortSignal): Promise<number> {
  const spec = normalizeSchema(schema)
  if (typeof spec === 'string') throw new MmapVecError('EINVAL', `--schema: ${spec}`)
  const fd = await openInput(file)
  let input: ReadStream | undefined
  try {
    const stat = fstatSync(fd)
    const size = stat.size
    const regular = stat.isFile()
    let n = 0
    await createFilled(path, schema, {}, async (v) => {
      const progress = new Progress('import', size, 'bytes')
      try {
        input = createReadStream(file, { fd })
        const stream = input
        // A regular file never keeps a read waiting: its rows are read as they come, and a
        // signal is seen at the next stop(). A pipe's read can wait for good.
        const rows = regular ? source(stream, file, spec) : abortable(source(stream, file, spec), aborted)
        for await (const row of rows) {
          v.push(row as never)
          if ((v.length & 0xfff) === 0) {
            stop()
            progress.update(stream.bytesRead)
          }
        }
        progress.update(size)
        n = v.length
        v.close()
      } catch (err) {
        // A read error (EIO mid-file, say) comes as the operating system's error: name the file.
        throw err instanceof Interrupted ? err : fromSystemError(err, file, 'reading the input')
      } finally {
        progress.stop()
      }
    })
    return n
  } finally {
    // Closes the input however the reading ended (a bad row stops it early).
    if (input !== undefined) input.destroy()
    else closeSync(fd)
  }
}

/** Builds a row from one element reader per (field, index). */
function rowBuilder(spec: NormalizedSchema): (get: (k: number, j: number, name: string) => unknown) => unknown {
  const names = spec.columns.map((c) => (c.count === 1 ? [c.name] : Array.from({ length: c.count }, (_, j) => `${c.name}[${j}]`)))
  return (get) => {
    const fields = spec.columns.map((c, k) => {
      if (c.count === 1) return get(k, 0, names[k][0])
      const a = new Array<unknown>(c.count)
      for (let j = 0; j < c.count; j++) a[j] = get(k, j, names[k][j])
      return a
    })
    if (spec.scalar) return fields[0]
    const row: Record<string, unknown> = {}
    spec.columns.forEach((c, k) => Object.defineProperty(row, c.name, { value: fields[k], enumerable: true }))
    return row
  }
}

/**
 * Pipes `input` into `next` and hands on its errors, so that a read error reaches the loop
 * reading `next`. Not with pipeline: it also destroys `next` with an error when `input` is
 * closed early (after a bad row), an error nobody listens to any more.
 */
function chain<T extends Writable>(input: Readable, next: T): T {
  input.on('error', (e) => next.destroy(e))
  return input.pipe(next)
}

/**
 * The longest row taken (CSV record in characters, JSON line in bytes): far more than any row of the
 * schema needs (1 KiB a value, names included), so that an input of one endless row (a quote
 * never closed) fails with a message instead of filling the memory.
 */
function rowLimit(spec: NormalizedSchema): number {
  return (1 << 20) + 1024 * spec.columns.reduce((n, c) => n + c.count, 0)
}

const tooLong = (file: string, line: number) =>
  new MmapVecError('EINVAL', `${file}:${line}: a row longer than any of the schema's can be: is a quote not closed, or a line break missing?`, file)

/** Passes the input on, failing when a line grows past `limit` bytes (readline would keep it all). */
function lineLimit(limit: number, file: string): Transform {
  let run = 0 // bytes since the last line break
  let line = 1
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      // Chunks (64 KiB) are shorter than the limit: only a line running across them can be too long.
      const at0 = line
      let first = -1
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) {
        if (first === -1) first = at
        line++
      }
      if (first === -1) run += chunk.length
      else if (run + first <= limit) run = chunk.length - chunk.lastIndexOf(10) - 1
      else run = Infinity
      if (run > limit) done(tooLong(file, at0))
      else done(null, chunk)
    },
  })
}

/** The parser's records; its errors (a quote not closed...) as EINVAL naming the file and line. */
async function* csvRecords(parser: Parser, file: string): AsyncIterable<{ record: string[]; info: { lines: number } }> {
  try {
    yield* parser as AsyncIterable<{ record: string[]; info: { lines: number } }>
  } catch (err) {
    // By class: not every csv-parse code starts with CSV_ (INVALID_OPENING_QUOTE).
    if (!(err instanceof CsvError)) throw err
    const lines = (err as { lines?: unknown }).lines
    if (err.code === 'CSV_MAX_RECORD_SIZE') throw tooLong(file, typeof lines === 'number' ? lines : 0)
    throw new MmapVecError(
      'EINVAL',
      `${file}:${typeof lines === 'number' ? lines : '?'}: not valid CSV: ${err.message}; a value with a quote, comma or line break goes in double quotes, each quote in it doubled ("")`,
      file,
    )
  }
}

async function* csvRows(input: Readable, file: string, spec: NormalizedSchema): AsyncIterable<unknown> {
  const limit = rowLimit(spec)
  // Rows of the wrong length are checked below, with a message that names the file.
  const parser = parse({ bom: true, skip_empty_lines: true, info: true, relax_column_count: true, max_record_size: limit })
  chain(input, parser)
  const expected = csvNames(spec)
  const build = rowBuilder(spec)
  let where: number[] | undefined // for each (field, index) in order, its position in a record
  for await (const { record, info } of csvRecords(parser, file)) {
    if (where === undefined) {
      // Sets and a map, not includes/indexOf: an array field of 2^20 values has as many names.
      const inRecord = new Map<string, number>()
      record.forEach((n, i) => {
        if (!inRecord.has(n)) inRecord.set(n, i)
      })
      const inExpected = new Set(expected)
      const missing = expected.filter((n) => !inRecord.has(n))
      const extra = record.filter((n) => !inExpected.has(n))
      const twice = repeated(record)
      if (missing.length + extra.length + twice.length > 0) {
        throw new MmapVecError(
          'EINVAL',
          `${file}:${info.lines}: the header row must name the columns ${expected.join(',')}` +
            (missing.length ? `; missing: ${missing.join(',')}` : '') +
            (extra.length ? `; not in the schema: ${extra.join(',')}` : '') +
            (twice.length ? `; named twice: ${twice.join(',')}` : '') +
            (extra.some((n) => inExpected.has(n.trim())) ? ' (names are compared as written, spaces included)' : ''),
        )
      }
      where = expected.map((n) => inRecord.get(n) ?? -1)
      continue
    }
    if (record.length !== expected.length) {
      throw new MmapVecError('EINVAL', `${file}:${info.lines}: ${record.length} values, the header has ${expected.length}; give each row one value per column`)
    }
    let at = 0
    const pos = where
    yield build((k, _j, name) => parseElement(spec.columns[k].type, record[pos[at++]], () => `${file}:${info.lines}: ${name}`))
  }
  if (where === undefined) throw new MmapVecError('EINVAL', `${file}: empty: a CSV file starts with a header row`)
}

async function* jsonlRows(input: Readable, file: string, spec: NormalizedSchema): AsyncIterable<unknown> {
  const lines = createInterface({ input: chain(input, lineLimit(rowLimit(spec), file)), crlfDelay: Infinity })
  const build = rowBuilder(spec)
  const known = new Set(spec.columns.map((c) => c.name))
  let n = 0
  for await (const line of lines) {
    n++
    if (line.trim() === '') continue
    let parsed: unknown
    // A byte order mark before the first line is not part of it (CSV import drops it too).
    const text = n === 1 && line.startsWith('\uFEFF') ? line.slice(1) : line
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      throw new MmapVecError('EINVAL', `${file}:${n}: not JSON (${(e as Error).message})`)
    }
    const value = keepLostNumbers(text, parsed)
    const at = `${file}:${n}`
    if (!spec.scalar) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new MmapVecError('EINVAL', `${at}: expected an object with the fields ${[...known].join(', ')}`)
      }
      for (const k of Object.keys(value)) if (!known.has(k)) throw new MmapVecError('EINVAL', `${at}: no field named '${k}' in the schema`)
    }
    const fieldOf = (k: number): unknown => {
      // Own fields only: a missing 'constructor' is missing, not Object's constructor.
      const name = spec.columns[k].name
      const v = spec.scalar ? value : Object.hasOwn(value as object, name) ? (value as Record<string, unknown>)[name] : undefined
      if (v === undefined) throw new MmapVecError('EINVAL', `${at}: field '${spec.columns[k].name}' is missing`)
      return v
    }
    yield build((k, j, name) => {
      const c = spec.columns[k]
      const f = fieldOf(k)
      if (c.count === 1) return parseElement(c.type, f, () => `${at}: ${name}`)
      if (!Array.isArray(f) || f.length !== c.count) {
        throw new MmapVecError('EINVAL', `${at}: field '${c.name}' must be an array of ${c.count} values`)
      }
      return parseElement(c.type, f[j], () => `${at}: ${name}`)
    })
  }
}
