// Readers beside a writer that grows past its reservation, shrinks and changes its schema, 1,000
// times (issue #14, "Prove it"): two reader processes hold views across their refreshes and
// check every row below their length in every field, and must never crash (no signal: a view of
// a file cut short under it would be SIGBUS), never read a wrong row, and follow the schema at
// refresh (their schema after a last refresh is the writer's).
//
// Rows are a function of their index: id = i, x = xOf(i), an added field a<c> (renamed: b<c>)
// holds c * 1e5 + i once the writer filled it, 0 before (what addColumn gives).
import test from 'ava'
import { MmapVec, type Schema } from 'mmapvec'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { xOf } from './helpers/live-rows.mjs'
import { fixture, mode, scratch } from './helpers/util.mjs'

const soak = Number(process.env.MMAPVEC_SOAK) || 1
const CYCLES = 1000 * soak
const READERS = 2
const seed = Number(process.env.MMAPVEC_SEED) || 20261202
let prng = seed
const rnd = () => ((prng = (Math.imul(prng, 1664525) + 1013904223) >>> 0) / 2 ** 32)

type Stats = {
  refreshes: number
  schemaChangesSeen: number
  rowsChecked: number
  invalidRows: number
  shortViews: number
  oldViewsRead: number
  snapshots: number
  errors: string[]
  errorCount: number
  maxLength: number
  finalSchema: string[]
  finalLength: number
}

function startReader(path: string) {
  const child = spawn(process.execPath, [fixture('live-churn-reader.mjs'), path], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (out.startsWith('ready\n')) resolve()
    })
    void exited.then((e) => reject(new Error(`reader ended (${e.code ?? e.signal}) before ready: ${err}`)))
  })
  const stop = async () => {
    child.stdin.end('stop\n')
    const e = await exited
    let stats: Stats | undefined
    try {
      stats = JSON.parse(out.trim().split('\n').pop() ?? '') as Stats
    } catch {
      stats = undefined
    }
    return { ...e, stats, err }
  }
  return { ready, stop }
}

/** Columns for rows [start, start + k) of the fields in `names`. */
function rowsFor(names: string[], start: number, k: number): Record<string, ArrayLike<number>> {
  const out: Record<string, Float64Array | Uint32Array> = {}
  for (const name of names) {
    const a = name === 'id' ? new Uint32Array(k) : new Float64Array(k)
    const c = /^[ab](\d+)$/.exec(name)
    for (let j = 0; j < k; j++) {
      const i = start + j
      a[j] = name === 'id' ? i : name === 'x' ? xOf(i) : Number(c?.[1]) * 1e5 + i
    }
    out[name] = a
  }
  return out
}

