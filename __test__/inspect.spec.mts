/**
 * Opening a vec without its schema, and looking at a vec without opening it:
 * `MmapVec.open(path)`, `MmapVec.inspect(path)` and `MmapVec.verify(path)`.
 */
import test from 'ava'
import { MmapVec, MmapVecError, type Schema } from 'mmapvec'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { fingerprint, mode, runChild, scratch, startChild } from './helpers/util.mjs'

const Particle = { pos: ['f32', 3], id: 'u64', alive: 'bool', hp: 'i16' } as const

function make(dir: string, rows = 10): string {
  const path = join(dir, 'p.mvec')
  const v = MmapVec.open(path, Particle, { version: 7 })
  for (let i = 0; i < rows; i++) v.push({ pos: [i, i + 0.5, -i], id: BigInt(i) * 10n, alive: i % 2 === 0, hp: -i })
  v.close()
  return path
}

test('open without a schema uses the stored one', (t) => {
  const path = make(scratch())
  const v = MmapVec.open(path)
  t.deepEqual(v.schema, { pos: ['f32', 3], id: 'u64', alive: 'bool', hp: 'i16' } satisfies Schema)
  t.is(v.length, 10)
  t.deepEqual(v.get(3), { pos: [3, 3.5, -3], id: 30n, alive: false, hp: -3 })
  t.false(v.readOnly)
  v.push({ pos: [1, 2, 3], id: 1n, alive: true, hp: 1 })
  v.close()
  const r = MmapVec.open(path, undefined, { readOnly: true, version: 7 })
  t.is(r.length, 11)
  t.is(r.version, 7)
  r.close()
  t.throws(() => MmapVec.open(path, undefined, { version: 8 }), { instanceOf: MmapVecError, code: 'EVERSION' })
})

test('open without a schema of a scalar vec gives the plain type back', (t) => {
  const path = join(scratch(), 's.mvec')
  const v = MmapVec.open(path, ['i32', 2])
  v.push([1, -2])
  v.close()
  const w = MmapVec.open(path)
  t.deepEqual(w.schema, ['i32', 2])
  t.deepEqual(w.get(0), [1, -2])
  w.close()
})

test('open without a schema never creates: ENOENT says a schema is needed', (t) => {
  const path = join(scratch(), 'missing', 'x.mvec')
  const e = t.throws(() => MmapVec.open(path), { instanceOf: MmapVecError, code: 'ENOENT' })
  t.regex(e.message, /needs a schema/)
  t.regex(e.message, /missing\/x\.mvec/)
  t.false(existsSync(path))
  t.false(existsSync(join(path, '..')))
})

test('inspect reports the header, the files and the lock without taking it', (t) => {
  const path = make(scratch())
  const i = MmapVec.inspect(path)
  t.is(i.length, 10)
  t.is(i.version, 7)
  t.is(i.formatVersion, 1)
  t.is(i.headerBytes, 4096)
  t.is(i.lock, 'none')
  t.deepEqual(i.schema, { pos: ['f32', 3], id: 'u64', alive: 'bool', hp: 'i16' })
  t.deepEqual(
    i.columns.map((c) => [c.name, c.type, c.count, c.bytes]),
    [
      ['pos', 'f32', 3, 12288],
      ['id', 'u64', 1, 12288],
      ['alive', 'bool', 1, 4096],
      ['hp', 'i16', 1, 4096],
    ],
  )
  t.is(i.capacity, Math.min(...i.columns.map((c) => c.rows ?? 0)))
  const w = MmapVec.open(path, Particle)
  t.like(MmapVec.inspect(path), { lock: 'exclusive', lockedByThisProcess: true, readers: false })
  // inspect took nothing: the writer still works, and readers open beside it.
  w.push({ pos: [0, 0, 0], id: 0n, alive: true, hp: 0 })
  // The file's row count: at once in mmap mode; in buffered mode once the row is written back.
  if (mode === 'buffered') {
    t.is(MmapVec.inspect(path).length, 10)
    w.flushSync()
  }
  t.is(MmapVec.inspect(path).length, 11)
  const beside = MmapVec.open(path, Particle, { readOnly: true })
  t.like(MmapVec.inspect(path), { lock: 'exclusive', readers: true })
  beside.close()
  w.close()
  const r1 = MmapVec.open(path, Particle, { readOnly: true })
  t.like(MmapVec.inspect(path), { lock: 'shared', lockedByThisProcess: true, readers: true })
  r1.close()
  t.like(MmapVec.inspect(path), { lock: 'none', lockedByThisProcess: false, readers: false })
})

test('inspect of a missing or damaged vec throws as opening would', (t) => {
  const dir = scratch()
  t.throws(() => MmapVec.inspect(join(dir, 'nope')), { code: 'ENOENT' })
  const path = make(dir)
  const h = readFileSync(join(path, 'header'))
  h[70] ^= 1
  writeFileSync(join(path, 'header'), h)
  t.throws(() => MmapVec.inspect(path), { code: 'EFORMAT' })
})

test('verify finds nothing in a sound vec, even one open for writing', (t) => {
  const path = make(scratch())
  t.deepEqual(MmapVec.verify(path), [])
  const w = MmapVec.open(path)
  t.deepEqual(MmapVec.verify(path), [])
  w.close()
})

