import { MAX_COUNT } from '../native/binding.js'

/**
 * The element types a field can have: signed and unsigned integers of 8 to 64 bits, 32- and
 * 64-bit floats, and `bool`. `i64`/`u64` values are `bigint`s; `bool` takes one byte (0 or 1).
 */
export type ScalarType = 'i8' | 'u8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'u64' | 'f32' | 'f64' | 'bool'

/**
 * A field: one value of a type (`'u32'`), or a fixed-size array of `n` of them (`['f32', 3]`,
 * `n` from 1 to 2^20).
 */
export type FieldType = ScalarType | readonly [ScalarType, number]

/** A struct of named fields, e.g. `{ pos: ['f32', 3], id: 'u32', alive: 'bool' }`. Up to 1024. */
export type Fields = { readonly [name: string]: FieldType }

/**
 * A vec's schema: a struct of fields, or one field type for a vec of plain values. The row
 * type ({@link RowOf}) and the column types ({@link ColumnsOf}) are inferred from it.
 *
 * @example
 * ```ts
 * const Particle = { pos: ['f32', 3], vel: ['f32', 3], id: 'u32', alive: 'bool' } as const satisfies Schema
 * const prices: Schema = 'f64' // a vec of plain values
 * ```
 */
export type Schema = FieldType | Fields

/** The JavaScript value of one element of the given type: `bigint`, `boolean` or `number`. */
export type ValueOfType<T> = T extends 'i64' | 'u64' ? bigint : T extends 'bool' ? boolean : number

/** The TypedArray a column of the given element type is. */
export type ArrayOfType<T> = T extends 'i8'
  ? Int8Array
  : T extends 'u8' | 'bool'
    ? Uint8Array
    : T extends 'i16'
      ? Int16Array
      : T extends 'u16'
        ? Uint16Array
        : T extends 'i32'
          ? Int32Array
          : T extends 'u32'
            ? Uint32Array
            : T extends 'i64'
              ? BigInt64Array
              : T extends 'u64'
                ? BigUint64Array
                : T extends 'f32'
                  ? Float32Array
                  : T extends 'f64'
                    ? Float64Array
                    : never

/** What `get` returns for a field: a value, or an array of them for an array field. */
export type FieldValue<F> = F extends ScalarType
  ? ValueOfType<F>
  : F extends readonly [infer T, number]
    ? ValueOfType<T>[]
    : never

/** What `push`/`set` accept for a field: array fields take arrays or TypedArrays. */
export type FieldInput<F> = F extends ScalarType
  ? ValueOfType<F>
  : F extends readonly [infer T, number]
    ? ArrayLike<ValueOfType<T>>
    : never

/** The column TypedArray of a field. */
export type ColumnOf<F> = F extends ScalarType ? ArrayOfType<F> : F extends readonly [infer T, number] ? ArrayOfType<T> : never

/**
 * A row as `get` returns it (a copy): an object of the fields, or the bare value for a vec of
 * plain values.
 *
 * @example
 * ```ts
 * type P = RowOf<{ pos: ['f32', 3]; id: 'u64'; alive: 'bool' }>
 * // { pos: number[]; id: bigint; alive: boolean }
 * ```
 */
export type RowOf<S extends Schema> = S extends FieldType
  ? FieldValue<S>
  : { -readonly [K in keyof S]: FieldValue<S[K]> }

/** A row as `push` takes it: every field present. */
export type RowInput<S extends Schema> = S extends FieldType
  ? FieldInput<S>
  : { [K in keyof S]: FieldInput<S[K]> }

/** Some fields of a row, as `set` takes them. */
export type PartialRowInput<S extends Schema> = S extends FieldType
  ? FieldInput<S>
  : { [K in keyof S]?: FieldInput<S[K]> }

/**
 * The `columns` of a vec of fields: one TypedArray per field over the mapped pages (`never`
 * for a vec of plain values, which has `values` instead).
 *
 * @example
 * ```ts
 * type C = ColumnsOf<{ pos: ['f32', 3]; id: 'u64' }>
 * // { readonly pos: Float32Array; readonly id: BigUint64Array }
 * ```
 */
export type ColumnsOf<S extends Schema> = S extends FieldType ? never : { readonly [K in keyof S]: ColumnOf<S[K]> }

/** The `values` of a vec of plain values: its one column (`never` for a vec of fields). */
export type ValuesOf<S extends Schema> = S extends FieldType ? ColumnOf<S> : never

/**
 * Columns given to `pushMany`: one array or TypedArray per field, all of the same row count.
 * A vec of plain values takes its one column as a TypedArray (a plain array there is a list of
 * rows).
 */
export type ColumnInput<S extends Schema> = S extends FieldType
  ? ColumnOf<S>
  : { [K in keyof S]: ArrayLike<FieldValue<S[K]> extends (infer E)[] ? E : FieldValue<S[K]>> | ColumnOf<S[K]> }

/** The field names of a struct schema (`never` for a vec of plain values, which has none). */
export type FieldNames<S extends Schema> = S extends FieldType ? never : keyof S & string

/** The schema after `addColumn(name, type)`: the new field `N` of type `F` last. */
export type WithColumn<S extends Schema, N extends string, F extends FieldType> = S extends FieldType
  ? never
  : { readonly [K in keyof S | N]: K extends N ? F : S[K & keyof S] }

