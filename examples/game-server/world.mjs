// The game server's world: two vecs and the rules of one tick. Kept apart from the server
// (timer, HTTP, signals) so that the test can open a world and check it the same way.
//
// The simulation reads no clock and no Math.random: a tick depends only on what is in the
// vecs (positions, velocities, health, and the random generator's state in `world.mvec`), so a
// world that is stopped and resumed goes exactly where one that never stopped goes.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { MmapVec } from 'mmapvec'

/** One row per entity, stored as struct-of-arrays: `columns.pos` is one Float32Array for all. */
export const Entity = { pos: ['f32', 2], vel: ['f32', 2], health: 'f32', id: 'u32' }
/** One row: the tick last completed, the random generator's state, and counters. */
export const WorldState = { tick: 'u64', rng: 'u32', nextId: 'u32', target: 'u32', deaths: 'u64' }
/** Stored with the vecs: a world written by an incompatible version is refused (EVERSION). */
export const DATA_VERSION = 1

export const TICK_HZ = 60
const DT = 1 / TICK_HZ
const ARENA = 1000 // a square arena, ARENA units wide
const MAX_SPEED = 40 // units per second
const MAX_HEALTH = 100
const STORM_RADIUS = 120
const STORM_DAMAGE = 2 // health per tick inside the storm: 50 ticks in it and an entity dies
const REGEN = 0.05 // health per tick outside it

/**
 * Opens (or creates) the world in `dir`. A new world gets `entities` entities; an existing one
 * keeps the population it was created with. `autoFlushMs` flushes both vecs in the background.
 */
export function openWorld(dir, { entities = 100_000, autoFlushMs, readOnly = false } = {}) {
  const options = { version: DATA_VERSION, autoFlushMs, readOnly, create: !readOnly }
  const state = MmapVec.open(join(dir, 'world.mvec'), WorldState, options)
  let ents
  try {
    ents = MmapVec.open(join(dir, 'entities.mvec'), Entity, options)
  } catch (e) {
    state.close()
    throw e
  }
  const created = state.length === 0
  if (created) {
    if (readOnly) {
      closeWorld({ state, entities: ents })
      throw new Error(`${dir}: the world was never started; run the server on it first`)
    }
    state.push({ tick: 0n, rng: 0x9e3779b9, nextId: 0, target: entities, deaths: 0n })
  }
  const world = { dir, state, entities: ents, created }
  // After a kill in the middle of a tick some of the dead may not have been replaced yet.
  if (!readOnly) spawn(world, world.state.get(0).target - ents.length)
  return world
}

export function closeWorld(world) {
  // close() flushes each vec: everything up to here survives a power cut.
  world.entities.close()
  world.state.close()
}

/** A random generator whose whole state is one u32 stored in the world (mulberry32). */
function nextRandom(s) {
  s[0] = (s[0] + 0x6d2b79f5) | 0
  let t = s[0]
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
}

/** Adds `count` new entities at random places, with pushMany (one copy per column). */
function spawn(world, count) {
  if (count <= 0) return
  const st = world.state.columns
  const pos = new Float32Array(count * 2)
  const vel = new Float32Array(count * 2)
  for (let i = 0; i < count * 2; i++) {
    pos[i] = nextRandom(st.rng) * ARENA
    vel[i] = (nextRandom(st.rng) * 2 - 1) * MAX_SPEED
  }
  const id = new Uint32Array(count)
  for (let i = 0; i < count; i++) id[i] = st.nextId[0] + i
  // The ids are taken before the rows appear: a kill between the two never hands one out twice.
  st.nextId[0] += count
  world.entities.pushMany({ pos, vel, health: new Float32Array(count).fill(MAX_HEALTH), id })
}

/** Where the storm is at tick `t`: it sweeps the arena on a slow zigzag. */
function stormAt(t) {
  const zigzag = (period) => {
    const phase = (t % period) / period
    return (phase < 0.5 ? phase * 2 : 2 - phase * 2) * ARENA
  }
  return [zigzag(37 * TICK_HZ), zigzag(23 * TICK_HZ)]
}

/**
 * Advances the world by one tick: every entity moves and bounces off the walls; those in the
 * storm lose health and the others heal; the dead are removed (swapRemove) and as many new
 * ones spawn. Returns how many died.
 */
export function step(world) {
  const { entities, state } = world
  // Read `columns` every tick: it is the rule after pushes (the views are as long as the vec
  // was when they were taken), and it tells autoFlush that the vec has changed.
  const { pos, vel, health } = entities.columns
  const st = state.columns
  const t = Number(st.tick[0])
  const n = entities.length

  // The hot loop: plain TypedArray reads and writes over the files' pages.
  for (let i = 0; i < n * 2; i++) {
    let p = pos[i] + vel[i] * DT
    if (p < 0 || p > ARENA) {
      vel[i] = -vel[i]
      p = p < 0 ? -p : 2 * ARENA - p
    }
    pos[i] = p
  }
  const [sx, sy] = stormAt(t)
  const r2 = STORM_RADIUS * STORM_RADIUS
  for (let i = 0; i < n; i++) {
    const dx = pos[2 * i] - sx
    const dy = pos[2 * i + 1] - sy
    const h = health[i]
    health[i] = dx * dx + dy * dy < r2 ? h - STORM_DAMAGE : h < MAX_HEALTH ? Math.min(MAX_HEALTH, h + REGEN) : h
  }
  // Backwards, so that the row swapRemove moves into place has been looked at already.
  let died = 0
  for (let i = n - 1; i >= 0; i--) {
    if (health[i] <= 0) {
      entities.swapRemove(i)
      died++
    }
  }
  spawn(world, died)
  st.deaths[0] += BigInt(died)
  // Last: the tick counter says which tick was completed.
  st.tick[0] = BigInt(t + 1)
  return died
}

/** The tick and a hash of every entity's bytes: equal fingerprints mean equal worlds. */
export function fingerprint(world) {
  const h = createHash('sha256')
  for (const col of Object.values(world.entities.columns)) h.update(new Uint8Array(col.buffer, col.byteOffset, col.byteLength))
  const s = world.state.get(0)
  h.update(`${s.tick} ${s.rng} ${s.nextId}`)
  return { tick: Number(s.tick), entities: world.entities.length, hash: h.digest('hex').slice(0, 16) }
}
