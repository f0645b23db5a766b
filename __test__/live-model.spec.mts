// Model-based test of live readers (issue #14): random sequences of commands run against one
// writer and two readers of one vec (handles in this process) and against a model, a plain
// array of rows with its published copy. The writer publishes at the end of a batch, at a
// flush, at a length decrease, at a schema change, and (a timer) after pushes outside batches;
// in buffered mode only at write-backs (flush, a schema change, shrinkToFit). After each reader refresh the
// reader's length, schema and rows must be the model's published state; before it, the length
// and schema it had; and every snapshot must be the published state (the last unit boundary:
// one process, so no unit is under way while a reader looks).
//
// MMAPVEC_SEED=n runs with another seed or replays a failure; MMAPVEC_SOAK=k runs k times as many.
import test from 'ava'
import fc from 'fast-check'
import { MmapVec, type Schema } from 'mmapvec'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { mode, scratch } from './helpers/util.mjs'

const soak = Number(process.env.MMAPVEC_SOAK) || 1
const seed = Number(process.env.MMAPVEC_SEED) || 20261203
const buffered = mode === 'buffered'
const dir = scratch()
let n = 0
const fresh = () => join(dir, `m${n++}.mvec`)

type Row = Record<string, number>
type Field = { name: string; type: 'u32' | 'f64' | 'i32' }
interface State {
  fields: Field[]
  rows: Row[]
  /** Schema changes so far. */
  gen: number
}
const copy = (s: State): State => ({ fields: s.fields.map((f) => ({ ...f })), rows: s.rows.map((r) => ({ ...r })), gen: s.gen })

// ---- commands ----

type Inner =
  | { op: 'push' }
  | { op: 'pushMany'; k: number }
  | { op: 'set'; at: number; field: number }
  | { op: 'pop' }
  | { op: 'truncate'; at: number }
type Cmd =
  | Inner
  | { op: 'batch'; body: Inner[]; throws: boolean }
  | { op: 'reserve'; k: number }
  | { op: 'shrinkToFit' }
  | { op: 'addColumn' }
  | { op: 'dropColumn'; field: number }
  | { op: 'renameColumn'; field: number }
  | { op: 'flush' }
  | { op: 'refresh'; reader: number }
  | { op: 'snapshot'; reader: number; mask: number }

const inner: fc.Arbitrary<Inner> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ op: 'push' as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('pushMany' as const), k: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), field: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'pop' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
)
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: inner },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('batch' as const), body: fc.array(inner, { maxLength: 6 }), throws: fc.integer({ min: 0, max: 5 }).map((k) => k === 0) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reserve' as const), k: fc.integer({ min: 0, max: 5000 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'shrinkToFit' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'addColumn' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dropColumn' as const), field: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('renameColumn' as const), field: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'flush' as const }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('refresh' as const), reader: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('snapshot' as const), reader: fc.integer({ min: 0, max: 1 }), mask: fc.nat() }) },
)

// ---- the run ----

