import test from 'ava'
import { MmapVec } from 'mmapvec'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { collectGarbage, mode, scratch } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => join(dir, `w${n++}.mvec`)

test('views taken before a growth keep reading and writing their rows', async (t) => {
  using v = MmapVec.open(fresh(), { x: 'f64', id: 'u32' })
  for (let i = 0; i < 100; i++) v.push({ x: i, id: i })
  const old = v.columns
  for (let i = 100; i < 200_000; i++) v.push({ x: i, id: i })
  await collectGarbage()
  if (mode === 'mmap') {
    t.is(old.x.length, 100, 'an old view keeps its length')
    t.is(old.x[99], 99)
    old.x[5] = -5
    t.is(v.get(5).x, -5, 'writes through an old view reach the vec')
  } else {
    // Buffered growth copies into a larger buffer; the old one is detached so that a stale view
    // reads as empty instead of silently missing every later change.
    t.is(old.x.length, 0, 'buffered growth empties old views')
    old.x[5] = -5
    t.is(v.get(5).x, 5, 'writes to an emptied view go nowhere')
  }
  t.is(v.columns.x.length, 200_000, 'read columns again to see the new rows')
  t.is(v.columns.x[199_999], 199_999)
})

test('shrinkToFit and close empty every earlier view instead of leaving it dangling', async (t) => {
  const v = MmapVec.open(fresh(), { x: 'f64' }, { capacity: 100_000 })
  for (let i = 0; i < 10; i++) v.push({ x: i })
  const before = v.columns.x
  v.shrinkToFit()
  t.is(before.length, 0)
  t.is<number | undefined, undefined>(before[0], undefined)
  before[0] = 1
  t.is<number | undefined, undefined>(before[0], undefined, 'writes to an emptied view are ignored')
  const after = v.columns.x
  t.is(after[9], 9)
  const values = v.columns
  v.close()
  t.is(after.length, 0)
  t.is(values.x.length, 0)
  t.is<number | undefined, undefined>(after[0], undefined)
  await collectGarbage()
  t.is(after.byteLength, 0)
})

test('a column that outgrows its reservation moves: its old views become empty, others stay', (t) => {
  // A 1 MiB reservation: the f64 column outgrows it after 131072 rows, the u8 column does not.
  using v = MmapVec.open(fresh(), { x: 'f64', tag: 'u8' }, { reservation: 1 << 20 })
  for (let i = 0; i < 1000; i++) v.push({ x: i, tag: i & 255 })
  const { x, tag } = v.columns
  for (let i = 1000; i < 200_000; i++) v.push({ x: i, tag: i & 255 })
  t.is(x.length, 0, 'the moved column detached its old views')
  if (mode === 'mmap') {
    t.is(tag.length, 1000, 'the column that did not move kept its views')
    t.is(tag[999], 999 & 255)
  } else {
    t.is(tag.length, 0, 'buffered growth moves every column')
  }
  t.is(v.columns.x[199_999], 199_999)
  t.is(v.get(500).x, 500)
})

test('10,000 growths with views held and garbage collected in between', async (t) => {
  // A small reservation, so that some growths move the column and detach the views held.
  using v = MmapVec.open(fresh(), { a: ['f32', 2], b: 'u8' }, { reservation: 1 << 14 })
  const held: Float32Array[] = []
  let growths = 0
  for (let round = 0; round < 10_000; round++) {
    const cap = v.capacity
    v.reserve(1 + (round % 7) * 100)
    v.push({ a: [round, -round], b: round & 255 })
    if (v.capacity !== cap) growths++
    if (round % 10 === 0) held.push(v.columns.a)
    if (round % 1000 === 0) await collectGarbage()
  }
  let emptied = 0
  for (const h of held) {
    if (h.length === 0) emptied++
    else t.is(h[0], 0)
  }
  for (const h of held) h[0] = 7 // harmless on an emptied view; on a live one it writes row 0
  t.is(v.get(0).a[0], emptied < held.length ? 7 : 0)
  t.true(growths >= 10, `${growths} growths`)
  t.true(emptied > 0, 'some growths moved the column')
  t.is(v.length, 10_000)
  t.deepEqual(v.get(9999), { a: [9999, -9999], b: 9999 & 255 })
})

test('views held across truncate, shrink and close read nothing stale that could crash', (t) => {
  const v = MmapVec.open(fresh(), { x: 'f64' }, { capacity: 50_000 })
  for (let i = 0; i < 1000; i++) v.push({ x: i })
  const a = v.columns.x
  v.truncate(10)
  t.is(a.length, 1000, 'truncate keeps the memory: the view still covers it')
  a[500] = 1
  v.shrinkToFit()
  t.is(a.length, 0)
  a[500] = 1
  t.is<number | undefined, undefined>(a[500], undefined)
  const b = v.columns.x
  v.close()
  t.is(b.length, 0)
  t.is<number | undefined, undefined>(b[0], undefined)
  // Iterating a detached TypedArray is a TypeError in JavaScript itself: an exception, not a crash.
  t.throws(() => [...b], { instanceOf: TypeError })
})

test.serial('1000 open and close cycles leave no mappings, descriptors or memory behind', async (t) => {
  const path = fresh()
  const count = (s: string) => s.split('\n').filter((l) => l.includes(path)).length
  // Descriptors open on the vec's files (other descriptors come and go with the test runner).
  const fds = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).includes(path)
      } catch {
        return false
      }
    }).length
  for (let i = 0; i < 1000; i++) {
    const v = MmapVec.open(path, { x: 'f64' })
    v.push({ x: i })
    void v.columns.x[0]
    v.close({ flush: false })
    if (i % 100 === 0) await collectGarbage()
  }
  await collectGarbage()
  const rssBefore = process.memoryUsage().rss
  for (let i = 0; i < 1000; i++) {
    const v = MmapVec.open(path, { x: 'f64' }, { capacity: 1000 })
    v.columns.x.fill(i)
    v.close({ flush: false })
    if (i % 100 === 0) await collectGarbage()
  }
  await collectGarbage()
  const grown = (process.memoryUsage().rss - rssBefore) / 2 ** 20
  t.log(`RSS grew by ${grown.toFixed(1)} MiB over 1000 cycles`)
  t.true(grown < 16, `RSS grew by ${grown.toFixed(1)} MiB`)
  t.is(fds(), 0, 'descriptors of the vec remain')
  t.is(count(readFileSync('/proc/self/maps', 'utf8')), 0, 'mappings of the vec remain')
})

test('a vec dropped without close releases its lock when collected; its views stay usable', async (t) => {
  const path = fresh()
  // In a function of its own, so that no suspended frame of this test still refers to the vec.
  const leak = () => {
    const v = MmapVec.open(path, { x: 'f64' })
    v.push({ x: 42 })
    return v.columns.x
  }
  const x = leak()
  await collectGarbage()
  await collectGarbage()
  using w = MmapVec.open(path, { x: 'f64' }, { lockTimeoutMs: 2000 })
  t.is(w.get(0).x, 42)
  if (mode === 'overlay') {
    // Overlay memory gets anonymous pages back when its vec is collected (docs/DESIGN.md).
    t.is(x[0], 0, 'the view reads zeros, no longer the file')
  } else {
    t.is(x[0], 42, 'the view still reads the mapped row')
  }
})
