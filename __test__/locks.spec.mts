import test from 'ava'
import { MmapVec } from 'mmapvec'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { scratch, startChild } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => {
  const p = join(dir, `l${n++}.mvec`)
  MmapVec.open(p, { x: 'f64' }).close()
  return p
}

test('a writer in another process keeps other writers out; readers open beside it', async (t) => {
  const path = fresh()
  const writer = startChild('locker.mjs', [path, '0', '60000'])
  await writer.ready
  t.throws(() => MmapVec.open(path, { x: 'f64' }), { code: 'ELOCKED' } as object)
  using beside = MmapVec.open(path, { x: 'f64' }, { readOnly: true })
  t.true(beside.readOnly)
  writer.child.kill('SIGKILL')
  await writer.exited
  const reader = startChild('locker.mjs', [path, '1', '60000'])
  await reader.ready
  using a = MmapVec.open(path, { x: 'f64' }, { readOnly: true })
  using b = MmapVec.open(path, { x: 'f64' }, { readOnly: true })
  t.true(a.readOnly && b.readOnly)
  // A writer opens beside readers (in this process and another); a second one still cannot.
  using w = MmapVec.open(path, { x: 'f64' })
  t.throws(() => MmapVec.open(path, { x: 'f64' }), { code: 'ELOCKED' } as object)
  w.close()
  reader.child.kill('SIGKILL')
  await reader.exited
})

test('lockTimeoutMs waits for the holder to let go', async (t) => {
  const path = fresh()
  const holder = startChild('locker.mjs', [path, '0', '400'])
  await holder.ready
  const start = Date.now()
  using v = MmapVec.open(path, { x: 'f64' }, { lockTimeoutMs: 20_000 })
  t.false(v.closed)
  t.true(Date.now() - start < 15_000)
  t.is(await holder.exited, 0)
})

test('lockTimeoutMs gives up with ELOCKED when the holder stays', async (t) => {
  const path = fresh()
  const holder = startChild('locker.mjs', [path, '0', '60000'])
  await holder.ready
  const start = Date.now()
  const e = t.throws(() => MmapVec.open(path, { x: 'f64' }, { lockTimeoutMs: 200 }), { code: 'ELOCKED' } as object)
  t.true(Date.now() - start >= 200)
  t.regex(e?.message ?? '', /200 ms/)
  holder.child.kill('SIGKILL')
  await holder.exited
})

test('two handles in one process: the second writer is refused, the first keeps working', (t) => {
  const path = fresh()
  using a = MmapVec.open(path, { x: 'f64' })
  t.throws(() => MmapVec.open(path, { x: 'f64' }), { code: 'ELOCKED', message: /this same process/ } as object)
  a.push({ x: 1 })
  t.is(a.length, 1)
})

test('a worker thread opening a vec the main thread holds gets ELOCKED', async (t) => {
  const path = fresh()
  using held = MmapVec.open(path, { x: 'f64' })
  const code = await new Promise<string>((resolve, reject) => {
    const w = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads')
       const { MmapVec } = require('mmapvec')
       try { MmapVec.open(workerData, { x: 'f64' }).close(); parentPort.postMessage('opened') }
       catch (e) { parentPort.postMessage(e.code) }`,
      { eval: true, workerData: path },
    )
    w.on('message', resolve)
    w.on('error', reject)
  })
  t.is(code, 'ELOCKED')
  held.push({ x: 1 })
  t.is(held.length, 1)
})

test('many readers at once, across processes, beside a writer; remove waits for the last of them', async (t) => {
  const path = fresh()
  const readers = [0, 1, 2, 3].map(() => startChild('locker.mjs', [path, '1', '60000']))
  await Promise.all(readers.map((r) => r.ready))
  using mine = MmapVec.open(path, { x: 'f64' }, { readOnly: true })
  t.is(mine.length, 0)
  mine.close()
  const w = MmapVec.open(path, { x: 'f64' })
  w.push({ x: 1 })
  t.is(w.length, 1)
  w.close()
  for (const r of readers) {
    t.throws(() => MmapVec.remove(path), { code: 'ELOCKED', message: /readers have it open/ } as object)
    r.child.kill('SIGKILL')
    await r.exited
  }
  // A killed reader's registration went with its process.
  MmapVec.remove(path)
  t.throws(() => MmapVec.open(path, { x: 'f64' }, { readOnly: true }), { code: 'ENOENT' } as object)
})
