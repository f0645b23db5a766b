// Model-based test: random sequences of commands run against a vec and against a plain array of
// rows, and after every command the two must agree (length, rows, columns, capacity, views held
// from earlier). fast-check shrinks a failure to a minimal sequence and prints it with its seed.
//
// MMAPVEC_SEED=n runs with another seed, or replays a failure (MMAPVEC_NO_SHRINK=1 reports the
// first failure as found, without shrinking it, which is slow); MMAPVEC_SOAK=k runs k times as
// many sequences (each test logs how many sequences and commands it ran).
import test from 'ava'
import fc from 'fast-check'
import { MmapVec, type MmapVecError, type OpenOptions, type ScalarType, type Schema } from 'mmapvec'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { scratch } from './helpers/util.mjs'

const soak = Number(process.env.MMAPVEC_SOAK) || 1
const seed = Number(process.env.MMAPVEC_SEED) || 20260523
const MAX_COMMANDS = 50

const dir = scratch()
let n = 0
const fresh = () => join(dir, `m${n++}.mvec`)

// ---- schemas ----

type Elem = number | bigint | boolean
type FieldValue = Elem | Elem[]
/** A row as get() returns it: a plain value for scalar vecs, an object of fields otherwise. */
type Row = FieldValue | { [field: string]: FieldValue }

interface Col {
  name: string
  type: ScalarType
  count: number
}

interface Spec {
  title: string
  schema: Schema
  scalar: boolean
  cols: Col[]
  runs: number
}

function spec(title: string, schema: Schema, runs: number): Spec {
  const col = (name: string, f: unknown): Col =>
    typeof f === 'string' ? { name, type: f as ScalarType, count: 1 } : { name, type: (f as [ScalarType, number])[0], count: (f as [ScalarType, number])[1] }
  const scalar = typeof schema === 'string' || Array.isArray(schema)
  const cols = scalar ? [col('value', schema)] : Object.entries(schema).map(([k, f]) => col(k, f))
  return { title, schema, scalar, cols, runs }
}

// Creating a vec syncs its files and directory, which dominates a run; the struct vec has a file
// per field, so it gets fewer runs. Its arrays of more than 16 values ('wide', 'bits') take the
// loops of the code generated per schema, the shorter ones its unrolled stores.
const SPECS: Spec[] = [
  spec("'f64'", 'f64', 500),
  spec("'u8'", 'u8', 400),
  spec("'i64'", 'i64', 400),
  spec("'bool'", 'bool', 400),
  spec("['f32', 3]", ['f32', 3], 400),
  spec(
    'struct',
    { a: 'i8', b: 'u16', c: 'i32', d: 'u32', f: 'f32', g: 'f64', big: 'u64', ok: 'bool', arr: ['i16', 4], flags: ['bool', 2], wide: ['i64', 17], bits: ['bool', 17] },
    300,
  ),
]

/** The column each element type is stored in. */
const CTOR = {
  i8: Int8Array, u8: Uint8Array, i16: Int16Array, u16: Uint16Array, i32: Int32Array, u32: Uint32Array,
  i64: BigInt64Array, u64: BigUint64Array, f32: Float32Array, f64: Float64Array, bool: Uint8Array,
} as const

/** What a column looks like to the checks: indexable numbers or bigints. */
interface Column {
  readonly length: number
  readonly buffer: ArrayBufferLike
  [index: number]: number | bigint
}

/** Values that round-trip exactly: in range for integers, f32 values for f32 (NaN and -0 too). */
const ELEM: Record<ScalarType, fc.Arbitrary<Elem>> = {
  i8: fc.integer({ min: -128, max: 127 }),
  u8: fc.integer({ min: 0, max: 255 }),
  i16: fc.integer({ min: -32768, max: 32767 }),
  u16: fc.integer({ min: 0, max: 65535 }),
  i32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  u32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  i64: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  u64: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  f32: fc.float(),
  f64: fc.double(),
  bool: fc.boolean(),
}

const fieldArb = (c: Col): fc.Arbitrary<FieldValue> =>
  c.count === 1 ? ELEM[c.type] : fc.array(ELEM[c.type], { minLength: c.count, maxLength: c.count })

function rowArb(s: Spec): fc.Arbitrary<Row> {
  if (s.scalar) return fieldArb(s.cols[0])
  return fc.record(Object.fromEntries(s.cols.map((c) => [c.name, fieldArb(c)])))
}

