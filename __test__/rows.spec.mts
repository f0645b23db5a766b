import test from 'ava'
import { MmapVec, type MmapVecError } from 'mmapvec'
import { join } from 'node:path'
import { scratch } from './helpers/util.mjs'

const Particle = { pos: ['f32', 3], vel: ['f32', 3], id: 'u32', alive: 'bool' } as const
const Every = {
  a: 'i8', b: 'u8', c: 'i16', d: 'u16', e: 'i32', f: 'u32', g: 'i64', h: 'u64', i: 'f32', j: 'f64', k: 'bool',
  arr: ['u64', 2], flags: ['bool', 3], wide: ['f64', 40],
} as const

const dir = scratch()
let n = 0
const fresh = () => join(dir, `v${n++}.mvec`)

test('push returns the new length and get returns a copy of the row', (t) => {
  using v = MmapVec.open(fresh(), Particle)
  t.is(v.push({ pos: [0, 1, 2], vel: [1, 0, 0], id: 7, alive: true }), 1)
  t.is(v.push({ pos: new Float32Array([3, 4, 5]), vel: [0, 0, 1], id: 8, alive: false }), 2)
  t.is(v.length, 2)
  t.deepEqual(v.get(0), { pos: [0, 1, 2], vel: [1, 0, 0], id: 7, alive: true })
  t.deepEqual(v.get(1), { pos: [3, 4, 5], vel: [0, 0, 1], id: 8, alive: false })
  const row = v.get(0)
  row.pos[0] = 99
  t.is(v.get(0).pos[0], 0, 'get returns a copy')
})

test('every field type round-trips with its JavaScript type', (t) => {
  using v = MmapVec.open(fresh(), Every)
  const wide = Array.from({ length: 40 }, (_, i) => i / 4)
  const row = {
    a: -128, b: 255, c: -32768, d: 65535, e: -(2 ** 31), f: 2 ** 32 - 1, g: -(2n ** 63n), h: 2n ** 64n - 1n,
    i: 1.5, j: Math.PI, k: true, arr: [1n, 2n ** 63n], flags: [true, false, true], wide,
  }
  v.push(row)
  t.deepEqual(v.get(0), row)
  const c = v.columns
  t.true(c.a instanceof Int8Array)
  t.true(c.g instanceof BigInt64Array)
  t.true(c.h instanceof BigUint64Array)
  t.true(c.k instanceof Uint8Array)
  t.true(c.j instanceof Float64Array)
  t.is(c.arr.length, 2)
  t.is(c.wide.length, 40)
  t.is(c.flags[1], 0)
})

test('columns are views over the mapped pages: writes through them are seen by get, and back', (t) => {
  using v = MmapVec.open(fresh(), Particle)
  for (let i = 0; i < 10; i++) v.push({ pos: [i, i, i], vel: [1, 2, 3], id: i, alive: true })
  const { pos, vel } = v.columns
  t.is(pos.length, 30)
  for (let i = 0; i < pos.length; i++) pos[i] += vel[i] * 0.5
  t.deepEqual(v.get(3).pos, [3.5, 4, 4.5])
  v.set(3, { pos: [-1, -2, -3] })
  t.is(pos[9], -1)
  t.is(v.columns, v.columns, 'columns is cached while nothing changes')
})

test('set changes only the given fields and validates them all before writing any', (t) => {
  using v = MmapVec.open(fresh(), Particle)
  v.push({ pos: [1, 2, 3], vel: [4, 5, 6], id: 1, alive: true })
  v.set(0, { alive: false, id: 9 })
  t.deepEqual(v.get(0), { pos: [1, 2, 3], vel: [4, 5, 6], id: 9, alive: false })
  const e = t.throws<MmapVecError>(() => v.set(0, { id: 5, pos: [1, 2] }))
  t.is(e.code, 'EINVAL')
  t.is(v.get(0).id, 9, 'a rejected set wrote nothing')
})

test('at counts from the end for negative indexes', (t) => {
  using v = MmapVec.open(fresh(), 'u32')
  v.pushMany([10, 20, 30])
  t.is(v.at(0), 10)
  t.is(v.at(-1), 30)
  t.is(v.at(-3), 10)
  t.is(v.at(3), undefined)
  t.is(v.at(-4), undefined)
})

test('pop, swapRemove, truncate and clear', (t) => {
  using v = MmapVec.open(fresh(), { x: 'f64', tag: ['u8', 2] })
  for (let i = 0; i < 6; i++) v.push({ x: i, tag: [i, i + 1] })
  t.deepEqual(v.pop(), { x: 5, tag: [5, 6] })
  t.is(v.length, 5)
  t.deepEqual(v.swapRemove(1), { x: 1, tag: [1, 2] })
  t.deepEqual([...v].map((r) => r.x), [0, 4, 2, 3])
  t.deepEqual(v.get(1), { x: 4, tag: [4, 5] })
  t.deepEqual(v.swapRemove(3), { x: 3, tag: [3, 4] }, 'removing the last row')
  const cap = v.capacity
  v.truncate(10)
  t.is(v.length, 3, 'truncate never lengthens')
  v.truncate(1)
  t.deepEqual([...v].map((r) => r.x), [0])
  v.clear()
  t.is(v.length, 0)
  t.is(v.pop(), undefined)
  t.is(v.capacity, cap, 'capacity is kept')
})

