// A small particle simulation whose world lives in mmapvec vecs. Each run advances the world
// by 120 ticks, adds a few particles, flushes and stops; the next run continues from there.
// Run it with `npm run demo` (again and again); `npm run demo -- --reset` starts over;
// `--world DIR` keeps the world somewhere else (the test suite runs it in a scratch dir).
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { MmapVec } from 'mmapvec'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({ options: { reset: { type: 'boolean' }, world: { type: 'string', default: join(here, 'world') } } })
const world = args.world
if (args.reset) {
  for (const name of ['particles.mvec', 'clock.mvec']) {
    try {
      MmapVec.remove(join(world, name))
    } catch (e) {
      if (e.code !== 'ENOENT') throw e
    }
  }
}

const Particle = { pos: ['f32', 3], vel: ['f32', 3], id: 'u32', alive: 'bool' }
const BOX = 100
const TICKS = 120
const DT = 1 / 60

const particles = MmapVec.open(join(world, 'particles.mvec'), Particle)
const clock = MmapVec.open(join(world, 'clock.mvec'), 'u64')
if (clock.length === 0) clock.push(0n)
const startTick = clock.get(0)

// A deterministic generator, so the world is the same on every machine.
let seed = (particles.length + 1) * 2654435761
const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32)

// New particles arrive in bulk, straight from columns (the fast path).
const born = particles.length === 0 ? 100_000 : 10_000
const pos = new Float32Array(born * 3).map(() => random() * BOX)
const vel = new Float32Array(born * 3).map(() => (random() - 0.5) * 20)
const ids = Uint32Array.from({ length: born }, (_, i) => particles.length + i)
particles.pushMany({ pos, vel, id: ids, alive: new Array(born).fill(true) })

const t0 = performance.now()
let bounces = 0
for (let tick = 0; tick < TICKS; tick++) {
  // Columns are Float32Arrays over the file's pages: this loop is the whole update.
  const { pos, vel } = particles.columns
  for (let i = 0; i < pos.length; i++) {
    let p = pos[i] + vel[i] * DT
    if (p < 0 || p > BOX) {
      vel[i] = -vel[i]
      p = p < 0 ? -p : 2 * BOX - p
      bounces++
    }
    pos[i] = p
  }
}
const simMs = performance.now() - t0
clock.set(0, startTick + BigInt(TICKS))

const { pos: p } = particles.columns
let cx = 0
for (let i = 0; i < p.length; i += 3) cx += p[i]
const t1 = performance.now()
await particles.flush()
await clock.flush()
const flushMs = performance.now() - t1

const n = particles.length
console.log(`world: ${relative(process.cwd(), world) || '.'} (${n.toLocaleString('en')} particles, ${born.toLocaleString('en')} born this run)`)
console.log(`ticks: ${startTick} -> ${clock.get(0)}${startTick > 0n ? ' (continued from the last run)' : ' (a new world)'}`)
console.log(`simulated ${TICKS} ticks in ${simMs.toFixed(1)} ms: ${((simMs * 1e6) / (TICKS * n)).toFixed(2)} ns per particle per tick, ${bounces.toLocaleString('en')} wall bounces`)
const first = particles.get(0)
const round = (a) => a.map((x) => Math.round(x * 100) / 100)
console.log(`mean x: ${(cx / n).toFixed(3)}; particle 0: pos ${round(first.pos)}, vel ${round(first.vel)}`)
console.log(`flushed to disk in ${flushMs.toFixed(1)} ms; run again to continue, or with --reset to start over`)
particles.close()
clock.close()
