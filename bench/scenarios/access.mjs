// 3. scan (sum of one f32 column) and tick (x += vx * dt over every row), and 4. random get and
// set of whole rows (every field read or written), each beside the same loop over in-memory
// TypedArrays.
import { MmapVec } from 'mmapvec'
import { GrowableSoA, Row, fresh, interleaved, prng, quick, report } from '../lib.mjs'

const N = quick ? 2_000_000 : 10_000_000
const REPEAT = quick ? 5 : 15
const RANDOM = quick ? 1_000_000 : 5_000_000

const v = MmapVec.open(fresh('access.mvec'), Row, { capacity: N })
const mem = { x: new Float32Array(N), y: new Float32Array(N), vx: new Float32Array(N), vy: new Float32Array(N), id: new Uint32Array(N) }
{
  const src = { x: new Float32Array(N), y: new Float32Array(N), vx: new Float32Array(N), vy: new Float32Array(N), id: new Uint32Array(N) }
  const r = prng(1)
  for (let i = 0; i < N; i++) {
    src.x[i] = r() * 100
    src.y[i] = r() * 100
    src.vx[i] = r() - 0.5
    src.vy[i] = r() - 0.5
    src.id[i] = i
  }
  v.pushMany(src)
  for (const k of Object.keys(mem)) mem[k].set(src[k])
}

// The same function runs over both, so both get the same machine code shape.
function sum(a) {
  let s = 0
  for (let i = 0; i < a.length; i++) s += a[i]
  return s
}
function tick(x, vx, dt) {
  for (let i = 0; i < x.length; i++) x[i] += vx[i] * dt
}
const cols = v.columns
const st = interleaved(REPEAT, {
  scanOurs: { run: () => sum(cols.x) },
  scanMem: { run: () => sum(mem.x) },
  tickOurs: { run: () => tick(cols.x, cols.vx, 1 / 60) },
  tickMem: { run: () => tick(mem.x, mem.vx, 1 / 60) },
})
const [scanOurs, scanMem, tickOurs, tickMem] = [st.scanOurs, st.scanMem, st.tickOurs, st.tickMem]

const idx = new Uint32Array(RANDOM)
{
  const r = prng(2)
  for (let i = 0; i < RANDOM; i++) idx[i] = Math.floor(r() * N)
}
function getOurs() {
  let s = 0
  for (let k = 0; k < RANDOM; k++) {
    const r = v.get(idx[k])
    s += r.x + r.y + r.vx + r.vy + r.id
  }
  return s
}
function getMem() {
  let s = 0
  const { x, y, vx, vy, id } = mem
  for (let k = 0; k < RANDOM; k++) {
    const i = idx[k]
    const r = { x: x[i], y: y[i], vx: vx[i], vy: vy[i], id: id[i] }
    s += r.x + r.y + r.vx + r.vy + r.id
  }
  return s
}
function setOurs() {
  for (let k = 0; k < RANDOM; k++) v.set(idx[k], { x: k, y: k, vx: 0, vy: 0, id: k })
}
function setMem() {
  const { x, y, vx, vy, id } = mem
  for (let k = 0; k < RANDOM; k++) {
    const i = idx[k]
    const r = { x: k, y: k, vx: 0, vy: 0, id: k }
    x[i] = r.x; y[i] = r.y; vx[i] = r.vx; vy[i] = r.vy; id[i] = r.id
  }
}
const R = quick ? 3 : 7
const rt = interleaved(R, { getOurs: { run: getOurs }, getMem: { run: getMem }, setOurs: { run: setOurs }, setMem: { run: setMem } })
const [get, getM, set, setM] = [rt.getOurs, rt.getMem, rt.setOurs, rt.setMem]
v.close({ flush: false })

// Random get on a vec that grew from empty, beside an in-memory struct of arrays that grew the
// same way. Measured last: once a vec of a schema has grown, V8 no longer treats the column
// fields of any vec of that schema as constants (see BENCHMARKS.md, random get), so the
// subjects above would be slowed too.
const grown = MmapVec.open(fresh('grown.mvec'), Row)
const soa = new GrowableSoA()
for (let i = 0; i < N; i++) {
  const r = { x: i, y: i, vx: 1, vy: -1, id: i }
  grown.push(r)
  soa.push(r)
}
// One function per subject, as above: a shared function would share its type feedback, and
// the call site would see two receivers.
function getGrown() {
  let s = 0
  for (let k = 0; k < RANDOM; k++) {
    const r = grown.get(idx[k])
    s += r.x + r.y + r.vx + r.vy + r.id
  }
  return s
}
function getSoA() {
  let s = 0
  for (let k = 0; k < RANDOM; k++) {
    const r = soa.get(idx[k])
    s += r.x + r.y + r.vx + r.vy + r.id
  }
  return s
}
const gt = interleaved(R, { grown: { run: getGrown }, soa: { run: getSoA } })
grown.close({ flush: false })

const rows = `${N.toLocaleString('en')} rows`
report([
  { scenario: 'scan', subject: `mmapvec: sum of x over ${rows}`, value: N / scanOurs, unit: 'rows/s' },
  { scenario: 'scan', subject: 'the same loop over an in-memory Float32Array', value: N / scanMem, unit: 'rows/s', baseline: true, target: 0.95 },
  { scenario: 'tick', subject: `mmapvec: x += vx * dt over ${rows}`, value: N / tickOurs, unit: 'rows/s' },
  { scenario: 'tick', subject: 'the same loop over in-memory Float32Arrays', value: N / tickMem, unit: 'rows/s', baseline: true, target: 0.95 },
  { scenario: 'random get', subject: `mmapvec get(i), ${RANDOM.toLocaleString('en')} random rows`, value: RANDOM / get, unit: 'rows/s' },
  { scenario: 'random get', subject: 'the same row object built from in-memory arrays', value: RANDOM / getM, unit: 'rows/s', baseline: true, target: 0.8 },
  { scenario: 'random set', subject: `mmapvec set(i, row), ${RANDOM.toLocaleString('en')} random rows`, value: RANDOM / set, unit: 'rows/s' },
  { scenario: 'random set', subject: 'the same writes into in-memory arrays', value: RANDOM / setM, unit: 'rows/s', baseline: true, target: 0.8 },
  { scenario: 'random get, grown', subject: `mmapvec get(i) on a vec pushed from empty, ${RANDOM.toLocaleString('en')} random rows`, value: RANDOM / gt.grown, unit: 'rows/s' },
  { scenario: 'random get, grown', subject: 'get(i) of a growable in-memory SoA (arrays in fields, doubled by copy)', value: RANDOM / gt.soa, unit: 'rows/s', baseline: true },
])
