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

/** The largest finite value of each float type, as the shortest decimal that reads back as it. */
const FLOAT_MAX = { f32: '3.4028235e38', f64: '1.7976931348623157e308' }

/**
 * A JSON number whose text JSON.parse cannot keep: beyond f64 (1e400 parses as Infinity), too
 * small for it and not zero (1e-400 parses as 0), or an integer past 2^53 (which parses as
 * another one). Import refuses the first two, and the third in integer fields, quoting the text.
 */
export class JsonNumber {
  constructor(
    readonly text: string,
    readonly value: number,
  ) {}
}

/** Whether decimal `text`, read as `x`, lost its value: an overflow, or a non-zero that became 0. */
function lost(text: string, x: number): boolean {
  return !Number.isFinite(x) || (x === 0 && /[1-9]/.test(text.split(/[eE]/)[0]))
}

const NUMBER_TOKEN = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y

/**
 * `value` (JSON.parse of `line`) with each number that lost its value replaced by a
 * {@link JsonNumber} holding its text. JSON.parse keeps no text, so this scans `line` (which
 * parsed, so it is valid JSON) for number tokens, following the keys and indexes to each.
 */
export function keepLostNumbers(line: string, value: unknown): unknown {
  // A fast way out: a number loses its value only with an exponent or 16 digits or more.
  if (!/\d[eE]|\d{16}/.test(line)) return value
  const path: (string | number)[] = []
  const arrays: boolean[] = []
  let key = false // the next string is an object key
  const lostAt = new Map<string, { path: (string | number)[]; text: string }>()
  for (let i = 0; i < line.length; ) {
    const ch = line[i]
    if (ch === '"') {
      let end = i + 1
      while (line[end] !== '"') end += line[end] === '\\' ? 2 : 1
      if (key) path[path.length - 1] = JSON.parse(line.slice(i, end + 1)) as string
      key = false
      i = end + 1
    } else if (ch === '{' || ch === '[') {
      arrays.push(ch === '[')
      path.push(0)
      key = ch === '{'
      i++
    } else if (ch === '}' || ch === ']') {
      arrays.pop()
      path.pop()
      i++
    } else if (ch === ',') {
      if (arrays[arrays.length - 1]) path[path.length - 1] = (path[path.length - 1] as number) + 1
      else key = true
      i++
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      NUMBER_TOKEN.lastIndex = i
      const text = NUMBER_TOKEN.exec(line)![0]
      // The last of a key given twice wins, as in JSON.parse.
      const at = JSON.stringify(path)
      const n = Number(text)
      if (lost(text, n) || (INTEGER.test(text) && !Number.isSafeInteger(n))) lostAt.set(at, { path: [...path], text })
      else lostAt.delete(at)
      i += text.length
    } else {
      i++
    }
  }
  if (lostAt.size === 0) return value
  const holder: Record<string, unknown> = { value }
  for (const { path: p, text } of lostAt.values()) {
    let parent: unknown = holder
    const keys = ['value', ...p]
    for (const k of keys.slice(0, -1)) parent = parent !== null && typeof parent === 'object' ? (parent as Record<string | number, unknown>)[k] : undefined
    const last = keys[keys.length - 1]
    // Only where that number is what JSON.parse left: a key given twice may hold another value.
    if (parent === null || typeof parent !== 'object') continue
    const box = parent as Record<string | number, unknown>
    if (Object.is(box[last], Number(text))) box[last] = new JsonNumber(text, Number(text))
  }
  return holder.value
}

/** Characters of a string value shown in an error. */
const SHOWN = 80

/**
 * A wrong value as an error shows it, without recursion: JSON.parse takes arrays nested
 * deeper than JSON.stringify can write back (5,000 deep overflowed the stack), and a long
 * value would drown the message.
 */
function describe(raw: unknown): string {
  if (raw instanceof JsonNumber) return raw.text
  if (Array.isArray(raw)) return `an array of ${raw.length} value${raw.length === 1 ? '' : 's'}`
  if (raw !== null && typeof raw === 'object') return 'an object'
  if (typeof raw === 'string') return JSON.stringify(raw.length > SHOWN ? `${raw.slice(0, SHOWN)}...` : raw)
  return String(raw)
}

/** What `import` reads for one element of type `type`: text (CSV) or a JSON value. */
export function parseElement(type: ScalarType, raw: unknown, where: () => string): number | bigint | boolean {
  const bad = (want: string): never => {
    throw new MmapVecError('EINVAL', `${where()}: expected ${want}, got ${describe(raw)}`)
  }
  switch (type) {
    case 'bool': {
      // Spaces around the text are dropped, as for numbers ('1, true').
      const b = typeof raw === 'string' ? raw.trim() : raw
      if (b === true || b === 'true' || b === '1' || b === 1) return true
      if (b === false || b === 'false' || b === '0' || b === 0) return false
      return bad('true or false')
    }
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
      let x: number | undefined
      let text: string | undefined // the decimal, when known
      if (typeof raw === 'number') x = raw
      else if (raw instanceof JsonNumber) [x, text] = [raw.value, raw.text]
      else if (typeof raw === 'string') {
        const s = raw.trim()
        if (s === 'NaN' || s === 'Infinity' || s === '-Infinity' || s === '+Infinity') return Number(s)
        if (DECIMAL.test(s)) [x, text] = [Number(s), s]
      }
      if (x === undefined) return bad('a number (or NaN, Infinity, -Infinity)')
      // Refused rather than rounded to Infinity or 0, as integers out of range are refused.
      // (A JSON number is finite: JSON has no Infinity, and import reads it as a string.)
      const y = type === 'f32' ? Math.fround(x) : x
      if (!Number.isFinite(y)) return bad(`a number of size at most ${FLOAT_MAX[type]} (${type}; Infinity is written as such)`)
      if (y === 0 && (text === undefined ? x !== 0 : lost(text, 0))) {
        return bad(`a number that ${type} can hold: this one is too small and would be rounded to 0`)
      }
      return x
    }
    default: {
      const [lo, hi] = INT_RANGE[type]!
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && DECIMAL.test(raw.trim()) ? Number(raw.trim()) : NaN
      if (!Number.isInteger(n) || n < lo || n > hi) return bad(`a whole number from ${lo} to ${hi} (${type})`)
      return n
    }
  }
}
