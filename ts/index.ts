/**
 * mmapvec: persistent, memory-mapped, growable struct-of-arrays vectors.
 *
 * A vec is opened with a schema; its columns are TypedArrays over the file's own pages. The
 * hot path (`push`, `get`, `set`, `at`, `pop`, `length`, `columns`) runs in JavaScript and calls
 * native code only when the capacity must grow.
 */
import { constants as bufferConstants } from 'node:buffer'
import { NativeVec, externalBuffersAllowed, remove as nativeRemove } from '../native/binding.js'
import { fromArrow, type ArrowTable, type FromArrowOptions } from './arrow.js'
import { specialise } from './codegen.js'
import { MmapVecError, fromNative, native, type ErrorCode } from './errors.js'
import {
  ARRAY_TYPES,
  normalizeSchema,
  type AnyColumn,
  type ColumnInput,
  type ColumnsOf,
  type NormalizedSchema,
  type PartialRowInput,
  type RowInput,
  type RowOf,
  type Schema,
  type ScalarType,
  type ValuesOf,
} from './schema.js'

export { MmapVecError, type ErrorCode }
export { fromArrowIPC, toArrow, writeArrowIPC, writeArrowIPCSync } from './arrow.js'
export type { ArrowTable, FromArrowOptions, RowRange, ToArrowOptions, WriteArrowOptions } from './arrow.js'
export type {
  ArrayOfType,
  ColumnInput,
  ColumnOf,
  ColumnsOf,
  FieldInput,
  FieldType,
  FieldValue,
  Fields,
  PartialRowInput,
  RowInput,
  RowOf,
  ScalarType,
  Schema,
  ValuesOf,
} from './schema.js'

/** Options of {@link MmapVec.open}, {@link MmapVec.create} and {@link MmapVec.temp}. */
export interface OpenOptions {
  /** Create the vec when it is missing (default true; `open` only). */
  create?: boolean
  /** Open with a shared lock; every write throws EREADONLY. Writes through `columns` stay in this process. */
  readOnly?: boolean
  /** Rows to make room for at once. */
  capacity?: number
  /** Wait this long for the lock (blocking the thread); default 0 fails at once with ELOCKED. */
  lockTimeoutMs?: number
  /** The application's data version: stored at creation; opening with another one fails with EVERSION. */
  version?: number
  /** Flush in the background at this interval while there are changes. */
  autoFlushMs?: number
  /**
   * Address space (bytes) to reserve per column, default 1 GiB. A column grows in place within
   * its reservation, so views taken earlier stay valid; past it, the column moves to a new
   * reservation and earlier views of it become empty. Costs no memory, only address space.
   */
  reservation?: number
  /**
   * `'mmap'`: columns are views of the file's pages (zero copy). `'buffered'`: columns live in
   * memory V8 allocates, read from the files at open and written back on flush, autoFlush and
   * close; it costs memory equal to the data, and a crash loses what was not flushed. The
   * default is `'mmap'`, or `'buffered'` where the runtime forbids views of other memory
   * (Electron's V8 memory cage); the environment variable `MMAPVEC_MODE` overrides it.
   */
  mode?: Mode
}

/** How a vec's columns reach JavaScript; see {@link OpenOptions.mode}. */
export type Mode = 'mmap' | 'buffered'

let defaultModeCache: Mode | undefined
function defaultMode(): Mode {
  if (defaultModeCache === undefined) {
    const env = process.env.MMAPVEC_MODE
    if (env !== undefined && env !== '' && env !== 'mmap' && env !== 'buffered') {
      throw invalid(`MMAPVEC_MODE must be 'mmap' or 'buffered', got '${env}'`)
    }
    defaultModeCache = env === 'mmap' || env === 'buffered' ? env : externalBuffersAllowed() ? 'mmap' : 'buffered'
  }
  return defaultModeCache
}

/** Options of {@link MmapVec.close}. */
export interface CloseOptions {
  /** Flush before closing (default true). */
  flush?: boolean
}

const OPTION_TYPES: Record<keyof OpenOptions, 'boolean' | 'number' | 'string'> = {
  create: 'boolean',
  readOnly: 'boolean',
  capacity: 'number',
  lockTimeoutMs: 'number',
  version: 'number',
  autoFlushMs: 'number',
  reservation: 'number',
  mode: 'string',
}

