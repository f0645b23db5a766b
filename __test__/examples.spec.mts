// The examples, run briefly so that they cannot rot: the game server (ticks, /stats over
// loopback, resume after SIGINT, SIGKILL and SIGTERM, and an exact resume), the particles demo
// (twice: the second run continues the first), and the Electron example's vec module in
// buffered mode, the mode Electron's V8 memory cage makes mmapvec choose. Every wait is bounded.
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { spawn } from 'node:child_process'
import { mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
// @ts-expect-error a plain JavaScript module without types: the example's own world code
import * as worldCode from '../examples/game-server/world.mjs'
import { mode, runChild, scratch } from './helpers/util.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const example = (path: string) => join(root, 'examples', path)
const dir = scratch()
const WAIT_MS = 30_000 // a bound for each wait, far above what any takes on an idle machine

type Fingerprint = { tick: number; entities: number; hash: string }
/** What the test uses of the example's world.mjs, typed here since the example is JavaScript. */
type World = {
  state: MmapVec<{ tick: 'u64'; rng: 'u32'; nextId: 'u32'; target: 'u32'; deaths: 'u64' }>
  entities: MmapVec<{ pos: ['f32', 2]; vel: ['f32', 2]; health: 'f32'; id: 'u32' }>
}
const { closeWorld, fingerprint, openWorld } = worldCode as {
  openWorld: (dir: string, options?: { readOnly?: boolean }) => World
  closeWorld: (world: World) => void
  fingerprint: (world: World) => Fingerprint
}
type Stats = { tick: number; entities: number; tickMs: { last: number; avg: number; max: number }; ticksRun: number; resumedFrom: number; mode: string }

/** Starts the game server on `world` with an ephemeral port and waits until it listens. */
async function startServer(world: string, args: string[] = []) {
  const child = spawn(process.execPath, [example('game-server/server.mjs'), '--world', world, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const bounded = <T,>(p: Promise<T>, what: string) =>
    Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} took over ${WAIT_MS} ms: ${out}${err}`)), WAIT_MS).unref())])
  const port = await bounded(
    new Promise<number>((resolve, reject) => {
      child.stdout.on('data', () => {
        const m = /^listening http:\/\/127\.0\.0\.1:(\d+)\/stats$/m.exec(out)
        if (m) resolve(Number(m[1]))
      })
      child.on('exit', (code, signal) => reject(new Error(`the server exited (${code ?? signal}) before listening: ${out}${err}`)))
    }),
    'starting the server',
  )
  const line = (kind: 'start' | 'stop'): Fingerprint => {
    const m = new RegExp(`^${kind} tick=(\\d+) entities=(\\d+) fingerprint=([0-9a-f]+)$`, 'm').exec(out)
    if (!m) throw new Error(`no '${kind}' line in: ${out}${err}`)
    return { tick: Number(m[1]), entities: Number(m[2]), hash: m[3] }
  }
  const stats = async (): Promise<Stats> => {
    const r = await fetch(`http://127.0.0.1:${port}/stats`)
    if (!r.ok) throw new Error(`GET /stats: ${r.status}`)
    return (await r.json()) as Stats
  }
  /** Polls /stats until the world reached tick `tick`. */
  const statsAt = (tick: number) =>
    bounded(
      (async () => {
        for (;;) {
          const s = await stats()
          if (s.tick >= tick) return s
          await new Promise((r) => setTimeout(r, 20))
        }
      })(),
      `reaching tick ${tick}`,
    )
  const stop = (signal: NodeJS.Signals) => {
    child.kill(signal)
    return bounded(exited, `stopping with ${signal}`)
  }
  return { child, port, output: () => out, line, stats, statsAt, stop, exited: () => bounded(exited, 'running') }
}

function openForCheck(world: string) {
  const w = openWorld(world, { readOnly: true })
  try {
    return { fp: fingerprint(w), state: w.state.get(0), ids: Uint32Array.from(w.entities.columns.id), length: w.entities.length }
  } finally {
    closeWorld(w)
  }
}

test('the game server ticks, reports /stats, and resumes after SIGINT, SIGKILL and SIGTERM', async (t) => {
  const world = join(dir, 'game')

  // A new world of 100,000 entities.
  const first = await startServer(world)
  t.like(first.line('start'), { tick: 0, entities: 100_000 })
  const a = await first.statsAt(10)
  t.is(a.entities, 100_000)
  t.is(a.mode, mode)
  t.is(a.resumedFrom, 0)
  t.true(a.tickMs.last > 0 && a.tickMs.max >= a.tickMs.avg, JSON.stringify(a.tickMs))
  const b = await first.statsAt(a.tick + 5)
  t.true(b.tick > a.tick && b.ticksRun > a.ticksRun, 'the tick advances')
  t.is(b.entities, 100_000, 'the dead are replaced within their tick')

  // SIGINT: a clean stop that flushes; the vecs hold exactly what the server last reported.
  t.deepEqual(await first.stop('SIGINT'), { code: 0, signal: null })
  const stopped = first.line('stop')
  t.true(stopped.tick >= b.tick)
  t.deepEqual(openForCheck(world).fp, stopped, 'the world on disk is the one the server stopped with')

  // Restart: it resumes at that tick with every entity where it was, and goes on.
  const second = await startServer(world)
  t.regex(second.output(), new RegExp(`^world .*: resumed, 100,000 entities, ${mode} mode$`, 'm'))
  t.deepEqual(second.line('start'), stopped)
  const c = await second.statsAt(stopped.tick + 10)
  t.is(c.resumedFrom, stopped.tick)
  t.is(c.entities, 100_000)

  if (mode === 'buffered') {
    // Buffered mode (Electron) keeps rows in memory between flushes, so a kill loses up to one
    // autoFlush interval and the two vecs may be flushed at different ticks: no kill here.
    t.deepEqual(await second.stop('SIGINT'), { code: 0, signal: null })
    const third = await startServer(world)
    t.deepEqual(third.line('start'), second.line('stop'))
    t.deepEqual(await third.stop('SIGTERM'), { code: 0, signal: null })
    t.deepEqual(openForCheck(world).fp, third.line('stop'))
    return
  }

  // SIGKILL: no close, no last flush. The page cache keeps every write, so the world opens at
  // once (the kernel released the lock) with at least the tick /stats last reported.
  const seen = await second.stats()
  t.deepEqual(await second.stop('SIGKILL'), { code: null, signal: 'SIGKILL' })
  const killed = openForCheck(world)
  t.true(killed.fp.tick >= seen.tick, `tick ${killed.fp.tick} on disk, ${seen.tick} reported before the kill`)
  t.true(killed.length <= 100_000 && killed.length > 99_000, `${killed.length} entities`)
  // No id twice (the last row aside: a kill inside swapRemove may leave it copied, not yet dropped).
  t.is(new Set(killed.ids.subarray(0, -1)).size, killed.length - 1, 'no id twice')
  t.true(killed.ids.every((id) => id < killed.state.nextId), 'every id was handed out')

  // And it resumes from there; SIGTERM stops it cleanly too.
  const third = await startServer(world)
  t.deepEqual(third.line('start').tick, killed.fp.tick)
  const d = await third.statsAt(killed.fp.tick + 5)
  t.is(d.entities, 100_000, 'the population is topped up after a kill mid-tick')
  t.deepEqual(await third.stop('SIGTERM'), { code: 0, signal: null })
  t.deepEqual(openForCheck(world).fp, third.line('stop'))
})

test('a world stopped and resumed goes exactly where one that never stopped goes', async (t) => {
  const run = async (world: string, untilTick: number) => {
    const s = await startServer(world, ['--entities', '20000', '--until-tick', String(untilTick)])
    t.deepEqual(await s.exited(), { code: 0, signal: null })
    return s.line('stop')
  }
  const resumed = join(dir, 'resumed')
  const straight = join(dir, 'straight')
  t.is((await run(resumed, 30)).tick, 30)
  const [a, b] = await Promise.all([run(resumed, 60), run(straight, 60)])
  t.is(a.tick, 60)
  t.deepEqual(a, b)
})

test('the particles demo runs, and its second run continues the first', (t) => {
  const world = join(dir, 'particles')
  const run = () => {
    const r = runChild(example('particles/demo.mjs'), ['--world', world])
    t.is(r.status, 0, r.stderr)
    return r.stdout
  }
  const first = run()
  t.regex(first, /\(100,000 particles, 100,000 born this run\)/)
  t.regex(first, /^ticks: 0 -> 120 \(a new world\)$/m)
  const second = run()
  t.regex(second, /\(110,000 particles, 10,000 born this run\)/)
  t.regex(second, /^ticks: 120 -> 240 \(continued from the last run\)$/m)
})

test("the Electron example's counter keeps its beats across launches in buffered mode", (t) => {
  // `require('mmapvec')` from examples/electron/, resolved as an app's node_modules would.
  const modules = join(dir, 'node_modules')
  mkdirSync(modules)
  symlinkSync(root, join(modules, 'mmapvec'), 'dir')
  const path = join(dir, 'beats.mvec')
  const launch = (mode: string, ...steps: string[]) => {
    const r = runChild(fileURLToPath(new URL('fixtures/electron-counter.mjs', import.meta.url)), [path, ...steps], { NODE_PATH: modules, MMAPVEC_MODE: mode })
    t.is(r.stderr, '')
    return { signal: r.signal, snapshots: r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }
  }

  const one = launch('buffered', 'beat:1000', 'beat:2000', 'beat:3000', 'snapshot', 'close')
  t.like(one.snapshots[0], { length: 3, launch: 1, beatsThisLaunch: 3, firstAt: 1000, lastAt: 3000, mode: 'buffered' })

  // Buffered mode: a crash loses what was not written back (the beat at 5000), keeps what was flushed.
  const two = launch('buffered', 'snapshot', 'beat:4000', 'flush', 'beat:5000', 'snapshot', 'crash')
  t.is(two.signal, 'SIGKILL')
  t.like(two.snapshots[0], { length: 3, launch: 2, beatsThisLaunch: 0 })
  t.like(two.snapshots[1], { length: 5, launch: 2, lastAt: 5000 })
  // mmap mode, for contrast: a crash loses nothing.
  const three = launch('mmap', 'beat:6000', 'snapshot', 'crash')
  t.like(three.snapshots[0], { length: 5, launch: 3, mode: 'mmap' })

  // The same file format either way: read the beats directly.
  using v = MmapVec.open(path, { at: 'f64', launch: 'u32' }, { version: 1, readOnly: true })
  t.deepEqual([...v], [
    { at: 1000, launch: 1 },
    { at: 2000, launch: 1 },
    { at: 3000, launch: 1 },
    { at: 4000, launch: 2 },
    { at: 6000, launch: 3 },
  ])
})
