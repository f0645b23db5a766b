/**
 * Arrow and mmapvec, side by side: the Arrow functions' option types, the loading of the
 * optional peer dependency `apache-arrow` (on first use), the mapping between a vec's field
 * types and Arrow's, and {@link plan}, the vec schema an Arrow schema makes.
 */
import type * as Arrow from 'apache-arrow'
import { MmapVecError, invalid } from '../errors.js'
import type { OpenOptions } from '../open.js'
import { MAX_COUNT, normalizeSchema, schemaOf, type ColumnSpec, type Schema, type ScalarType } from '../schema.js'

/** The apache-arrow module. */
export type ArrowModule = typeof Arrow

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

let arrowCache: ArrowModule | undefined

/** The error every Arrow function throws when `apache-arrow` cannot be loaded. */
export function missingArrow(): MmapVecError {
  return new MmapVecError(
    'EDEPENDENCY',
    "mmapvec's Arrow functions need the apache-arrow package, which is not installed; install it with: npm install apache-arrow",
  )
}

/** Loads `apache-arrow` (its CommonJS build) on first use. */
export function loadArrow(): ArrowModule {
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

/** The apache-arrow class of each element type. */
const ARROW_CLASSES = {
  i8: 'Int8', u8: 'Uint8', i16: 'Int16', u16: 'Uint16', i32: 'Int32', u32: 'Uint32',
  i64: 'Int64', u64: 'Uint64', f32: 'Float32', f64: 'Float64', bool: 'Bool',
} as const satisfies Record<ScalarType, keyof ArrowModule>

function arrowElementType(arrow: ArrowModule, t: ScalarType): Arrow.DataType {
  return new arrow[ARROW_CLASSES[t]]()
}

export function arrowType(arrow: ArrowModule, c: ColumnSpec): Arrow.DataType {
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

function columnOf(arrow: ArrowModule, f: Arrow.Field, where: string, file: string | undefined): ColumnSpec {
  // apache-arrow types a Field's type as `any` unless told otherwise.
  const type = f.type as Arrow.DataType
  const el = elementOf(arrow, type)
  if (el !== undefined) return { name: f.name, type: el, count: 1 }
  if (arrow.DataType.isFixedSizeList(type)) {
    // Its valueType getter (and toString) read children[0].type, which a damaged file may lack
    // (apache-arrow decodes a missing child as undefined).
    const children = (type.children as (Arrow.Field | undefined)[] | undefined) ?? []
    if (children.length !== 1 || children[0]?.type == null) {
      // No Arrow writer makes one: damage (EFORMAT) in a file, a program's mistake in a Table.
      const [code, at] = file === undefined ? (['EINVAL', where] as const) : (['EFORMAT', file] as const)
      throw new MmapVecError(code, `${at}: column '${f.name}' is a FixedSizeList without exactly one child type: the Arrow schema is malformed; ${file === undefined ? 'give the list its element field' : 'write the file again or use a sound copy'}`, at)
    }
    const l = type as Arrow.FixedSizeList<Arrow.DataType>
    const inner = elementOf(arrow, l.valueType)
    if (inner !== undefined && l.listSize >= 1 && l.listSize <= MAX_COUNT) return { name: f.name, type: inner, count: l.listSize }
  }
  // Every concrete apache-arrow type has a toString (`Utf8`, `Float16`...); the base class does not declare it.
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  throw invalid(`${where}: column '${f.name}' has the Arrow type ${String(type)}, which mmapvec cannot store; ${SUPPORTED}`, where)
}

const describe = (c: ColumnSpec) => `${c.name}: ${c.count === 1 ? c.type : `[${c.type}, ${c.count}]`}`

export interface Plan {
  schema: Schema
  /** The vec's columns in schema order, each with the index of its Arrow column. */
  columns: { spec: ColumnSpec; source: number }[]
}

/**
 * Maps an Arrow schema to a vec schema, checked against `wanted` when given. Throws before
 * anything is created. `file` is the Arrow file the schema was read from, if any: a schema no
 * Arrow writer makes is EFORMAT naming it, and EINVAL in a Table a program made.
 */
export function plan(arrow: ArrowModule, s: Arrow.Schema, wanted: Schema | undefined, path: string, file?: string): Plan {
  const found = s.fields.map((f) => columnOf(arrow, f, path, file))
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
  return { schema: schemaOf({ scalar, columns: found }), columns: found.map((spec, source) => ({ spec, source })) }
}
