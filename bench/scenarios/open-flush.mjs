// 5. open an existing 1 GiB vec and read its last row, beside readFileSync of the same bytes;
// 6. flush after changing 1% of the rows, beside writing the whole state out (write + fsync).
import { Bench } from 'tinybench'
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { MmapVec } from 'mmapvec'
import { ROW_BYTES, Row, dataDir, fresh, prng, quick, report, timeMedian, timeMedianAsync } from '../lib.mjs'

const BYTES = quick ? 128 * 2 ** 20 : 2 ** 30
const N = Math.floor(BYTES / ROW_BYTES)
const path = fresh('big.mvec')
{
  const v = MmapVec.open(path, Row, { capacity: N })
  const CH = 1 << 20
  const c = { x: new Float32Array(CH).fill(1), y: new Float32Array(CH), vx: new Float32Array(CH), vy: new Float32Array(CH), id: new Uint32Array(CH) }
  for (let done = 0; done < N; done += CH) {
    const n = Math.min(CH, N - done)
    v.pushMany(n === CH ? c : Object.fromEntries(Object.entries(c).map(([k, a]) => [k, a.subarray(0, n)])))
  }
  v.close()
}
const files = readdirSync(path).filter((f) => f.endsWith('.col')).map((f) => join(path, f))

const bench = new Bench({ time: quick ? 300 : 2000, warmup: true })
bench.add('open + last row + close', () => {
  const v = MmapVec.open(path, Row)
  v.get(v.length - 1)
  v.close({ flush: false })
})
await bench.run()
const openMs = bench.tasks[0].result.latency.p50
const readAll = timeMedian(quick ? 1 : 3, () => {
  for (const f of files) readFileSync(f)
})

// Flush after changing 1% of the rows: a contiguous block, and the same count spread at random
// (which dirties nearly every page: flushing is page-granular).
const v = MmapVec.open(path, Row)
const ONE = Math.floor(N / 100)
const block = async () => {
  const start = Math.floor(prng(3)() * (N - ONE))
  const { x } = v.columns
  for (let i = start; i < start + ONE; i++) x[i] += 1
  await v.flush()
}
const r = prng(4)
const scattered = async () => {
  const { x } = v.columns
  for (let k = 0; k < ONE; k++) x[Math.floor(r() * N)] += 1
  await v.flush()
}
await v.flush()
const flushBlock = await timeMedianAsync(quick ? 3 : 5, block)
const flushScattered = await timeMedianAsync(quick ? 1 : 3, scattered)

// The first growth of a vec opened this large moves its columns out of the pack they shared
// (one ArrayBuffer for all; see BENCHMARKS.md, open): the next pass over them must not pay for
// mapping the pages again.
function tick(x, vx) {
  for (let i = 0; i < x.length; i++) x[i] += vx[i] * 0.001
}
const timeTick = () => {
  const { x, vx } = v.columns
  const s = process.hrtime.bigint()
  tick(x, vx)
  return Number(process.hrtime.bigint() - s) / 1e9
}
timeTick()
const tickPacked = timeTick()
const cap = v.capacity
while (v.capacity === cap) v.push({ x: 0, y: 0, vx: 0, vy: 0, id: 0 })
const tickMoved = timeTick()
v.truncate(N)
const whole = Buffer.alloc(1 << 24)
const writeAll = timeMedian(quick ? 1 : 3, () => {
  const fd = openSync(join(dataDir, 'snapshot.bin'), 'w')
  for (let done = 0; done < BYTES; done += whole.length) writeSync(fd, whole, 0, Math.min(whole.length, BYTES - done))
  fsyncSync(fd)
  closeSync(fd)
}, { warmup: false })
v.close()

const size = quick ? '128 MiB' : '1 GiB'
report([
  { scenario: 'open', subject: `mmapvec: open a ${size} vec, read its last row, close (median)`, value: openMs / 1000, unit: 's', absoluteTarget: 0.001, lowerIsBetter: true },
  { scenario: 'open', subject: `readFileSync of the same ${size}`, value: readAll, unit: 's', baseline: true, lowerIsBetter: true },
  { scenario: 'flush', subject: `mmapvec flush after changing 1% of the rows of ${size} (one block)`, value: flushBlock, unit: 's', lowerIsBetter: true },
  { scenario: 'flush', subject: `write + fsync of the whole ${size}`, value: writeAll, unit: 's', baseline: true, lowerIsBetter: true, target: 10 },
  { scenario: 'flush', subject: `mmapvec flush after changing 1% of the rows, scattered at random`, value: flushScattered, unit: 's', lowerIsBetter: true, note: 'every page holds a changed row' },
  { scenario: 'first growth', subject: `tick (x += vx * dt) over the ${size} vec right after its first growth`, value: tickMoved, unit: 's', lowerIsBetter: true },
  { scenario: 'first growth', subject: 'the same tick just before it', value: tickPacked, unit: 's', baseline: true, lowerIsBetter: true },
])