function invalid(message: string, path?: string): MmapVecError {
  return new MmapVecError('EINVAL', message, path)
}

function checkCount(n: unknown, what: string, path: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalid(`${path}: ${what} must be a whole number >= 0, got ${String(n)}`, path)
  }
  return n
}

function checkOptions(path: string, options: unknown): OpenOptions {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object') throw invalid(`${path}: options must be an object`, path)
  for (const [k, v] of Object.entries(options)) {
    const want = OPTION_TYPES[k as keyof OpenOptions]
    if (want === undefined) {
      throw invalid(`${path}: unknown option '${k}'; the options are ${Object.keys(OPTION_TYPES).join(', ')}`, path)
    }
    if (v !== undefined && typeof v !== want) throw invalid(`${path}: option '${k}' must be a ${want}, got ${String(v)}`, path)
  }
  const o = options as OpenOptions
  for (const k of ['capacity', 'lockTimeoutMs', 'version', 'reservation'] as const) if (o[k] !== undefined) checkCount(o[k], k, path)
  if (o.mode !== undefined && o.mode !== 'mmap' && o.mode !== 'buffered') {
    throw invalid(`${path}: mode must be 'mmap' or 'buffered', got '${o.mode}'`, path)
  }
  if (o.autoFlushMs !== undefined && !(o.autoFlushMs > 0 && o.autoFlushMs < 2 ** 31)) {
    throw invalid(`${path}: autoFlushMs must be a positive number of milliseconds, got ${o.autoFlushMs}`, path)
  }
  return o
}

type Making = 'open' | 'create' | 'temp'

interface Opening<S extends Schema> {
  native: NativeVec
  schema: S
  spec: NormalizedSchema
  options: OpenOptions
  temp: boolean
}

/**
 * A persistent, memory-mapped, growable array of rows laid out as a struct of arrays.
 *
 * After anything that may grow or shrink the vec (`push`, `pushMany`, `reserve`,
 * `shrinkToFit`), read `columns` (or `values`) again to see the new rows, as with
 * `WebAssembly.Memory`'s `buffer`. Views taken earlier stay valid for the rows they cover while
 * the vec grows; after `shrinkToFit`, `close`, or a growth past the column's address-space
 * reservation, they become empty (length 0) instead of pointing at freed memory.
 */
export class MmapVec<S extends Schema = Schema> implements Iterable<RowOf<S>> {
  /** @internal */ declare _native: NativeVec
  /** @internal */ declare _path: string
  /** @internal */ declare _schema: S
  /** @internal */ declare _spec: NormalizedSchema
  /** @internal */ declare _readOnly: boolean
  /** @internal */ declare _temp: boolean
  /** @internal Row count; the header's copy is written on every change. */ declare _len: number
  /** @internal */ declare _cap: number
  /** @internal `push` grows when the length reaches this: the capacity, or -1 when read-only or closed. */
  declare _limit: number
  /** @internal The header's row count, an f64 at index 0. */ declare _hdr: Float64Array
  /** @internal Full-capacity views, in schema order. */ declare _cols: AnyColumn[]
  /** @internal Bumped whenever the views are replaced. */ declare _gen: number
  /** @internal */ declare _columnsCache: { len: number; gen: number; value: Record<string, AnyColumn> } | undefined
  /** @internal */ declare _closed: boolean
  /** @internal */ declare _dirty: boolean
  /** @internal */ declare _timer: ReturnType<typeof setInterval> | undefined
  /** @internal */ declare _flushing: boolean
  /** @internal */ declare _flushError: unknown
  /** @internal Stored column index of each schema column. */ declare _stored: number[]
  /** @internal Columns in V8-allocated memory, copied to and from the files. */ declare _buffered: boolean