test('verify lists every problem and changes nothing', (t) => {
  const path = make(scratch())
  const h = readFileSync(join(path, 'header'))
  h[4095] = 1 // padding
  writeFileSync(join(path, 'header'), h)
  const alive = readFileSync(join(path, 'c2.col'))
  alive[128 + 4] = 9 // row 4 of the bool column (its rows start at byte 128)
  writeFileSync(join(path, 'c2.col'), alive)
  truncateSync(join(path, 'c3.col'), 192 + 8) // hp (rows from byte 192): room for 4 rows of 10, not whole pages
  const before = fingerprint(path)
  const problems = MmapVec.verify(path)
  t.deepEqual(
    problems.map((p) => [p.code, p.check]),
    [
      ['EFORMAT', 'header-padding'],
      ['EFORMAT', 'column-size'],
      ['EFORMAT', 'bool-value'],
      ['EFORMAT', 'capacity'],
    ],
  )
  t.regex(problems[2].message, /first in row 4/)
  t.regex(problems[3].message, /holds 10 rows, but the column file c3\.col \(field 'hp'\) holds only 4/)
  t.deepEqual(fingerprint(path), before)
  t.throws(() => MmapVec.verify(join(path, 'nope')), { code: 'ENOENT' })
})

/**
 * Runs `MmapVec.verify(path)` over and over in a worker thread of its own until `stop[0]` is
 * set; resolves to the number of checks and what those that did not come back empty found.
 */
function checker(path: string, stop: Int32Array): Promise<{ runs: number; seen: unknown[] }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `const { workerData: { path, stop }, parentPort } = require('node:worker_threads')
       const { MmapVec } = require('mmapvec')
       const seen = []
       let runs = 0
       for (; Atomics.load(stop, 0) === 0; runs++) {
         try {
           const problems = MmapVec.verify(path)
           if (problems.length > 0) seen.push(problems)
         } catch (e) {
           seen.push({ code: e.code, message: e.message })
         }
       }
       parentPort.postMessage({ runs, seen })`,
      { eval: true, workerData: { path, stop } },
    )
    w.on('message', resolve)
    w.on('error', reject)
  })
}

test('verify beside a writer that changes the schema, pushes and shrinks finds no problem; damage after it, at once', async (t) => {
  const path = join(scratch(), 'w.mvec')
  const cycles = 90 // a multiple of 3: the last cycle ends truncated to 100 rows
  const writer = startChild('verify-writer.mjs', [path, String(cycles)])
  await writer.ready
  // Two checkers, each as fast as it can, until the writer is through: each of its cycles
  // replaces the header twice, makes and deletes a column file, grows the files, and every third
  // cuts them. With the writer, that is more threads than the machine may have cores, so a check
  // may also be held up halfway while the writer goes on.
  const stop = new Int32Array(new SharedArrayBuffer(4))
  const checkers = [checker(path, stop), checker(path, stop)]
  const status = await writer.exited
  Atomics.store(stop, 0, 1)
  const results = await Promise.all(checkers)
  t.is(status, 0, writer.errors())
  t.regex(writer.output(), new RegExp(`^cycle ${cycles}\ndone 100\n$`, 'm'))
  const seen = results.flatMap((r) => r.seen)
  const runs = results.reduce((n, r) => n + r.runs, 0)
  t.deepEqual(seen.slice(0, 3), [], `${seen.length} of ${runs} checks beside the writer found problems`)
  t.deepEqual(MmapVec.verify(path), [])
  // A vec nobody writes does not change: its damage is reported by the first check.
  truncateSync(join(path, 'c0.col'), 100) // a (u32, rows from byte 0): room for 25 of 100 rows
  t.deepEqual(
    MmapVec.verify(path).map((p) => [p.code, p.check]),
    [
      ['EFORMAT', 'column-size'],
      ['EFORMAT', 'capacity'],
    ],
  )
})

test('verify of a sound vec with more columns than the process may have files open finds nothing; a lack of descriptors is EIO of the call naming the fix', (t) => {
  if (process.platform !== 'linux') return t.pass('ulimit -n and /dev/null are Linux tools here')
  const path = join(scratch(), 'wide.mvec')
  const schema: Record<string, 'u8' | 'bool'> = {}
  for (let k = 0; k < 999; k++) schema[`c${k}`] = 'u8'
  schema.ok = 'bool'
  const v = MmapVec.open(path, schema)
  v.push({ ...Object.fromEntries(Object.keys(schema).map((k) => [k, 1])), ok: true })
  v.close()
  const bin = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))
  const limited = (command: string) => spawnSync('bash', ['-c', `ulimit -n 600; "${process.execPath}" "${bin}" ${command} "${path}"`], { encoding: 'utf8', timeout: 60_000 })
  const verify = limited('verify')
  t.is(verify.status, 0, verify.stdout + verify.stderr)
  t.regex(verify.stdout, /ok, no problems found/)
  const head = limited('head')
  if (head.status !== 0) t.regex(head.stderr, /^mmapvec: EIO: .*ulimit -n/, 'an open that runs out of descriptors names the fix')
  const outcomes = [0, 1, 2, 3].map((free) => {
    const r = runChild('verify-emfile.mjs', [path, String(free)])
    t.is(r.signal, null, r.stderr)
    return JSON.parse(r.stdout) as { problems?: unknown[]; code?: string; message?: string }
  })
  for (const o of outcomes) {
    if (o.problems !== undefined) t.deepEqual(o.problems, [], 'a check that could run found nothing')
    else {
      t.is(o.code, 'EIO', o.message)
      t.regex(o.message ?? '', /too many files open; raise the limit on open files \(`ulimit -n`/)
    }
  }
  t.is(outcomes[0].code, 'EIO', 'no descriptor at all: the check itself fails')
})
