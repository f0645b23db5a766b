// 1. push: N rows one at a time, starting empty (growth included), beside preallocated
// in-memory TypedArrays, a growable in-memory struct of arrays that doubles by copying, and
// lmdb-js and better-sqlite3 storing the same rows in one transaction.
// 2. pushMany from columns: the bulk path, in bytes of row data per second.
import Database from 'better-sqlite3'
import { open as lmdbOpen } from 'lmdb'
import { MmapVec } from 'mmapvec'
import { GrowableSoA, ROW_BYTES, Row, fresh, interleaved, quick, report, timeMedian } from '../lib.mjs'

const N = quick ? 2_000_000 : 10_000_000
const PEER_N = quick ? 100_000 : 1_000_000
const REPEAT = quick ? 3 : 5

let round = 0
function pushOurs(path) {
  const v = MmapVec.open(path, Row)
  for (let i = 0; i < N; i++) v.push({ x: i, y: i, vx: 1, vy: -1, id: i })
  v.close({ flush: false })
}

function pushPreallocated() {
  const x = new Float32Array(N), y = new Float32Array(N), vx = new Float32Array(N), vy = new Float32Array(N), id = new Uint32Array(N)
  let len = 0
  for (let i = 0; i < N; i++) {
    const r = { x: i, y: i, vx: 1, vy: -1, id: i }
    x[len] = r.x; y[len] = r.y; vx[len] = r.vx; vy[len] = r.vy; id[len] = r.id
    len++
  }
  return len + x[N - 1] + id[N - 1]
}

function pushGrowable() {
  const g = new GrowableSoA()
  for (let i = 0; i < N; i++) g.push({ x: i, y: i, vx: 1, vy: -1, id: i })
  return g.len
}

function pushLmdb() {
  const db = lmdbOpen({ path: fresh('push.lmdb') })
  db.transactionSync(() => {
    for (let i = 0; i < PEER_N; i++) db.putSync(i, { x: i, y: i, vx: 1, vy: -1, id: i })
  })
  db.close()
}

function pushSqlite() {
  const db = new Database(`${fresh('push.sqlite')}`)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE r (id INTEGER PRIMARY KEY, x REAL, y REAL, vx REAL, vy REAL)')
  const ins = db.prepare('INSERT INTO r (id, x, y, vx, vy) VALUES (?, ?, ?, ?, ?)')
  db.transaction(() => {
    for (let i = 0; i < PEER_N; i++) {
      const r = { x: i, y: i, vx: 1, vy: -1, id: i }
      ins.run(r.id, r.x, r.y, r.vx, r.vy)
    }
  })()
  db.close()
}

const rate = (n, s) => n / s
// Each subject in turn, so that a noisy neighbour slows all of them alike; deleting the
// previous run's files happens outside the timing.
const t = interleaved(REPEAT, {
  ours: { setup: () => fresh(`push-${round++}.mvec`), run: pushOurs, teardown: (p) => fresh(p.split('/').pop()) },
  pre: { run: pushPreallocated },
  grow: { run: pushGrowable },
})
const ours = rate(N, t.ours)
const pre = rate(N, t.pre)
const grow = rate(N, t.grow)
const lmdb = rate(PEER_N, timeMedian(quick ? 1 : 3, pushLmdb, { warmup: false }))
const sqlite = rate(PEER_N, timeMedian(quick ? 1 : 3, pushSqlite, { warmup: false }))

// pushMany: 64 Ki rows per call from ready-made columns.
const CHUNK = 65_536
const cols = {
  x: new Float32Array(CHUNK).map((_, i) => i), y: new Float32Array(CHUNK), vx: new Float32Array(CHUNK).fill(1),
  vy: new Float32Array(CHUNK).fill(-1), id: Uint32Array.from({ length: CHUNK }, (_, i) => i),
}
const CALLS = Math.ceil(N / CHUNK)
const bulkT = interleaved(REPEAT, {
  ours: {
    setup: () => fresh(`bulk-${round++}.mvec`),
    run: (path) => {
      const v = MmapVec.open(path, Row)
      for (let c = 0; c < CALLS; c++) v.pushMany(cols)
      v.close({ flush: false })
    },
    teardown: (p) => fresh(p.split('/').pop()),
  },
  pre: {
    run: () => {
      const n = CALLS * CHUNK
      const arrs = [new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n), new Uint32Array(n)]
      const src = [cols.x, cols.y, cols.vx, cols.vy, cols.id]
      for (let c = 0; c < CALLS; c++) for (let k = 0; k < 5; k++) arrs[k].set(src[k], c * CHUNK)
    },
  },
})
const bulk = bulkT.ours
const bulkPre = bulkT.pre

const rows = `${N.toLocaleString('en')} rows`
report([
  { scenario: 'push', subject: `mmapvec push, ${rows} from empty`, value: ours, unit: 'rows/s' },
  { scenario: 'push', subject: 'preallocated in-memory TypedArrays', value: pre, unit: 'rows/s', baseline: true, target: 0.8 },
  { scenario: 'push', subject: 'growable in-memory SoA (doubling by copy)', value: grow, unit: 'rows/s', baseline: true, target: 1 },
  { scenario: 'push', subject: `lmdb-js putSync, one transaction (${PEER_N.toLocaleString('en')} rows)`, value: lmdb, unit: 'rows/s', baseline: true, target: 30 },
  { scenario: 'push', subject: `better-sqlite3 insert, one transaction (${PEER_N.toLocaleString('en')} rows)`, value: sqlite, unit: 'rows/s', baseline: true, target: 30 },
  { scenario: 'pushMany', subject: `mmapvec pushMany from columns (${CHUNK} rows a call)`, value: (CALLS * CHUNK * ROW_BYTES) / bulk, unit: 'B/s', absoluteTarget: 1e9 },
  { scenario: 'pushMany', subject: 'TypedArray.set into preallocated arrays', value: (CALLS * CHUNK * ROW_BYTES) / bulkPre, unit: 'B/s', baseline: true },
])
