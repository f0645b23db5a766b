// A game server whose world lives in mmapvec vecs: a 60 Hz tick loop over 100,000 entities,
// flushed in the background every second, with GET /stats on loopback. Stop it (Ctrl-C) or kill
// it and start it again: it resumes at the tick where it stopped. See README.md beside this file.
//
//   node examples/game-server/server.mjs [--world DIR] [--entities N] [--port P] [--seconds S] [--until-tick T]
//
// Each option can also come from the environment: GAME_WORLD, GAME_ENTITIES, GAME_PORT,
// GAME_SECONDS, GAME_UNTIL_TICK.
import { createServer } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { TICK_HZ, closeWorld, fingerprint, openWorld, step } from './world.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    world: { type: 'string', default: process.env.GAME_WORLD ?? join(here, 'world') },
    entities: { type: 'string', default: process.env.GAME_ENTITIES ?? '100000' },
    port: { type: 'string', default: process.env.GAME_PORT ?? '8080' },
    seconds: { type: 'string', default: process.env.GAME_SECONDS ?? '0' },
    'until-tick': { type: 'string', default: process.env.GAME_UNTIL_TICK ?? '0' },
  },
})
const count = (name, min) => {
  const n = Number(args[name])
  if (!Number.isSafeInteger(n) || n < min) {
    console.error(`--${name} must be a whole number >= ${min}, got '${args[name]}'`)
    process.exit(2)
  }
  return n
}
const ENTITIES = count('entities', 1)
const PORT = count('port', 0)
const SECONDS = count('seconds', 0) // 0: until stopped
const UNTIL_TICK = count('until-tick', 0) // 0: no limit
const AUTO_FLUSH_MS = 1000

let world
try {
  world = openWorld(args.world, { entities: ENTITIES, autoFlushMs: AUTO_FLUSH_MS })
} catch (e) {
  // ELOCKED (another server has this world), EVERSION, ESCHEMA...: the message says what to do.
  console.error(e.code ? `${e.code}: ${e.message}` : e)
  process.exit(1)
}
const start = fingerprint(world)
const population = world.state.get(0).target
console.log(
  `world ${args.world}: ${world.created ? 'new' : 'resumed'}, ${start.entities.toLocaleString('en')} entities` +
    `${!world.created && population !== ENTITIES ? ` (its population; --entities applies to new worlds)` : ''}, ${world.entities.mode} mode`,
)
console.log(`start tick=${start.tick} entities=${start.entities} fingerprint=${start.hash}`)

// Tick durations of the last second, for /stats.
const recent = new Float64Array(TICK_HZ)
let ticksRun = 0
let lastMs = 0
let lateTicks = 0
let deathsThisRun = 0

function stats() {
  const n = Math.min(ticksRun, recent.length)
  let sum = 0
  let max = 0
  for (let i = 0; i < n; i++) {
    sum += recent[i]
    if (recent[i] > max) max = recent[i]
  }
  const round = (x) => Math.round(x * 1000) / 1000
  return {
    tick: Number(world.state.columns.tick[0]),
    entities: world.entities.length,
    tickMs: { last: round(lastMs), avg: round(n ? sum / n : 0), max: round(max) },
    ticksRun,
    lateTicks,
    deaths: deathsThisRun,
    resumedFrom: start.tick,
    mode: world.entities.mode,
    autoFlushMs: AUTO_FLUSH_MS,
    uptimeS: Math.round(process.uptime() * 10) / 10,
  }
}

// A fixed-step loop: tick k is due at t0 + k / 60 s. A tick that starts late is counted; when
// the loop falls more than a few ticks behind it drops them rather than running a burst.
const period = 1000 / TICK_HZ
let t0 = performance.now()
let due = 0
let timer
let stopping = false

function loop() {
  if (stopping) return
  const begin = performance.now()
  if (begin - (t0 + due * period) > period) lateTicks++
  deathsThisRun += step(world)
  lastMs = performance.now() - begin
  recent[ticksRun % recent.length] = lastMs
  ticksRun++
  if (UNTIL_TICK > 0 && world.state.columns.tick[0] >= BigInt(UNTIL_TICK)) return stop('reached --until-tick')
  due++
  const now = performance.now()
  if (now - (t0 + due * period) > 4 * period) {
    t0 = now
    due = 0
  }
  timer = setTimeout(loop, Math.max(0, t0 + due * period - now))
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(stats()))
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('GET /stats\n')
  }
})
server.on('error', (e) => {
  console.error(`cannot listen on 127.0.0.1:${PORT}: ${e.message}; pass another --port (0 picks a free one)`)
  stop('listen failed', 1)
})
server.listen(PORT, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${server.address().port}/stats`)
  t0 = performance.now()
  loop()
})

function stop(why, code = 0) {
  if (stopping) return
  stopping = true
  clearTimeout(timer)
  server.close()
  server.closeAllConnections()
  const end = fingerprint(world)
  const s = stats()
  const t = performance.now()
  closeWorld(world)
  console.log(`stop tick=${end.tick} entities=${end.entities} fingerprint=${end.hash}`)
  console.log(
    `${why}: ran ${s.ticksRun} ticks from tick ${start.tick} (${s.lateTicks} late), ${s.deaths} deaths; ` +
      `flushed and closed in ${(performance.now() - t).toFixed(1)} ms`,
  )
  process.exitCode = code
}

// Ticks run to completion between events, so a signal always lands between two ticks.
process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))
if (SECONDS > 0) setTimeout(() => stop(`ran for --seconds ${SECONDS}`), SECONDS * 1000).unref()
