import test from 'ava'
import { MmapVec } from 'mmapvec'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mode, runChild, scratch, startChild } from './helpers/util.mjs'

const Row = { pos: ['f32', 3], id: 'u32', big: 'i64', alive: 'bool' } as const
const expected = (i: number) => ({ pos: [i, i * 2, i * 3], id: i, big: BigInt(i) * 1000n, alive: i % 2 === 0 })

const dir = scratch()

test('rows written by one process are read by the next', (t) => {
  const path = join(dir, 'child.mvec')
  const w = runChild('writer.mjs', [path, '5000'])
  t.is(w.status, 0, w.stderr)
  t.is(w.stdout.trim(), 'done 5000')
  const again = runChild('writer.mjs', [path, '1000'])
  t.is(again.stdout.trim(), 'done 6000', 'a second run continues where the first stopped')
  using v = MmapVec.open(path, Row, { readOnly: true })
  t.is(v.length, 6000)
  for (const i of [0, 1, 4999, 5000, 5999]) t.deepEqual(v.get(i), expected(i))
})

test('a process killed with SIGKILL loses nothing it flushed, and its lock is free at once', async (t) => {
  // mmap and overlay modes lose nothing at all: the rows are in the page cache. Buffered mode
  // (Electron) loses exactly the rows pushed after the last flush, as documented.
  const path = join(dir, 'killed.mvec')
  const c = startChild('writer.mjs', [path, '20000', 'flushed-kill'])
  await c.ready
  c.child.kill('SIGKILL')
  await c.exited
  using v = MmapVec.open(path, Row)
  t.is(v.length, mode === 'buffered' ? 20_000 : 40_000)
  for (let i = 0; i < v.length; i += 4321) t.deepEqual(v.get(i), expected(i))
  t.deepEqual(v.get(v.length - 1), expected(v.length - 1))
})

test('a process that exits without closing its vec keeps every row', (t) => {
  const path = join(dir, 'exited.mvec')
  const r = runChild('writer.mjs', [path, '30000', 'exit'])
  t.is(r.status, 0, r.stderr)
  using v = MmapVec.open(path, Row)
  t.is(v.length, 30_000)
  t.deepEqual(v.get(29_999), expected(29_999))
})

test('rows written in this process are there after close and reopen', (t) => {
  const path = join(dir, 'same.mvec')
  const v = MmapVec.open(path, Row)
  for (let i = 0; i < 10_000; i++) v.push(expected(i))
  v.close()
  const r = runChild('reader.mjs', [path, '1'])
  const out = JSON.parse(r.stdout) as { length: number; rows: { id: number; big: string }[] }
  t.is(out.length, 10_000)
  t.is(out.rows[9999].id, 9999)
  t.is(out.rows[9999].big, '9999000')
  using w = MmapVec.open(path, Row)
  t.deepEqual(w.get(1234), expected(1234))
})

test('close({ flush: false }) still keeps the rows for the next open', (t) => {
  const path = join(dir, 'noflush.mvec')
  const v = MmapVec.open(path, 'u16')
  v.pushMany(new Uint16Array([1, 2, 3]))
  v.close({ flush: false })
  using w = MmapVec.open(path, 'u16')
  t.deepEqual([...w.values], [1, 2, 3])
})

// Node runs the finalizers of revoked views only on a later turn of the event loop; a program
// that closes and deletes vecs in one synchronous stretch must not keep them all mapped.
test('close lets go of the column files at once, without waiting for the event loop to turn', (t) => {
  if (process.platform !== 'linux') return t.pass('reads /proc/self/maps')
  const path = join(dir, 'letgo.mvec')
  const mapped = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(path) && l.endsWith('.col'))
  const v = MmapVec.open(path, Row)
  for (let i = 0; i < 5000; i++) v.push(expected(i))
  const pos = v.columns.pos
  t.is(pos[3], 1)
  if (mode !== 'buffered') t.true(mapped().length > 0, 'the columns are mapped while open')
  v.close()
  t.is(pos.length, 0, 'views are revoked')
  // A thread of the vec's own unmaps them: wait for it without letting the event loop turn.
  const sleep = new Int32Array(new SharedArrayBuffer(4))
  for (let i = 0; i < 200 && mapped().length > 0; i++) Atomics.wait(sleep, 0, 0, 10)
  t.deepEqual(mapped(), [])
  using w = MmapVec.open(path, Row)
  t.deepEqual(w.get(4999), expected(4999))
})

test('temp vecs leave no files, after close and after a crash', (t) => {
  const mine = () => readdirSync(tmpdir()).filter((n) => n.startsWith('mmapvec-') && !n.startsWith('mmapvec-test-'))
  const before = new Set(mine())
  const v = MmapVec.temp(Row)
  for (let i = 0; i < 50_000; i++) v.push(expected(i))
  t.deepEqual(v.get(49_999), expected(49_999))
  t.false(existsSync(v.path), 'the files are unlinked while the vec is open')
  v.close()
  const crashed = runChild('temp-crash.mjs', [])
  t.is(crashed.signal, 'SIGKILL')
  t.false(existsSync(crashed.stdout.trim()))
  t.deepEqual(mine().filter((n) => !before.has(n)), [])
})

test('MmapVec.remove deletes a vec', (t) => {
  const path = join(dir, 'gone.mvec')
  MmapVec.open(path, Row).close()
  MmapVec.remove(path)
  t.false(existsSync(path))
})