const figures = { sequences: 0, commands: 0, refreshes: 0, rowsCompared: 0, snapshots: 0, schemaChangesFollowed: 0 }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function run(cmds: Cmd[]): Promise<void> {
  figures.sequences++
  const path = fresh()
  const start: Field[] = [
    { name: 'a', type: 'u32' },
    { name: 'b', type: 'f64' },
  ]
  let w = MmapVec.open(path, { a: 'u32', b: 'f64' } as Schema, { reservation: 4096 })
  const readers = [0, 1].map(() => MmapVec.open(path, undefined, { readOnly: true }))
  const cur: State = { fields: start, rows: [], gen: 0 }
  let pub = copy(cur)
  // What each reader took at its last refresh.
  const seen = readers.map(() => copy(pub))
  let value = 0
  let added = 0
  const rowOf = (): Row => Object.fromEntries(cur.fields.map((f) => [f.name, ++value % 100_000]))
  const publishAll = () => {
    if (!buffered) pub = copy(cur)
  }
  const writeBack = () => {
    pub = copy(cur)
  }
  const doInner = (c: Inner) => {
    switch (c.op) {
      case 'push': {
        const r = rowOf()
        w.push(r)
        cur.rows.push(r)
        break
      }
      case 'pushMany': {
        const rs = Array.from({ length: c.k }, rowOf)
        w.pushMany(rs as never)
        cur.rows.push(...rs)
        break
      }
      case 'set': {
        if (cur.rows.length === 0) break
        const i = c.at % cur.rows.length
        const f = cur.fields[c.field % cur.fields.length].name
        const v = ++value % 100_000
        w.set(i, { [f]: v })
        cur.rows[i][f] = v
        break
      }
      case 'pop':
        w.pop()
        cur.rows.pop()
        break
      case 'truncate': {
        const k = c.at % (cur.rows.length + 1)
        w.truncate(k)
        cur.rows.length = k
        break
      }
    }
  }
  try {
    for (const c of cmds) {
      figures.commands++
      switch (c.op) {
        case 'push':
        case 'pushMany':
          doInner(c)
          // Pushes outside a batch are published by a timer of about a millisecond, set
          // before this one: once this one fires, it has.
          await sleep(3)
          publishAll()
          break
        case 'set':
        case 'pop':
        case 'truncate':
          doInner(c)
          publishAll()
          break
        case 'batch': {
          const boom = new Error('boom')
          try {
            w.batch(() => {
              for (const b of c.body) doInner(b)
              if (c.throws) throw boom
            })
          } catch (e) {
            assert.equal(e, boom)
          }
          publishAll()
          break
        }
        case 'reserve':
          w.reserve(c.k)
          break
        case 'shrinkToFit': {
          const cap = w.capacity
          w.shrinkToFit()
          // Readers are open: no file is cut, the capacity stays.
          assert.equal(w.capacity, cap, 'shrinkToFit cut beside readers')
          // Buffered: a shrink writes the rows back first (found by this model; not documented
          // among the write-backs, but nothing a reader sees is wrong: a state between units).
          writeBack()
          break
        }
        case 'addColumn': {
          if (cur.fields.length >= 5) break
          const name = `c${added++}`
          w = w.addColumn(name, 'i32')
          cur.fields.push({ name, type: 'i32' })
          cur.gen++
          for (const r of cur.rows) r[name] = 0
          writeBack()
          break
        }
        case 'dropColumn': {
          if (cur.fields.length <= 1) break
          const f = cur.fields[c.field % cur.fields.length]
          w = w.dropColumn(f.name)
          cur.fields = cur.fields.filter((g) => g !== f)
          cur.gen++
          for (const r of cur.rows) delete r[f.name]
          writeBack()
          break
        }
        case 'renameColumn': {
          const f = cur.fields[c.field % cur.fields.length]
          const to = `r${added++}`
          w = w.renameColumn(f.name, to)
          for (const r of cur.rows) {
            r[to] = r[f.name]
            delete r[f.name]
          }
          f.name = to
          cur.gen++
          writeBack()
          break
        }
        case 'flush':
          await w.flush()
          writeBack()
          break
        case 'refresh': {
          const r = readers[c.reader]
          const before = seen[c.reader]
          // Until refresh, a reader keeps its length and schema.
          assert.equal(r.length, before.rows.length, 'a reader\'s length moved before refresh')
          assert.deepEqual(Object.keys(r.schema).sort(), before.fields.map((f) => f.name).sort(), 'a reader\'s schema moved before refresh')
          const changed = r.refresh()
          figures.refreshes++
          const schemaMoved = before.gen !== pub.gen
          if (schemaMoved) figures.schemaChangesFollowed++
          if (before.rows.length !== pub.rows.length || schemaMoved) assert.equal(changed, true, 'refresh said nothing changed')
          assert.equal(r.length, pub.rows.length)
          assert.deepEqual(Object.keys(r.schema).sort(), pub.fields.map((f) => f.name).sort())
          const rowsMoved = JSON.stringify(before.rows) !== JSON.stringify(pub.rows)
          if (process.env.MMAPVEC_LIVE_DEBUG) console.log('refresh', c.reader, changed, JSON.stringify(before.rows), JSON.stringify(pub.rows), before.fields.map((f) => f.name).join())
          // A publish that moved only rows in place is a change too (buffered readers copy again).
          if (rowsMoved) assert.equal(changed, true, 'refresh said nothing changed though rows did')
          compareRows(r, pub)
          seen[c.reader] = copy(pub)
          break
        }
        case 'snapshot': {
          const r = readers[c.reader]
          const names = pub.fields.map((f) => f.name).filter((_, k) => (c.mask >> k) & 1)
          const s = c.mask % 3 === 0 ? r.snapshot() : r.snapshot(names)
          figures.snapshots++
          const want = c.mask % 3 === 0 ? pub.fields.map((f) => f.name) : names
          assert.equal(s.length, pub.rows.length, 'a snapshot\'s length is not the published one')
          assert.deepEqual(Object.keys(s.columns).sort(), [...want].sort())
          for (const f of want) {
            const col = (s.columns as Record<string, ArrayLike<number>>)[f]
            assert.equal(col.length, pub.rows.length)
            for (let i = 0; i < pub.rows.length; i++) assert.equal(col[i], pub.rows[i][f], `snapshot row ${i} field ${f}`)
          }
          // A snapshot after a schema change refreshes the reader first.
          if (seen[c.reader].gen !== pub.gen) seen[c.reader] = copy(pub)
          break
        }
      }
    }
  } finally {
    for (const r of readers) r.close()
    w.close()
  }
}

/** Every row of `s` in reader `r`'s columns, which must cover them all. */
function compareRows(r: MmapVec<Schema>, s: State): void {
  const cols = r.columns as Record<string, ArrayLike<number>>
  for (const f of s.fields) {
    assert.equal(cols[f.name].length, s.rows.length, `reader's views of ${f.name} cover the length`)
    for (let i = 0; i < s.rows.length; i++) assert.equal(cols[f.name][i], s.rows[i][f.name], `reader row ${i} field ${f.name}`)
  }
  figures.rowsCompared += s.rows.length
}

test('one writer and two readers agree with the model: refresh gives the published state, a snapshot is a unit boundary', async (t) => {
  t.timeout(240_000)
  const began = Date.now()
  // MMAPVEC_LIVE_CMDS='[...]' replays one counterexample, as fast-check printed it.
  if (process.env.MMAPVEC_LIVE_CMDS !== undefined) {
    await run(JSON.parse(process.env.MMAPVEC_LIVE_CMDS) as Cmd[])
    t.pass()
    return
  }
  await fc.assert(
    fc.asyncProperty(fc.array(cmd, { minLength: 10, maxLength: 40, size: 'max' }), async (cmds) => run(cmds)),
    { seed, numRuns: 150 * soak, endOnFailure: process.env.MMAPVEC_NO_SHRINK === '1', includeErrorInReport: true },
  )
  t.log(`mode ${mode}, seed ${seed}: ${figures.sequences} sequences, ${figures.commands} commands, ${figures.refreshes} refreshes checked, ${figures.rowsCompared} reader rows compared, ${figures.snapshots} snapshots checked, ${figures.schemaChangesFollowed} schema changes followed; ${Date.now() - began} ms`)
  t.true(figures.refreshes > 0 && figures.snapshots > 0 && figures.schemaChangesFollowed > 0)
})