/** Some fields of a row (any subset, the empty one too), as set() takes them. */
function partialArb(s: Spec): fc.Arbitrary<Row> {
  if (s.scalar) return fieldArb(s.cols[0])
  return fc.record(Object.fromEntries(s.cols.map((c) => [c.name, fieldArb(c)])), { requiredKeys: [] }) as fc.Arbitrary<Row>
}

/**
 * Many rows from a seed, cheaply: random bits poured into columns (so any f32 or f64, NaNs and
 * -0 too, any 64-bit integer), then read back as rows. Bulk pushes reach the sizes where files grow.
 */
function bulk(s: Spec, count: number, from: number): { rows: Row[]; columns: ArrayLike<Elem>[] } {
  let x = from >>> 0 || 1
  const columns = s.cols.map((c): ArrayLike<Elem> => {
    const n = count * c.count
    const bits = new Uint32Array(Math.ceil((n * CTOR[c.type].BYTES_PER_ELEMENT) / 8) * 2)
    for (let k = 0; k < bits.length; k++) {
      // xorshift32
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      bits[k] = x
    }
    const Ctor = CTOR[c.type] as unknown as new (b: ArrayBufferLike, offset: number, length: number) => ArrayLike<number | bigint>
    const col = new Ctor(bits.buffer, 0, n)
    return c.type === 'bool' ? Array.from(col, (b) => (Number(b) & 1) === 1) : col
  })
  const field = (k: number, i: number): FieldValue => {
    const { count: w } = s.cols[k]
    const col = columns[k]
    if (w === 1) return col[i]
    const a = new Array<Elem>(w)
    for (let j = 0; j < w; j++) a[j] = col[i * w + j]
    return a
  }
  const rows = new Array<Row>(count)
  for (let i = 0; i < count; i++) {
    if (s.scalar) {
      rows[i] = field(0, i)
    } else {
      const row: Record<string, FieldValue> = {}
      for (let k = 0; k < s.cols.length; k++) row[s.cols[k].name] = field(k, i)
      rows[i] = row
    }
  }
  return { rows, columns }
}

// ---- comparing ----

