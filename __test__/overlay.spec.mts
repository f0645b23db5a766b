// Overlay mode: each column (and the header) is a WebAssembly memory that V8 allocated, with the
// file mapped over it (MAP_FIXED). No external ArrayBuffer and no copy; before V8 may free or
// grow the memory, anonymous pages are put back (docs/DESIGN.md, "Overlay mode").
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { collectGarbage, runChild, scratch, startChild } from './helpers/util.mjs'

const overlay = { mode: 'overlay' } as const
const dir = scratch()
let n = 0
const fresh = () => join(dir, `o${n++}.mvec`)

/** Bytes of `file` mapped in this process, summed over /proc/self/maps. */
function mappedBytes(file: string): number {
  let total = 0
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    if (!line.endsWith(` ${file}`) && !line.endsWith(` ${file} (deleted)`)) continue
    const [from, to] = line.split(' ')[0].split('-')
    total += Number(BigInt(`0x${to}`) - BigInt(`0x${from}`))
  }
  return total
}

/** The files of a vec: the header and each column's. */
function files(path: string): string[] {
  return [join(path, 'header'), ...MmapVec.inspect(path).columns.map((c) => join(path, c.file))]
}

/** The rows of column `name` as another process reads them from the file (bytes, hex). */
function readByOtherProcess(path: string, name: string, from: number, bytes: number): string {
  const c = MmapVec.inspect(path).columns.find((c) => c.name === name)!
  const script = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'r');const b=Buffer.alloc(${bytes});fs.readSync(fd,b,0,${bytes},${c.offset + from});console.log(b.toString('hex'))`
  const r = spawnSync(process.execPath, ['-e', script, join(path, c.file)], { encoding: 'utf8' })
  return r.stdout.trim()
}

test('it is chosen by the option or MMAPVEC_MODE, never by default', (t) => {
  using v = MmapVec.temp('f64', overlay)
  t.is(v.mode, 'overlay')
  using m = MmapVec.temp('f64')
  t.is(m.mode === 'overlay', process.env.MMAPVEC_MODE === 'overlay', 'only the option or MMAPVEC_MODE selects it')
  const r = runChild('reader.mjs', [fresh(), '0'], { MMAPVEC_MODE: 'overlay' })
  t.not((JSON.parse(r.stdout) as { code?: string }).code, 'EINVAL', r.stdout + r.stderr)
  t.throws(() => MmapVec.temp('f64', { mode: 'overlays' as 'overlay' }), { code: 'EINVAL', message: /'overlay'/ } as object)
})

test('no copy: a write through a view is in the file at once, for another process to read', (t) => {
  const path = fresh()
  using v = MmapVec.open(path, { x: 'f64', id: 'u32' }, overlay)
  v.push({ x: 1, id: 1 })
  v.columns.x[0] = 0.5 // 0x3fe0000000000000, little-endian
  t.is(readByOtherProcess(path, 'x', 0, 8), '000000000000e03f')
  v.set(0, { id: 0xdeadbeef })
  t.is(readByOtherProcess(path, 'id', 0, 4), 'efbeadde')
  const r = runChild('reader.mjs', [path, '0'])
  t.is((JSON.parse(r.stdout) as { code?: string }).code, 'ELOCKED', 'the lock is as in mmap mode')
})

test('the memory maps the files only while the vec is open: not after growth, shrink or close', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { x: 'f64', tag: 'u8' }, overlay)
  const [header, x, tag] = files(path)
  const grown = () => {
    // The core's mapping and the overlay's: twice each column file, and nothing of old memories.
    t.is(mappedBytes(x), 2 * statSync(x).size)
    t.is(mappedBytes(tag), 2 * statSync(tag).size)
  }
  const held: { x: Float64Array; capacity: number }[] = []
  for (let i = 0; i < 100_000; i++) {
    v.push({ x: i, tag: i & 255 })
    if ((i & 8191) === 0) held.push({ x: v.columns.x, capacity: v.capacity })
  }
  grown()
  for (const h of held) {
    t.is(h.x.length === 0, h.capacity !== v.capacity, 'growth detaches the views of the old memory, and only those')
  }
  v.reserve(1_000_000)
  grown()
  const before = v.columns.x
  v.shrinkToFit()
  t.is(before.length, 0, 'shrink detaches views')
  grown()
  t.is(v.columns.x[99_999], 99_999)
  t.true(mappedBytes(header) > 0)
  const last = v.columns
  v.close()
  for (const f of [header, x, tag]) t.is(mappedBytes(f), 0, `${f} is not mapped after close`)
  t.is(last.x.length, 0, 'close detaches views')
  t.is<number | undefined, undefined>(last.x[0], undefined)
})

test('a vec collected without close puts anonymous memory back; views left read zeros, not the file', async (t) => {
  const path = fresh()
  const open = () => {
    const v = MmapVec.open(path, { x: 'f64' }, overlay)
    for (let i = 0; i < 10_000; i++) v.push({ x: i + 1 })
    return v.columns.x
  }
  const x = open()
  const paths = files(path)
  t.true(mappedBytes(paths[1]) > 0)
  await collectGarbage()
  for (const f of paths) t.is(mappedBytes(f), 0, `${f} is not mapped once the vec is collected`)
  t.is(x[0], 0, 'a view that outlived its vec reads anonymous memory')
  x[1] = -1
  using again = MmapVec.open(path, { x: 'f64' }, overlay)
  t.is(again.length, 10_000, 'nothing was lost, and the lock is free')
  t.is(again.get(1).x, 2, 'a write through the orphaned view did not reach the file')
  t.is(again.get(9_999).x, 10_000)
})

test('thousands of growths with garbage collection in between keep the file and the heap sound', async (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { x: 'f64', b: 'u8' }, overlay)
  // Small buffers and strings allocated between growths, checked at the end: memory V8 or
  // malloc reuses must never be a file's page, nor a file's page theirs.
  const churn: { buf: Buffer; s: string }[] = []
  let growths = 0
  for (let round = 0; round < 3000; round++) {
    const cap = v.capacity
    v.reserve(1)
    if (v.capacity !== cap) growths++
    while (v.length < v.capacity) v.push({ x: v.length * 0.5, b: v.length & 255 })
    if (round % 3 === 0) churn.push({ buf: Buffer.alloc(100 + (round % 900), round & 255), s: `row-${round}` })
    if (round % 200 === 0) await collectGarbage()
  }
  t.is(growths, 3000)
  const len = v.length
  v.close()
  const expected = new Float64Array(len).map((_, i) => i * 0.5)
  const c = MmapVec.inspect(path).columns.find((c) => c.name === 'x')!
  const file = readFileSync(join(path, c.file)).subarray(c.offset, c.offset + len * 8)
  const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
  t.is(hash(file), hash(new Uint8Array(expected.buffer)))
  churn.forEach(({ buf, s }, k) => {
    const round = k * 3
    if (s !== `row-${round}` || buf.length !== 100 + (round % 900) || !buf.every((b) => b === (round & 255))) t.fail(`allocation ${k} changed`)
  })
  t.is(MmapVec.verify(path).length, 0)
})

test('transferring a column buffer cannot move the memory away from the vec', (t) => {
  const path = fresh()
  using v = MmapVec.open(path, { x: 'f64' }, overlay)
  v.push({ x: 1 })
  const x = v.columns.x
  try {
    // Node 22+ refuses (the buffer is not detachable); Node 20 copies instead of moving.
    const copy = structuredClone(x.buffer, { transfer: [x.buffer as ArrayBuffer] })
    t.not(copy, x.buffer)
  } catch (e) {
    t.is((e as Error).name, 'DataCloneError')
  }
  t.is(x.length, 1, 'the view is still attached')
  x[0] = 0.5
  t.is(readByOtherProcess(path, 'x', 0, 8), '000000000000e03f')
})

test('a process killed with SIGKILL loses nothing, flushed or not', async (t) => {
  const path = fresh()
  const c = startChild('writer.mjs', [path, '20000', 'flushed-kill'], 'ready', { MMAPVEC_MODE: 'overlay' })
  await c.ready
  c.child.kill('SIGKILL')
  await c.exited
  using v = MmapVec.open(path, { pos: ['f32', 3], id: 'u32', big: 'i64', alive: 'bool' }, overlay)
  t.is(v.length, 40_000)
  t.deepEqual(v.get(39_999), { pos: [39_999, 79_998, 119_997], id: 39_999, big: 39_999_000n, alive: false })
})

test('schema changes keep kept columns attached and map new ones', (t) => {
  const path = fresh()
  using v = MmapVec.open(path, { x: 'f64', y: 'u32' }, overlay)
  for (let i = 0; i < 100; i++) v.push({ x: i, y: i })
  const { x, y } = v.columns
  const w = v.addColumn('z', 'u16').dropColumn('y')
  t.is(y.length, 0, 'the dropped column is detached')
  t.is(x.length, 100, 'a kept column keeps its memory')
  w.columns.z[5] = 7
  w.push({ x: 100, z: 9 })
  t.is(readByOtherProcess(path, 'z', 10, 2), '0700')
  w.close()
  for (const f of [join(path, 'header'), ...readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(path))]) {
    t.is(mappedBytes(f), 0)
  }
  using again = MmapVec.open(path, { x: 'f64', z: 'u16' }, overlay)
  t.is(again.length, 101)
  t.deepEqual(again.get(100), { x: 100, z: 9 })
})

test('a read-only vec maps the files privately: writes through views stay in this process', (t) => {
  const path = fresh()
  MmapVec.open(path, { x: 'f64' }, overlay)[Symbol.dispose]()
  const w = MmapVec.open(path, { x: 'f64' }, overlay)
  w.push({ x: 3 })
  w.close()
  using r = MmapVec.open(path, { x: 'f64' }, { ...overlay, readOnly: true })
  r.columns.x[0] = 4
  t.is(r.get(0).x, 4)
  t.is(readByOtherProcess(path, 'x', 0, 8), Buffer.from(new Float64Array([3]).buffer).toString('hex'))
})
