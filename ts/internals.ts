/**
 * The vec as the facade's own modules and the generated per-schema code (codegen.ts) see it:
 * the fields and underscore methods of `MmapVec` (vec.ts) that they may rely on, stated as a
 * type. The modules take a `VecInternals` rather than the class, so their imports run one way:
 * vec.ts imports them, none of them imports vec.ts. And {@link setColumns}, the one place that
 * writes the column fields `_c0`... which the generated code reads.
 */
import type { Layout, NativeVec } from '../native/binding.js'
import type { MmapVecError } from './errors.js'
import type { AnyColumn, NormalizedSchema, Schema } from './schema.js'
import type { Storage } from './storage/storage.js'

/** What the vec's constructor is given (open.ts makes it). */
export interface Opening<S extends Schema = Schema> {
  native: NativeVec
  /** The native vec's state as it opened. */
  layout: Layout
  /** The schema as the program gave it (or the stored one), in its field order. */
  schema: S
  spec: NormalizedSchema
  storage: Storage<VecInternals>
  readOnly: boolean
  autoFlushMs: number | undefined
  temp: boolean
}

/**
 * The vec's internals. The fields are listed in the order the constructor first writes them
 * (the order gives every vec the same hidden class in V8); `_c0`, `_c1`... (one per column,
 * in schema order) come after them, written by {@link setColumns} only.
 */
export interface VecInternals {
  /** The files, the lock and the mappings (the generated binding's class). */
  _native: NativeVec
  /** The schema as `schema` returns it. */
  _schema: Schema
  /** The columns in schema order; the generated code compares it to see a schema change. */
  _spec: NormalizedSchema
  _temp: boolean
  _readOnly: boolean
  /** How the columns reach JavaScript (storage/storage.ts), chosen at open. */
  _storage: Storage<VecInternals>
  _path: string
  _closed: boolean
  /** The autoFlush interval, while there is one. */
  _timer: ReturnType<typeof setInterval> | undefined
  /** A background flush is running. */
  _flushing: boolean
  /** The error of a failed background flush, for the next flush call. */
  _flushError: unknown
  /** The last `columns` object, while the length and the views are the same. */
  _columnsCache: { len: number; gen: number; value: Record<string, AnyColumn> } | undefined
  /** Bumped whenever the views are replaced. */
  _gen: number
  /** The stored column index of each schema column. */
  _stored: number[]
  /** The header's row count, an f64 at index 0 (written by every change of the length). */
  _hdr: Float64Array
  /** The row count (a small integer in V8 where it fits: see the constructor). */
  _len: number
  _cap: number
  /** `push` grows when the length reaches this: the capacity, or -1 when read-only or closed. */
  _limit: number
  /** Full-capacity views, in schema order (the same arrays as `_c0`...). */
  _cols: AnyColumn[]
  /** The live file's words (live.ts): the sequence counter is `_live[_seqAt]`. */
  _live: Int32Array
  _seqAt: number
  /** `_live[_waitAt]`: readers waiting for a publish. */
  _waitAt: number
  /** The published row count, at index 0. */
  _pub: Float64Array
  /** Depth of `batch` calls under way. */
  _units: number
  /** A publish is scheduled (always true where there is nothing to publish to). */
  _pubDue: boolean
  /** Units begin and end natively (a CPU that reorders stores; live.ts). */
  _nativeUnits: boolean

  /** Throws ECLOSED once closed. */
  _open(): void
  /** Throws ECLOSED once closed, EREADONLY when read-only. */
  _writable(): void
  _notWritable(): never
  /** Called by the generated `push` when the length reaches `_limit`. */
  _growFor(n: number): void
  /** Grows to at least `n` rows (`forWrites`: pushMany will write them through the file). */
  _grow(n: number, geometric: boolean, forWrites?: boolean): void
  /** Sets the row count, here and in the header, and publishes it. */
  _setLength(n: number): void
  /** Called by the generated `push` when no publish is due: publishes soon (live.ts). */
  _schedulePublish(): void
  /** Called by the generated `set` around a row written outside any batch (live.ts). */
  _beginUnit(): void
  _endUnit(): void
  /** Throws EINVAL when the program detached one of the column buffers. */
  _checkViews(): void
  _badIndex(i: unknown): never
  _schemaChanged(): MmapVecError
  _rowError(r: unknown): MmapVecError
  _valueError(k: number, v: unknown): MmapVecError
  _copyArray(k: number, a: unknown): AnyColumn
  _readArray(c: AnyColumn, o: number, n: number, bool: boolean): unknown[]
  /** Generated per schema: reads and checks row `r` into staging columns `t` at row `i`. */
  _stageRow(r: unknown, t: AnyColumn[], i: number): void

  readonly length: number
  push(row: never): number
  get(i: number): unknown
  close(options?: { flush?: boolean }): void
}

/**
 * Makes `cols` the vec's views: `_cols`, and the fields `_c0`... that the generated code reads
 * (the fields of columns past the new count, after a drop, are cleared). Bumps `_gen`.
 */
export function setColumns(vec: VecInternals, cols: AnyColumn[]): void {
  const fields = vec as unknown as Record<string, unknown>
  const before = vec._cols.length
  vec._cols = cols
  for (let k = 0; k < cols.length; k++) fields[`_c${k}`] = cols[k]
  for (let k = cols.length; k < before; k++) fields[`_c${k}`] = undefined
  vec._gen++
}
