/**
 * Values as text, both ways: how the command prints a column's values (table, CSV, JSON lines)
 * and how `import` reads them back. Printing is exact: f64 values print as JavaScript's
 * shortest round-tripping decimal, f32 values as the shortest decimal that gives back the same
 * f32, i64/u64 as bigint decimals, so an export imports back to the same bits.
 */
import { MmapVecError } from '../errors.js'
import type { AnyColumn, ColumnSpec, ScalarType } from '../schema.js'

/** How a value is printed: `text` (tables, CSV) or `json` (JSON lines). */
export type Style = 'text' | 'json'

const INT_RANGE: Partial<Record<ScalarType, [number, number]>> = {
  i8: [-128, 127],
  u8: [0, 255],
  i16: [-32768, 32767],
  u16: [0, 65535],
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
}
const BIG_RANGE: Partial<Record<ScalarType, [bigint, bigint]>> = {
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
  u64: [0n, 2n ** 64n - 1n],
}

/** The shortest decimal that reads back as the same f32. */
function f32Text(x: number): string {
  for (let p = 1; p < 9; p++) {
    const s = x.toPrecision(p)
    if (Math.fround(Number(s)) === x) return String(Number(s))
  }
  return String(x)
}

function floatText(x: number, f32: boolean, style: Style): string {
  if (Number.isNaN(x) || !Number.isFinite(x)) {
    // JSON has no NaN or Infinity: they are strings there, and import takes them back.
    const s = String(x)
    return style === 'json' ? `"${s}"` : s
  }
  if (Object.is(x, -0)) return '-0'
  return f32 ? f32Text(x) : String(x)
}

/** Prints one element of a column of type `type`. */
export function elementFormatter(type: ScalarType, style: Style): (v: number | bigint) => string {
  switch (type) {
    case 'bool':
      return (v) => (v !== 0 ? 'true' : 'false')
    case 'i64':
    case 'u64':
      return style === 'json' ? (v) => `"${String(v)}"` : (v) => String(v)
    case 'f32':
      return (v) => floatText(v as number, true, style)
    case 'f64':
      return (v) => floatText(v as number, false, style)
    default:
      return (v) => String(v)
  }
}

/**
 * Prints field `c` of row `i` from its column: one value, or an array as `[1, 2, 3]` (text)
 * or `[1,2,3]` (json).
 */
export function cellFormatter(c: ColumnSpec, style: Style): (col: AnyColumn, i: number) => string {
  const el = elementFormatter(c.type, style)
  const n = c.count
  if (n === 1) return (col, i) => el(col[i])
  const sep = style === 'json' ? ',' : ', '
  return (col, i) => {
    const parts = new Array<string>(n)
    for (let j = 0; j < n; j++) parts[j] = el(col[i * n + j])
    return `[${parts.join(sep)}]`
  }
}

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const INTEGER = /^[+-]?\d+$/

/** What `import` reads for one element of type `type`: text (CSV) or a JSON value. */
export function parseElement(type: ScalarType, raw: unknown, where: () => string): number | bigint | boolean {
  const bad = (want: string): never => {
    const got = typeof raw === 'string' ? JSON.stringify(raw) : JSON.stringify(raw) ?? String(raw)
    throw new MmapVecError('EINVAL', `${where()}: expected ${want}, got ${got}`)
  }
  switch (type) {
    case 'bool':
      if (raw === true || raw === 'true' || raw === '1' || raw === 1) return true
      if (raw === false || raw === 'false' || raw === '0' || raw === 0) return false
      return bad('true or false')
    case 'i64':
    case 'u64': {
      const [lo, hi] = BIG_RANGE[type]!
      let b: bigint | undefined
      if (typeof raw === 'string' && INTEGER.test(raw.trim())) b = BigInt(raw.trim())
      else if (typeof raw === 'number' && Number.isSafeInteger(raw)) b = BigInt(raw)
      if (b === undefined || b < lo || b > hi) return bad(`a whole number from ${lo} to ${hi} (in JSON, a string of digits)`)
      return b
    }
    case 'f32':
    case 'f64': {
      if (typeof raw === 'number') return raw
      if (typeof raw === 'string') {
        const s = raw.trim()
        if (s === 'NaN' || s === 'Infinity' || s === '-Infinity' || s === '+Infinity') return Number(s)
        if (DECIMAL.test(s)) return Number(s)
      }
      return bad('a number (or NaN, Infinity, -Infinity)')
    }
    default: {
      const [lo, hi] = INT_RANGE[type]!
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && DECIMAL.test(raw.trim()) ? Number(raw.trim()) : NaN
      if (!Number.isInteger(n) || n < lo || n > hi) return bad(`a whole number from ${lo} to ${hi} (${type})`)
      return n
    }
  }
}
