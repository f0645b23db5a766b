// Buffered mode, for runtimes that forbid ArrayBuffers over memory V8 did not allocate
// (Electron's V8 memory cage): columns live in V8-allocated buffers, read from the files at
// open and written back on flush and close. Same API, locks and file format as mmap mode.
import test from 'ava'
import { MmapVec, type MmapVecError, type Mode } from 'mmapvec'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fingerprint, runChild, scratch, startChild } from './helpers/util.mjs'

const Row = { pos: ['f32', 3], id: 'u32', big: 'i64', alive: 'bool' } as const
const row = (i: number) => ({ pos: [i, i * 2, i * 3], id: i, big: BigInt(i) * 1000n, alive: i % 2 === 0 })
const dir = scratch()
let n = 0
const fresh = () => join(dir, `b${n++}.mvec`)
const buffered = { mode: 'buffered' } as const

test('the mode is chosen by the option, by MMAPVEC_MODE, or by what the runtime allows', (t) => {
  using m = MmapVec.temp('f64')
  t.is(m.mode, (process.env.MMAPVEC_MODE || 'mmap') as Mode, 'plain Node allows views of mapped memory, unless MMAPVEC_MODE says otherwise')
  using forced = MmapVec.temp('f64', { mode: 'mmap' })
  t.is(forced.mode, 'mmap', 'the option overrides MMAPVEC_MODE')
  using b = MmapVec.temp('f64', buffered)
  t.is(b.mode, 'buffered')
  t.throws(() => MmapVec.temp('f64', { mode: 'copy' as 'mmap' }), { code: 'EINVAL' } as object)
  const child = runChild('reader.mjs', [fresh(), '0'], { MMAPVEC_MODE: 'nonsense' })
  t.is((JSON.parse(child.stdout) as { code: string }).code, 'EINVAL')
})

test('rows round-trip through flush, close and reopen, and other processes see flushed rows', async (t) => {
  const path = fresh()
  const v = MmapVec.open(path, Row, buffered)
  for (let i = 0; i < 5000; i++) v.push(row(i))
  // A reader beside a buffered writer sees what was written back: nothing yet, then every row.
  const before = JSON.parse(runChild('reader.mjs', [path, '1']).stdout) as { length: number }
  t.is(before.length, 0)
  await v.flush()
  const beside = JSON.parse(runChild('reader.mjs', [path, '1']).stdout) as { length: number; rows: { id: number }[] }
  t.is(beside.length, 5000)
  t.is(beside.rows[4999].id, 4999)
  v.close()
  const r = JSON.parse(runChild('reader.mjs', [path, '1']).stdout) as { length: number; rows: { id: number }[] }
  t.is(r.length, 5000)
  t.is(r.rows[4999].id, 4999)
  using w = MmapVec.open(path, Row, buffered)
  t.deepEqual(w.get(1234), row(1234))
  using m = MmapVec.open(join(dir, 'unused.mvec'), Row, { mode: 'mmap' })
  t.is(m.mode, 'mmap')
})

test('a crash loses what was not flushed, and nothing before it', async (t) => {
  const path = fresh()
  const v = MmapVec.open(path, Row, buffered)
  for (let i = 0; i < 100; i++) v.push(row(i))
  v.close()
  const c = startChild('writer.mjs', [path, '1000', 'kill'], 'ready', { MMAPVEC_MODE: 'buffered' })
  await c.ready
  c.child.kill('SIGKILL')
  await c.exited
  using w = MmapVec.open(path, Row, buffered)
  t.is(w.length, 100, 'the killed child never flushed its 1000 rows')
  t.deepEqual(w.get(99), row(99))
})

test('growth, shrinkToFit and close empty earlier views; columns read again see every row', (t) => {
  const v = MmapVec.open(fresh(), { x: 'f64' }, buffered)
  v.push({ x: 1 })
  const early = v.columns.x
  for (let i = 1; i < 5000; i++) v.push({ x: i + 1 })
  t.is(early.length, 0, 'a buffer that growth replaced is detached, not left stale')
  t.is(v.columns.x[4999], 5000)
  v.truncate(10)
  v.shrinkToFit()
  t.deepEqual([...v.columns.x], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  const last = v.columns.x
  v.close()
  t.is(last.length, 0)
})

test('an open and close without changes leaves the files untouched; readOnly writes stay local', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, Row, buffered)
  for (let i = 0; i < 300; i++) v.push(row(i))
  v.close()
  const before = fingerprint(path)
  const again = MmapVec.open(path, Row, buffered)
  t.is(again.columns.id[299], 299)
  again.close()
  t.deepEqual(fingerprint(path), before)
  const ro = MmapVec.open(path, Row, { ...buffered, readOnly: true })
  ro.columns.id[0] = 77
  t.is(ro.get(0).id, 77)
  t.throws(() => ro.push(row(0)), { code: 'EREADONLY' } as object)
  ro.close()
  t.deepEqual(fingerprint(path), before)
})