  /** @internal Use {@link MmapVec.open}, {@link MmapVec.create} or {@link MmapVec.temp}. */
  constructor(o: Opening<S>) {
    this._native = o.native
    this._schema = o.schema
    this._spec = o.spec
    this._temp = o.temp
    this._readOnly = o.options.readOnly === true
    this._buffered = o.options.mode === 'buffered'
    this._path = o.native.path
    this._closed = false
    this._dirty = false
    this._timer = undefined
    this._flushing = false
    this._flushError = undefined
    this._columnsCache = undefined
    this._gen = 0
    const storedSchema = JSON.parse(o.native.schemaJson) as NormalizedSchema
    this._stored = o.spec.columns.map((c) => storedSchema.columns.findIndex((s) => s.name === c.name))
    if (this._buffered) {
      this._hdr = new Float64Array(1)
      this._hdr[0] = o.native.length
    } else {
      const hb = native(this._path, () => o.native.headerBuffer())
      this._hdr = new Float64Array(hb, o.native.lengthOffset, 1)
    }
    // Keep the length a small integer where it fits: a field that once held a double stays a
    // boxed double in V8, which makes every push several times slower.
    const stored = this._hdr[0]
    this._len = stored <= 0x3fffffff ? stored | 0 : stored
    this._cap = 0
    this._limit = -1
    this._cols = []
    for (let k = 0; k < o.spec.columns.length; k++) (this as unknown as Record<string, unknown>)[`_c${k}`] = undefined
    this._refresh()
    if (o.options.autoFlushMs !== undefined && !this._readOnly) {
      this._timer = setInterval(() => this._autoFlush(), o.options.autoFlushMs)
      this._timer.unref()
    }
  }

  /**
   * Opens the vec at `path`, creating it when missing (unless `create: false`). The stored
   * schema must have the same fields (ESCHEMA otherwise).
   */
  static open<const S extends Schema>(path: string, schema: S, options?: OpenOptions): MmapVec<S> {
    return MmapVec._make('open', path, schema, options)
  }

  /** Creates a new vec at `path`; fails with EEXIST when something is there. */
  static create<const S extends Schema>(path: string, schema: S, options?: OpenOptions): MmapVec<S> {
    return MmapVec._make('create', path, schema, options)
  }

  /**
   * A scratch vec in the OS temp dir. Its files are deleted as soon as they are open, so nothing
   * is left on disk after close or after a crash.
   */
  static temp<const S extends Schema>(schema: S, options?: OpenOptions): MmapVec<S> {
    return MmapVec._make('temp', '', schema, options)
  }

  /** Deletes the vec at `path`. Fails with ELOCKED while it is open, EFORMAT if it is not a vec. */
  static remove(path: string): void {
    if (typeof path !== 'string' || path === '') throw invalid(`path must be a non-empty string, got ${String(path)}`)
    native(path, () => nativeRemove(path))
  }

  /**
   * Creates a vec at `path` from an apache-arrow Table (returns the vec) or from the path of an
   * Arrow IPC file (returns a Promise of it; read one record batch at a time). Columns must be
   * Int8..Int64, Uint8..Uint64, Float32, Float64, Bool or FixedSizeList of those, without
   * nulls; the schema comes from the Arrow one unless `options.schema` is given. On any failure
   * nothing is left at `path`. Needs the optional peer dependency `apache-arrow`.
   */
  static fromArrow<const S extends Schema = Schema>(path: string, table: ArrowTable, options?: FromArrowOptions<S>): MmapVec<S>
  static fromArrow<const S extends Schema = Schema>(path: string, file: string, options?: FromArrowOptions<S>): Promise<MmapVec<S>>
  static fromArrow<const S extends Schema = Schema>(path: string, source: ArrowTable | string, options?: FromArrowOptions<S>): MmapVec<S> | Promise<MmapVec<S>> {
    return fromArrow(path, source, options)
  }

