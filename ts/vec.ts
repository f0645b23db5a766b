/**
 * The class {@link MmapVec}: the public methods and their documentation (typedoc validates that
 * every public member is documented, which is why this file is long). Bodies longer than a few
 * lines live in files of their own and are called with the vec's internals (internals.ts).
 */
import type { NativeVec, TypedArray as NativeTypedArray } from '../native/binding.js'
import { fromArrow, type ArrowTable, type FromArrowOptions } from './arrow.js'
import { setBaseClass, specialise } from './codegen.js'
import { MmapVecError, callNative, checkCount, fromNative, invalid } from './errors.js'
import { inspect as inspectVec, verify as verifyVec, type VecInfo, type VerifyProblem } from './info.js'
import { setColumns, type Opening, type VecInternals } from './internals.js'
import { openVec, removeVec, type CloseOptions, type Making, type Mode, type OpenOptions } from './open.js'
import { checkBuffers, type Storage } from './storage/storage.js'
import {
  ARRAY_TYPES,
  field,
  type AnyColumn,
  type ColumnInput,
  type ColumnSpec,
  type ColumnsOf,
  type FieldNames,
  type FieldType,
  type NormalizedSchema,
  type PartialRowInput,
  type RowInput,
  type RowOf,
  type Schema,
  type ScalarType,
  type ValuesOf,
  type WithColumn,
  type WithRenamedColumn,
  type WithoutColumn,
} from './schema.js'
import { notUnicode, notUnicodeMessage } from './schema.js'

/** A `pushMany` column this large or larger is written through the file (see `_pushColumns`). */
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

/**
 * Reads `n` elements of `a` once each into `out` (a TypedArray of the column's type), checking
 * their JavaScript type: false at the first bad one. Getters may run; nothing else is touched.
 */
function copyChecked(a: ArrayLike<unknown>, n: number, type: ScalarType, out: AnyColumn): boolean {
  const want = type === 'i64' || type === 'u64' ? 'bigint' : type === 'bool' ? 'boolean' : 'number'
  const o = out as unknown as unknown[]
  for (let j = 0; j < n; j++) {
    const e = a[j]
    if (typeof e !== want) return false
    o[j] = want === 'boolean' ? (e ? 1 : 0) : e
  }
  return true
}

/** The longest field name in bytes, and the most fields (the core enforces the same). */
const MAX_NAME_BYTES = 255
const MAX_COLUMNS = 1024

function checkName(name: unknown, method: string, what: string, path: string): void {
  if (typeof name !== 'string' || name === '') {
    throw invalid(`${path}: ${method}: ${what} must be a non-empty string, got ${typeof name === 'string' ? "''" : String(name)}`, path)
  }
  if (notUnicode(name)) throw invalid(`${path}: ${method}: ${notUnicodeMessage(what, name)}`, path)
  // Checked here as well as in the core so that a refused call fails before buffered mode
  // writes anything back.
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    throw invalid(`${path}: ${method}: field name '${name.slice(0, 32)}...' is longer than ${MAX_NAME_BYTES} bytes`, path)
  }
}


