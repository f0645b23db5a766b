import test from 'ava'
import { MmapVec } from 'mmapvec'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fixture, hasStrace, scratch } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => join(dir, `f${n++}.mvec`)

/** Runs a fixture under strace and returns its stdout and the traced sync calls. */
function traced(script: string, args: string[]) {
  const trace = join(dir, `trace-${n++}.txt`)
  const r = spawnSync('strace', ['-f', '-e', 'trace=msync,fsync,fdatasync,madvise', '-o', trace, process.execPath, fixture(script), ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (r.status !== 0) throw new Error(`traced child failed: ${r.stderr}`)
  const calls = readFileSync(trace, 'utf8').split('\n').filter((l) => /(msync|fsync|fdatasync|madvise)\(/.test(l))
  return { stdout: r.stdout, calls }
}

const straced = hasStrace() ? test : test.skip
if (!hasStrace()) console.warn('strace is not installed: .ci/run installs it; the durability-order tests are skipped here')

test('flush resolves, flushSync returns, and both leave the rows in place', async (t) => {
  using v = MmapVec.open(fresh(), { x: 'f64' })
  for (let i = 0; i < 50_000; i++) v.push({ x: i })
  await v.flush()
  v.flushSync()
  t.is(v.get(49_999).x, 49_999)
})

test('a flush in flight survives the vec growing and closing under it', async (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { x: 'f64', y: ['u32', 4] })
  for (let i = 0; i < 1000; i++) v.push({ x: i, y: [i, i, i, i] })
  const first = v.flush()
  for (let i = 1000; i < 300_000; i++) v.push({ x: i, y: [i, i, i, i] })
  const second = v.flush()
  v.close()
  await Promise.all([first, second])
  using w = MmapVec.open(path, { x: 'f64', y: ['u32', 4] })
  t.is(w.length, 300_000)
  t.deepEqual(w.get(299_999), { x: 299_999, y: [299_999, 299_999, 299_999, 299_999] })
})

test('a readOnly vec flushes as a no-op', async (t) => {
  const path = fresh()
  MmapVec.open(path, 'u8').close()
  using r = MmapVec.open(path, 'u8', { readOnly: true })
  await r.flush()
  r.flushSync()
  t.is(r.length, 0)
})

straced('flush syncs every column before the header that claims its rows', (t) => {
  const path = fresh()
  const { stdout, calls } = traced('flush-order.mjs', [path])
  const maps = JSON.parse(stdout) as string[]
  const fileAt = (addr: bigint) => {
    for (const m of maps) {
      const [range, , , , , file] = m.split(/\s+/)
      const [lo, hi] = range.split('-').map((h) => BigInt(`0x${h}`))
      if (addr >= lo && addr < hi) return file.split('/').pop()
    }
    return undefined
  }
  const order = calls
    .map((l) => /msync\((0x[0-9a-f]+)/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => fileAt(BigInt(m[1])))
  t.deepEqual(order, ['c0.col', 'c1.col', 'header'], calls.join('\n'))
})

straced('autoFlushMs flushes in the background without being asked', (t) => {
  const path = fresh()
  const { calls } = traced('autoflush.mjs', [path, '50'])
  t.true(calls.filter((l) => l.includes('msync(')).length >= 2, calls.join('\n'))
})

straced('autoFlushMs also flushes rows changed only through views held from earlier', (t) => {
  const path = fresh()
  const { calls } = traced('autoflush-views.mjs', [path, '50'])
  const msyncs = calls.filter((l) => l.includes('msync(')).length
  // flushSync syncs the column and the header; each background flush after it does the same.
  t.true(msyncs >= 2 + 2 * 2, `${msyncs} msync calls:\n${calls.join('\n')}`)
})

straced('prefetch asks the kernel to read the rows ahead', (t) => {
  const path = fresh()
  const { calls } = traced('prefetch.mjs', [path])
  t.true(calls.some((l) => l.includes('MADV_WILLNEED')), calls.join('\n'))
})
