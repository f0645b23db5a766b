// A vec opened with 64 MiB or more of rows in mmap mode shows all its columns through one
// ArrayBuffer (docs/DESIGN.md, "Packed columns"): V8 starts marking the heap for each new
// buffer that adds 64 MiB of external memory, so one buffer per column made a 1 GiB open cost
// four collections' worth of work. These tests hold the promises views make in every mode; the
// packing itself is checked where it applies (mmap mode).
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { collectGarbage, mode, scratch } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => join(dir, `p${n++}.mvec`)

const Row = { x: 'f32', y: 'f64', id: 'u32', tag: 'u8' } as const
// 17 bytes a row: 4 Mi rows map 68 MiB, past the 64 MiB from which columns are packed.
const ROWS = 4 << 20

const packed = mode === 'mmap'

/** Pushes `rows` rows whose values say which column and row (counted from `from`) they are. */
function fill(v: MmapVec<typeof Row>, rows: number, from = 0) {
  const x = new Float32Array(rows)
  const y = new Float64Array(rows)
  const id = new Uint32Array(rows)
  const tag = new Uint8Array(rows)
  for (let k = 0; k < rows; k++) {
    const i = from + k
    x[k] = i
    y[k] = -i
    id[k] = i * 3
    tag[k] = (i * 7) & 255
  }
  v.pushMany({ x, y, id, tag })
}

function check(t: { is: (a: unknown, b: unknown, m?: string) => void }, v: MmapVec<typeof Row>, i: number) {
  t.is(v.get(i).x, i, `x of row ${i}`)
  t.is(v.get(i).y, -i, `y of row ${i}`)
  t.is(v.get(i).id, i * 3, `id of row ${i}`)
  t.is(v.get(i).tag, (i * 7) & 255, `tag of row ${i}`)
}

test('a large vec: one buffer for all columns, which never overlap, and writes reach the files', (t) => {
  const path = fresh()
  {
    using v = MmapVec.open(path, Row, { capacity: ROWS })
    fill(v, ROWS)
  }
  {
    using v = MmapVec.open(path, Row)
    const c = v.columns
    if (packed) {
      t.is(c.x.buffer, c.y.buffer, 'the columns share one ArrayBuffer')
      t.is(c.x.buffer, c.tag.buffer)
      const spans = [c.x, c.y, c.id, c.tag].map((a) => [a.byteOffset, a.byteOffset + a.byteLength]).sort((a, b) => a[0] - b[0])
      for (let k = 1; k < spans.length; k++) t.true(spans[k][0] >= spans[k - 1][1], 'columns do not overlap')
    }
    t.is(c.x.length, ROWS)
    for (const i of [0, 1, 4095, 4096, ROWS >> 1, ROWS - 1]) check(t, v, i)
    // The last row of each column sits right before the next column's memory.
    c.x[ROWS - 1] = 0.5
    c.y[ROWS - 1] = 0.25
    c.id[ROWS - 1] = 7
    c.tag[ROWS - 1] = 9
    t.is(c.y[0], -0)
    t.is(c.id[0], 0)
    t.is(c.tag[0], 0)
    t.is(c.x[0], 0)
  }
  using v = MmapVec.open(path, Row, { readOnly: true })
  t.deepEqual(v.get(ROWS - 1), { x: 0.5, y: 0.25, id: 7, tag: 9 })
  check(t, v, ROWS - 2)
})

test('growing a packed vec revokes every earlier view together and keeps every row', (t) => {
  const path = fresh()
  using v = MmapVec.open(path, Row, { capacity: ROWS })
  fill(v, ROWS)
  const { x, tag } = v.columns
  v.push({ x: 1, y: 2, id: 3, tag: 4 })
  if (packed) {
    t.is(x.length, 0, 'the columns moved out of the pack: their old views are empty')
    t.is(tag.length, 0)
    t.not(v.columns.x.buffer, v.columns.y.buffer, 'after growth each column has a buffer of its own')
  }
  t.is(v.columns.x.length, ROWS + 1, "columns show every row")
  for (const i of [0, ROWS - 1]) check(t, v, i)
  t.deepEqual(v.get(ROWS), { x: 1, y: 2, id: 3, tag: 4 })
  v.columns.id[5] = 55
  v.close()
  using w = MmapVec.open(path, Row)
  t.is(w.get(5).id, 55)
  t.deepEqual(w.get(ROWS), { x: 1, y: 2, id: 3, tag: 4 })
})

test('shrinkToFit on a packed vec: views revoked, and every byte of the new buffer reads without a fault', async (t) => {
  using v = MmapVec.open(fresh(), Row, { capacity: ROWS })
  fill(v, 1000)
  const before = v.columns.x
  v.shrinkToFit()
  t.is(before.length, 0)
  check(t, v, 999)
  const c = v.columns
  // The whole buffer, past the rows and between the columns, must be mapped: a page past the
  // end of a shrunk file would raise SIGBUS and kill this process.
  const all = new Uint8Array(c.x.buffer)
  let sum = 0
  for (let i = 0; i < all.length; i += 4096) sum += all[i]
  t.true(sum >= 0)
  await collectGarbage()
  check(t, v, 0)
})