test('reserve grows at once, shrinkToFit gives the space back', (t) => {
  using v = MmapVec.open(fresh(), { x: 'f32', y: 'u16' })
  v.reserve(100_000)
  t.true(v.capacity >= 100_000)
  const cap = v.capacity
  for (let i = 0; i < 100_000; i++) v.push({ x: i, y: i & 0xffff })
  t.is(v.capacity, cap, 'no growth after reserve')
  v.truncate(10)
  v.shrinkToFit()
  t.true(v.capacity >= 10 && v.capacity < 5000, `capacity ${v.capacity}`)
  t.deepEqual(v.get(9), { x: 9, y: 9 })
  v.push({ x: 10, y: 10 })
  t.is(v.length, 11)
})

test('capacity option makes room at creation', (t) => {
  using v = MmapVec.open(fresh(), 'f64', { capacity: 12345 })
  t.true(v.capacity >= 12345)
  t.is(v.length, 0)
})

test('scalar vecs hold plain values', (t) => {
  using v = MmapVec.open(fresh(), 'f64')
  t.is(v.push(1.5), 1)
  v.pushMany(new Float64Array([2.5, 3.5]))
  v.pushMany([4.5])
  t.is(v.get(0), 1.5)
  t.true(v.values instanceof Float64Array)
  t.deepEqual([...v.values], [1.5, 2.5, 3.5, 4.5])
  v.set(1, 9)
  t.is(v.values[1], 9)
  using b = MmapVec.open(fresh(), ['i64', 2])
  b.push([1n, -1n])
  t.deepEqual(b.get(0), [1n, -1n])
  t.true(b.values instanceof BigInt64Array)
  using f = MmapVec.open(fresh(), 'bool')
  f.pushMany([true, false])
  t.deepEqual([...f], [true, false])
})

test('pushMany takes rows or columns', (t) => {
  using v = MmapVec.open(fresh(), Particle)
  v.pushMany([
    { pos: [1, 1, 1], vel: [0, 0, 0], id: 1, alive: true },
    { pos: [2, 2, 2], vel: [0, 0, 0], id: 2, alive: false },
  ])
  const rows = 50_000
  const pos = new Float32Array(rows * 3).map((_, i) => i)
  t.is(
    v.pushMany({ pos, vel: new Float32Array(rows * 3), id: Uint32Array.from({ length: rows }, (_, i) => i + 3), alive: Array.from({ length: rows }, (_, i) => i % 3 === 0) }),
    rows + 2,
  )
  t.deepEqual(v.get(2), { pos: [0, 1, 2], vel: [0, 0, 0], id: 3, alive: true })
  t.deepEqual(v.get(rows + 1), { pos: [149997, 149998, 149999], vel: [0, 0, 0], id: rows + 2, alive: false })
  function* gen() {
    yield { pos: [9, 9, 9], vel: [9, 9, 9], id: 9, alive: true } as const
  }
  v.pushMany(gen())
  t.is(v.at(-1)?.id, 9)
})

test('pushMany of large columns: views, get and a reopen all see the rows, also over rows truncated away', (t) => {
  // Columns of 64 KiB and more, of the column's own type, are written through the file instead
  // of the mapping; smaller ones, other types and bool columns are copied by JavaScript.
  const S = { x: 'f64', id: 'u64', tag: 'u8', ok: 'bool' } as const
  const path = fresh()
  const rows = 40_000
  const cols = (base: number) => ({
    x: Float64Array.from({ length: rows }, (_, i) => base + i / 8),
    id: BigUint64Array.from({ length: rows }, (_, i) => BigInt(base + i) * 1_000_003n),
    tag: Array.from({ length: rows }, (_, i) => (base + i) & 0xff),
    ok: Array.from({ length: rows }, (_, i) => (base + i) % 5 === 0),
  })
  const check = (v: MmapVec<typeof S>, at: number, base: number) => {
    const c = v.columns
    for (const i of [0, 1, 4095, 4096, 8191, 8192, rows - 1]) {
      t.deepEqual(v.get(at + i), { x: base + i / 8, id: BigInt(base + i) * 1_000_003n, tag: (base + i) & 0xff, ok: (base + i) % 5 === 0 })
    }
    t.deepEqual(c.x.subarray(at, at + rows), cols(base).x)
    t.deepEqual(c.id.subarray(at, at + rows), cols(base).id)
  }
  {
    using v = MmapVec.open(path, S)
    for (let i = 0; i < rows; i++) v.push({ x: -1, id: 0n, tag: 0, ok: false })
    v.truncate(0)
    t.is(v.pushMany(cols(7)), rows)
    check(v, 0, 7)
    t.is(v.pushMany(cols(100_000)), 2 * rows)
    check(v, rows, 100_000)
    check(v, 0, 7)
  }
  using v = MmapVec.open(path, S)
  t.is(v.length, 2 * rows)
  check(v, 0, 7)
  check(v, rows, 100_000)
})

