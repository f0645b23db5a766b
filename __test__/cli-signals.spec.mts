// The CLI ended by a signal (Ctrl-C, `kill`, a closed terminal) cleans up as after a failure and
// then ends as the signal would: an interrupted import leaves no partial vec (which would look
// sound, and make the next run fail with EEXIST) and none of the directories it made.
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { scratch } from './helpers/util.mjs'

const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))
const dir = scratch()
const csv = join(dir, 'big.csv')
const ROWS = 2_000_000
writeFileSync(csv, 'a,b\n' + Array.from({ length: ROWS }, (_, i) => `${i},${i % 7}`).join('\n') + '\n')

/** Runs an import and sends `signal` once the vec has appeared (the import is under way). */
function interrupt(target: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'import', csv, target, '--schema', '{"a":"u32","b":"u8"}'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const poll = setInterval(() => {
    if (existsSync(target)) {
      clearInterval(poll)
      child.kill(signal)
    }
  }, 5)
  return new Promise((resolve) =>
    child.on('exit', (code, sig) => {
      clearInterval(poll)
      resolve({ code, signal: sig, stderr })
    }),
  )
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`an import ended by ${signal} leaves nothing, and runs again`, async (t) => {
    const parent = join(dir, signal, 'made', 'for', 'it')
    const target = join(parent, 'v.mvec')
    const r = await interrupt(target, signal)
    t.is(r.signal, signal, `the process ends as ${signal} ends it: ${r.stderr}`)
    t.false(existsSync(target), 'no partial vec is left')
    t.false(existsSync(join(dir, signal)), 'nor the directories the import made')
    const again = spawn(process.execPath, [BIN, 'import', csv, target, '--schema', '{"a":"u32","b":"u8"}'], { stdio: 'ignore' })
    t.is(await new Promise((resolve) => again.on('exit', resolve)), 0, 'the same import runs again')
    using v = MmapVec.open(target, { a: 'u32', b: 'u8' }, { readOnly: true })
    t.is(v.length, ROWS)
    t.deepEqual(v.get(ROWS - 1), { a: ROWS - 1, b: (ROWS - 1) % 7 })
  })
}

test('an import waiting on an idle pipe ends at SIGINT, leaving nothing', async (t) => {
  if (process.platform === 'win32') return t.pass('FIFOs are POSIX')
  const fifo = join(dir, 'idle.fifo')
  const target = join(dir, 'from-pipe', 'v.mvec')
  t.is(spawnSync('mkfifo', [fifo]).status, 0)
  // The writer sends a header and two rows, then keeps the pipe open without writing.
  const writer = spawn('bash', ['-c', `{ printf 'a\\n1\\n2\\n'; sleep 30; } > ${JSON.stringify(fifo)}`], { stdio: 'ignore' })
  const child = spawn(process.execPath, [BIN, 'import', fifo, target, '--schema', '{"a":"u32"}', '--format', 'csv'], { stdio: 'ignore' })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)))
  while (!existsSync(target)) await new Promise((resolve) => setTimeout(resolve, 20))
  child.kill('SIGINT')
  const signal = await exited
  writer.kill()
  t.is(signal, 'SIGINT', 'the process ends as SIGINT ends it, without waiting for the pipe')
  t.false(existsSync(join(dir, 'from-pipe')), 'no partial vec, nor the directory made for it')
})

test('an Arrow export ended by SIGINT leaves no temporary file', async (t) => {
  const vec = join(dir, 'arrow-src.mvec')
  const n = 5_000_000
  {
    using v = MmapVec.open(vec, { a: 'u32', b: 'f64' })
    v.pushMany({ a: new Uint32Array(n), b: new Float64Array(n) })
  }
  const outDir = join(dir, 'arrow-out')
  mkdirSync(outDir)
  const child = spawn(process.execPath, [BIN, 'export', vec, '--format', 'arrow', '--out', join(outDir, 'v.arrow')], { stdio: 'ignore' })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)))
  let done = false
  void exited.then(() => (done = true))
  while (!done && readdirSync(outDir).length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  child.kill('SIGINT')
  const signal = await exited
  if (signal === null) return t.deepEqual(readdirSync(outDir), ['v.arrow'], 'finished before the signal: only the whole file')
  t.is(signal, 'SIGINT')
  t.deepEqual(readdirSync(outDir), [], 'neither the temporary file nor a partial output')
})
