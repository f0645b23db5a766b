/**
 * The class {@link MmapVec}, the one public class: its public methods with their documentation
 * (typedoc validates that every public member is documented; the docs are most of this file's
 * length, which is why it passes 500 lines), and the underscore methods the generated code
 * calls. Bodies longer than a few lines live in files of their own (bulk.ts, schema-change.ts,
 * durability.ts, info.ts, open.ts, rows.ts, storage/), which take the vec as `VecInternals`
 * (internals.ts) and never import this file.
 */
import type { NativeVec } from '../native/binding.js'
import type { ArrowTable, FromArrowOptions } from './arrow/types.js'
import * as bulk from './bulk.js'
import { setBaseClass } from './codegen.js'
import * as durability from './durability.js'
import * as live from './live.js'
import type { Snapshot } from './live.js'
import { MmapVecError, callNative, checkCount, invalid } from './errors.js'
import { inspect as inspectVec, verify as verifyVec, type VecInfo, type VerifyProblem } from './info.js'
import type { Opening, VecInternals } from './internals.js'
import { openVec, removeVec, type CloseOptions, type Making, type OpenOptions } from './open.js'
import { badIndex, copyArray, readArray, rowError, schemaChanged, valueError } from './rows.js'
import * as schemaChange from './schema-change.js'
import {
  storedOrder,
  type AnyColumn,
  type ColumnInput,
  type ColumnsOf,
  type FieldNames,
  type FieldType,
  type NormalizedSchema,
  type PartialRowInput,
  type RowInput,
  type RowOf,
  type Schema,
  type ValuesOf,
  type WithColumn,
  type WithRenamedColumn,
  type WithoutColumn,
} from './schema.js'
import { checkBuffers, type Mode, type Storage } from './storage/storage.js'

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
  // What these fields hold, and what the other modules and the generated code may rely on, is
  // `VecInternals` (internals.ts); `setBaseClass(MmapVec)` below checks that this class has it.
  /** @internal */ declare _native: NativeVec
  /** @internal */ declare _path: string
  /** @internal The data version stored in the header. */ declare _version: number
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
  /** @internal The live file's words (live.ts). */ declare _live: Int32Array
  /** @internal */ declare _seqAt: number
  /** @internal */ declare _waitAt: number
  /** @internal The published row count, at index 0. */ declare _pub: Float64Array
  /** @internal Depth of batches under way. */ declare _units: number
  /** @internal A publish is scheduled (or there is nothing to publish to). */ declare _pubDue: boolean
  /** @internal Units begin and end natively (live.ts). */ declare _nativeUnits: boolean
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
    this._path = o.layout.path
    this._version = o.layout.version
    this._closed = false
    this._timer = undefined
    this._flushing = false
    this._flushError = undefined
    this._columnsCache = undefined
    this._gen = 0
    this._stored = storedOrder(o.spec, o.layout.columns)
    this._hdr = o.storage.header(this, o.layout)
    // Keep the length a small integer where it fits: a field that once held a double stays a
    // boxed double in V8, which makes every push several times slower.
    // (A reader's count is what it took from the writer, not the header's.)
    const stored = o.layout.length
    this._len = stored <= 0x3fffffff ? stored | 0 : stored
    this._cap = 0
    this._limit = -1
    this._cols = []
    const lv = live.liveViews(o.layout)
    this._live = lv.live
    this._seqAt = lv.seqAt
    this._waitAt = lv.waitAt
    this._pub = lv.pub
    this._units = 0
    this._pubDue = !lv.real || o.readOnly
    this._nativeUnits = live.nativeUnits(lv)
    // The column fields `_c0`... are first written by the storage's refresh below (through
    // setColumns), not set to undefined here first: V8 treats a field written once as a
    // constant, so while no vec of this schema has grown, optimised code can embed the columns
    // (2x faster random `get`).
    o.storage.refresh(this, o.layout, false)
    o.storage.attach(this)
    if (o.autoFlushMs !== undefined && !this._readOnly) this._timer = durability.autoFlushEvery(this, o.autoFlushMs)
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
   * @returns the open vec, holding the writer's exclusive lock (a reader's registration when
   *   `readOnly`, which opens beside a writer)
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
    return make('open', path, schema, options)
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
    return make('create', path, schema, options)
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
    return make('temp', '', schema, options)
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
   * A writer may change the vec while it is checked (add or drop a column, cut its files in
   * `shrinkToFit`), and a check that meets such a change halfway can see what looks like
   * damage. So problems count only when nothing changed while they were found; otherwise the
   * vec is checked again, up to 20 times, 10 ms apart. A vec nobody changes is checked once.
   *
   * @param path - the vec's directory
   * @returns every problem found, each with the error opening would give, the check's stable
   *   name and a message; empty when the vec is sound
   * @throws {@link MmapVecError} `ENOENT` when nothing is at `path`; `EINVAL` for a bad path;
   *   `ELOCKED` when a writer changed the vec under every one of the checks (run it again when
   *   the writer is idle).
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
    return arrowImport().fromArrow(path, source, options)
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
   * the stored schema when it was opened without one, as read once at open (a copy: changing
   * the object given to `open` changes nothing). Schema changes update it.
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
    return this._version
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
    // A column buffer the program detached (see checkBuffers) has no views left to give.
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
    return bulk.pushMany(this, input)
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
    // One unit for readers: the moved row and the shorter length together.
    live.batch(this, () => {
      if (i !== last) {
        this._spec.columns.forEach((c, k) => this._cols[k].copyWithin(i * c.count, last * c.count, (last + 1) * c.count))
      }
      this._setLength(last)
    })
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
    // + 0: a length of -0 would print as -0.
    if (n < this._len) this._setLength(n + 0)
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
    schemaChange.addColumn(this, name, type)
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
    schemaChange.dropColumn(this, name)
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
    schemaChange.renameColumn(this, from, to)
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
   * Runs `fn` (synchronously) and makes its writes one unit for readers beside this writer:
   * a reader's {@link MmapVec.snapshot} holds the state before the batch or after it, never a
   * mix, and readers see its new rows at their next {@link MmapVec.refresh} after it ends.
   * Writes outside any batch (each `push`, `set`, `pop`...) are each a unit of their own;
   * writes straight into `columns` belong to the batch they are made in (outside one, to no
   * unit). Batches nest. In buffered mode the units readers see are the write-backs (flush,
   * autoFlush, close), which never split a batch.
   *
   * @param fn - the writes, e.g. one tick of a simulation
   * @returns what `fn` returns
   * @throws {@link MmapVecError} `EREADONLY`, `ECLOSED`; `EINVAL` when `fn` is not a function,
   *   or returns a promise (the writes after its first `await` were outside the batch).
   *
   * @example
   * ```ts
   * world.batch(() => {
   *   for (let i = 0; i < pos.length; i++) pos[i] += vel[i] * dt
   *   world.push(spawned)
   * })
   * ```
   */
  batch<T>(fn: () => T): T {
    return live.batch(this, fn)
  }

  /**
   * A reader's update: takes the writer's latest published state. A reader's `length`,
   * `capacity`, `schema` and `columns` stay as they were until it refreshes (its `columns`
   * show the writer's stores to existing rows at once: they are the same pages; in buffered
   * mode, copies made at refresh). After a schema change by the writer, the reader has the
   * new fields, and the views of the old ones are empty. A vec opened read-write has nothing
   * to follow (false).
   *
   * @returns true when anything changed (read `columns` again)
   * @throws {@link MmapVecError} `ECLOSED`; `ELOCKED` when the writer has been inside one
   *   batch for 2 s; `EIO` when a file was cut short under the reader.
   *
   * @example
   * ```ts
   * const r = MmapVec.open('world/units.mvec', Unit, { readOnly: true })
   * setInterval(() => { if (r.refresh()) draw(r.columns) }, 16)
   * ```
   */
  refresh(): boolean {
    return live.refresh(this)
  }

  /**
   * Copies of the columns as they were between two of the writer's units of writes (see
   * {@link MmapVec.batch}): never half a batch. Typed like `columns`; the copies are the
   * program's own memory. On a reader it copies the writer's latest published state, which may
   * be newer than the reader's own `length` (after a schema change it refreshes first).
   *
   * @param fields - the fields to copy (default: all)
   * @returns the row count and one TypedArray per field, `length * width` long
   * @throws {@link MmapVecError} `EINVAL` for an unknown field; `ELOCKED` when the writer
   *   stays inside one batch for 2 s; `ECLOSED`.
   *
   * @example
   * ```ts
   * const { length, columns } = reader.snapshot(['pos', 'tick'])
   * ```
   */
  snapshot<const F extends FieldNames<S> = FieldNames<S>>(fields?: readonly F[]): Snapshot<Pick<ColumnsOf<S>, F>> {
    return live.snapshot(this, fields) as unknown as Snapshot<Pick<ColumnsOf<S>, F>>
  }

  /**
   * Resolves `true` once the writer publishes anything after this reader's last
   * {@link MmapVec.refresh} (at the end of a batch, at a flush, within a few milliseconds of
   * pushes outside batches, and when it closes), `false` after `timeoutMs` or when this vec
   * closes. It never blocks the event loop: on Linux the wait is a futex on the shared live
   * file, elsewhere a 1 ms poll, on a thread of its own. On a vec opened read-write it
   * resolves `false` at once.
   *
   * @param options - `timeoutMs`: how long to wait (default 1000)
   * @throws {@link MmapVecError} `EINVAL` for a bad `timeoutMs`; `ECLOSED`.
   *
   * @example
   * ```ts
   * while (!stopped) {
   *   if (await reader.changed({ timeoutMs: 5000 })) reader.refresh()
   *   render(reader.columns)
   * }
   * ```
   */
  changed(options?: { timeoutMs?: number }): Promise<boolean> {
    return live.changed(this, options?.timeoutMs ?? 1000)
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
  flush(): Promise<void> {
    return durability.flush(this)
  }

  /**
   * Like {@link flush}, blocking the calling thread until done.
   *
   * @throws {@link MmapVecError} `ECLOSED`; `EIO`, `ENOSPC` from the OS; or the error of a
   *   failed background flush since the last flush.
   */
  flushSync(): void {
    durability.flushSync(this)
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
    durability.close(this, options)
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
    // The capacity is taken by the storage's refresh, once the new views exist (overlay mode may
    // fail to make them, and must then keep the old capacity with the old views). `forWrites`: the rows
    // will be written through the file (pushMany), so the new pages are not faulted in.
    // Buffered columns are copied into the grown ones: a transferred one has nothing to copy.
    this._checkViews()
    const layout = callNative(this._path, () => (forWrites ? this._native.growForWrites(n) : this._native.grow(n, geometric)))
    this._storage.refresh(this, layout, false)
  }

  /** @internal Throws EINVAL when the program detached one of the column buffers (see `checkBuffers`). */
  _checkViews(): void {
    checkBuffers(this._path, (k) => this._spec.columns[k].name, this._cols, this._storage.detachedLoses)
  }

  /** @internal */
  _setLength(n: number): void {
    this._len = n
    this._hdr[0] = n
    // Rows past the new count may be written again: readers must not keep them in a snapshot.
    live.publish(this)
  }

  /** @internal */
  _schedulePublish(): void {
    live.schedulePublish(this)
  }

  /** @internal */
  _beginUnit(): void {
    live.beginUnit(this)
  }

  /** @internal */
  _endUnit(): void {
    live.endUnit(this)
  }

  /** @internal */
  _badIndex(i: unknown): never {
    return badIndex(this, i)
  }

  /** @internal A getter or iterator changed the schema while a row was read (nothing was written). */
  _schemaChanged(): MmapVecError {
    return schemaChanged(this)
  }

  /** @internal */
  _rowError(r: unknown): MmapVecError {
    return rowError(this, r)
  }

  /** @internal */
  _valueError(k: number, v: unknown): MmapVecError {
    return valueError(this, k, v)
  }

  /**
   * @internal For array fields longer than the generated code unrolls: reads `a`'s elements
   * once each into a new TypedArray of the column's type, checking them (getters may run).
   */
  _copyArray(k: number, a: unknown): AnyColumn {
    return copyArray(this, k, a)
  }

  /** @internal */
  _readArray(c: AnyColumn, o: number, n: number, bool: boolean): unknown[] {
    return readArray(c, o, n, bool)
  }
}

setBaseClass(MmapVec)

/** What `MmapVec.fromArrow` needs of arrow/import.ts. */
interface ArrowImport {
  fromArrow<S extends Schema>(path: string, source: ArrowTable | string, options?: FromArrowOptions<S>): MmapVec<S> | Promise<MmapVec<S>>
}

/**
 * arrow/import.ts, loaded when first needed (as apache-arrow itself is): it makes vecs and
 * names this class in its types, so importing it here would make an import circle.
 */
function arrowImport(): ArrowImport {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./arrow/import.js') as ArrowImport
}

/** `open`, `create` and `temp`: the vec open.ts makes, of the class specialised for its schema. */
function make<S extends Schema>(how: Making, path: string, schema: S | undefined, options: OpenOptions | undefined): MmapVec<S> {
  return openVec(how, path, schema, options) as unknown as MmapVec<S>
}