/**
 * A persistent, memory-mapped, growable array of rows laid out as a struct of arrays.
 *
 * After anything that may grow or shrink the vec (`push`, `pushMany`, `reserve`,
 * `shrinkToFit`), read `columns` (or `values`) again to see the new rows, as with
 * `WebAssembly.Memory`'s `buffer`. Views taken earlier stay valid for the rows they cover while
 * the vec grows; after `shrinkToFit`, `close`, or a growth past the column's address-space
 * reservation, they become empty (length 0) instead of pointing at freed memory.
 *
 * Open one with {@link MmapVec.open}, {@link MmapVec.create} or {@link MmapVec.temp}; the
 * constructor is not public. A vec holds a lock on its files from open to {@link MmapVec.close}.
 *
 * @typeParam S - the schema the vec was opened with; it types rows ({@link RowOf}) and columns
 * ({@link ColumnsOf}). {@link Schema} when the vec was opened with its stored schema.
 *
 * @example
 * ```ts
 * const Particle = { pos: ['f32', 3], vel: ['f32', 3], id: 'u32' } as const
 * using v = MmapVec.open('world/particles.mvec', Particle)
 * v.push({ pos: [0, 0, 0], vel: [1, 0, 0], id: 7 })
 * const { pos, vel } = v.columns // read again after pushes that may grow the vec
 * for (let i = 0; i < pos.length; i++) pos[i] += vel[i] / 60
 * await v.flush()
 * ```
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
  /** @internal */ declare _timer: ReturnType<typeof setInterval> | undefined
  /** @internal */ declare _flushing: boolean
  /** @internal */ declare _flushError: unknown
  /** @internal Stored column index of each schema column. */ declare _stored: number[]
  /** @internal How the columns reach JavaScript (storage/storage.ts), chosen at open. */ declare _storage: Storage<VecInternals>

  /** @internal Use {@link MmapVec.open}, {@link MmapVec.create} or {@link MmapVec.temp}. */
  constructor(o: Opening<S>) {
    this._native = o.native
    this._schema = o.schema
    this._spec = o.spec
    this._temp = o.temp
    this._readOnly = o.readOnly
    // One field for every mode, in the same place: every vec has the same hidden class.
    this._storage = o.storage
    this._path = o.native.path
    this._closed = false
    this._timer = undefined
    this._flushing = false
    this._flushError = undefined
    this._columnsCache = undefined
    this._gen = 0
    const storedSchema = JSON.parse(o.native.schemaJson) as NormalizedSchema
    this._stored = o.spec.columns.map((c) => storedSchema.columns.findIndex((s) => s.name === c.name))
    this._hdr = o.storage.header(this)
    // Keep the length a small integer where it fits: a field that once held a double stays a
    // boxed double in V8, which makes every push several times slower.
    const stored = this._hdr[0]
    this._len = stored <= 0x3fffffff ? stored | 0 : stored
    this._cap = 0
    this._limit = -1
    this._cols = []
    // The column fields `_c0`... are first written by the storage's refresh below (through
    // setColumns), not set to undefined here first: V8 treats a field written once as a
    // constant, so while no vec of this schema has grown, optimised code can embed the columns
    // (2x faster random `get`).
    o.storage.refresh(this, false)
    o.storage.attach(this)
    if (o.autoFlushMs !== undefined && !this._readOnly) {
      this._timer = setInterval(() => this._autoFlush(), o.autoFlushMs)
      this._timer.unref()
    }
  }

  /**
   * Opens the vec at `path` (a directory), creating it and missing parent directories when
   * nothing is there (unless `create: false`). The stored schema must have the same fields, in
   * any order. The row type is inferred from `schema`; `as const` is not needed inline.
   *
   * @param path - the vec's directory
   * @param schema - the fields, e.g. `{ pos: ['f32', 3], id: 'u32' }`, or one field type
   *   (`'f64'`) for a vec of plain values
   * @param options - see {@link OpenOptions}
   * @returns the open vec, holding an exclusive lock (a shared one when `readOnly`)
   * @throws {@link MmapVecError} `ESCHEMA` when the stored schema differs (the message shows
   *   the difference and the calls that migrate); `ENOENT` when missing and `create: false`.
   * @throws {@link MmapVecError} `ELOCKED` when another handle holds the lock (after
   *   `lockTimeoutMs`); `EFORMAT` when `path` is not a vec or is damaged; `EARCH` for a vec of the
   *   other byte order; `EVERSION` when `options.version` differs from the stored one; `EINVAL` for
   *   a bad path, schema or option; `ENOSPC` when there is no room for `capacity`; `ERANGE` when
   *   a column would be larger than this runtime can view; `EACCES`, `EIO` from the OS.
   *
   * @example
   * ```ts
   * const v = MmapVec.open('world/units.mvec', { pos: ['f32', 3], hp: 'u16' })
   * const prices = MmapVec.open('prices.mvec', 'f64', { readOnly: true })
   * ```
   */
  static open<const S extends Schema>(path: string, schema: S, options?: OpenOptions): MmapVec<S>
  /**
   * Opens the existing vec at `path` with the schema it stores, for code that does not know it
   * (tools, inspectors): `v.schema` is the stored schema. Never creates: with nothing at `path`
   * it fails with ENOENT, since creating a vec needs a schema. The `create` option is ignored.
   *
   * @param path - the vec's directory
   * @param schema - `undefined`: use the stored schema
   * @param options - see {@link OpenOptions}
   * @returns the open vec, typed `MmapVec<Schema>`
   * @throws {@link MmapVecError} `ENOENT` when nothing is at `path`.
   * @throws {@link MmapVecError} `ELOCKED` when another handle holds the lock (after
   *   `lockTimeoutMs`); `EFORMAT` when `path` is not a vec or is damaged; `EARCH` for a vec of the
   *   other byte order; `EVERSION` when `options.version` differs from the stored one; `EINVAL` for
   *   a bad path, schema or option; `ENOSPC` when there is no room for `capacity`; `ERANGE` when
   *   a column would be larger than this runtime can view; `EACCES`, `EIO` from the OS.
   *
   * @example
   * ```ts
   * const v = MmapVec.open(process.argv[2], undefined, { readOnly: true })
   * console.log(v.schema, v.length)
   * ```
   */
  static open(path: string, schema?: undefined, options?: OpenOptions): MmapVec<Schema>
  static open(path: string, schema?: Schema, options?: OpenOptions): MmapVec<Schema> {
    return MmapVec._make('open', path, schema, options)
  }

  /**
   * Creates a new vec at `path` (and missing parent directories); unlike
   * {@link MmapVec.open}, it never opens an existing one.
   *
   * @param path - the new vec's directory
   * @param schema - the fields, or one field type for a vec of plain values
   * @param options - see {@link OpenOptions}; `create: false` is `EINVAL`
   * @returns the new, empty vec, holding an exclusive lock
   * @throws {@link MmapVecError} `EEXIST` when something is at `path`; `EINVAL` for a bad
   *   path, schema or option; `ENOSPC` when there is no room for `capacity`; `EACCES`, `EIO`
   *   from the OS.
   */
  static create<const S extends Schema>(path: string, schema: S, options?: OpenOptions): MmapVec<S> {
    return MmapVec._make('create', path, schema, options)
  }

  /**
   * A scratch vec in the OS temp dir. Its files are deleted as soon as they are open, so nothing
   * is left on disk after close or after a crash. Its {@link MmapVec.path} is a directory that
   * no longer exists. Nothing else can open it, so the rows live as long as the vec does.
   *
   * @param schema - the fields, or one field type for a vec of plain values
   * @param options - see {@link OpenOptions}
   * @returns the new, empty vec
   * @throws {@link MmapVecError} `EINVAL` for a bad schema or option; `ENOSPC`, `EACCES`,
   *   `EIO` from the OS.
   *
   * @example
   * ```ts
   * using scratch = MmapVec.temp({ x: 'f64', y: 'f64' }, { capacity: 1_000_000 })
   * ```
   */
  static temp<const S extends Schema>(schema: S, options?: OpenOptions): MmapVec<S> {
    return MmapVec._make('temp', '', schema, options)
  }

  /**
   * Deletes the vec at `path`: it disappears at once (renamed away first), then its files are
   * deleted. Something that is not a vec is never deleted.
   *
   * @param path - the vec's directory
   * @throws {@link MmapVecError} `ELOCKED` while the vec is open anywhere (this process
   *   included); `EFORMAT` when `path` is not a vec; `ENOENT` when nothing is there; `EINVAL`
   *   for a bad path; `EACCES`, `EIO` from the OS.
   */
  static remove(path: string): void {
    removeVec(path)
  }

  /**
   * Reads what the vec at `path` is (schema, length, capacity, column file sizes, format and
   * application version) and who has it open, without opening it: no lock is taken (the lock
   * is probed with non-blocking tries released at once; an open that does not wait may fail
   * with ELOCKED at that very instant) and nothing is changed, so it works while another
   * process has the vec open read-write. Throws as opening would when the header is missing
   * or damaged (ENOENT, EFORMAT, EARCH); use {@link MmapVec.verify} to list every problem.
   *
   * @param path - the vec's directory
   * @returns the stored schema, length, capacity, each column's file and size, byte order,
   *   format and application version, and the lock state
   * @throws {@link MmapVecError} `ENOENT` when nothing is at `path`; `EFORMAT` when the header
   *   is missing or damaged; `EARCH` for a vec of the other byte order; `EINVAL` for a bad path;
   *   `EACCES`, `EIO` from the OS.
   *
   * @example
   * ```ts
   * const info = MmapVec.inspect('world/particles.mvec')
   * if (info.lock === 'exclusive') console.log('a writer has it open')
   * ```
   */
  static inspect(path: string): VecInfo {
    return inspectVec(path)
  }

  /**
   * Runs every check the file format allows on the vec at `path` and returns every problem
   * found, an empty array for a sound vec: the header (magic, byte order, format version,
   * size, checksum, reserved bytes, padding, schema, row count), each column file (present, a
   * regular file, whole pages, zeros before the rows, room for the row count) and the values
   * of bool columns. Reads only, takes no lock, never changes a file; works while the vec is
   * open elsewhere. Throws ENOENT when nothing is at `path`.
   *
   * @param path - the vec's directory
   * @returns every problem found, each with the error opening would give, the check's stable
   *   name and a message; empty when the vec is sound
   * @throws {@link MmapVecError} `ENOENT` when nothing is at `path`; `EINVAL` for a bad path.
   *
   * @example
   * ```ts
   * for (const p of MmapVec.verify('world/particles.mvec')) console.error(p.code, p.check, p.message)
   * ```
   */
  static verify(path: string): VerifyProblem[] {
    return verifyVec(path)
  }

  /**
   * Creates a vec at `path` from an apache-arrow Table (returns the vec) or from the path of an
   * Arrow IPC file (returns a Promise of it; read one record batch at a time). Columns must be
   * Int8..Int64, Uint8..Uint64, Float32, Float64, Bool or FixedSizeList of those, without
   * nulls; the schema comes from the Arrow one unless `options.schema` is given. On any failure
   * nothing is left at `path`. Needs the optional peer dependency `apache-arrow`.
   *
   * This overload copies the rows of an in-memory Table and returns the vec at once.
   *
   * @param path - the new vec's directory
   * @param table - an apache-arrow Table
   * @param options - those of {@link MmapVec.create} (but `create` and `readOnly`), `schema`
   *   and `onProgress`; see {@link FromArrowOptions}
   * @returns the new vec, open read-write
   * @throws {@link MmapVecError} `EDEPENDENCY` when apache-arrow is not installed; `EINVAL`
   *   for a column type a vec cannot store, a null value, or a bad option; `ESCHEMA` when the
   *   columns do not match `options.schema`; `EEXIST` when something is at `path`; as
   *   {@link MmapVec.create} otherwise.
   *
   * @example
   * ```ts
   * const v = MmapVec.fromArrow('copy.mvec', table, { schema: { pos: ['f32', 3], id: 'u32' } })
   * ```
   */
  static fromArrow<const S extends Schema = Schema>(path: string, table: ArrowTable, options?: FromArrowOptions<S>): MmapVec<S>
  /**
   * Creates a vec at `path` from an Arrow IPC file (or stream), read one record batch at a
   * time, as {@link fromArrowIPC} does. On any failure nothing is left at `path`.
   *
   * @param path - the new vec's directory
   * @param file - the path of the Arrow IPC file or stream
   * @param options - see {@link FromArrowOptions}
   * @returns a Promise of the new vec, open read-write
   * @throws {@link MmapVecError} (the Promise rejects) `ENOENT` when `file` is missing;
   *   `EFORMAT` when it is not Arrow IPC or is damaged; otherwise as the Table overload.
   *
   * @example
   * ```ts
   * const v = await MmapVec.fromArrow('copy.mvec', 'particles.arrow', {
   *   onProgress: (done, total) => console.log(done, total),
   * })
   * ```
   */
  static fromArrow<const S extends Schema = Schema>(path: string, file: string, options?: FromArrowOptions<S>): Promise<MmapVec<S>>
  static fromArrow<const S extends Schema = Schema>(path: string, source: ArrowTable | string, options?: FromArrowOptions<S>): MmapVec<S> | Promise<MmapVec<S>> {
    return fromArrow(path, source, options)
  }

  /** @internal */
  static _make<S extends Schema>(how: Making, path: string, schema: S | undefined, options: OpenOptions | undefined): MmapVec<S> {
    return openVec(how, path, schema, options) as unknown as MmapVec<S>
  }

  /** The number of rows (0 once closed). */
  get length(): number {
    return this._len
  }

  /** Rows the files have room for before the next growth (0 once closed). */
  get capacity(): number {
    return this._closed ? 0 : this._cap
  }

  /**
   * The schema the vec was opened with (its field order, not necessarily the stored one), or
   * the stored schema when it was opened without one. Schema changes update it.
   */
  get schema(): S {
    return this._schema
  }

  /** `'mmap'`, `'buffered'` or `'overlay'`; see {@link OpenOptions.mode}. */
  get mode(): Mode {
    return this._storage.mode
  }

  /** The vec's directory (for temp vecs, a name that no longer exists on disk). */
  get path(): string {
    return this._path
  }

  /** True when opened with `readOnly`: every change throws `EREADONLY`. */
  get readOnly(): boolean {
    return this._readOnly
  }

  /** True after {@link MmapVec.close}: every call but `close` then throws `ECLOSED`. */
  get closed(): boolean {
    return this._closed
  }

  /**
   * The application's data version stored with the vec (the `version` option at creation; 0
   * when none was given).
   *
   * @throws {@link MmapVecError} `ECLOSED` once closed.
   */
  get version(): number {
    this._open()
    return this._native.appVersion
  }

  /**
   * One TypedArray per field over the mapped pages, `length * width` long (`width` is `n` for
   * a `[type, n]` field, else 1; `bool` fields are `Uint8Array`s of 0 and 1). Writes go
   * straight to the file's pages (in buffered mode, to memory written back on flush). Read it
   * again after the vec grows to see new rows. The object is frozen; it is the same object
   * while the length and the views stay the same.
   *
   * @throws {@link MmapVecError} `ECLOSED` once closed.
   *
   * @example
   * ```ts
   * const { pos, vel } = v.columns
   * for (let i = 0; i < pos.length; i++) pos[i] += vel[i] * dt
   * ```
   */
  get columns(): ColumnsOf<S> {
    this._open()
    const c = this._columnsCache
    if (c !== undefined && c.len === this._len && c.gen === this._gen) return c.value as ColumnsOf<S>
    // A column buffer the program detached (see buffered.ts) has no views left to give.
    this._checkViews()
    const value: Record<string, AnyColumn> = {}
    this._spec.columns.forEach((col, k) => {
      Object.defineProperty(value, col.name, {
        value: this._cols[k].subarray(0, this._len * col.count),
        enumerable: true,
      })
    })
    Object.freeze(value)
    this._columnsCache = { len: this._len, gen: this._gen, value }
    return value as ColumnsOf<S>
  }

  /**
   * The one column of a vec of plain values (`MmapVec.open(path, 'f64')`), `length * width`
   * long; as {@link MmapVec.columns} for a vec of fields.
   *
   * @throws {@link MmapVecError} `EINVAL` on a vec of fields (use `columns`); `ECLOSED` once
   *   closed.
   */
  get values(): ValuesOf<S> {
    if (!this._spec.scalar) {
      this._open()
      throw invalid(`${this._path}: values is for vecs of plain values; this one has fields, use columns`, this._path)
    }
    return (this.columns as Record<string, unknown>).value as ValuesOf<S>
  }

  /**
   * Appends a row, growing the files when the capacity is reached (read
   * {@link MmapVec.columns} again afterwards to see it there). Every field must be present
   * and of its type; integer fields store numbers as TypedArrays do (wrapping, truncating).
   *
   * @param row - an object with every field (array fields take arrays or TypedArrays of their
   *   length), or a bare value for a vec of plain values
   * @returns the new length
   * @throws {@link MmapVecError} `EINVAL` for a missing field or a value of the wrong type;
   *   `EREADONLY`, `ECLOSED`; `ENOSPC` when the disk is full (nothing is lost; the old
   *   capacity remains); `ERANGE` past what this runtime can view.
   *
   * @example
   * ```ts
   * v.push({ pos: [1, 2, 3], id: 7, alive: true })
   * ```
   */
  push(row: RowInput<S>): number {
    void row
    throw new Error('generated per schema')
  }

  /**
   * A copy of row `i`: an object of the fields (array fields as plain arrays, `bool` as
   * booleans, `i64`/`u64` as bigints), or the bare value for a vec of plain values.
   *
   * @param i - a whole number from 0 to `length - 1`
   * @returns the row
   * @throws {@link MmapVecError} `ERANGE` out of bounds; `EINVAL` when `i` is not a whole
   *   number; `ECLOSED`.
   */
  get(i: number): RowOf<S> {
    void i
    throw new Error('generated per schema')
  }

  /**
   * Writes the given fields of row `i`; the others keep their values. All values are checked
   * before any is written.
   *
   * @param i - a whole number from 0 to `length - 1`
   * @param row - some of the fields (a bare value for a vec of plain values)
   * @throws {@link MmapVecError} `ERANGE` out of bounds; `EINVAL` for a bad index or a value of
   *   the wrong type; `EREADONLY`, `ECLOSED`.
   *
   * @example
   * ```ts
   * v.set(0, { alive: false })
   * ```
   */
  set(i: number, row: PartialRowInput<S>): void {
    void i
    void row
    throw new Error('generated per schema')
  }

  /**
   * A copy of row `i`, counting from the end when negative (`at(-1)` is the last row), as
   * `Array.prototype.at` does.
   *
   * @param i - a whole number
   * @returns the row, or `undefined` when out of bounds
   * @throws {@link MmapVecError} `EINVAL` when `i` is not a whole number; `ECLOSED`.
   */
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
   * per field, `rows * width` long each), which is the fast bulk path: the files grow once and
   * each column is copied at once. A vec of plain values takes its column as a TypedArray.
   * All or nothing: when a row or column is bad, no row is added.
   *
   * @param input - the rows, or the columns
   * @returns the new length
   * @throws {@link MmapVecError} `EINVAL` for a bad row or value, a missing, unknown or
   *   ragged column; `EREADONLY`, `ECLOSED`; `ENOSPC` when the disk is full.
   *
   * @example
   * ```ts
   * v.pushMany({ pos: new Float32Array(3000), id: new Uint32Array(1000), alive: new Array(1000).fill(true) })
   * v.pushMany(rows) // any iterable of rows
   * ```
   */
  pushMany(input: Iterable<RowInput<S>> | ColumnInput<S>): number {
    this._writable()
    if (input === null || typeof input !== 'object') {
      throw invalid(`${this._path}: pushMany takes an iterable of rows or an object of columns`, this._path)
    }
    if (this._spec.scalar && ArrayBuffer.isView(input)) return this._pushColumns({ value: input })
    if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
      // Every row is read and checked into staging columns first, then all are appended at
      // once: the iterator (and the rows' getters) may run any code, including calls on this
      // vec, and none of it can see, mix or lose half-pushed rows. All or nothing.
      const spec = this._spec
      const cols = spec.columns
      let cap = 64
      let staged = cols.map((c) => new ARRAY_TYPES[c.type](cap * c.count))
      let n = 0
      for (const row of input as Iterable<RowInput<S>>) {
        if (n === cap) {
          cap *= 2
          staged = staged.map((a, k) => {
            const b = new ARRAY_TYPES[cols[k].type](cap * cols[k].count)
            ;(b as Uint8Array).set(a as Uint8Array)
            return b
          })
        }
        this._stageRow(row, staged, n)
        n++
      }
      this._writable()
      if (this._spec !== spec) throw this._schemaChanged()
      return this._pushColumns(Object.fromEntries(cols.map((c, k) => [c.name, staged[k].subarray(0, n * c.count)])))
    }
    if (this._spec.scalar) throw invalid(`${this._path}: pushMany on a vec of plain values takes an iterable or a TypedArray`, this._path)
    return this._pushColumns(input as Record<string, unknown>)
  }

  /**
   * Removes the last row and returns it; the capacity is unchanged.
   *
   * @returns the removed row, or `undefined` when the vec is empty
   * @throws {@link MmapVecError} `EREADONLY`, `ECLOSED`.
   */
  pop(): RowOf<S> | undefined {
    this._writable()
    if (this._len === 0) return undefined
    const row = this.get(this._len - 1)
    this._setLength(this._len - 1)
    return row
  }

  /**
   * Removes row `i` by moving the last row into its place (O(1); the order of rows changes).
   *
   * @param i - a whole number from 0 to `length - 1`
   * @returns the removed row
   * @throws {@link MmapVecError} `ERANGE` out of bounds; `EINVAL` for a bad index;
   *   `EREADONLY`, `ECLOSED`.
   */
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

  /**
   * Keeps the first `n` rows (does nothing when `n >= length`); the capacity is unchanged.
   *
   * @param n - a whole number >= 0
   * @throws {@link MmapVecError} `EINVAL` for a bad `n`; `EREADONLY`, `ECLOSED`.
   */
  truncate(n: number): void {
    this._writable()
    checkCount(n, 'truncate length', this._path)
    if (n < this._len) this._setLength(n)
  }

  /**
   * Removes every row; the capacity is unchanged.
   *
   * @throws {@link MmapVecError} `EREADONLY`, `ECLOSED`.
   */
  clear(): void {
    this.truncate(0)
  }

  /**
   * Grows the capacity at once to hold at least `additional` more rows, so that the pushes
   * after it do not grow the files. Read
   * {@link MmapVec.columns} again afterwards.
   *
   * @param additional - a whole number >= 0
   * @throws {@link MmapVecError} `EINVAL` for a bad count; `ENOSPC` when the disk is full;
   *   `ERANGE` past what this runtime can view; `EREADONLY`, `ECLOSED`.
   */
  reserve(additional: number): void {
    this._writable()
    checkCount(additional, 'reserve count', this._path)
    const want = this._len + additional
    if (want > Number.MAX_SAFE_INTEGER) {
      throw new MmapVecError('ERANGE', `${this._path}: reserve(${additional}): ${this._len} rows and ${additional} more is past 2^53 - 1, the most rows a vec holds`, this._path)
    }
    if (want > this._cap) this._grow(want, false)
  }

  /**
   * Gives back the disk space past the last row: the capacity becomes about the length
   * (whole pages). Views taken before become empty; read {@link MmapVec.columns} again.
   *
   * @throws {@link MmapVecError} `EREADONLY`, `ECLOSED`; `EIO` from the OS.
   */
  shrinkToFit(): void {
    this._writable()
    this._checkViews()
    this._storage.shrinkToFit(this)
  }

  /**
   * Asks the OS to read rows `[start, end)` ahead (`madvise(WILLNEED)`), for scans of data not
   * yet in memory. Returns at once; it is only advice.
   *
   * @param start - the first row, default 0
   * @param end - past the last row, default `length`
   * @throws {@link MmapVecError} `EINVAL` for a bad `start` or `end`; `ECLOSED`.
   */
  prefetch(start = 0, end = this._len): void {
    this._open()
    checkCount(start, 'prefetch start', this._path)
    checkCount(end, 'prefetch end', this._path)
    callNative(this._path, () => this._native.prefetch(start, end))
  }

  /**
   * Adds a field to the stored schema. Every row, existing and new, reads zero (`0`, `0n`,
   * `false`) in it until written; existing rows are not rewritten, so it takes the same time
   * for any number of rows. Atomic on disk: a crash leaves the old schema or the new one.
   * Everything written before it is made durable first, as by {@link flushSync}. Returns this
   * vec, typed with the new schema: `const v2 = v.addColumn('hp', 'u16')`.
   *
   * @param name - the new field's name (non-empty, at most 255 bytes)
   * @param type - its type, e.g. `'u16'` or `['f32', 3]`
   * @returns this vec, typed {@link WithColumn}
   * @throws {@link MmapVecError} `ESCHEMA` when the name is taken or the vec is of plain
   *   values; `EINVAL` for a bad name or type, or past 1024 fields; `EREADONLY`, `ECLOSED`;
   *   `ERANGE` when the column would be larger than this runtime can view; `ENOSPC`, `EIO`.
   *   Nothing on disk changes when it fails.
   *
   * @example
   * ```ts
   * const v2 = v.addColumn('hp', 'u16')
   * v2.set(0, { hp: 100 })
   * ```
   */
  addColumn<const N extends string, const F extends FieldType>(name: N, type: F): MmapVec<WithColumn<S, N, F>> {
    this._changeable('addColumn')
    checkName(name, 'addColumn', 'the column name', this._path)
    const c = field(name, type)
    if (typeof c === 'string') throw invalid(`${this._path}: addColumn: field '${name}': ${c}`, this._path)
    if (this._has(name)) throw this._taken('addColumn', name, `drop that column first with vec.dropColumn('${name}')`)
    if (this._spec.columns.length >= MAX_COLUMNS) {
      throw invalid(`${this._path}: addColumn: the vec has ${MAX_COLUMNS} fields, the most a vec may have`, this._path)
    }
    const kept = this._spec.columns.map((_, k) => k)
    const copy: FieldType = typeof type === 'string' ? type : [c.type, c.count]
    this._change(
      () => this._native.addColumn(name, c.type, c.count),
      Object.fromEntries([...Object.entries(this._schema), [name, copy]]),
      [...this._spec.columns, c],
      [...kept, -1],
    )
    return this as unknown as MmapVec<WithColumn<S, N, F>>
  }

  /**
   * Removes a field and its data from the stored schema; its views become empty. A vec keeps
   * at least one field. Atomic on disk, and durable like {@link addColumn}.
   *
   * @param name - the field to remove
   * @returns this vec, typed {@link WithoutColumn}
   * @throws {@link MmapVecError} `ESCHEMA` when there is no such field, it is the only one, or
   *   the vec is of plain values; `EINVAL` for a bad name; `EREADONLY`, `ECLOSED`; `EIO`.
   *   Nothing on disk changes when it fails.
   */
  dropColumn<const N extends FieldNames<S>>(name: N): MmapVec<WithoutColumn<S, N>> {
    this._changeable('dropColumn')
    checkName(name, 'dropColumn', 'the column name', this._path)
    const k = this._spec.columns.findIndex((c) => c.name === name)
    if (k < 0) throw this._noColumn('dropColumn', name)
    if (this._spec.columns.length === 1) {
      throw new MmapVecError(
        'ESCHEMA',
        `${this._path}: dropColumn: '${name}' is the vec's only column, and a vec has at least one; add another column first, or delete the whole vec with MmapVec.remove`,
        this._path,
      )
    }
    const kept = this._spec.columns.map((_, j) => j).filter((j) => j !== k)
    this._change(
      () => this._native.dropColumn(name),
      Object.fromEntries(Object.entries(this._schema).filter(([n]) => n !== name)),
      kept.map((j) => this._spec.columns[j]),
      kept,
    )
    return this as unknown as MmapVec<WithoutColumn<S, N>>
  }

  /**
   * Renames a field; its data and views stay as they are. Atomic on disk, and durable like
   * {@link addColumn}.
   *
   * @param from - the field's name
   * @param to - its new name (non-empty, at most 255 bytes); the same name does nothing
   * @returns this vec, typed {@link WithRenamedColumn}
   * @throws {@link MmapVecError} `ESCHEMA` when `from` does not exist, `to` is taken, or the
   *   vec is of plain values; `EINVAL` for a bad name; `EREADONLY`, `ECLOSED`; `EIO`. Nothing
   *   on disk changes when it fails.
   *
   * @example
   * ```ts
   * v.renameColumn('hp', 'health').dropColumn('id')
   * ```
   */
  renameColumn<const F extends FieldNames<S>, const T extends string>(from: F, to: T): MmapVec<WithRenamedColumn<S, F, T>> {
    this._changeable('renameColumn')
    checkName(from, 'renameColumn', 'the old name', this._path)
    checkName(to, 'renameColumn', 'the new name', this._path)
    if (!this._has(from)) throw this._noColumn('renameColumn', from)
    if ((from as string) === to) return this as unknown as MmapVec<WithRenamedColumn<S, F, T>>
    if (this._has(to)) throw this._taken('renameColumn', to, `drop it first with vec.dropColumn('${to}')`)
    this._change(
      () => this._native.renameColumn(from, to),
      Object.fromEntries(Object.entries(this._schema).map(([n, t]) => [n === from ? to : n, t])),
      this._spec.columns.map((c) => (c.name === from ? { ...c, name: to } : c)),
      this._spec.columns.map((_, k) => k),
    )
    return this as unknown as MmapVec<WithRenamedColumn<S, F, T>>
  }

  /**
   * The rows in order, each a copy as {@link MmapVec.get} returns it: `for (const row of v)`.
   * Rows pushed during the loop are included.
   */
  *[Symbol.iterator](): Iterator<RowOf<S>> {
    for (let i = 0; i < this._len; i++) yield this.get(i)
  }

  /**
   * Makes everything written so far durable (column data first, then the header that claims
   * it), on the libuv thread pool. The JS thread is not blocked. After it resolves, the rows
   * survive an OS crash or a power cut. Does nothing on a `readOnly` vec.
   *
   * @returns a Promise that resolves when the data is on disk
   * @throws {@link MmapVecError} `ECLOSED`; `EIO`, `ENOSPC` from the OS; or the error of a
   *   failed background flush (`autoFlushMs`) since the last flush.
   *
   * @example
   * ```ts
   * await v.flush()
   * ```
   */
  async flush(): Promise<void> {
    this._open()
    this._throwFlushError()
    if (this._readOnly) return
    this._checkViews()
    this._storage.writeBack(this)
    try {
      await this._native.flushJob().run()
    } catch (err) {
      fromNative(err, this._path)
    }
  }

  /**
   * Like {@link flush}, blocking the calling thread until done.
   *
   * @throws {@link MmapVecError} `ECLOSED`; `EIO`, `ENOSPC` from the OS; or the error of a
   *   failed background flush since the last flush.
   */
  flushSync(): void {
    this._open()
    this._throwFlushError()
    if (this._readOnly) return
    this._checkViews()
    this._storage.writeBack(this)
    callNative(this._path, () => this._native.flushSync())
  }

  /**
   * Flushes (unless `flush: false`), releases the lock and makes every view empty. Closing a
   * closed vec does nothing. Without a flush, the rows are still in the page cache (mmap
   * mode) or written back to it (buffered mode): they survive the process, not a power cut.
   *
   * @param options - `{ flush: false }` to skip the flush
   * @throws {@link MmapVecError} `EIO`, `ENOSPC` when the flush fails; the vec is closed all
   *   the same.
   *
   * @example
   * ```ts
   * v.close()
   * // or, closed when the scope ends:
   * using w = MmapVec.open('world/units.mvec', Unit)
   * ```
   */
  close(options?: CloseOptions): void {
    if (this._closed) return
    if (this._timer !== undefined) clearInterval(this._timer)
    this._timer = undefined
    try {
      // Buffered columns always go back to the files (the page cache), compared page by page so
      // that unchanged pages stay clean: writes through views leave no trace the vec could see.
      if (!this._readOnly) this._checkViews()
      this._storage.writeBack(this) // nothing to write back for a read-only vec
      if (options?.flush !== false && !this._readOnly) callNative(this._path, () => this._native.flushSync())
    } finally {
      this._storage.release(this)
      this._closed = true
      this._len = 0
      this._cap = 0
      this._limit = -1
      setColumns(
        this,
        this._spec.columns.map((c) => new ARRAY_TYPES[c.type](0)),
      )
      this._columnsCache = undefined
    }
  }

  /** {@link MmapVec.close}, for `using v = MmapVec.open(...)`. */
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

  /** @internal Generated per schema: reads and checks row `r` into staging columns `t` at row `i` (`pushMany`). */
  _stageRow(r: unknown, t: AnyColumn[], i: number): void {
    void r
    void t
    void i
    throw new Error('generated per schema')
  }

  /** @internal Called by `push` when the length reaches `_limit`. */
  _growFor(n: number): void {
    this._writable()
    this._grow(n, true)
  }

  /** @internal */
  _grow(n: number, geometric: boolean, forWrites = false): void {
    // The capacity is taken by _refresh, once the new views exist (overlay mode may fail to
    // make them, and must then keep the old capacity with the old views). `forWrites`: the rows
    // will be written through the file (pushMany), so the new pages are not faulted in.
    // Buffered columns are copied into the grown ones: a transferred one has nothing to copy.
    this._checkViews()
    callNative(this._path, () => (forWrites ? this._native.growForWrites(n) : this._native.grow(n, geometric)))
    this._storage.refresh(this, false)
  }

  /** @internal */
  _changeable(what: string): void {
    this._writable()
    if (this._spec.scalar) {
      throw new MmapVecError(
        'ESCHEMA',
        `${this._path}: ${what}: this is a vec of plain values, which has no named columns; schema changes apply to vecs of fields. Copy the rows into a new vec with fields instead`,
        this._path,
      )
    }
  }

  /** @internal */
  _has(name: string): boolean {
    return this._spec.columns.some((c) => c.name === name)
  }

  /** @internal */
  _noColumn(method: string, name: string): MmapVecError {
    const names = this._spec.columns.map((c) => `'${c.name}'`).join(', ')
    return new MmapVecError('ESCHEMA', `${this._path}: ${method}: the vec has no column '${name}'; its columns are ${names}`, this._path)
  }

  /** @internal */
  _taken(method: string, name: string, fix: string): MmapVecError {
    return new MmapVecError('ESCHEMA', `${this._path}: ${method}: the vec already has a column '${name}'; choose another name, or ${fix}`, this._path)
  }

  /**
   * @internal Runs a native schema change and takes on what it left: the new schema (`schema`,
   * `columns`, and `from[k]`, the old position of new column `k` or -1 for a new one) when the
   * stored schema changed, even if the call then failed (making it durable), else nothing.
   */
  _change(call: () => void, schema: Record<string, FieldType>, columns: ColumnSpec[], from: number[]): void {
    // Buffered columns go to the files first: the change makes everything before it durable.
    this._storage.writeBack(this)
    const before = this._native.schemaJson
    try {
      callNative(this._path, call)
    } finally {
      if (this._native.schemaJson !== before) this._reshape(schema as S, { scalar: false, columns }, from)
    }
  }

  /**
   * @internal Regenerates the per-schema code and the views after a schema change. The native
   * layer has detached the views of a dropped column and of the replaced header already.
   */
  _reshape(schema: S, spec: NormalizedSchema, from: number[]): void {
    const stored = JSON.parse(this._native.schemaJson) as NormalizedSchema
    this._schema = schema
    this._spec = spec
    this._stored = spec.columns.map((c) => stored.columns.findIndex((s) => s.name === c.name))
    Object.setPrototypeOf(this, specialise(spec).prototype as object)
    this._storage.reshape(this, from)
    this._columnsCache = undefined
  }

  /** @internal Throws EINVAL when the program detached one of the column buffers (see `checkBuffers`). */
  _checkViews(): void {
    checkBuffers(this._path, (k) => this._spec.columns[k].name, this._cols, this._storage.detachedLoses)
  }

  /** @internal */
  _setLength(n: number): void {
    this._len = n
    this._hdr[0] = n
  }

  /** @internal */
  _badIndex(i: unknown): never {
    this._open()
    if (typeof i !== 'number' || !Number.isInteger(i)) {
      throw invalid(`${this._path}: index must be a whole number, got ${String(i)}`, this._path)
    }
    throw new MmapVecError('ERANGE', `${this._path}: index ${i} is out of bounds for length ${this._len}`, this._path)
  }

  /** @internal A getter or iterator changed the schema while a row was read (nothing was written). */
  _schemaChanged(): MmapVecError {
    return new MmapVecError(
      'ESCHEMA',
      `${this._path}: the vec's schema changed while the row was being read (a getter or iterator called addColumn, dropColumn or renameColumn); nothing was written. Write the row again, in the new schema`,
      this._path,
    )
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

  /**
   * @internal For array fields longer than the generated code unrolls: reads `a`'s elements
   * once each into a new TypedArray of the column's type, checking them (getters may run).
   */
  _copyArray(k: number, a: unknown): AnyColumn {
    const c = this._spec.columns[k]
    if (a === null || typeof a !== 'object' || (a as ArrayLike<unknown>).length !== c.count) throw this._valueError(k, a)
    const out = new ARRAY_TYPES[c.type](c.count)
    if (!copyChecked(a as ArrayLike<unknown>, c.count, c.type, out)) throw this._valueError(k, a)
    return out
  }

  /** @internal */
  _readArray(c: AnyColumn, o: number, n: number, bool: boolean): unknown[] {
    const out = new Array<unknown>(n)
    for (let j = 0; j < n; j++) out[j] = bool ? c[o + j] !== 0 : c[o + j]
    return out
  }

  /**
   * @internal The bulk path of `pushMany`: reads and checks every column, then copies each at
   * once. Reading may run user code (getters on the object, array-likes, Proxies), so nothing
   * about the vec is read until all of it has run, and each value is read once.
   */
  _pushColumns(input: Record<string, unknown>): number {
    const spec = this._spec
    const cols = spec.columns
    let rows = -1
    const src: AnyColumn[] = []
    /** The real TypedArrays given (their lengths are checked again once all user code ran). */
    const given: boolean[] = []
    for (const [k, c] of cols.entries()) {
      const a = input[c.name]
      const field = this._spec.scalar ? 'values' : `column '${c.name}'`
      const kind = typedArrayKind(a)
      const ragged = (len: number) => invalid(`${this._path}: pushMany: ${field} has ${len} values, not a multiple of its width ${c.count}`, this._path)
      let len: number
      if (kind !== undefined) {
        // A TypedArray: its elements are read without running any code. Numbers go into
        // number columns (converted as TypedArray.set does), bigints into i64/u64 columns,
        // and a bool column takes a Uint8Array of 0 and 1 (what `columns` gives for it).
        const ok = c.type === 'bool' ? kind === 'Uint8Array' : (c.type === 'i64' || c.type === 'u64') === kind.startsWith('Big')
        if (!ok) throw this._valueError(k, a)
        len = typedArrayLength(a as ArrayBufferView)
        src.push(a as AnyColumn)
        given.push(true)
      } else {
        if (a === null || typeof a !== 'object' || typeof (a as ArrayLike<unknown>).length !== 'number') {
          throw invalid(`${this._path}: pushMany: ${field} is missing or not an array`, this._path)
        }
        len = (a as ArrayLike<unknown>).length
        if (!Number.isSafeInteger(len) || len < 0) throw invalid(`${this._path}: pushMany: ${field} has a length of ${len}, not a whole number`, this._path)
        // Checked before the copy, which runs the array-like's getters.
        if (len % c.count !== 0) throw ragged(len)
        const copy = new ARRAY_TYPES[c.type](len)
        if (!copyChecked(a as ArrayLike<unknown>, len, c.type, copy)) throw this._valueError(k, a)
        src.push(copy)
        given.push(false)
      }
      if (len % c.count !== 0) throw ragged(len)
      const n = len / c.count
      if (rows >= 0 && n !== rows) {
        throw invalid(`${this._path}: pushMany: ${field} has ${n} rows, the columns before it ${rows}`, this._path)
      }
      rows = n
    }
    for (const name of Object.keys(input)) {
      if (!cols.some((c) => c.name === name)) throw invalid(`${this._path}: pushMany: no field named '${name}'`, this._path)
    }
    // No user code runs from here on. It may have closed the vec, changed its schema, or
    // detached a TypedArray checked before it (a transfer in a later getter).
    this._writable()
    if (this._spec !== spec) throw this._schemaChanged()
    cols.forEach((c, k) => {
      if (given[k] && !readable(src[k])) {
        throw invalid(`${this._path}: pushMany: ${this._spec.scalar ? 'the values given are' : `column '${c.name}' is`} a TypedArray whose buffer was detached (transferred, or a view of this vec from before a growth) or shrunk under it; pass a live copy (slice())`, this._path)
      }
      if (given[k] && typedArrayLength(src[k]) !== rows * c.count) {
        throw invalid(`${this._path}: pushMany: column '${c.name}' was detached or resized while the columns were read; pass columns nothing else changes`, this._path)
      }
      if (given[k] && c.type === 'bool' && !zeroOrOne(src[k] as Uint8Array)) {
        throw invalid(`${this._path}: pushMany: ${this._spec.scalar ? 'values' : `column '${c.name}'`} is a Uint8Array for a bool field, so every byte must be 0 or 1`, this._path)
      }
    })
    const start = this._len
    const grows = start + rows > this._cap
    // A column given as a view of this vec (`v.columns.x.subarray(...)`) would be detached by
    // the growth (buffered mode replaces every buffer, mmap mode a column that moves): copy it.
    const ours = grows ? new Set<unknown>(this._cols.map((d) => d.buffer)) : undefined
    for (const [k, a] of src.entries()) {
      if (ours !== undefined && given[k] && ours.has(bufferOf.call(a))) src[k] = (a as Float32Array).slice()
    }
    // Large columns of the column's own type go to the file directly (pwrite): a copy into the
    // mapping makes the kernel zero each fresh page before overwriting it, a write of whole
    // pages does not (docs/DESIGN.md). Buffered mode's columns are V8's memory, not the file's.
    const direct = cols.map((c, k) => this._storage.writesThrough && src[k] instanceof ARRAY_TYPES[c.type] && (src[k] as ArrayBufferView).byteLength >= DIRECT_WRITE_BYTES)
    if (grows) {
      this._grow(start + rows, true, direct.some(Boolean))
      cols.forEach((c, k) => {
        // An older view of this vec's memory, detached by the growth: nothing is written yet.
        if (typedArrayLength(src[k]) !== rows * c.count) {
          throw invalid(`${this._path}: pushMany: column '${c.name}' was a view of this vec that growing it detached; pass a copy (slice())`, this._path)
        }
      })
    }
    cols.forEach((c, k) => {
      const a = src[k]
      if (direct[k]) {
        callNative(this._path, () => this._native.writeRows(this._stored[k], start, a as unknown as NativeTypedArray))
      } else {
        ;(this._cols[k] as { set(a: ArrayLike<unknown>, o: number): void }).set(a, start * c.count)
      }
    })
    this._setLength(start + rows)
    return this._len
  }

  /** @internal */
  _autoFlush(): void {
    // Every interval, changed or not: writes through views held from earlier leave no trace the
    // vec could see, and the kernel (or, buffered, the page comparison) writes only what changed.
    if (this._flushing || this._closed) return
    this._flushing = true
    let job: ReturnType<NativeVec['flushJob']>
    try {
      this._checkViews()
      this._storage.writeBack(this)
      // Making the job checks the vec (a damaged one is refused): kept for the next flush call.
      job = callNative(this._path, () => this._native.flushJob())
    } catch (e) {
      this._flushing = false
      this._flushError = e
      return
    }
    job.run().then(
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
    if (this._flushError === undefined) return
    const e: unknown = this._flushError
    this._flushError = undefined
    throw e
  }
}

setBaseClass(MmapVec)