test('dropColumn on a packed vec revokes the dropped column with the rest; the kept rows stay', (t) => {
  const path = fresh()
  let v2
  {
    const v = MmapVec.open(path, Row, { capacity: ROWS })
    fill(v, ROWS)
    const { y, x } = v.columns
    v2 = v.dropColumn('y')
    t.is(y.length, 0, 'the dropped column reads as empty')
    if (packed) t.is(x.length, 0, 'it shared its buffer with the others')
    t.is(v2.columns.x[ROWS - 1], ROWS - 1)
    t.is(v2.get(10).id, 30)
    const v3 = v2.addColumn('z', 'f64')
    v3.columns.z[3] = 1.5
    t.is(v3.columns.tag[3], 21)
    v3.close()
  }
  using w = MmapVec.open(path)
  t.deepEqual(w.get(3), { x: 3, id: 9, tag: 21, z: 1.5 })
})

test('a program that transfers the shared buffer away breaks only its own views', (t) => {
  if (typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function') return t.pass('no ArrayBuffer.prototype.transfer (Node 20)')
  // Buffered columns are the rows' only copy in memory: transferring one away takes its rows.
  if (mode === 'buffered') return t.pass('buffered mode')
  using v = MmapVec.open(fresh(), Row, { capacity: ROWS })
  fill(v, 100)
  const buf = v.columns.x.buffer as ArrayBuffer & { transfer(): ArrayBuffer }
  try {
    buf.transfer()
  } catch {
    // Buffered columns live in buffers that Node may refuse to transfer; nothing to check then.
    return t.pass('the runtime refused the transfer')
  }
  t.is(v.columns.x.length, 0, 'the views over the transferred buffer are empty')
  // The vec makes new views when its layout changes: a schema change keeps the pack...
  const w = v.addColumn('z', 'u8')
  t.is(w.get(50).x, 50, 'new views, over the same pack')
  t.is(w.get(50).tag, (50 * 7) & 255)
  if (packed) t.is(w.columns.x.buffer, w.columns.id.buffer)
  // ...and a growth moves the columns out of it.
  w.pushMany({ x: new Float32Array(ROWS).fill(1), y: new Float64Array(ROWS), id: new Uint32Array(ROWS), tag: new Uint8Array(ROWS), z: new Uint8Array(ROWS) })
  t.is(w.get(99).id, 99 * 3)
  t.is(w.get(ROWS + 99).x, 1)
})

test('close lets go of a packed vec\'s files at once, and its views read as empty', (t) => {
  if (process.platform !== 'linux') return t.pass('reads /proc/self/maps')
  const path = fresh()
  const mapped = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(path) && l.endsWith('.col'))
  const v = MmapVec.open(path, Row, { capacity: ROWS })
  fill(v, ROWS)
  const c = v.columns
  if (mode !== 'buffered') t.true(mapped().length > 0)
  v.close()
  t.is(c.x.length, 0)
  t.is(c.tag.length, 0)
  const sleep = new Int32Array(new SharedArrayBuffer(4))
  for (let i = 0; i < 200 && mapped().length > 0; i++) Atomics.wait(sleep, 0, 0, 10)
  t.deepEqual(mapped(), [])
})

test('a read-only packed vec: writes through its views change neither the file nor the other columns', (t) => {
  const path = fresh()
  {
    using v = MmapVec.open(path, Row, { capacity: ROWS })
    fill(v, ROWS)
  }
  {
    using r = MmapVec.open(path, Row, { readOnly: true })
    const c = r.columns
    if (packed) t.is(c.x.buffer, c.id.buffer)
    c.x[ROWS - 1] = -1
    c.tag[0] = 200
    t.is(c.y[0], -0)
    t.is(c.id[ROWS - 1], (ROWS - 1) * 3)
  }
  using v = MmapVec.open(path, Row, { readOnly: true })
  check(t, v, ROWS - 1)
  check(t, v, 0)
})

test('MMAPVEC_PACK_MIN_BYTES sets where packing starts, and a bad value is refused before anything opens', (t) => {
  const before = process.env.MMAPVEC_PACK_MIN_BYTES
  const path = fresh()
  try {
    process.env.MMAPVEC_PACK_MIN_BYTES = 'lots'
    const e = t.throws(() => MmapVec.open(path, Row), { code: 'EINVAL' })
    t.regex(e.message, /MMAPVEC_PACK_MIN_BYTES must be a whole number of bytes, or unset; got 'lots'/)
    t.false(existsSync(path), 'nothing was created')
    process.env.MMAPVEC_PACK_MIN_BYTES = '0'
    using small = MmapVec.open(path, Row, { capacity: 10 })
    if (packed) t.is(small.columns.x.buffer, small.columns.tag.buffer, 'a small vec packs at 0')
    small.push({ x: 1, y: 2, id: 3, tag: 4 })
    t.deepEqual(small.get(0), { x: 1, y: 2, id: 3, tag: 4 })
  } finally {
    if (before === undefined) delete process.env.MMAPVEC_PACK_MIN_BYTES
    else process.env.MMAPVEC_PACK_MIN_BYTES = before
  }
})
