/**
 * mmapvec: persistent, memory-mapped, growable struct-of-arrays vectors for Node.js.
 *
 * A vec is opened with a schema; its columns are TypedArrays over the file's own pages. The
 * hot path (`push`, `get`, `set`, `at`, `pop`, `length`, `columns`) runs in JavaScript and calls
 * native code only when the capacity must grow.
 *
 * Start with {@link MmapVec.open}. Every failure is a {@link MmapVecError} with a stable
 * {@link ErrorCode}. The Arrow functions ({@link toArrow}, {@link writeArrowIPC},
 * {@link MmapVec.fromArrow}) need the optional peer dependency `apache-arrow`.
 *
 * @example
 * ```ts
 * import { MmapVec } from 'mmapvec'
 *
 * const v = MmapVec.open('world/particles.mvec', { pos: ['f32', 3], id: 'u32', alive: 'bool' })
 * v.push({ pos: [0, 0, 0], id: 1, alive: true })
 * const { pos } = v.columns // a Float32Array over the file's pages
 * pos[0] += 1
 * v.close() // flushes, releases the lock
 * ```
 *
 * @packageDocumentation
 */
export { MmapVec } from './vec.js'
export { MmapVecError, type ErrorCode } from './errors.js'
export type { CloseOptions, OpenOptions } from './open.js'
export type { Mode } from './storage/storage.js'
export type { Snapshot } from './live.js'
export type { ColumnInfo, VecInfo, VerifyProblem } from './info.js'
export { toArrow, writeArrowIPC, writeArrowIPCSync } from './arrow/export.js'
export { fromArrowIPC } from './arrow/import.js'
export type { ArrowTable, FromArrowOptions, RowRange, ToArrowOptions, WriteArrowOptions } from './arrow/types.js'
export type {
  ArrayOfType,
  ColumnInput,
  ColumnOf,
  ColumnsOf,
  FieldInput,
  FieldNames,
  FieldType,
  FieldValue,
  Fields,
  PartialRowInput,
  RowInput,
  RowOf,
  ScalarType,
  Schema,
  ValueOfType,
  ValuesOf,
  WithColumn,
  WithRenamedColumn,
  WithoutColumn,
} from './schema.js'