test('buffered vecs refuse bad input and damaged files like mmap ones', (t) => {
  using v = MmapVec.open(fresh(), Row, buffered)
  const e = t.throws<MmapVecError>(() => v.push({ ...row(0), big: 1 } as never))
  t.is(e.code, 'EINVAL')
  t.is(v.length, 0)
  t.throws(() => v.get(0), { code: 'ERANGE' } as object)
})

test('a worker thread ended from outside writes its open buffered vecs back (terminate, process.exit in the main thread)', (t) => {
  for (const how of ['terminate', 'exit', 'self']) {
    const path = fresh()
    const child = runChild('worker-teardown.mjs', [path, how, '10000'])
    t.is(child.status, 0, child.stderr)
    using v = MmapVec.open(path, { id: 'u32', pos: ['f32', 2], hp: 'u16' })
    t.is(v.length, 10000, `${how}: every row pushed after the last flush was written back`)
    const { id, pos, hp } = v.columns
    t.true(
      id.every((x, i) => x === i) && hp.every((x, i) => x === i % 65536) && pos[2 * 9999] === 9999 && pos[2 * 9999 + 1] === -9999,
      `${how}: rows, the column added after the last flush and its writes are all there`,
    )
    t.deepEqual(MmapVec.verify(path), [])
  }
})

test('a teardown writes nothing back when the program transferred a column buffer away', (t) => {
  const path = fresh()
  const child = runChild('worker-teardown.mjs', [path, 'transfer', '10000'])
  using v = MmapVec.open(path, { id: 'u32', pos: ['f32', 2], hp: 'u16' })
  t.is(v.length, 10000, 'addColumn wrote the rows back before the transfer')
  const hp = v.columns.hp
  if (child.stderr.includes('detached by the program')) {
    // Node 24: the buffer left, so the hp values written since (only in memory) left with it.
    t.regex(child.stderr, /the rows of a buffered vec .* could not be written back/)
    t.true(hp.every((x) => x === 0), 'nothing was written back')
  } else {
    // Node 20 copies a marked buffer and Node 22 refuses to transfer it: nothing was lost.
    t.true(hp.every((x, i) => x === i % 65536))
  }
  t.deepEqual(MmapVec.verify(path), [])
})

test('a worker ended in the middle of schema changes writes each column to its own file, and never aborts', (t) => {
  for (let run = 0; run < 8; run++) {
    const path = fresh()
    const child = runChild('worker-teardown.mjs', [path, 'schema', '0'])
    t.is(child.signal, null, child.stderr)
    t.is(child.status, 0, child.stderr)
    using v = MmapVec.open(path)
    t.is(v.length, 1000)
    const own: Record<string, number> = { a: 1, b: 2, c: 3 }
    for (const [name, col] of Object.entries(v.columns)) {
      // A column added just before the end may not have been written back yet: zeros.
      t.true((col as Uint32Array).every((x) => x === own[name]) || (col as Uint32Array).every((x) => x === 0), `column ${name} holds its own values`)
    }
    t.deepEqual(MmapVec.verify(path), [])
  }
})

test('a worker ended with an empty buffered vec open says nothing', (t) => {
  const path = fresh()
  const child = runChild('worker-teardown.mjs', [path, 'empty', '0'])
  t.is(child.status, 0)
  t.is(child.stderr, '', 'no false report of a detached buffer')
  using v = MmapVec.open(path, { id: 'u32' })
  t.is(v.length, 0)
})

