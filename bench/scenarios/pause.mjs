// 7. pause: the longest single push while growing from empty to N rows (max and p99.99),
// beside a growable in-memory struct of arrays that doubles by copying.
import { MmapVec } from 'mmapvec'
import { Row, fresh, gc, quick, report } from '../lib.mjs'

const N = quick ? 10_000_000 : 100_000_000
const SLOW_MS = 0.002 // pushes slower than 2 µs are kept to find the tail

function measure(push) {
  const slow = []
  let max = 0
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const s = performance.now()
    push(i)
    const d = performance.now() - s
    if (d > SLOW_MS) {
      slow.push(d)
      if (d > max) max = d
    }
  }
  const total = performance.now() - t0
  slow.sort((a, b) => b - a)
  const k = Math.floor(N * 0.0001)
  return { max, p9999: slow.length > k ? slow[k] : SLOW_MS, total }
}

const v = MmapVec.open(fresh('pause.mvec'), Row)
const ours = measure((i) => v.push({ x: i, y: i, vx: 1, vy: -1, id: i }))
v.close({ flush: false })
fresh('pause.mvec')
gc()

const g = { len: 0, cap: 1024, cols: [new Float32Array(1024), new Float32Array(1024), new Float32Array(1024), new Float32Array(1024), new Uint32Array(1024)] }
const mem = measure((i) => {
  if (g.len === g.cap) {
    g.cap *= 2
    g.cols = g.cols.map((a) => {
      const b = new a.constructor(g.cap)
      b.set(a)
      return b
    })
  }
  const r = { x: i, y: i, vx: 1, vy: -1, id: i }
  const [x, y, vx, vy, id] = g.cols
  x[g.len] = r.x; y[g.len] = r.y; vx[g.len] = r.vx; vy[g.len] = r.vy; id[g.len] = r.id
  g.len++
})

const rows = `${N.toLocaleString('en')} rows`
report([
  { scenario: 'pause', subject: `mmapvec: longest push while growing to ${rows}`, value: ours.max / 1000, unit: 's', lowerIsBetter: true },
  { scenario: 'pause', subject: 'growable in-memory SoA: longest push (a doubling copy)', value: mem.max / 1000, unit: 's', baseline: true, lowerIsBetter: true },
  { scenario: 'pause', subject: 'mmapvec: p99.99 push', value: ours.p9999 / 1000, unit: 's', lowerIsBetter: true, note: 'timer resolution makes values below 2 µs read as 2 µs' },
  { scenario: 'pause', subject: 'growable in-memory SoA: p99.99 push', value: mem.p9999 / 1000, unit: 's', baseline: true, lowerIsBetter: true },
])