/** The schema after `dropColumn(name)`: without the field `N`. */
export type WithoutColumn<S extends Schema, N extends string> = S extends FieldType
  ? never
  : { readonly [K in keyof S as K extends N ? never : K]: S[K] }

/** The schema after `renameColumn(from, to)`: the field `F` named `T`. */
export type WithRenamedColumn<S extends Schema, F extends string, T extends string> = S extends FieldType
  ? never
  : { readonly [K in keyof S as K extends F ? T : K]: S[K] }

/** One column after validation. */
export interface ColumnSpec {
  readonly name: string
  readonly type: ScalarType
  readonly count: number
}

/** A schema after validation, in the form the native layer stores. */
export interface NormalizedSchema {
  readonly scalar: boolean
  readonly columns: readonly ColumnSpec[]
}

const TYPES: ReadonlySet<string> = new Set<ScalarType>([
  'i8', 'u8', 'i16', 'u16', 'i32', 'u32', 'i64', 'u64', 'f32', 'f64', 'bool',
])

// MAX_COUNT, the most values one array field may hold, is defined in Rust (the binding's).
export { MAX_COUNT }

function describeValue(v: unknown): string {
  try {
    return typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v))
  } catch {
    return String(v)
  }
}

/** Checks one field type and returns its element type and width, or a reason it is bad. */
export function field(name: string, t: unknown): ColumnSpec | string {
  if (typeof t === 'string') {
    return TYPES.has(t) ? { name, type: t as ScalarType, count: 1 } : `unknown type ${describeValue(t)}`
  }
  if (Array.isArray(t) && t.length === 2 && typeof t[0] === 'string') {
    if (!TYPES.has(t[0])) return `unknown type ${describeValue(t[0])}`
    const n: unknown = t[1]
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_COUNT) {
      return `array length ${describeValue(n)} must be a whole number from 1 to ${MAX_COUNT}`
    }
    return { name, type: t[0] as ScalarType, count: n }
  }
  return `${describeValue(t)} is not a type; use one of ${[...TYPES].join(', ')} or [type, length]`
}

/** Validates a user schema; returns null with a reason when it is bad. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Whether `s` holds half of a UTF-16 surrogate pair alone: such a string has no UTF-8 form, so
 * the core would store another name (U+FFFD) than the one given, or open another path.
 */
export function notUnicode(s: string): boolean {
  return LONE_SURROGATE.test(s)
}

/** The message for a name that {@link notUnicode} refuses. */
export function notUnicodeMessage(what: string, s: string): string {
  return `${what} ${JSON.stringify(s)} is not valid Unicode (it holds a lone UTF-16 surrogate such as '\\uD800'), so it has no UTF-8 form to store; use well-formed text`
}

export function normalizeSchema(schema: unknown): NormalizedSchema | string {
  if (typeof schema === 'string' || Array.isArray(schema)) {
    const c = field('value', schema)
    return typeof c === 'string' ? `invalid schema: ${c}` : { scalar: true, columns: [c] }
  }
  if (schema === null || typeof schema !== 'object') {
    return `invalid schema: ${describeValue(schema)}; give a type such as 'f64' or an object of fields such as { x: 'f32', id: 'u32' }`
  }
  const names = Object.keys(schema)
  if (names.length === 0) return "invalid schema: it has no fields; give at least one, e.g. { x: 'f32' }"
  const columns: ColumnSpec[] = []
  for (const name of names) {
    if (name.length === 0) return 'invalid schema: a field has an empty name'
    if (notUnicode(name)) return `invalid schema: ${notUnicodeMessage('field name', name)}`
    const c = field(name, (schema as Record<string, unknown>)[name])
    if (typeof c === 'string') return `invalid schema: field '${name}': ${c}`
    columns.push(c)
  }
  return { scalar: false, columns }
}

/** The schema in the form `MmapVec.open` takes (`'f64'`, `{ pos: ['f32', 3], id: 'u32' }`). */
export function schemaOf(spec: NormalizedSchema): Schema {
  const field = (c: ColumnSpec): FieldType => (c.count === 1 ? c.type : [c.type, c.count])
  if (spec.scalar) return field(spec.columns[0])
  const fields: Record<string, FieldType> = {}
  // defineProperty: a field may be named __proto__.
  for (const c of spec.columns) Object.defineProperty(fields, c.name, { value: field(c), enumerable: true, writable: true, configurable: true })
  return fields
}

/** The stored column index of each column of `spec`, from the stored columns (a `Layout`'s). */
export function storedOrder(spec: NormalizedSchema, stored: readonly { name: string }[]): number[] {
  return spec.columns.map((c) => stored.findIndex((s) => s.name === c.name))
}

/** The constructor of each element type's TypedArray. */
export const ARRAY_TYPES = {
  i8: Int8Array,
  u8: Uint8Array,
  i16: Int16Array,
  u16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
  i64: BigInt64Array,
  u64: BigUint64Array,
  f32: Float32Array,
  f64: Float64Array,
  bool: Uint8Array,
} as const

export type AnyColumn = InstanceType<(typeof ARRAY_TYPES)[ScalarType]>