test(`readers hold views while the writer grows past its reservation, shrinks and changes its schema, ${CYCLES} times`, async (t) => {
  t.timeout(240_000)
  const began = Date.now()
  const path = join(scratch(), 'churn.mvec')
  // 4 KiB per column: past 512 rows of x the column moves to a new reservation.
  const opts = { reservation: 4096, ...(mode === 'buffered' ? { autoFlushMs: 5 } : {}) }
  let w = MmapVec.open(path, { id: 'u32', x: 'f64' } as Schema, opts)
  w.pushMany(rowsFor(['id', 'x'], 0, 100) as never)
  w.flushSync()
  const readers = Array.from({ length: READERS }, () => startReader(path))
  await Promise.all(readers.map((r) => r.ready))
  const counts = { grows: 0, movedPastReservation: 0, shrinks: 0, added: 0, renamed: 0, dropped: 0, filled: 0, reopened: 0 }
  let next = 0
  for (let c = 0; c < CYCLES; c++) {
    const names = () => Object.keys(w.schema)
    const extras = () => names().filter((n) => n !== 'id' && n !== 'x')
    // Grow, often past the reservation (x's 4 KiB hold 512 rows), in one batch.
    const target = 100 + Math.floor(rnd() * 3000)
    const xBefore = (w.columns as Record<string, Float64Array>).x
    if (target > w.length) {
      w.batch(() => {
        w.pushMany(rowsFor(names(), w.length, target - w.length) as never)
      })
      counts.grows++
    }
    // And now and then the capacity grows by 4 KiB of x or more: past x's reservation each time.
    if (rnd() < 0.3) w.reserve(w.capacity - w.length + 512 + Math.floor(rnd() * 512))
    // Past its reservation, a column moves, and the views taken before it become empty.
    if (xBefore.length === 0 && w.capacity > 512) counts.movedPastReservation++
    // A schema change: add a field (and fill it in a batch), rename one, or drop one.
    const k = rnd()
    const ex = extras()
    if (ex.length < 3 && (k < 0.5 || ex.length === 0)) {
      const name = `a${next++}`
      w = w.addColumn(name, 'f64')
      counts.added++
      if (rnd() < 0.8) {
        const fill = rowsFor([name], 0, w.length)[name]
        w.batch(() => {
          const col = (w.columns as Record<string, Float64Array>)[name]
          col.set(fill)
        })
        counts.filled++
      }
    } else if (k < 0.75) {
      const from = ex[Math.floor(rnd() * ex.length)]
      if (from.startsWith('a')) {
        w = w.renameColumn(from, `b${from.slice(1)}`)
        counts.renamed++
      } else {
        w = w.dropColumn(from)
        counts.dropped++
      }
    } else {
      w = w.dropColumn(ex[Math.floor(rnd() * ex.length)])
      counts.dropped++
    }
    // Shrink: truncate and give back the space (no file is cut while readers are open).
    if (rnd() < 0.5) {
      w.truncate(1 + Math.floor(rnd() * 200))
      w.shrinkToFit()
      counts.shrinks++
    }
    if (rnd() < 0.1) await w.flush()
    // Now and then the writer closes and a new one opens beside the readers.
    if (rnd() < 0.02) {
      w.close()
      w = MmapVec.open(path, undefined, opts)
      counts.reopened++
    }
    await new Promise((r) => setImmediate(r))
  }
  w.flushSync()
  const finalSchema = Object.keys(w.schema).sort()
  const finalLength = w.length
  const ended = await Promise.all(readers.map((r) => r.stop()))
  w.close()
  let crashes = 0
  for (const [k, e] of ended.entries()) {
    if (e.signal !== null || e.code !== 0 || e.stats === undefined) {
      crashes++
      t.log(`reader ${k} ended with ${e.signal ?? e.code}: ${e.err}`)
    }
    for (const m of e.stats?.errors ?? []) t.log(`reader ${k}: ${m}`)
  }
  const stats = ended.flatMap((e) => (e.stats === undefined ? [] : [e.stats]))
  const sum = (f: (s: Stats) => number) => stats.reduce((a, s) => a + f(s), 0)
  t.log(`mode ${mode}, seed ${seed}: ${CYCLES} cycles: ${JSON.stringify(counts)}`)
  t.log(`${READERS} readers: ${sum((s) => s.refreshes)} refreshes, ${sum((s) => s.schemaChangesSeen)} schema changes seen, ${sum((s) => s.rowsChecked)} rows checked, ${sum((s) => s.snapshots)} snapshots, ${sum((s) => s.oldViewsRead)} old views read through; crashes ${crashes}, invalid rows ${sum((s) => s.invalidRows)}, views shorter than the length ${sum((s) => s.shortViews)}, errors ${sum((s) => s.errorCount)}; ${Date.now() - began} ms`)
  t.is(crashes, 0)
  t.is(sum((s) => s.invalidRows), 0)
  t.is(sum((s) => s.errorCount), 0)
  t.is(sum((s) => s.shortViews), 0)
  t.true(counts.movedPastReservation > 0, 'the writer grew past its reservation')
  t.true(counts.added > 0 && counts.renamed > 0 && counts.dropped > 0)
  for (const s of stats) {
    t.true(s.schemaChangesSeen > 0, 'each reader followed schema changes at refresh')
    t.deepEqual(s.finalSchema, finalSchema)
    t.is(s.finalLength, finalLength)
  }
})
