// Live readers beside a writer: a reader's scan against the same loop over in-memory arrays,
// the writer's push with 4 reader processes following it against none, the cost of a batch,
// a snapshot of every column against TypedArray.prototype.slice of the same bytes, and how
// long after a publish a reader in another process wakes (p50, p99).
import { MmapVec } from 'mmapvec'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Row, fresh, interleaved, prng, quick, report } from '../lib.mjs'

const N = quick ? 2_000_000 : 10_000_000
const REPEAT = quick ? 5 : 11
const READER = fileURLToPath(new URL('../live-reader.mjs', import.meta.url))

function fill(v, n) {
  const src = { x: new Float32Array(n), y: new Float32Array(n), vx: new Float32Array(n), vy: new Float32Array(n), id: new Uint32Array(n) }
  const r = prng(3)
  for (let i = 0; i < n; i++) {
    src.x[i] = r() * 100
    src.y[i] = r() * 100
    src.vx[i] = r() - 0.5
    src.id[i] = i
  }
  v.pushMany(src)
  return src
}

async function readers(path, k, what) {
  const children = Array.from({ length: k }, () => spawn(process.execPath, [READER, path, what], { stdio: ['pipe', 'pipe', 'inherit'] }))
  await Promise.all(children.map(async (c) => {
    const [line] = await once(c.stdout, 'data')
    if (!String(line).startsWith('ready')) throw new Error(`reader: ${line}`)
  }))
  return children
}

async function stopReaders(children) {
  const outs = children.map((c) => {
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    return once(c, 'exit').then(() => out)
  })
  for (const c of children) c.stdin.end()
  return Promise.all(outs)
}

// 1. A reader's scan over the writer's pages.
const scanPath = fresh('live-scan.mvec')
const writer = MmapVec.open(scanPath, Row, { capacity: N })
const src = fill(writer, N)
const reader = MmapVec.open(scanPath, Row, { readOnly: true })
const mem = Float32Array.from(src.x)
function sum(a) {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]
  return s
}
const rc = reader.columns
const scan = interleaved(REPEAT, { ours: { run: () => sum(rc.x) }, mem: { run: () => sum(mem) } })

// 2. A snapshot of every column against slices of the same bytes.
const wc = writer.columns
const snap = interleaved(REPEAT, {
  ours: { run: () => reader.snapshot() },
  slice: { run: () => [wc.x.slice(), wc.y.slice(), wc.vx.slice(), wc.vy.slice(), wc.id.slice()] },
})
reader.close()
writer.close({ flush: false })

// 3. The cost of a batch: an empty one, against calling the function itself.
const bv = MmapVec.open(fresh('live-batch.mvec'), Row)
const CALLS = 1_000_000
const noop = () => 0
const bt = interleaved(REPEAT, {
  batch: { run: () => { for (let i = 0; i < CALLS; i++) bv.batch(noop) } },
  call: { run: () => { for (let i = 0; i < CALLS; i++) noop() } },
})
bv.close({ flush: false })
const batchCost = Math.max(0, bt.batch - bt.call) / CALLS

// 4. Push with 4 reader processes following the writer, against none. The pushes yield to the
// event loop every 100,000 rows, so that the writer publishes as a program's ticks would.
const PUSHED = quick ? 1_000_000 : 4_000_000
async function pushAll(path) {
  const v = MmapVec.open(path, Row)
  const start = process.hrtime.bigint()
  for (let i = 0; i < PUSHED; i++) {
    v.push({ x: i, y: i, vx: 1, vy: -1, id: i })
    if (i % 100_000 === 99_999) await new Promise((r) => setImmediate(r))
  }
  const s = Number(process.hrtime.bigint() - start) / 1e9
  v.close({ flush: false })
  return s
}
const withNone = []
const withFour = []
await pushAll(fresh('live-push-warm.mvec'))
for (let rep = 0; rep < (quick ? 2 : 4); rep++) {
  withNone.push(await pushAll(fresh('live-push-none.mvec')))
  const path = fresh('live-push-four.mvec')
  MmapVec.open(path, Row).close()
  const rs = await readers(path, 4, 'follow')
  withFour.push(await pushAll(path))
  await stopReaders(rs)
}
const median = (a) => a.sort((x, y) => x - y)[a.length >> 1]

// 5. Wake-up: the writer stamps a row and publishes (a batch) at random moments; a reader in
// another process notes how long after the stamp its changed() resolved.
const latPath = fresh('live-latency.mvec')
const lw = MmapVec.open(latPath, { t: 'f64' })
const [lr] = await readers(latPath, 1, 'latency')
const SAMPLES = quick ? 300 : 2000
const pause = prng(4)
for (let i = 0; i < SAMPLES; i++) {
  await new Promise((r) => setTimeout(r, 1 + pause() * 2))
  lw.batch(() => lw.push({ t: Number(process.hrtime.bigint()) / 1e6 }))
}
await new Promise((r) => setTimeout(r, 50))
const [out] = await stopReaders([lr])
lw.close({ flush: false })
const lat = JSON.parse(out.trim().split('\n').at(-1)).sort((a, b) => a - b)
const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] / 1000

const rows = `${N.toLocaleString('en')} rows`
report([
  { scenario: 'live scan', subject: `a reader beside the writer: sum of x over ${rows}`, value: N / scan.ours, unit: 'rows/s' },
  { scenario: 'live scan', subject: 'the same loop over an in-memory Float32Array', value: N / scan.mem, unit: 'rows/s', baseline: true, target: 0.95 },
  { scenario: 'snapshot', subject: `a reader's snapshot() of 5 columns, ${rows}`, value: (N * 20) / snap.ours, unit: 'B/s' },
  { scenario: 'snapshot', subject: 'TypedArray.prototype.slice of the same 5 columns', value: (N * 20) / snap.slice, unit: 'B/s', baseline: true, target: 0.8 },
  { scenario: 'batch', subject: 'writer.batch(fn) around a function that does nothing, over calling it', value: batchCost, unit: 's', absoluteTarget: 100e-9, lowerIsBetter: true },
  { scenario: 'push, readers', subject: `push of ${PUSHED.toLocaleString('en')} rows with 4 reader processes following`, value: PUSHED / median(withFour), unit: 'rows/s' },
  { scenario: 'push, readers', subject: 'the same pushes with no reader', value: PUSHED / median(withNone), unit: 'rows/s', baseline: true, target: 0.95 },
  { scenario: 'wake-up', subject: `publish to a reader process's changed(), p50 of ${lat.length}`, value: pct(0.5), unit: 's', absoluteTarget: 1e-3, lowerIsBetter: true },
  { scenario: 'wake-up', subject: `publish to a reader process's changed(), p99 of ${lat.length}`, value: pct(0.99), unit: 's', absoluteTarget: 1e-3, lowerIsBetter: true },
])