  /** @internal */
  static _make<S extends Schema>(mode: Making, path: string, schema: S, options: OpenOptions | undefined): MmapVec<S> {
    if (mode !== 'temp' && (typeof path !== 'string' || path === '')) {
      throw invalid(`path must be a non-empty string, got ${String(path)}`)
    }
    const where = mode === 'temp' ? 'temp vec' : path
    const o = checkOptions(where, options)
    if (mode === 'create' && o.create === false) throw invalid(`${where}: create() with create: false makes no sense`, path)
    const spec = normalizeSchema(schema)
    if (typeof spec === 'string') throw invalid(`${where}: ${spec}`, path || undefined)
    // Resolved before anything touches the disk: a bad MMAPVEC_MODE fails here.
    const resolved: OpenOptions = { ...o, mode: o.mode ?? defaultMode() }
    const nv = native(path || undefined, () =>
      NativeVec.open(path, JSON.stringify(spec), {
        create: mode !== 'open' || o.create !== false,
        createNew: mode === 'create',
        readOnly: o.readOnly === true,
        temp: mode === 'temp',
        capacity: o.capacity ?? 0,
        lockTimeoutMs: o.lockTimeoutMs ?? 0,
        version: o.version,
        reservation: o.reservation,
        // Node 20 cannot make an ArrayBuffer over native memory past 4 GiB; the capacity of a
        // column stays within what a view of it can show.
        maxViewBytes: bufferConstants.MAX_LENGTH,
      }),
    )
    const Cls = specialise(MmapVec, spec)
    return new Cls({ native: nv, schema, spec, options: resolved, temp: mode === 'temp' }) as MmapVec<S>
  }

  /** Number of rows. */
  get length(): number {
    return this._len
  }

  /** Rows the files have room for before the next growth. */
  get capacity(): number {
    return this._closed ? 0 : this._cap
  }

  /** The schema the vec was opened with. */
  get schema(): S {
    return this._schema
  }

  /** `'mmap'` or `'buffered'`; see {@link OpenOptions.mode}. */
  get mode(): Mode {
    return this._buffered ? 'buffered' : 'mmap'
  }

  /** The vec's directory (for temp vecs, a name that no longer exists on disk). */
  get path(): string {
    return this._path
  }

  get readOnly(): boolean {
    return this._readOnly
  }

  get closed(): boolean {
    return this._closed
  }

  /** The application's data version stored with the vec. */
  get version(): number {
    this._open()
    return this._native.appVersion
  }

  /**
   * One TypedArray per field over the mapped pages, `length * width` long. Writes go straight
   * to the file's pages. Read it again after the vec grows to see new rows.
   */
  get columns(): ColumnsOf<S> {
    this._open()
    const c = this._columnsCache
    if (c !== undefined && c.len === this._len && c.gen === this._gen) return c.value as ColumnsOf<S>
    const value: Record<string, AnyColumn> = {}
    this._spec.columns.forEach((col, k) => {
      Object.defineProperty(value, col.name, {
        value: this._cols[k].subarray(0, this._len * col.count),
        enumerable: true,
      })
    })
    Object.freeze(value)
    this._columnsCache = { len: this._len, gen: this._gen, value }
    if (!this._readOnly) this._dirty = true
    return value as ColumnsOf<S>
  }

  /** The one column of a scalar vec (`MmapVec.open(path, 'f64')`), `length * width` long. */
  get values(): ValuesOf<S> {
    if (!this._spec.scalar) {
      this._open()
      throw invalid(`${this._path}: values is for vecs of plain values; this one has fields, use columns`, this._path)
    }
    return (this.columns as Record<string, unknown>).value as ValuesOf<S>
  }

  /** Appends a row; returns the new length. */
  push(row: RowInput<S>): number {
    void row
    throw new Error('generated per schema')
  }

  /** A copy of row `i`. */
  get(i: number): RowOf<S> {
    void i
    throw new Error('generated per schema')
  }

  /** Writes the given fields of row `i`; the others keep their values. */
  set(i: number, row: PartialRowInput<S>): void {
    void i
    void row
    throw new Error('generated per schema')
  }

  /** Row `i`, counting from the end when negative; undefined when out of bounds. */
  at(i: number): RowOf<S> | undefined {
    if (typeof i !== 'number' || !Number.isInteger(i)) {
      this._open()
      throw invalid(`${this._path}: index must be a whole number, got ${String(i)}`, this._path)
    }
    const j = i < 0 ? this._len + i : i
    if (j < 0 || j >= this._len) {
      this._open()
      return undefined
    }
    return this.get(j)
  }

