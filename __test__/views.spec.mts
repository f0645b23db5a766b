import test from 'ava'
import { MmapVec } from 'mmapvec'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { collectGarbage, scratch } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => join(dir, `w${n++}.mvec`)

test('views taken before a growth keep reading and writing their rows', async (t) => {
  using v = MmapVec.open(fresh(), { x: 'f64', id: 'u32' })
  for (let i = 0; i < 100; i++) v.push({ x: i, id: i })
  const old = v.columns
  for (let i = 100; i < 200_000; i++) v.push({ x: i, id: i })
  await collectGarbage()
  t.is(old.x.length, 100, 'an old view keeps its length')
  t.is(old.x[99], 99)
  old.x[5] = -5
  t.is(v.get(5).x, -5, 'writes through an old view reach the vec')
  t.is(v.columns.x.length, 200_000, 'read columns again to see the new rows')
  t.is(v.columns.x[199_999], 199_999)
})

test('shrinkToFit and close empty every earlier view instead of leaving it dangling', async (t) => {
  const v = MmapVec.open(fresh(), { x: 'f64' }, { capacity: 100_000 })
  for (let i = 0; i < 10; i++) v.push({ x: i })
  const before = v.columns.x
  v.shrinkToFit()
  t.is(before.length, 0)
  t.is(before[0] as number | undefined, undefined)
  before[0] = 1
  t.is(before[0] as number | undefined, undefined, 'writes to an emptied view are ignored')
  const after = v.columns.x
  t.is(after[9], 9)
  const values = v.columns
  v.close()
  t.is(after.length, 0)
  t.is(values.x.length, 0)
  t.is(after[0] as number | undefined, undefined)
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
  t.is(tag.length, 1000, 'the column that did not move kept its views')
  t.is(tag[999], 999 & 255)
  t.is(v.columns.x[199_999], 199_999)
  t.is(v.get(500).x, 500)
})

test('thousands of growths with views held and garbage collected in between', async (t) => {
  using v = MmapVec.open(fresh(), { a: ['f32', 2], b: 'u8' }, { reservation: 1 << 22 })
  const held: Float32Array[] = []
  for (let round = 0; round < 2000; round++) {
    v.reserve(v.length + 1 + (round % 7) * 100 - v.length)
    v.push({ a: [round, -round], b: round & 255 })
    if (round % 10 === 0) held.push(v.columns.a)
    if (round % 200 === 0) await collectGarbage()
  }
  for (const h of held) {
    if (h.length > 0) t.is(h[0], 0)
  }
  t.is(v.length, 2000)
  t.deepEqual(v.get(1999), { a: [1999, -1999], b: 1999 & 255 })
})

test.serial('1000 open and close cycles leave no mappings, descriptors or locks behind', async (t) => {
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
  t.is(x[0], 42, 'the view still reads the mapped row')
})
