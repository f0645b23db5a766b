// Shared pieces of the benchmark scenarios. Each scenario runs in a process of its own (so
// that one's heap, JIT state and page cache use do not colour the next) and prints one JSON
// line: { rows: [{ scenario, subject, value, unit, baseline?, note? }] }.
import { mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const quick = process.argv.includes('--quick')
export const dataDir = process.env.MMAPVEC_BENCH_DIR ?? join(tmpdir(), 'mmapvec-bench')
mkdirSync(dataDir, { recursive: true })

/** A path in the data directory, emptied first. */
export function fresh(name) {
  const p = join(dataDir, name)
  rmSync(p, { recursive: true, force: true })
  return p
}

/** The benchmark row: { x, y, vx, vy: f32, id: u32 }, 20 bytes. */
export const Row = { x: 'f32', y: 'f32', vx: 'f32', vy: 'f32', id: 'u32' }
export const ROW_BYTES = 20

/** Runs `fn` `times` times (after one warm-up run unless told otherwise) and returns the median seconds. */
export function timeMedian(times, fn, { warmup = true } = {}) {
  if (warmup) fn()
  const t = []
  for (let i = 0; i < times; i++) {
    const s = process.hrtime.bigint()
    fn()
    t.push(Number(process.hrtime.bigint() - s) / 1e9)
  }
  t.sort((a, b) => a - b)
  return t[t.length >> 1]
}

/**
 * Times several subjects side by side: each repetition runs every subject once, in turn, so
 * that a noisy neighbour slows all of them alike. `setup` and `teardown` run outside the timing.
 * Returns the median seconds of each subject.
 */
export function interleaved(reps, subjects, { warmup = true } = {}) {
  const names = Object.keys(subjects)
  const times = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = warmup ? -1 : 0; r < reps; r++) {
    for (const n of names) {
      const { setup, run, teardown } = subjects[n]
      const arg = setup?.()
      gc()
      const s = process.hrtime.bigint()
      run(arg)
      const t = Number(process.hrtime.bigint() - s) / 1e9
      teardown?.(arg)
      if (r >= 0) times[n].push(t)
    }
  }
  return Object.fromEntries(names.map((n) => [n, times[n].sort((a, b) => a - b)[times[n].length >> 1]]))
}

export async function timeMedianAsync(times, fn) {
  const t = []
  for (let i = 0; i < times; i++) {
    const s = process.hrtime.bigint()
    await fn()
    t.push(Number(process.hrtime.bigint() - s) / 1e9)
  }
  t.sort((a, b) => a - b)
  return t[t.length >> 1]
}

/** A deterministic PRNG, so every run reads the same rows. */
export function prng(seed = 12345) {
  let s = seed >>> 0
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32)
}

/**
 * The in-memory baseline for a vec that grows: a struct of TypedArrays that doubles by copying,
 * its arrays held in fields that growth replaces (as a vec's columns are).
 */
export class GrowableSoA {
  constructor() {
    this.len = 0
    this.cap = 1024
    this.alloc(this.cap)
  }
  alloc(cap) {
    const grow = (Ctor, old) => {
      const a = new Ctor(cap)
      if (old) a.set(old.subarray(0, this.len))
      return a
    }
    this.x = grow(Float32Array, this.x); this.y = grow(Float32Array, this.y)
    this.vx = grow(Float32Array, this.vx); this.vy = grow(Float32Array, this.vy); this.id = grow(Uint32Array, this.id)
    this.cap = cap
  }
  push(r) {
    const i = this.len
    if (i === this.cap) this.alloc(this.cap * 2)
    this.x[i] = r.x; this.y[i] = r.y; this.vx[i] = r.vx; this.vy[i] = r.vy; this.id[i] = r.id
    return (this.len = i + 1)
  }
  get(i) {
    if (!(i >= 0 && i < this.len && Number.isInteger(i))) throw new RangeError(`index ${i}`)
    return { x: this.x[i], y: this.y[i], vx: this.vx[i], vy: this.vy[i], id: this.id[i] }
  }
}

export function report(rows) {
  console.log(JSON.stringify({ rows }))
}

export function gc() {
  if (globalThis.gc) globalThis.gc()
}
