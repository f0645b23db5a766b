/**
 * Files changed by another program under an open vec (cut short, extended, replaced, deleted),
 * signals, and WebAssembly's traps beside the vec's SIGBUS handler. Each case runs in a child
 * process (a crash must not take the runner down) and must end with no signal, every error an
 * MmapVecError with a stable code whose message names the file, and nothing made durable over
 * what was lost. Runs in every mode the suite runs in (MMAPVEC_MODE, MMAPVEC_PACK_MIN_BYTES).
 */
import test from 'ava'
import { runChild, scratch } from './helpers/util.mjs'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

type Outcome = { ok: true; value: unknown } | { code: string; message: string } | { raw: string }
type Result = Record<string, Outcome> & { target: string; closed: boolean }

function play(file: 'header' | 'column', change: string): { status: number | null; signal: string | null; result: Result; stderr: string } {
  const dir = scratch()
  const r = runChild('under-open-vec.mjs', [dir, file, change])
  let result = {} as Result
  try {
    result = JSON.parse(r.stdout) as Result
  } catch {
    // Reported below with the child's status.
  }
  return { status: r.status, signal: r.signal, result, stderr: r.stderr }
}

const code = (o: Outcome | undefined) => (o !== undefined && 'code' in o ? o.code : o !== undefined && 'raw' in o ? `raw: ${o.raw}` : 'ok')

for (const file of ['column', 'header'] as const) {
  for (const change of ['truncate0', 'truncateHalf'] as const) {
    test(`a ${file} file cut short (${change}) under an open vec: no crash, reads give zeros or rows, the vec fails with EIO naming the file`, (t) => {
      const { status, signal, result, stderr } = play(file, change)
      t.is(signal, null, `killed by ${signal}: ${stderr}`)
      t.is(status, 0, stderr)
      // Nothing threw anything but an MmapVecError.
      for (const [k, o] of Object.entries(result)) if (typeof o === 'object' && o !== null && 'raw' in o) t.fail(`${k}: ${o.raw}`)
      // Calls that sync or change the files refuse once a page faulted; close still closes.
      for (const k of ['flushSync', 'close']) {
        t.is(code(result[k]), 'EIO', `${k}: ${JSON.stringify(result[k])}`)
        const o = result[k]
        if ('message' in o) t.true(o.message.includes(result.target), o.message)
      }
      t.true(result.closed)
      // Nothing was made durable over the cut: the files stay shorter than the row count, so
      // opening again is refused as damaged, not a crash and not a silently shorter vec.
      t.is(code(result.reopen), 'EFORMAT', JSON.stringify(result.reopen))
    })
  }
}

test('a column file extended by another program changes nothing: every call works, every row is kept', (t) => {
  const { status, signal, result, stderr } = play('column', 'extend')
  t.is(signal, null, stderr)
  t.is(status, 0, stderr)
  for (const k of ['columnsSum', 'first', 'last', 'set', 'pushOne', 'pushUntilGrowth', 'pushMany', 'flushSync', 'close', 'reopen']) {
    t.is(code(result[k]), 'ok', `${k}: ${JSON.stringify(result[k])}`)
  }
  t.deepEqual(result.first, { ok: true, value: { x: 0, y: [0, 0, 1] } }) // (JSON has no -0)
})

for (const change of ['replace', 'delete'] as const) {
  for (const file of ['column', 'header'] as const) {
    test(`a ${file} file ${change}d under an open vec: the flush says so (EIO) instead of reporting lost rows durable`, (t) => {
      const { status, signal, result, stderr } = play(file, change)
      t.is(signal, null, stderr)
      t.is(status, 0, stderr)
      t.is(code(result.flushSync), 'EIO', JSON.stringify(result.flushSync))
      const o = result.flushSync
      if ('message' in o) {
        t.regex(o.message, /replaced or deleted by another program/)
        t.true(o.message.includes(result.target), o.message)
      }
      t.is(code(result.close), 'EIO')
      t.true(result.closed)
    })
  }
}

test('a SIGBUS sent to the process (not a fault in a vec) still has its default action', (t) => {
  const { signal } = play('column', 'kill')
  t.is(signal, 'SIGBUS')
})

test("WebAssembly's out-of-bounds traps still throw RuntimeErrors beside the vec's SIGBUS handler, before and after a fault", (t) => {
  const { status, signal, result, stderr } = play('column', 'wasm')
  t.is(signal, null, stderr)
  t.is(status, 0, stderr)
  for (const k of ['wasmBefore', 'wasmAfter']) {
    const o = result[k]
    t.true('raw' in o && /RuntimeError/.test(o.raw), `${k}: ${JSON.stringify(o)}`)
  }
  t.deepEqual(result.wasmInBounds, { ok: true, value: 0 })
  t.is(code(result.close), 'EIO')
})

for (const scenario of ['many-opens', 'listener-on', 'listener-onoff', 'autoflush', 'pushmany-direct'] as const) {
  test(`the guard holds: ${scenario} (a file cut short afterwards is still an EIO, not a crash)`, (t) => {
    const dir = scratch()
    const r = runChild('guards.mjs', [dir, scenario])
    t.is(r.signal, null, r.stderr)
    t.is(r.status, 0, r.stderr)
    const out = JSON.parse(r.stdout) as { read: string; flush: string; close: string }
    // A direct pushMany is refused before it extends the cut file again; a read gets zeros.
    t.is(out.read, scenario === 'pushmany-direct' ? 'EIO' : 'ok')
    t.is(out.flush, 'EIO')
    t.is(out.close, 'EIO')
  })
}

test('a create or temp that runs out of file descriptors leaves nothing behind', (t) => {
  if (process.platform !== 'linux') return t.pass('the descriptor table is filled through /dev/null')
  for (let free = 0; free < 4; free++) {
    const dir = join(scratch(), `emfile-${free}`)
    const tmp = join(scratch(), `emfile-tmp-${free}`)
    mkdirSync(dir, { recursive: true })
    mkdirSync(tmp, { recursive: true })
    const child = runChild('emfile.mjs', [dir, String(free)], { TMPDIR: tmp })
    t.is(child.status, 0, child.stderr)
    const out = JSON.parse(child.stdout) as { results: Record<string, string>; left: string[]; tmp: string[] }
    for (const [what, r] of Object.entries(out.results)) t.true(r === 'ok' || r === 'EIO', `${what} with ${free} descriptors free: ${r}`)
    if (out.results.create === 'ok') t.true(out.left.includes(join(dir, 'x', 'y', 'new.mvec')))
    else t.deepEqual(out.left, [], `a failed create left nothing, not even the parents it made (${free} free)`)
    t.deepEqual(out.tmp, [], `no temp vec directory is left (${free} free)`)
  }
})