test('pushMany takes a view of the same vec as a column, also when it grows', (t) => {
  using v = MmapVec.open(fresh(), { x: 'f32' })
  const first = Float32Array.from({ length: 30_000 }, (_, i) => i + 1)
  v.pushMany({ x: first })
  // Enough rows to grow the vec: buffered mode replaces every buffer then, and the view given
  // here would be empty by the time its rows were copied.
  while (v.length + v.length <= v.capacity) v.pushMany({ x: v.columns.x.subarray(0, 1) })
  const len = v.length
  const view = v.columns.x.subarray(0, len)
  const copy = view.slice()
  t.is(v.pushMany({ x: view }), 2 * len)
  t.deepEqual(v.columns.x.subarray(len), copy)
  t.deepEqual(v.columns.x.subarray(0, 30_000), first)
})

test('pushMany refuses mismatched columns without adding anything', (t) => {
  using v = MmapVec.open(fresh(), { a: 'f32', b: ['u8', 2] })
  const bad: unknown[] = [
    { a: [1, 2] },
    { a: [1, 2], b: [1, 2, 3] },
    { a: [1, 2], b: [1, 2] },
    { a: [1, 'x'], b: [1, 2, 3, 4] },
    { a: [1, 2], b: [1, 2, 3, 4], c: [1] },
  ]
  for (const input of bad) {
    const e = t.throws<MmapVecError>(() => v.pushMany(input as never))
    t.is(e.code, 'EINVAL')
  }
  t.is(v.length, 0)
  const rows = [{ a: 1, b: [1, 2] }, { a: 2, b: [3, 4] }, { a: 3, b: [5] }]
  t.throws(() => v.pushMany(rows as never), { code: 'EINVAL' } as object)
  t.is(v.length, 0, 'rows before the bad one are taken back')
})

test('iteration yields every row in order', (t) => {
  using v = MmapVec.open(fresh(), { id: 'u32' })
  for (let i = 0; i < 1000; i++) v.push({ id: i })
  let i = 0
  for (const row of v) t.is(row.id, i++)
  t.is(i, 1000)
})

test('properties describe the vec', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, Particle, { version: 4 })
  t.is(v.path, path)
  t.deepEqual(v.schema, Particle) // a copy, read once at open
  t.false(v.readOnly)
  t.false(v.closed)
  t.is(v.version, 4)
  v.close()
  t.true(v.closed)
  t.is(v.length, 0)
  v.close()
  t.pass('closing twice is harmless')
})

test('create makes a new vec and open reopens it with its rows', (t) => {
  const path = fresh()
  const v = MmapVec.create(path, Particle)
  for (let i = 0; i < 3000; i++) v.push({ pos: [i, 0, 0], vel: [0, 0, 0], id: i, alive: i % 2 === 0 })
  v.close()
  using w = MmapVec.open(path, Particle, { create: false })
  t.is(w.length, 3000)
  t.deepEqual(w.get(2999), { pos: [2999, 0, 0], vel: [0, 0, 0], id: 2999, alive: false })
})

test('a schema with the same fields in another order opens the same vec', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { a: 'u8', b: 'f64' })
  v.push({ a: 1, b: 2.5 })
  v.close()
  using w = MmapVec.open(path, { b: 'f64', a: 'u8' })
  t.deepEqual(w.get(0), { b: 2.5, a: 1 })
  t.deepEqual(Object.keys(w.get(0)), ['b', 'a'])
})

test('odd field names are stored and read back as given', (t) => {
  // JSON.parse makes "__proto__" an own key, as a schema loaded from a config file would have it.
  const schema = JSON.parse('{"with space": "u8", "__proto__": "u8", "ü": "u8"}') as Record<string, 'u8'>
  using v = MmapVec.open(fresh(), schema)
  v.push(JSON.parse('{"with space": 1, "__proto__": 2, "ü": 3}') as Record<string, number>)
  const row = v.get(0)
  t.is(row['with space'], 1)
  t.is(Object.getOwnPropertyDescriptor(row, '__proto__')?.value, 2)
  t.is(Object.getPrototypeOf(row), Object.prototype)
  t.is(row['ü'], 3)
  t.is((Object.getOwnPropertyDescriptor(v.columns, '__proto__')?.value as Uint8Array | undefined)?.length, 1)
})
