// Live readers across processes while the writer is killed again and again (issue #14, "Prove
// it"): three reader processes validate continuously (every row below the length they see
// holds what the writer wrote; every snapshot is one batch: one tick, the row count that tick
// left) while a writer process is killed with SIGKILL at random moments, 200 times, and a new
// writer opens beside the running readers after each kill and continues.
//
// A writer killed inside a batch leaves half of it in the files: no file format can undo that
// without a log, and the contract says a reader then takes the header's count. Such a mixed
// state is a crash's, not a torn snapshot: a snapshot that is not one batch counts as torn
// unless it was taken between a kill and the next writer's first batch (which rewrites every row).
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { join } from 'node:path'
import { Schema, badRow, isBug01, snapshotProblem } from './helpers/live-rows.mjs'
import { mode, scratch, startChild } from './helpers/util.mjs'

const soak = Number(process.env.MMAPVEC_SOAK) || 1
const KILLS = 200 * soak
const READERS = 3
const seed = Number(process.env.MMAPVEC_SEED) || 20261201
let prng = seed
const rnd = () => ((prng = (Math.imul(prng, 1664525) + 1013904223) >>> 0) / 2 ** 32)

type Torn = { t0: number; t1: number; p: string }
type Stats = {
  refreshes: number
  changedRefreshes: number
  rowsChecked: number
  invalidRows: number
  snapshots: number
  torn: Torn[]
  tornCount?: number
  errors: string[]
  shortViews: number
  errorCount?: number
  wakes: number
  timeouts: number
  maxLength: number
}

/** A reader process: stdin open (a line tells it to stop), its counts parsed from its last line. */
function startReader(path: string) {
  const r = startChild('live-reader.mjs', [path])
  const stop = async () => {
    r.child.stdin.end('stop\n')
    const e = await r.ended
    const line = r.output().trim().split('\n').pop() ?? ''
    let stats: Stats | undefined
    try {
      stats = JSON.parse(line) as Stats
    } catch {
      stats = undefined
    }
    return { ...e, stats, err: r.errors() }
  }
  return { child: r.child, ready: r.ready, stop }
}

/** Whether [t0, t1] overlaps a span from a kill to the next writer's first batch. */
function afterKill(kills: number[], readies: number[], { t0, t1 }: Torn): boolean {
  return kills.some((k) => {
    if (k > t1) return false
    const next = readies.find((r) => r >= k)
    return next === undefined || next + 5 >= t0
  })
}

test(`${KILLS} writer kills at random moments beside ${READERS} reader processes: no crash, no invalid row, no torn snapshot`, async (t) => {
  t.timeout(180_000)
  const began = Date.now()
  const path = join(scratch(), 'live.mvec')
  MmapVec.open(path, Schema).close()
  const readers = Array.from({ length: READERS }, () => startReader(path))
  await Promise.all(readers.map((r) => r.ready))
  const kills: number[] = []
  const readies: number[] = []
  let beforeReady = 0
  let selfEnded = 0
  for (let g = 1; g <= KILLS; g++) {
    const w = startChild('live-writer.mjs', [path, String(g)])
    w.ready.catch(() => undefined)
    // One kill in five lands at a random moment of the open or of the first batch.
    if (rnd() < 0.2) {
      await new Promise((r) => setTimeout(r, rnd() * 120))
      beforeReady++
    } else {
      await w.ready
      readies.push(Date.now())
      await new Promise((r) => setTimeout(r, rnd() * 60))
    }
    kills.push(Date.now())
    w.child.kill('SIGKILL')
    await w.exited
    if (w.child.signalCode !== 'SIGKILL') {
      selfEnded++
      t.log(`writer ${g} ended by itself (${w.child.exitCode}): ${w.errors()}`)
    }
  }
  // A last writer writes for a while, so that the readers end following a live writer.
  const last = startChild('live-writer.mjs', [path, String(KILLS + 1)])
  await last.ready
  readies.push(Date.now())
  await new Promise((r) => setTimeout(r, 150))
  const ended = await Promise.all(readers.map((r) => r.stop()))
  last.child.kill('SIGKILL')
  await last.exited

  let crashes = 0
  let invalidRows = 0
  let torn = 0
  let excused = 0
  let errors = 0
  let snapshots = 0
  let refreshes = 0
  let rowsChecked = 0
  let wakes = 0
  let bug01 = 0
  let shortViews = 0
  for (const [k, e] of ended.entries()) {
    if (e.signal !== null || e.code !== 0 || e.stats === undefined) {
      crashes++
      t.log(`reader ${k} ended with ${e.signal ?? e.code}: ${e.err}`)
      continue
    }
    const s = e.stats
    invalidRows += s.invalidRows
    errors += s.errorCount ?? 0
    snapshots += s.snapshots
    refreshes += s.refreshes
    rowsChecked += s.rowsChecked
    wakes += s.wakes
    shortViews += s.shortViews
    for (const tn of s.torn) {
      if (afterKill(kills, readies, tn)) excused++
      else if (isBug01(tn.p)) bug01++
      else {
        torn++
        t.log(`reader ${k}: torn snapshot at ${tn.t0 - began} ms: ${tn.p}`)
      }
    }
    // The reader notes its first 20 mixed snapshots only; any beyond those it could not date.
    const unnoted = (s.tornCount ?? 0) - s.torn.length
    if (unnoted > 0) t.log(`reader ${k}: ${unnoted} more mixed snapshots (not dated)`)
    for (const m of s.errors) t.log(`reader ${k}: ${m}`)
  }
  t.log(`mode ${mode}, seed ${seed}: ${kills.length} kills (${beforeReady} before the first batch), ${READERS} readers: ${refreshes} refreshes, ${rowsChecked} rows checked in live views, ${snapshots} snapshots checked, ${wakes} changed() wake-ups`)
  // A mid-batch row count in a snapshot and views left shorter than the length by a refresh
  // after a snapshot are counted by name: these suites found both (fixed since; see the
  // regression tests at the end of live.spec.mts), and each fails this test like any other torn snapshot or wrong row.
  t.log(`crashes ${crashes}, invalid rows ${invalidRows}, torn snapshots ${torn} (+ ${bug01} with a mid-batch row count), refreshes whose views were shorter than the length ${shortViews}, reader errors ${errors}; ${excused} mixed snapshots taken between a kill and the next writer's first batch (a killed batch's rows, not counted as torn); ${Date.now() - began} ms`)
  t.is(kills.length, KILLS)
  t.is(selfEnded, 0)
  t.is(crashes, 0)
  t.is(invalidRows, 0)
  t.is(torn, 0)
  t.is(bug01, 0)
  t.is(shortViews, 0)
  t.is(errors, 0)
  // The readers did follow the writers (not one snapshot of an empty vec after another).
  t.true(snapshots > KILLS, `${snapshots} snapshots`)
  t.true(ended.every((e) => (e.stats?.maxLength ?? 0) > 0))

  // And after it all the vec is sound: every row what some writer wrote, one tick throughout.
  using v = MmapVec.open(path, Schema, { readOnly: true })
  t.is(badRow(v.columns, v.length), -1)
  t.is(snapshotProblem({ length: v.length, columns: v.columns }), undefined)
})
