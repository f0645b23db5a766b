// `mmapvec tail`: the last rows, and with -f the rows a writer in another process adds while
// the command runs beside it, until a signal ends it as the signal would.
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { scratch, startChild } from './helpers/util.mjs'

const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))
const dir = scratch()
let n = 0
const fresh = () => join(dir, `t${n++}.mvec`)

function cli(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' })
}

test('tail prints the last rows as a table or JSON lines; fewer when the vec is shorter', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { id: 'u32', x: 'f64' })
  for (let i = 0; i < 25; i++) v.push({ id: i, x: i / 2 })
  v.close()
  const table = cli('tail', path, '-n', '3')
  t.is(table.status, 0, table.stderr)
  t.deepEqual(table.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s+/)), [['#', 'id', 'x'], ['22', '22', '11'], ['23', '23', '11.5'], ['24', '24', '12']])
  const json = cli('tail', path, '--json')
  t.deepEqual(json.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { id: number }).id), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24])
  t.deepEqual(cli('tail', path, '-n', '100', '--json').stdout.trimEnd().split('\n').length, 25)
  t.is(cli('tail', path, '-n', 'x').status, 2)
})

test('tail -f prints each row a writer in another process adds, notes removed rows, and ends by SIGINT', async (t) => {
  if (process.platform === 'win32') return t.pass('signals are POSIX')
  const path = fresh()
  // 5 rows, then one every 10 ms up to 60; at 40 the writer keeps 30 and goes on from there.
  const writer = startChild('pusher.mjs', [path, '5', '60', '10', '40', '30'])
  await writer.ready
  const child = spawn(process.execPath, [BIN, 'tail', path, '-n', '2', '-f', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const ids = () => out.trimEnd().split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { id: number }).id)
  try {
    const deadline = Date.now() + 20_000
    while (!ids().includes(59) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    child.kill('SIGINT')
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])))
    t.is(signal, 'SIGINT', `ended as SIGINT ends it (code ${code}): ${err}`)
    const got = ids()
    // Every row printed once, in order; after the cut, printing goes on from the new end.
    const cut = got.indexOf(40)
    t.true(cut > 0, `rows past the cut printed: ${got.join(',')}`)
    const before = got.slice(0, cut)
    t.deepEqual(before, Array.from({ length: before.length }, (_, k) => before[0] + k), 'consecutive before the cut')
    t.true(before[0] >= 3, `it began with the last two rows, not the first: ${got.join(',')}`)
    t.deepEqual(got.slice(cut), Array.from({ length: 20 }, (_, k) => 40 + k), 'the rows after it, each once')
    t.regex(err, /the writer removed rows; 30 are left/)
  } finally {
    writer.child.kill('SIGKILL')
    await writer.exited
  }
})

// tail -f refreshed only after a publish: a writer killed before it published its last rows
// never publishes again, and those rows (which every new reader sees) were never printed.
test('tail -f prints the last rows of a writer killed before it published them', async (t) => {
  if (process.platform === 'win32') return t.pass('signals are POSIX')
  const path = fresh()
  const writer = startChild('push-and-die.mjs', [path])
  await writer.ready
  const child = spawn(process.execPath, [BIN, 'tail', path, '-f', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const ids = () => out.trimEnd().split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { id: number }).id)
  const deadline = Date.now() + 15_000
  while (!ids().includes(6) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  child.kill('SIGINT')
  await new Promise((resolve) => child.on('exit', resolve))
  t.deepEqual(ids(), [0, 1, 2, 3, 4, 5, 6])
})
