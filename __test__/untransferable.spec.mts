// A program may pass a column's buffer to `markAsUntransferable` (node:worker_threads). On Node
// 24 that gives the buffer a detach key, and detaching it through Node-API aborted the process
// at the next close, moving growth or shrink. Such a view cannot be emptied; instead, once its
// memory stops holding rows, it gets zero pages: it reads zeros, never reaches the file again,
// and never faults when the file shrinks. (Node 20 and 22 set no key: the view is detached, as
// any other.) The scenarios run in a child process (fixtures/untransferable.mjs), which says why.
import test from 'ava'
import { MmapVec } from 'mmapvec'
import { join } from 'node:path'
import { markAsUntransferable } from 'node:worker_threads'
import { mode, runChild, scratch } from './helpers/util.mjs'

const dir = scratch()

function run(scenario: string): Record<string, unknown> {
  const r = runChild('untransferable.mjs', [dir, scenario])
  if (r.status !== 0) throw new Error(`the child failed (${r.status ?? r.signal}): ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('close with views marked untransferable: no abort, and the views no longer reach the files', (t) => {
  const out = run('close')
  // Buffered views are copies in V8's memory: a marked one keeps its copy, which never reaches
  // the file either.
  if (mode !== 'buffered') t.true(out.revoked, 'the views are empty or read zeros')
  t.deepEqual(out.row, { x: 6, tag: 7 }, 'writes through them did not reach the file')
})

test('a moving growth and a shrink with views marked untransferable: no abort, no fault', (t) => {
  if (mode !== 'mmap') return t.pass('views of V8 memory (buffered, overlay modes) are never detached through Node-API')
  const out = run('move-shrink')
  t.true(out.movedRevoked, 'the old view of the moved column is empty or reads zeros')
  t.deepEqual(out.row5, { x: 6, tag: 7 }, 'a write through it did not reach the vec')
  t.true(out.touched, 'every page of the old views read without a fault after the file shrank')
  t.deepEqual(out.row9, { x: 10, tag: 7 })
})

test('a packed vec whose shared buffer was marked untransferable grows and closes', (t) => {
  const out = run('packed')
  if (mode === 'mmap') t.true(out.shared, 'the columns share one buffer')
  if (mode === 'mmap') t.true(out.grownRevoked, 'growth moved the columns out of the pack: the old view is empty or reads zeros')
  t.deepEqual(out.row0, { x: 2, y: 3, id: 4 })
  if (mode !== 'buffered') t.true(out.closedRevoked, 'close revoked the views')
  t.deepEqual(out.last, { x: 5, y: 6, id: 7 })
  t.deepEqual(out.row1, { x: 2, y: 3, id: 4 })
})

test('overlay mode with memories marked untransferable grows, changes schema, shrinks and closes', (t) => {
  if (process.platform !== 'linux' && process.platform !== 'darwin') return t.pass('overlay mode runs on Linux and macOS')
  const out = run('overlay')
  t.true(out.grownRevoked, 'the marked memory is empty or reads zeros after the growth')
  t.true(out.closedRevoked, 'every marked view is empty or reads zeros after close')
  t.is(out.length, 10)
  t.deepEqual(out.row5, { x: 6, tag: 7 }, 'writes through the old views never reached the file')
  t.deepEqual(out.row9, { x: 10, tag: 7 })
})

test('a view marked untransferable at the end of the program or of a worker: the rows are in the files; process.exit ends cleanly', (t) => {
  // Node 24's markAsUntransferable gives the buffer a detach key, and Node's own cleanup of
  // external buffers at an environment's teardown then aborts (RELIABILITY.md, "Known not to be
  // covered"): only process.exit in the main thread, which runs no such cleanup, is sure to end
  // cleanly there. What holds everywhere: the abort loses nothing (the rows are in the page
  // cache), and nothing else aborts.
  const keyed = markAsUntransferable.toString().includes('setDetachKey')
  for (const how of ['end', 'close', 'exit', 'close-exit', 'worker-end', 'worker-close']) {
    const path = join(dir, `exit-${how}.mvec`)
    const r = runChild('untransferable-exit.mjs', [path, how])
    if (how.endsWith('exit') || !keyed || mode !== 'mmap') {
      t.is(r.signal, null, `${how}: ${r.stderr}`)
      t.is(r.status, 0, `${how}: ${r.stderr}`)
    } else {
      t.true(r.signal === null || r.signal === 'SIGABRT', `${how}: only Node's own teardown abort, if any (${r.signal})`)
    }
    using v = MmapVec.open(path, { a: 'u32' })
    t.is(v.length, 100, `${how}: every row is in the files`)
    t.deepEqual(v.get(99), { a: 99 })
  }
})