/** Exact equality: Object.is on values (NaN equals NaN, 0 is not -0), arrays and rows by content. */
function same(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]))
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) || Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && kb.every((k) => Object.hasOwn(a, k) && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

function expectSame(actual: unknown, expected: unknown, what: string): void {
  if (same(actual, expected)) return
  // deepStrictEqual compares the same way and prints a readable diff.
  assert.deepStrictEqual(actual, expected, what)
  throw new Error(`${what}: ${fc.stringify(actual)} is not ${fc.stringify(expected)}`)
}

const fieldOf = (s: Spec, row: Row, c: Col): FieldValue => (s.scalar ? (row as FieldValue) : (row as Record<string, FieldValue>)[c.name])
const stored = (e: Elem): number | bigint => (typeof e === 'boolean' ? (e ? 1 : 0) : e)

/** Checks a column holds exactly rows [0, rows) of the model (bools as 0/1). */
function expectColumn(s: Spec, model: readonly Row[], c: Col, col: Column, rows: number, what: string): void {
  for (let i = 0; i < rows; i++) {
    const f = fieldOf(s, model[i], c)
    for (let j = 0; j < c.count; j++) {
      const want = stored(c.count === 1 ? (f as Elem) : (f as Elem[])[j])
      const got = col[i * c.count + j]
      if (!Object.is(got, want)) {
        throw new Error(`${what}: column '${c.name}' [${i * c.count + j}] (row ${i}) is ${fc.stringify(got)}, the model has ${fc.stringify(want)}`)
      }
    }
  }
}

// ---- the vec under test, seen through the members the commands use ----

interface Vec {
  readonly length: number
  readonly capacity: number
  readonly closed: boolean
  readonly mode: 'mmap' | 'buffered' | 'overlay'
  readonly columns: Record<string, Column>
  readonly values: Column
  push(row: unknown): number
  pushMany(input: unknown): number
  get(i: number): unknown
  at(i: number): unknown
  set(i: number, row: unknown): void
  pop(): unknown
  swapRemove(i: number): unknown
  truncate(n: number): void
  clear(): void
  reserve(additional: number): void
  shrinkToFit(): void
  flush(): Promise<void>
  flushSync(): void
  close(options?: { flush?: boolean }): void
  [Symbol.iterator](): Iterator<unknown>
}

// The commands work on any schema, so they see the vec with its row types erased; the typed API
// is covered by types.check.mts.
const open = (path: string, s: Spec, options: OpenOptions) => MmapVec.open(path, s.schema, options) as unknown as Vec

/** Columns taken earlier and kept across commands, as a simulation loop keeps them. */
interface Held {
  cols: Column[]
  rows: number
  /** Per column: an event happened that may empty it (growth past a small reservation). */
  mayEmpty: boolean[]
}

interface Model {
  rows: Row[]
}

interface Real {
  spec: Spec
  path: string
  options: OpenOptions
  v: Vec
  held: Held | undefined
  /** Commands run in this sequence: picks the rows sampled after each one. */
  steps: number
  /** Sequences and commands run by this test, for the log. */
  count: Count
  /** Flushes started and not awaited: each settles to its error, or undefined. */
  pending: Promise<unknown>[]
}

interface Count {
  sequences: number
  commands: number
}

const totals: Count = { sequences: 0, commands: 0 }

const columnsOf = (r: Real): Column[] => (r.spec.scalar ? [r.v.values] : r.spec.cols.map((c) => r.v.columns[c.name]))

/** What must hold after every command. */
function verify(m: Model, r: Real, what: string): void {
  const { v } = r
  const len = m.rows.length
  assert.equal(v.closed, false, `${what}: the vec is open`)
  assert.equal(v.length, len, `${what}: length`)
  assert.ok(v.capacity >= len, `${what}: capacity ${v.capacity} >= length ${len}`)
  if (len > 0) {
    // A few rows: both ends, the middle, and one that moves from command to command.
    for (const i of new Set([0, len - 1, len >> 1, (r.steps * 7919) % len])) expectSame(v.get(i), m.rows[i], `${what}: get(${i})`)
  }
  const h = r.held
  if (h !== undefined && h.rows > 0) {
    r.spec.cols.forEach((c, k) => {
      const col = h.cols[k]
      if (col.length === 0) {
        assert.ok(h.mayEmpty[k], `${what}: a view of '${c.name}' taken earlier became empty although the column never moved`)
        return
      }
      assert.equal(col.length, h.rows * c.count, `${what}: a view of '${c.name}' taken earlier keeps its length`)
      expectColumn(r.spec, m.rows, c, col, Math.min(h.rows, len), `${what}: a view taken earlier`)
    })
  }
}

/** Everything, at the end of a sequence: every row by get, by iteration, and every column. */
function verifyAll(m: Model, r: Real, what: string): void {
  verify(m, r, what)
  for (let i = 0; i < m.rows.length; i++) expectSame(r.v.get(i), m.rows[i], `${what}: get(${i})`)
  expectSame([...r.v], m.rows, `${what}: iteration`)
  expectColumns(m, r, what)
}

function expectColumns(m: Model, r: Real, what: string): void {
  const cols = columnsOf(r)
  r.spec.cols.forEach((c, k) => {
    assert.ok(cols[k] instanceof CTOR[c.type], `${what}: column '${c.name}' is a ${CTOR[c.type].name}`)
    assert.equal(cols[k].length, m.rows.length * c.count, `${what}: column '${c.name}' length`)
    expectColumn(r.spec, m.rows, c, cols[k], m.rows.length, `${what}: columns`)
  })
}

/**
 * Growth may move a column only when the reservation was made small, in buffered and overlay
 * modes, or out of a pack (columns that share one ArrayBuffer: MMAPVEC_PACK_MIN_BYTES=0 packs
 * every vec opened with two columns or more).
 */
function grew(r: Real, before: number): void {
  const h = r.held
  if (h === undefined || r.v.capacity === before) return
  const packed = h.cols.length > 1 && h.cols.every((c) => c.buffer === h.cols[0].buffer)
  if (packed || r.options.reservation !== undefined || r.v.mode !== 'mmap') h.mayEmpty.fill(true)
}

/** shrinkToFit and close must empty every view taken before. */
function expectHeldEmptied(r: Real, what: string): void {
  if (r.held === undefined) return
  r.held.cols.forEach((col, k) => assert.equal(col.length, 0, `${what}: a view of '${r.spec.cols[k].name}' taken before is empty`))
  r.held = undefined
}

// ---- commands ----

/**
 * A row index as a counterexample prints it: `k`, or `length - 1 - k` counted from the end (long
 * vecs are common, and their last rows are where swapRemove and truncate differ).
 */
interface Index {
  k: number
  fromEnd: boolean
}
const resolve = (ix: Index, len: number) => (ix.fromEnd ? len - 1 - ix.k : ix.k)
const show = (ix: Index) => (!ix.fromEnd ? `${ix.k}` : ix.k === 0 ? 'length - 1' : `length - ${ix.k + 1}`)

abstract class Step implements fc.AsyncCommand<Model, Real> {
  check(_m: Readonly<Model>): boolean {
    return true
  }
  async run(m: Model, r: Real): Promise<void> {
    r.steps++
    r.count.commands++
    await this.apply(m, r)
    verify(m, r, `after ${this.toString()}`)
  }
  abstract apply(m: Model, r: Real): void | Promise<void>
  abstract toString(): string
}

/** Array fields given as TypedArrays instead of plain arrays (bools have none). */
function asInput(s: Spec, row: Row, typed: boolean): unknown {
  if (!typed) return row
  const conv = (c: Col, f: FieldValue): unknown => (c.count > 1 && c.type !== 'bool' ? (CTOR[c.type] as { from(a: unknown[]): unknown }).from(f as Elem[]) : f)
  if (s.scalar) return conv(s.cols[0], row as FieldValue)
  const out: Record<string, unknown> = {}
  for (const [k, f] of Object.entries(row as Record<string, FieldValue>)) out[k] = conv(s.cols.find((c) => c.name === k)!, f)
  return out
}

/**
 * The column form of pushMany: an object of columns, each a plain array or (typed) a TypedArray;
 * for scalar vecs a TypedArray, since a plain array there is an iterable of rows.
 */
function asColumns(s: Spec, rows: readonly Row[], typed: boolean): unknown {
  const column = (c: Col) => {
    const flat = rows.flatMap((row) => fieldOf(s, row, c))
    return (typed || s.scalar) && c.type !== 'bool' ? (CTOR[c.type] as { from(a: unknown[]): unknown }).from(flat) : flat
  }
  return s.scalar ? column(s.cols[0]) : Object.fromEntries(s.cols.map((c) => [c.name, column(c)]))
}

class Push extends Step {
  constructor(readonly row: Row, readonly typed: boolean) { super() }
  apply(m: Model, r: Real) {
    const cap = r.v.capacity
    assert.equal(r.v.push(asInput(r.spec, this.row, this.typed)), m.rows.length + 1, 'push returns the new length')
    m.rows.push(this.row)
    grew(r, cap)
  }
  toString() { return `push(${fc.stringify(this.row)}${this.typed ? ', typed' : ''})` }
}

class PushManyRows extends Step {
  constructor(readonly rows: Row[], readonly typed: boolean, readonly lazy: boolean) { super() }
  apply(m: Model, r: Real) {
    const rows = this.rows.map((row) => asInput(r.spec, row, this.typed))
    const cap = r.v.capacity
    // lazy: any iterable, not only an array
    assert.equal(r.v.pushMany(this.lazy ? rows.values() : rows), m.rows.length + rows.length, 'pushMany returns the new length')
    m.rows.push(...this.rows)
    grew(r, cap)
  }
  toString() { return `pushMany(${this.lazy ? 'iterable of ' : ''}rows ${fc.stringify(this.rows)}${this.typed ? ', typed' : ''})` }
}

class PushManyColumns extends Step {
  constructor(readonly rows: Row[], readonly typed: boolean) { super() }
  apply(m: Model, r: Real) {
    const cap = r.v.capacity
    assert.equal(r.v.pushMany(asColumns(r.spec, this.rows, this.typed)), m.rows.length + this.rows.length, 'pushMany returns the new length')
    m.rows.push(...this.rows)
    grew(r, cap)
  }
  toString() { return `pushMany(columns of ${fc.stringify(this.rows)}${this.typed ? ', typed' : ''})` }
}

class PushBulk extends Step {
  constructor(readonly count: number, readonly from: number, readonly form: 'rows' | 'columns') { super() }
  apply(m: Model, r: Real) {
    const { rows, columns } = bulk(r.spec, this.count, this.from)
    const input = this.form === 'rows' ? rows : r.spec.scalar ? columns[0] : Object.fromEntries(r.spec.cols.map((c, k) => [c.name, columns[k]]))
    const cap = r.v.capacity
    assert.equal(r.v.pushMany(input), m.rows.length + rows.length, 'pushMany returns the new length')
    m.rows.push(...rows)
    grew(r, cap)
  }
  toString() { return `pushMany(bulk(${this.count}, seed ${this.from}) as ${this.form})` }
}

class Pop extends Step {
  apply(m: Model, r: Real) {
    const cap = r.v.capacity
    expectSame(r.v.pop(), m.rows.pop(), 'pop returns the last row, undefined when empty')
    assert.equal(r.v.capacity, cap, 'pop keeps the capacity')
  }
  toString() { return 'pop()' }
}

class SetFields extends Step {
  constructor(readonly ix: Index, readonly row: Row, readonly typed: boolean) { super() }
  check(m: Readonly<Model>) { return this.ix.k < m.rows.length }
  apply(m: Model, r: Real) {
    const i = resolve(this.ix, m.rows.length)
    r.v.set(i, asInput(r.spec, this.row, this.typed))
    // A new row object: rows are shared with the commands, which a replay runs again.
    m.rows[i] = r.spec.scalar ? this.row : { ...(m.rows[i] as object), ...(this.row as object) }
  }
  toString() { return `set(${show(this.ix)}, ${fc.stringify(this.row)}${this.typed ? ', typed' : ''})` }
}

class SwapRemove extends Step {
  constructor(readonly ix: Index) { super() }
  check(m: Readonly<Model>) { return this.ix.k < m.rows.length }
  apply(m: Model, r: Real) {
    const i = resolve(this.ix, m.rows.length)
    const want = m.rows[i]
    const last = m.rows.pop()!
    if (i < m.rows.length) m.rows[i] = last
    expectSame(r.v.swapRemove(i), want, `swapRemove(${i}) returns the removed row`)
  }
  toString() { return `swapRemove(${show(this.ix)})` }
}

class Truncate extends Step {
  /** fromEnd: truncate(length - n) */
  constructor(readonly n: number, readonly fromEnd: boolean) { super() }
  check(m: Readonly<Model>) { return !this.fromEnd || this.n <= m.rows.length }
  apply(m: Model, r: Real) {
    const n = this.fromEnd ? m.rows.length - this.n : this.n
    const cap = r.v.capacity
    r.v.truncate(n)
    if (n < m.rows.length) m.rows.length = n
    assert.equal(r.v.capacity, cap, 'truncate keeps the capacity')
  }
  toString() { return this.fromEnd ? `truncate(length - ${this.n})` : `truncate(${this.n})` }
}

class Clear extends Step {
  apply(m: Model, r: Real) {
    const cap = r.v.capacity
    r.v.clear()
    m.rows.length = 0
    assert.equal(r.v.capacity, cap, 'clear keeps the capacity')
  }
  toString() { return 'clear()' }
}

class Reserve extends Step {
  constructor(readonly n: number) { super() }
  apply(m: Model, r: Real) {
    const cap = r.v.capacity
    r.v.reserve(this.n)
    assert.ok(r.v.capacity >= m.rows.length + this.n, `reserve(${this.n}) makes room: capacity ${r.v.capacity}, length ${m.rows.length}`)
    assert.ok(r.v.capacity >= cap, 'reserve never shrinks')
    grew(r, cap)
  }
  toString() { return `reserve(${this.n})` }
}

class ShrinkToFit extends Step {
  apply(m: Model, r: Real) {
    const cap = r.v.capacity
    r.v.shrinkToFit()
    assert.ok(r.v.capacity <= cap, `shrinkToFit never grows: ${cap} -> ${r.v.capacity}`)
    expectHeldEmptied(r, 'shrinkToFit')
  }
  toString() { return 'shrinkToFit()' }
}

class Flush extends Step {
  apply(_m: Model, r: Real) {
    return r.v.flush()
  }
  toString() { return 'await flush()' }
}

/** A flush left running on the thread pool while the next commands change, grow, shrink or close the vec. */
class FlushNoWait extends Step {
  apply(_m: Model, r: Real) {
    r.pending.push(r.v.flush().then(() => undefined, (e: unknown) => e))
  }
  toString() { return 'flush() without awaiting it' }
}

class FlushSync extends Step {
  apply(_m: Model, r: Real) {
    r.v.flushSync()
  }
  toString() { return 'flushSync()' }
}

class Reopen extends Step {
  /** reordered: the same fields in reverse order, which opens the same vec. */
  constructor(readonly flush: boolean, readonly reordered: boolean) { super() }
  apply(m: Model, r: Real) {
    const { v: old, spec: s } = r
    const cap = old.capacity
    old.close({ flush: this.flush })
    assert.equal(old.closed, true)
    assert.equal(old.length, 0, 'a closed vec has no rows')
    expectHeldEmptied(r, 'close')
    const schema = this.reordered ? Object.fromEntries(Object.entries(s.schema).reverse()) : s.schema
    r.v = open(r.path, { ...s, schema }, r.options)
    assert.ok(r.v.capacity >= Math.max(cap, r.options.capacity ?? 0), `reopening keeps the capacity ${cap}: ${r.v.capacity}`)
    expectColumns(m, r, 'reopened')
  }
  toString() {
    return `close({ flush: ${this.flush} }); v = MmapVec.open(path, ${this.reordered ? 'schema with its fields reversed' : 'schema'}, options)`
  }
}

/** A reader between two writers' sessions: sees every row, and may change none. */
class ReopenReadOnly extends Step {
  apply(m: Model, r: Real) {
    r.v.close()
    expectHeldEmptied(r, 'close')
    const reader = open(r.path, r.spec, { readOnly: true, reservation: r.options.reservation })
    try {
      assert.equal(reader.length, m.rows.length, 'readOnly: length')
      for (let i = 0; i < m.rows.length; i++) expectSame(reader.get(i), m.rows[i], `readOnly: get(${i})`)
      const rows = m.rows.length > 0 ? [m.rows[0]] : []
      assert.throws(() => reader.pushMany(rows), (e: MmapVecError) => e.code === 'EREADONLY', 'readOnly: pushMany throws EREADONLY')
      assert.equal(reader.length, m.rows.length, 'readOnly: a refused change adds nothing')
    } finally {
      reader.close()
    }
    r.v = open(r.path, r.spec, r.options)
  }
  toString() { return 'close(); open readOnly, read every row, close; v = MmapVec.open(path, schema, options)' }
}

class ReadRow extends Step {
  constructor(readonly ix: Index) { super() }
  check(m: Readonly<Model>) { return this.ix.k < m.rows.length }
  apply(m: Model, r: Real) {
    const len = m.rows.length
    const i = resolve(this.ix, len)
    expectSame(r.v.get(i), m.rows[i], `get(${i})`)
    expectSame(r.v.at(i), m.rows[i], `at(${i})`)
    expectSame(r.v.at(i - len), m.rows[i], `at(${i - len})`)
  }
  toString() { return `get(i), at(i), at(i - length) with i = ${show(this.ix)}` }
}

class OutOfBounds extends Step {
  constructor(readonly k: number) { super() }
  apply(m: Model, r: Real) {
    const len = m.rows.length
    assert.equal(r.v.at(len + this.k), undefined, `at(${len + this.k})`)
    assert.equal(r.v.at(-len - 1 - this.k), undefined, `at(${-len - 1 - this.k})`)
    const range = (e: MmapVecError) => e.code === 'ERANGE'
    assert.throws(() => r.v.get(len + this.k), range, `get(${len + this.k}) throws ERANGE`)
    assert.throws(() => r.v.swapRemove(len + this.k), range, `swapRemove(${len + this.k}) throws ERANGE and removes nothing`)
  }
  toString() { return `at/get/swapRemove past the end (length + ${this.k})` }
}

class ReadColumns extends Step {
  constructor(readonly scalar: boolean) { super() }
  apply(m: Model, r: Real) {
    expectColumns(m, r, r.spec.scalar ? 'values' : 'columns')
  }
  toString() { return this.scalar ? 'read values' : 'read columns' }
}

class WriteColumn extends Step {
  /**
   * name: the field ('value' for the one column of a scalar vec, its values).
   * viaHeld: write through the view held from earlier when it still covers the row.
   */
  constructor(readonly field: number, readonly name: string, readonly scalar: boolean, readonly ix: Index, readonly j: number, readonly value: Elem, readonly viaHeld: boolean) { super() }
  check(m: Readonly<Model>) { return this.ix.k < m.rows.length }
  apply(m: Model, r: Real) {
    const i = resolve(this.ix, m.rows.length)
    const c = r.spec.cols[this.field]
    const h = r.held
    const col = this.viaHeld && h !== undefined && i < h.rows && h.cols[this.field].length > 0 ? h.cols[this.field] : columnsOf(r)[this.field]
    col[i * c.count + this.j] = stored(this.value)
    // Copy on write, as in SetFields.
    const old = fieldOf(r.spec, m.rows[i], c)
    const f = c.count === 1 ? this.value : (old as Elem[]).map((e, j) => (j === this.j ? this.value : e))
    m.rows[i] = r.spec.scalar ? f : { ...(m.rows[i] as object), [c.name]: f }
  }
  toString() {
    const view = this.scalar ? 'values' : `columns[${JSON.stringify(this.name)}]`
    return `${this.viaHeld ? `(held ?? v).${view}` : view}[(${show(this.ix)}) * width + ${this.j}] = ${fc.stringify(this.value)}`
  }
}

/** A change with one bad value: refused with EINVAL, and nothing of it is written. */
class Rejected extends Step {
  constructor(
    readonly kind: 'push' | 'pushMany' | 'set' | 'columns',
    readonly row: Row,
    readonly partial: Row,
    readonly bad: number,
    readonly badName: string,
    readonly ix: Index,
  ) { super() }
  check(m: Readonly<Model>) { return this.kind !== 'set' || this.ix.k < m.rows.length }
  apply(m: Model, r: Real) {
    const s = r.spec
    const c = s.cols[this.bad]
    const good = fieldOf(s, this.row, c)
    // An array one value short, or a value of the wrong JavaScript type.
    const wrong: unknown = Array.isArray(good) ? good.slice(1) : typeof good === 'number' ? String(good) : typeof good === 'bigint' ? Number(good) : good ? 1 : 0
    const with_ = (row: Row, v: unknown): unknown => (s.scalar ? v : { ...(row as object), [c.name]: v })
    const invalid = (e: MmapVecError) => e.code === 'EINVAL'
    const len = m.rows.length
    // A refused pushMany of rows may have grown the vec for the rows before the bad one.
    const cap = r.v.capacity
    switch (this.kind) {
      case 'push':
        assert.throws(() => r.v.push(with_(this.row, wrong)), invalid, 'push of a bad row throws EINVAL')
        break
      case 'pushMany':
        assert.throws(() => r.v.pushMany([this.row, this.row, with_(this.row, wrong)]), invalid, 'pushMany with a bad row throws EINVAL')
        break
      case 'set': {
        const i = resolve(this.ix, len)
        assert.throws(() => r.v.set(i, with_(this.partial, wrong)), invalid, 'set with a bad field throws EINVAL')
        expectSame(r.v.get(i), m.rows[i], `a refused set(${i}) wrote nothing`)
        break
      }
      case 'columns': {
        // One column a value short: its row count differs from the others' (or is not whole).
        const cols = asColumns(s, [this.row, this.row], true) as Record<string, ArrayLike<unknown>> | ArrayLike<unknown>
        const short = (a: ArrayLike<unknown>) => Array.prototype.slice.call(a, 1) as unknown[]
        const input = s.scalar ? (CTOR[c.type] as { from(a: unknown[]): unknown }).from(short(cols as ArrayLike<unknown>)) : { ...cols, [c.name]: short((cols as Record<string, ArrayLike<unknown>>)[c.name]) }
        assert.throws(() => r.v.pushMany(input), invalid, 'pushMany with a short column throws EINVAL')
        break
      }
    }
    assert.equal(r.v.length, len, 'a refused change adds no rows')
    grew(r, cap)
  }
  toString() {
    return `refused ${this.kind} of ${fc.stringify(this.kind === 'set' ? this.partial : this.row)} with ${this.kind === 'columns' ? 'column' : 'field'} '${this.badName}' made bad${this.kind === 'set' ? ` at ${show(this.ix)}` : ''}`
  }
}

class Hold extends Step {
  apply(m: Model, r: Real) {
    r.held = { cols: columnsOf(r), rows: m.rows.length, mayEmpty: r.spec.cols.map(() => false) }
  }
  toString() { return 'held = v.columns' }
}

function commandArb(s: Spec): fc.Arbitrary<Step> {
  const row = rowArb(s)
  const rows = fc.array(row, { maxLength: 12 })
  // Indexes are exact (not taken modulo the length), so that a counterexample reads as written;
  // a command whose index is past the end is skipped (check) and dropped from the printed sequence.
  const index: fc.Arbitrary<Index> = fc.record({ k: fc.oneof(fc.nat(3), fc.nat(40)), fromEnd: fc.boolean() })
  // A scalar bool vec has no column form for pushMany: its only TypedArray would hold 0/1, not booleans.
  const columnForm = !(s.scalar && s.cols[0].type === 'bool')
  const form = columnForm ? fc.constantFrom('rows' as const, 'columns' as const) : fc.constant('rows' as const)
  // Scalar vecs of width 1 cannot be given a short column: a TypedArray of any length is whole rows.
  const refusable = ['push', 'pushMany', 'set', ...(!s.scalar || (columnForm && s.cols[0].count > 1) ? ['columns' as const] : [])] as const
  const weighted: fc.WeightedArbitrary<Step>[] = [
    { weight: 10, arbitrary: fc.tuple(row, fc.boolean()).map(([x, t]) => new Push(x, t)) },
    { weight: 4, arbitrary: fc.tuple(rows, fc.boolean(), fc.boolean()).map(([x, t, l]) => new PushManyRows(x, t, l)) },
    { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), form).map(([k, f, form]) => new PushBulk(k, f, form)) },
    { weight: 4, arbitrary: fc.constant(null).map(() => new Pop()) },
    { weight: 8, arbitrary: fc.tuple(index, partialArb(s), fc.boolean()).map(([i, x, t]) => new SetFields(i, x, t)) },
    { weight: 5, arbitrary: index.map((i) => new SwapRemove(i)) },
    { weight: 3, arbitrary: fc.tuple(fc.oneof(fc.nat(10), fc.nat(100)), fc.boolean()).map(([k, e]) => new Truncate(k, e)) },
    { weight: 1, arbitrary: fc.constant(null).map(() => new Clear()) },
    { weight: 2, arbitrary: fc.oneof(fc.nat(100), fc.nat(20_000)).map((k) => new Reserve(k)) },
    { weight: 2, arbitrary: fc.constant(null).map(() => new ShrinkToFit()) },
    { weight: 1, arbitrary: fc.constant(null).map(() => new Flush()) },
    { weight: 1, arbitrary: fc.constant(null).map(() => new FlushSync()) },
    { weight: 1, arbitrary: fc.constant(null).map(() => new FlushNoWait()) },
    { weight: 2, arbitrary: fc.tuple(fc.boolean(), s.scalar ? fc.constant(false) : fc.boolean()).map(([f, o]) => new Reopen(f, o)) },
    { weight: 1, arbitrary: fc.constant(null).map(() => new ReopenReadOnly()) },
    { weight: 6, arbitrary: index.map((i) => new ReadRow(i)) },
    { weight: 1, arbitrary: fc.nat(3).map((k) => new OutOfBounds(k)) },
    { weight: 3, arbitrary: fc.constant(null).map(() => new ReadColumns(s.scalar)) },
    {
      weight: 3,
      arbitrary: fc.oneof(
        ...s.cols.map((c, k) =>
          fc.tuple(index, fc.nat(c.count - 1), ELEM[c.type], fc.boolean()).map(([i, j, x, h]) => new WriteColumn(k, c.name, s.scalar, i, j, x, h)),
        ),
      ),
    },
    { weight: 2, arbitrary: fc.constant(null).map(() => new Hold()) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...refusable), row, partialArb(s), fc.nat(s.cols.length - 1), index)
        .map(([kind, x, p, bad, i]) => new Rejected(kind, x, p, bad, s.cols[bad].name, i)),
    },
  ]
  if (columnForm) {
    weighted.push({ weight: 4, arbitrary: fc.tuple(rows, fc.boolean()).map(([x, t]) => new PushManyColumns(x, t)) })
  }
  return fc.oneof(...weighted)
}

