/**
 * What the generated per-schema code (codegen.ts) calls besides the columns: the errors it
 * throws for a bad row, value or index, and the copies of array fields longer than it unrolls.
 * The vec's underscore methods of the same names call these.
 */
import { MmapVecError, invalid } from './errors.js'
import type { VecInternals } from './internals.js'
import { ARRAY_TYPES, type AnyColumn, type ScalarType } from './schema.js'

/**
 * Reads `n` elements of `a` once each into `out` (a TypedArray of the column's type), checking
 * their JavaScript type: false at the first bad one. Getters may run; nothing else is touched.
 */
export function copyChecked(a: ArrayLike<unknown>, n: number, type: ScalarType, out: AnyColumn): boolean {
  const want = type === 'i64' || type === 'u64' ? 'bigint' : type === 'bool' ? 'boolean' : 'number'
  const o = out as unknown as unknown[]
  for (let j = 0; j < n; j++) {
    const e = a[j]
    if (typeof e !== want) return false
    o[j] = want === 'boolean' ? (e ? 1 : 0) : e
  }
  return true
}

/** The error of a bad index: EINVAL when it is not a whole number, else ERANGE (ECLOSED once closed). */
export function badIndex(vec: VecInternals, i: unknown): never {
  vec._open()
  if (typeof i !== 'number' || !Number.isInteger(i)) {
    throw invalid(`${vec._path}: index must be a whole number, got ${String(i)}`, vec._path)
  }
  throw new MmapVecError('ERANGE', `${vec._path}: index ${i} is out of bounds for length ${vec._len}`, vec._path)
}

/** A getter or iterator changed the schema while a row was read (nothing was written). */
export function schemaChanged(vec: VecInternals): MmapVecError {
  return new MmapVecError(
    'ESCHEMA',
    `${vec._path}: the vec's schema changed while the row was being read (a getter or iterator called addColumn, dropColumn or renameColumn); nothing was written. Write the row again, in the new schema`,
    vec._path,
  )
}

/** The error of a row that is not an object. */
export function rowError(vec: VecInternals, r: unknown): MmapVecError {
  return invalid(`${vec._path}: a row must be an object with the fields ${vec._spec.columns.map((c) => c.name).join(', ')}, got ${String(r)}`, vec._path)
}

/** The error of a bad value `v` of column `k`, saying what the column takes. */
export function valueError(vec: VecInternals, k: number, v: unknown): MmapVecError {
  const c = vec._spec.columns[k]
  const what = c.type === 'i64' || c.type === 'u64' ? 'a bigint' : c.type === 'bool' ? 'a boolean' : 'a number'
  const want = c.count === 1 ? what : `an array of ${c.count} values, each ${what}`
  const field = vec._spec.scalar ? 'value' : `field '${c.name}'`
  let got: string
  try {
    got = typeof v === 'bigint' ? `${v}n` : typeof v === 'object' && v !== null ? Object.prototype.toString.call(v) : String(v)
  } catch {
    got = typeof v
  }
  return invalid(`${vec._path}: ${field} must be ${want}, got ${got}`, vec._path)
}

/**
 * For array fields longer than the generated code unrolls: reads `a`'s elements once each into
 * a new TypedArray of column `k`'s type, checking them (getters may run).
 */
export function copyArray(vec: VecInternals, k: number, a: unknown): AnyColumn {
  const c = vec._spec.columns[k]
  if (a === null || typeof a !== 'object' || (a as ArrayLike<unknown>).length !== c.count) throw valueError(vec, k, a)
  const out = new ARRAY_TYPES[c.type](c.count)
  if (!copyChecked(a as ArrayLike<unknown>, c.count, c.type, out)) throw valueError(vec, k, a)
  return out
}

/** `n` elements of `c` from `o` as a plain array (booleans for a bool column), for `get`. */
export function readArray(c: AnyColumn, o: number, n: number, bool: boolean): unknown[] {
  const out = new Array<unknown>(n)
  for (let j = 0; j < n; j++) out[j] = bool ? c[o + j] !== 0 : c[o + j]
  return out
}