test('a growth or an open whose buffers V8 cannot allocate is EIO, keeps every row, and leaves no new vec', (t) => {
  if (process.platform !== 'linux') return t.pass('the address-space limit is set with prlimit and read from /proc')
  const dir = join(scratch(), 'alloc')
  mkdirSync(dir)
  type Outcome = { ok?: unknown; code?: string; name?: string }
  const grow = JSON.parse(runChild('alloc-failure.mjs', [dir, 'grow']).stdout) as Record<string, Outcome> & { capacity: number; length: number }
  t.is(grow.reserve.code, 'EIO', 'an MmapVecError, not a raw RangeError')
  t.is(grow.capacity, 1024, 'the vec keeps its capacity')
  t.true(grow.push.code === 'EIO' || grow.push.ok === 3000, 'a push past the capacity works or throws: it is never dropped')
  t.deepEqual(grow.last.ok, { a: grow.length - 1 })
  t.deepEqual(grow.close, { ok: null })
  using v = MmapVec.open(join(dir, 'grow.mvec'), { a: 'f64' })
  t.is(v.length, grow.length, 'every row the vec reported is in the files')
  t.deepEqual(v.get(v.length - 1), { a: v.length - 1 })
  const open = JSON.parse(runChild('alloc-failure.mjs', [dir, 'open']).stdout) as Record<string, Outcome>
  t.is(open.open.code, 'EIO')
  t.false(existsSync(join(dir, 'x')), 'the failed open removed the vec it created, and the directory made for it')
})

test("rows a program's own exit listener pushes are written back, and its close there works", (t) => {
  for (const [ending, when] of [['close', 'now'], ['close', 'later'], ['open', 'later']]) {
    const path = fresh()
    const child = runChild('exit-listener.mjs', [path, ending, when])
    t.is(child.status, 0, child.stderr)
    t.is(child.stderr, '', `${ending}, ${when}: no ECLOSED, no warning`)
    using v = MmapVec.open(path, { a: 'u32' })
    t.is(v.length, 2, `${ending}, ${when}: the row pushed at exit is in the files`)
  }
  for (const ending of ['reexit', 'throw']) {
    const path = fresh()
    runChild('exit-listener.mjs', [path, ending, 'later'])
    using v = MmapVec.open(path, { a: 'u32' })
    t.is(v.length, 1, `${ending}: a listener of the program that ends the exit event keeps mmapvec's write-back`)
  }
})

test('an exit listener added before the first buffered vec opens, or prepended later, that ends the exit event keeps the write-back', (t) => {
  for (const where of ['before', 'prepend']) {
    for (const ending of ['reexit', 'throw']) {
      for (const when of ['later', 'end']) {
        const path = fresh()
        const child = runChild('exit-listener.mjs', [path, ending, when, where])
        t.is(child.signal, null, `${where}, ${ending}, ${when}: no signal`)
        using v = MmapVec.open(path, { a: 'u32' })
        t.is(v.length, 1, `${where}, ${ending}, ${when}: the row pushed before the exit is in the files`)
      }
    }
  }
  // A listener that pushes still runs before the last write-back, wherever it was added.
  for (const where of ['before', 'prepend']) {
    const path = fresh()
    const child = runChild('exit-listener.mjs', [path, 'open', 'end', where])
    t.is(child.status, 0, child.stderr)
    using v = MmapVec.open(path, { a: 'u32' })
    t.is(v.length, 2, `${where}: the row the listener pushed at exit is in the files`)
  }
})

test('a shrinkToFit or addColumn that runs out of memory leaves a vec whose every reported row is in the files', (t) => {
  if (process.platform !== 'linux') return t.pass('the address-space limit is set with prlimit and read from /proc')
  for (const scenario of ['shrink', 'add']) {
    const dir = join(scratch(), `alloc-${scenario}`)
    mkdirSync(dir)
    type Outcome = { ok?: unknown; code?: string }
    const out = JSON.parse(runChild('alloc-failure.mjs', [dir, scenario]).stdout) as Record<string, Outcome> & { length: number; schema: unknown }
    for (const k of ['change', 'push']) t.true(out[k].code === undefined || out[k].code === 'EIO', `${scenario} ${k}: ${JSON.stringify(out[k])}`)
    t.deepEqual(out.schema, { a: 'f64' }, 'the vec shows the schema it can hold')
    t.deepEqual(out.last.ok, { a: 2 })
    t.deepEqual(out.close, { ok: null })
    if (scenario === 'add' && out.change.code !== undefined) t.deepEqual(MmapVec.inspect(join(dir, 'add.mvec')).schema, { a: 'f64' }, 'the refused addColumn left the files as they were')
    using v = MmapVec.open(join(dir, `${scenario}.mvec`), { a: 'f64' }, { readOnly: true })
    t.is(v.length, out.length, `${scenario}: every row the vec reported is in the files`)
    t.is(v.get(v.length - 1).a, 2)
  }
})
