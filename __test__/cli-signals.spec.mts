// The CLI ended by a signal (Ctrl-C, `kill`, a closed terminal) cleans up as after a failure and
// then ends as the signal would: an interrupted import leaves no partial vec (which would look
// sound, and make the next run fail with EEXIST) and none of the directories it made.
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { spawn } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
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