  /**
   * Appends many rows: an iterable of rows, or an object of columns (one array or TypedArray
   * per field, `rows * width` long each), which is the fast bulk path. Returns the new length.
   */
  pushMany(input: Iterable<RowInput<S>> | ColumnInput<S>): number {
    this._writable()
    if (input === null || typeof input !== 'object') {
      throw invalid(`${this._path}: pushMany takes an iterable of rows or an object of columns`, this._path)
    }
    if (this._spec.scalar && ArrayBuffer.isView(input)) return this._pushColumns({ value: input })
    if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
      const start = this._len
      try {
        for (const row of input as Iterable<RowInput<S>>) this.push(row)
      } catch (err) {
        // All or nothing: a bad row takes back the rows before it.
        if (!this._closed) this._setLength(start)
        throw err
      }
      return this._len
    }
    if (this._spec.scalar) throw invalid(`${this._path}: pushMany on a vec of plain values takes an iterable or a TypedArray`, this._path)
    return this._pushColumns(input as Record<string, unknown>)
  }

  /** Removes the last row and returns it (undefined when empty). */
  pop(): RowOf<S> | undefined {
    this._writable()
    if (this._len === 0) return undefined
    const row = this.get(this._len - 1)
    this._setLength(this._len - 1)
    return row
  }

  /** Removes row `i` by moving the last row into its place (O(1)); returns the removed row. */
  swapRemove(i: number): RowOf<S> {
    this._writable()
    const row = this.get(i)
    const last = this._len - 1
    if (i !== last) {
      this._spec.columns.forEach((c, k) => this._cols[k].copyWithin(i * c.count, last * c.count, (last + 1) * c.count))
    }
    this._setLength(last)
    return row
  }

  /** Keeps the first `n` rows (no-op when `n >= length`); capacity is unchanged. */
  truncate(n: number): void {
    this._writable()
    checkCount(n, 'truncate length', this._path)
    if (n < this._len) this._setLength(n)
  }

  /** Removes every row; capacity is unchanged. */
  clear(): void {
    this.truncate(0)
  }

  /** Grows the capacity at once to hold at least `additional` more rows. */
  reserve(additional: number): void {
    this._writable()
    checkCount(additional, 'reserve count', this._path)
    const want = this._len + additional
    if (want > this._cap) this._grow(want, false)
  }

  /** Gives back the disk space past the last row. Views taken before become empty. */
  shrinkToFit(): void {
    this._writable()
    if (this._buffered) this._writeBack()
    this._cap = native(this._path, () => this._native.shrinkToFit())
    this._refresh(true)
  }

  /** Asks the OS to read rows `[start, end)` ahead (madvise WILLNEED), for scans. */
  prefetch(start = 0, end = this._len): void {
    this._open()
    checkCount(start, 'prefetch start', this._path)
    checkCount(end, 'prefetch end', this._path)
    native(this._path, () => this._native.prefetch(start, end))
  }

  *[Symbol.iterator](): Iterator<RowOf<S>> {
    for (let i = 0; i < this._len; i++) yield this.get(i)
  }

  /**
   * Makes everything written so far durable (column data first, then the header that claims
   * it), on the libuv thread pool. The JS thread is not blocked.
   */
  async flush(): Promise<void> {
    this._open()
    this._throwFlushError()
    if (this._readOnly) return
    this._dirty = false
    if (this._buffered) this._writeBack()
    try {
      await this._native.flushJob().run()
    } catch (err) {
      fromNative(err, this._path)
    }
  }

  /** Like {@link flush}, blocking the calling thread until done. */
  flushSync(): void {
    this._open()
    this._throwFlushError()
    if (this._readOnly) return
    this._dirty = false
    if (this._buffered) this._writeBack()
    native(this._path, () => this._native.flushSync())
  }

  /**
   * Flushes (unless `flush: false`), releases the lock and makes every view empty. Closing a
   * closed vec does nothing.
   */
  close(options?: CloseOptions): void {
    if (this._closed) return
    if (this._timer !== undefined) clearInterval(this._timer)
    this._timer = undefined
    try {
      // Buffered columns always go back to the files (the page cache), compared page by page so
      // that unchanged pages stay clean: writes through views leave no trace the vec could see.
      if (this._buffered && !this._readOnly) this._writeBack()
      if (options?.flush !== false && !this._readOnly) native(this._path, () => this._native.flushSync())
    } finally {
      this._native.close()
      if (this._buffered) for (const c of this._cols) structuredClone(c.buffer, { transfer: [c.buffer as ArrayBuffer] })
      this._closed = true
      this._len = 0
      this._cap = 0
      this._limit = -1
      this._cols = this._spec.columns.map((c) => new ARRAY_TYPES[c.type](0))
      this._spec.columns.forEach((_, k) => ((this as unknown as Record<string, unknown>)[`_c${k}`] = this._cols[k]))
      this._columnsCache = undefined
    }
  }

  [Symbol.dispose](): void {
    this.close()
  }

  // ---- internals ----

  /** @internal */
  _open(): void {
    if (this._closed) throw new MmapVecError('ECLOSED', `${this._path}: the vec is closed; open it again`, this._path)
  }

  /** @internal */
  _writable(): void {
    this._open()
    if (this._readOnly) this._notWritable()
  }

  /** @internal */
  _notWritable(): never {
    this._open()
    throw new MmapVecError('EREADONLY', `${this._path}: opened readOnly; open it without readOnly to change it`, this._path)
  }

  /** @internal Called by `push` when the length reaches `_limit`. */
  _growFor(n: number): void {
    this._writable()
    this._grow(n, true)
  }

  /** @internal */
  _grow(n: number, geometric: boolean): void {
    this._cap = native(this._path, () => this._native.grow(n, geometric))
    this._refresh()
  }

  /**
   * @internal Takes new full-capacity views: from the native layer (mmap mode), or as new
   * V8-allocated buffers (buffered mode) filled from the old ones after a growth, or from the
   * files at open and after `shrinkToFit` (`fromFiles`).
   */
  _refresh(fromFiles = false): void {
    this._cap = this._native.capacity
    this._limit = this._readOnly ? -1 : this._cap
    if (this._buffered) {
      const first = this._cols.length === 0
      this._cols = this._spec.columns.map((c, k) => {
        const Ctor = ARRAY_TYPES[c.type]
        const fresh = new Ctor(this._cap * c.count)
        const bytes = new Uint8Array(fresh.buffer)
        const old = this._cols[k]
        if (first || fromFiles) {
          // Only the rows: past the length the files hold nothing a vec reads, and a new
          // buffer is zero already (and costs no memory until written).
          const used = bytes.subarray(0, this._len * c.count * fresh.BYTES_PER_ELEMENT)
          native(this._path, () => this._native.readColumn(this._stored[k], used))
        } else {
          bytes.set(new Uint8Array(old.buffer, old.byteOffset, Math.min(old.byteLength, bytes.byteLength)))
        }
        // The old buffer is detached, as a moved mapping's views are: a stale view reads as
        // empty instead of silently missing every later change.
        if (!first) structuredClone(old.buffer, { transfer: [old.buffer as ArrayBuffer] })
        return fresh
      })
    } else {
      const bufs = native(this._path, () => this._native.columnBuffers())
      this._cols = this._spec.columns.map((c, k) => {
        const Ctor = ARRAY_TYPES[c.type]
        return new Ctor(bufs[this._stored[k]], 0, this._cap * c.count)
      })
    }
    this._spec.columns.forEach((_, k) => ((this as unknown as Record<string, unknown>)[`_c${k}`] = this._cols[k]))
    this._gen++
  }

  /** @internal Buffered mode: copies every row and the row count into the mapped files. */
  _writeBack(): void {
    native(this._path, () => {
      this._spec.columns.forEach((c, k) => {
        const a = this._cols[k]
        this._native.writeColumn(this._stored[k], new Uint8Array(a.buffer, a.byteOffset, this._len * c.count * a.BYTES_PER_ELEMENT))
      })
      this._native.setLength(this._len)
    })
  }

  /** @internal */
  _setLength(n: number): void {
    this._len = n
    this._hdr[0] = n
    this._dirty = true
  }

  /** @internal */
  _badIndex(i: unknown): never {
    this._open()
    if (typeof i !== 'number' || !Number.isInteger(i)) {
      throw invalid(`${this._path}: index must be a whole number, got ${String(i)}`, this._path)
    }
    throw new MmapVecError('ERANGE', `${this._path}: index ${i} is out of bounds for length ${this._len}`, this._path)
  }

  /** @internal */
  _rowError(r: unknown): MmapVecError {
    return invalid(`${this._path}: a row must be an object with the fields ${this._spec.columns.map((c) => c.name).join(', ')}, got ${String(r)}`, this._path)
  }

  /** @internal */
  _valueError(k: number, v: unknown): MmapVecError {
    const c = this._spec.columns[k]
    const what = c.type === 'i64' || c.type === 'u64' ? 'a bigint' : c.type === 'bool' ? 'a boolean' : 'a number'
    const want = c.count === 1 ? what : `an array of ${c.count} values, each ${what}`
    const field = this._spec.scalar ? 'value' : `field '${c.name}'`
    let got: string
    try {
      got = typeof v === 'bigint' ? `${v}n` : typeof v === 'object' && v !== null ? Object.prototype.toString.call(v) : String(v)
    } catch {
      got = typeof v
    }
    return invalid(`${this._path}: ${field} must be ${want}, got ${got}`, this._path)
  }

  /** @internal For long array fields: true if any element has the wrong type. */
  _badElements(a: ArrayLike<unknown>, type: ScalarType): boolean {
    const want = type === 'i64' || type === 'u64' ? 'bigint' : type === 'bool' ? 'boolean' : 'number'
    for (let j = 0; j < a.length; j++) if (typeof a[j] !== want) return true
    return false
  }

  /** @internal */
  _readArray(c: AnyColumn, o: number, n: number, bool: boolean): unknown[] {
    const out = new Array<unknown>(n)
    for (let j = 0; j < n; j++) out[j] = bool ? c[o + j] !== 0 : c[o + j]
    return out
  }

  /** @internal The bulk path of `pushMany`: checks every column, then copies each at once. */
  _pushColumns(input: Record<string, unknown>): number {
    const cols = this._spec.columns
    let rows = -1
    for (const [k, c] of cols.entries()) {
      const a = input[c.name] as ArrayLike<unknown> | undefined
      const field = this._spec.scalar ? 'values' : `column '${c.name}'`
      if (a === null || typeof a !== 'object' || typeof a.length !== 'number') {
        throw invalid(`${this._path}: pushMany: ${field} is missing or not an array`, this._path)
      }
      if (a.length % c.count !== 0) {
        throw invalid(`${this._path}: pushMany: ${field} has ${a.length} values, not a multiple of its width ${c.count}`, this._path)
      }
      const n = a.length / c.count
      if (rows >= 0 && n !== rows) {
        throw invalid(`${this._path}: pushMany: ${field} has ${n} rows, the columns before it ${rows}`, this._path)
      }
      rows = n
      if (!(a instanceof ARRAY_TYPES[c.type]) || c.type === 'bool') {
        if (this._badElements(a, c.type)) throw this._valueError(k, a)
      }
    }
    for (const name of Object.keys(input)) {
      if (!cols.some((c) => c.name === name)) throw invalid(`${this._path}: pushMany: no field named '${name}'`, this._path)
    }
    const start = this._len
    if (start + rows > this._cap) this._grow(start + rows, true)
    cols.forEach((c, k) => {
      const a = input[c.name] as ArrayLike<number> & ArrayLike<bigint> & ArrayLike<boolean>
      const dst = this._cols[k]
      if (c.type === 'bool') {
        const o = start * c.count
        for (let j = 0; j < a.length; j++) dst[o + j] = a[j] ? 1 : 0
      } else {
        ;(dst as { set(a: ArrayLike<unknown>, o: number): void }).set(a, start * c.count)
      }
    })
    this._setLength(start + rows)
    return this._len
  }

  /** @internal */
  _autoFlush(): void {
    if (!this._dirty || this._flushing || this._closed) return
    this._dirty = false
    this._flushing = true
    try {
      if (this._buffered) this._writeBack()
    } catch (e) {
      this._flushing = false
      this._flushError = e
      return
    }
    this._native.flushJob().run().then(
      () => {
        this._flushing = false
      },
      (err: unknown) => {
        this._flushing = false
        try {
          fromNative(err, this._path)
        } catch (e) {
          this._flushError = e
        }
      },
    )
  }

  /** @internal A failed background flush is reported by the next flush call. */
  _throwFlushError(): void {
    const e = this._flushError
    if (e !== undefined) {
      this._flushError = undefined
      throw e
    }
  }
}
