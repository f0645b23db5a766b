// 9. vs Rust: the core crate's own push loop (crates/mmapvec-core/benches/push.rs) beside the
// JavaScript push, so the cost of the JavaScript layer is known.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { MmapVec } from 'mmapvec'
import { Row, fresh, interleaved, quick, report } from '../lib.mjs'

const N = quick ? 2_000_000 : 10_000_000
const root = fileURLToPath(new URL('../..', import.meta.url))
const cargo = spawnSync('cargo', ['bench', '-q', '-p', 'mmapvec-core', '--bench', 'push', '--', String(N)], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, MMAPVEC_BENCH_DIR: fresh('rust') },
})
if (cargo.status !== 0) throw new Error(`cargo bench failed: ${cargo.stderr}`)
const rust = JSON.parse(cargo.stdout.trim().split('\n').at(-1))

// Deleting the previous run's files happens outside the timing, as in the push scenario.
const { js } = interleaved(quick ? 3 : 5, {
  js: {
    setup: () => fresh('push-js.mvec'),
    run: (path) => {
      const v = MmapVec.open(path, Row)
      for (let i = 0; i < N; i++) v.push({ x: i, y: i, vx: 1, vy: -1, id: i })
      v.close({ flush: false })
    },
    teardown: (path) => fresh(path.split('/').pop()),
  },
})
report([
  { scenario: 'vs Rust', subject: `mmapvec push from JavaScript, ${N.toLocaleString('en')} rows from empty`, value: N / js, unit: 'rows/s' },
  { scenario: 'vs Rust', subject: 'the core crate pushing the same rows from Rust', value: rust.rowsPerSecond, unit: 'rows/s', baseline: true },
])