/**
 * Open options: a capacity to start with, sometimes a reservation so small that columns move, and
 * sometimes background flushes (they run whenever a command waits for the event loop).
 */
const optionsArb: fc.Arbitrary<OpenOptions> = fc.record(
  { capacity: fc.oneof(fc.nat(10), fc.nat(3000)), reservation: fc.constantFrom(4096, 1 << 16), autoFlushMs: fc.constantFrom(1, 5) },
  { requiredKeys: [] },
)

for (const s of SPECS) {
  test(`a ${s.title} vec agrees with an array through any sequence of changes, reads, flushes and reopens`, async (t) => {
    const count: Count = { sequences: 0, commands: 0 }
    const numRuns = s.runs * soak
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.commands([commandArb(s)], { maxCommands: MAX_COMMANDS, size: 'max' }), async (options, cmds) => {
        count.sequences++
        const path = fresh()
        const real: Real = { spec: s, path, options, v: open(path, s, options), held: undefined, steps: 0, count, pending: [] }
        try {
          assert.ok(real.v.capacity >= (options.capacity ?? 0), 'the capacity option makes room at creation')
          const model: Model = { rows: [] }
          await fc.asyncModelRun(() => ({ model, real }), cmds)
          const failed = (await Promise.all(real.pending)).filter((e) => e !== undefined)
          assert.deepEqual(failed, [], 'every flush left running succeeds')
          verifyAll(model, real, 'at the end')
        } finally {
          // Nothing to keep: skip the flush, but release the lock.
          real.v.close({ flush: false })
        }
      }),
      // includeErrorInReport: ava does not print an error's cause, and the cause says what differed.
      { seed, numRuns, includeErrorInReport: true, endOnFailure: process.env.MMAPVEC_NO_SHRINK === '1' },
    )
    totals.sequences += count.sequences
    totals.commands += count.commands
    t.log(`seed ${seed}: ${count.sequences} sequences, ${count.commands} commands`)
    t.pass()
  })
}

test.after('totals', (t) => {
  t.log(`seed ${seed}: ${totals.sequences} sequences, ${totals.commands} commands in all`)
})
