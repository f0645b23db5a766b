/**
 * What a vec is, read without opening it: {@link MmapVec.inspect} (schema, length, capacity,
 * files, lock) and {@link MmapVec.verify} (every problem the format's checks find).
 */
import { inspect as nativeInspect, verify as nativeVerify } from '../native/binding.js'
import { callNative, type ErrorCode } from './errors.js'
import { checkPath } from './paths.js'
import { schemaOf, type NormalizedSchema, type ScalarType, type Schema } from './schema.js'

/** One column of a vec, as {@link MmapVec.inspect} finds it. */
export interface ColumnInfo {
  /** The field's name (`value` for a vec of plain values). */
  readonly name: string
  /** The element type. */
  readonly type: ScalarType
  /** Values per row (1 for a plain field, n for `[type, n]`). */
  readonly count: number
  /** The column's file in the vec's directory. */
  readonly file: string
  /** Where the rows start in the file. */
  readonly offset: number
  /** The file's size in bytes; null when the file is missing. */
  readonly bytes: number | null
  /** Rows the file has room for; null when the file is missing. */
  readonly rows: number | null
}

/** What {@link MmapVec.inspect} finds. */
export interface VecInfo {
  /** The vec's directory, as given. */
  readonly path: string
  /** The on-disk format version (docs/FORMAT.md). */
  readonly formatVersion: number
  /** The byte order of the data: always this machine's (a vec of the other order is EARCH). */
  readonly byteOrder: 'little' | 'big'
  /** The architecture of the machine that created the vec (informational). */
  readonly arch: string
  /** The application's data version (the `version` option; 0 when none was given). */
  readonly version: number
  /** The size of the header file in bytes. */
  readonly headerBytes: number
  /** The row count the header holds. */
  readonly length: number
  /** The fewest rows any column file has room for; null when a column file is missing. */
  readonly capacity: number | null
  /** The stored schema, in the form `MmapVec.open` takes, fields in stored order. */
  readonly schema: Schema
  /** Each column's file and size, in stored order. */
  readonly columns: readonly ColumnInfo[]
  /**
   * Who has the vec open at the time of the probe: `'exclusive'` (open read-write somewhere,
   * with or without readers beside it), `'shared'` (open `readOnly` only), or `'none'`.
   */
  readonly lock: 'none' | 'shared' | 'exclusive'
  /** True when a handle of this process holds that lock. */
  readonly lockedByThisProcess: boolean
  /**
   * Whether readers (`readOnly` handles, in any process) have it open, beside a writer or not.
   * `lock` is `'exclusive'` while a writer has it open, else `'shared'` while readers do.
   */
  readonly readers: boolean
}

/** A problem {@link MmapVec.verify} found. */
export interface VerifyProblem {
  /** The error opening the vec would give for it (EFORMAT, EARCH, EACCES, EIO...). */
  readonly code: ErrorCode
  /**
   * The check that found it, a stable name: `directory`, `header-file`, `header-magic`,
   * `byte-order`, `format-version`, `header-size`, `schema-length`, `header-checksum`,
   * `header-reserved`, `header-padding`, `schema`, `column-file-name`, `row-count`,
   * `column-file`, `column-size`, `column-prefix`, `capacity`, `bool-value`.
   */
  readonly check: string
  /** Names the file and what is wrong. */
  readonly message: string
}

/** The body of {@link MmapVec.inspect}. */
export function inspect(path: string): VecInfo {
  checkPath(path)
  const i = callNative(path, () => nativeInspect(path))
  const stored: NormalizedSchema = { scalar: i.scalar, columns: i.columns.map((c) => ({ name: c.name, type: c.type as ScalarType, count: c.count })) }
  return {
    path: i.path,
    formatVersion: i.formatVersion,
    byteOrder: i.littleEndian ? 'little' : 'big',
    arch: i.arch,
    version: i.appVersion,
    headerBytes: i.headerBytes,
    length: i.length,
    capacity: i.capacity ?? null,
    schema: schemaOf(stored),
    columns: i.columns.map((c) => ({
      name: c.name,
      type: c.type as ScalarType,
      count: c.count,
      file: c.file,
      offset: c.offset,
      bytes: c.bytes ?? null,
      rows: c.rows ?? null,
    })),
    lock: i.lock as VecInfo['lock'],
    lockedByThisProcess: i.lockHeldHere,
    readers: i.readers,
  }
}

/** The body of {@link MmapVec.verify}. */
export function verify(path: string): VerifyProblem[] {
  checkPath(path)
  return callNative(path, () => nativeVerify(path)).map((p) => ({ code: p.code as ErrorCode, check: p.check, message: p.message }))
}
