// Schema evolution: addColumn, dropColumn and renameColumn keep every row, change the stored
// schema atomically, refuse bad requests without touching the disk, and survive a kill at any
// instant. Runs in whichever mode is the default: `npm test` runs it in mmap mode, and .ci/run
// again with MMAPVEC_MODE=buffered.
import test from 'ava'
import { MmapVec, MmapVecError, type ErrorCode, type FieldType } from 'mmapvec'
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
// @ts-expect-error a plain JavaScript fixture module without types
import { States, extra, row } from './fixtures/schema-states.mjs'
import { fingerprint, runChild, scratch, startChild } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => join(dir, `s${n++}.mvec`)

function code(t: { throws: (fn: () => unknown, e?: object) => unknown }, fn: () => unknown, want: ErrorCode, path?: string): MmapVecError {
  const e = t.throws(fn, { instanceOf: MmapVecError }) as MmapVecError
  if (e.code !== want) throw new Error(`expected ${want}, got ${e.code}: ${e.message}`)
  if (path !== undefined && !e.message.includes(path)) throw new Error(`message does not name ${path}: ${e.message}`)
  return e
}

/** Every field type, with the value a new column reads and a value to write. */
const TYPES: [FieldType, unknown, unknown][] = [
  ['i8', 0, -5],
  ['u8', 0, 200],
  ['i16', 0, -300],
  ['u16', 0, 60_000],
  ['i32', 0, -70_000],
  ['u32', 0, 4_000_000_000],
  ['i64', 0n, -(2n ** 40n)],
  ['u64', 0n, 2n ** 63n],
  ['f32', 0, 1.5],
  ['f64', 0, Math.PI],
  ['bool', false, true],
  [['f32', 3], [0, 0, 0], [1, 2, 3]],
  [['u64', 2], [0n, 0n], [7n, 2n ** 50n]],
  [['bool', 4], [false, false, false, false], [true, false, true, true]],
  [['i8', 20], new Array(20).fill(0), Array.from({ length: 20 }, (_, j) => j - 10)],
]

for (const [type, zero, value] of TYPES) {
  test(`add, rename and drop a ${JSON.stringify(type)} column: rows kept, new rows and old read zero`, (t) => {
    const path = fresh()
    const v = MmapVec.open(path, { id: 'u32' })
    for (let i = 0; i < 300; i++) v.push({ id: i })
    const v2 = v.addColumn('f', type)
    t.true(Object.is(v2, v), 'the same vec, retyped')
    t.deepEqual(v2.schema, { id: 'u32', f: type })
    t.is(v2.length, 300)
    for (const i of [0, 150, 299]) t.deepEqual(v2.get(i), { id: i, f: zero })
    const col = (v2.columns as Record<string, ArrayLike<unknown>>).f
    t.is(col.length, 300 * (Array.isArray(type) ? type[1] : 1))
    t.true(Array.from(col).every((x) => x === 0 || x === 0n), 'the whole column reads zero')
    v2.push({ id: 300, f: value } as never)
    v2.set(5, { f: value } as never)
    t.deepEqual(v2.get(300), { id: 300, f: value })
    t.deepEqual(v2.get(5), { id: 5, f: value })
    // Growth past the capacity carries the new column along.
    for (let i = 301; i < 5000; i++) v2.push({ id: i, f: zero } as never)
    t.deepEqual(v2.get(4999), { id: 4999, f: zero })
    v2.close()

    const r = MmapVec.open(path, { f: type, id: 'u32' })
    t.is(r.length, 5000)
    t.deepEqual(r.get(5), { f: value, id: 5 })
    t.deepEqual(r.get(6), { f: zero, id: 6 })
    const r2 = r.renameColumn('f', 'g')
    t.deepEqual(r2.get(300), { id: 300, g: value })
    r2.close()

    const d = MmapVec.open(path, { id: 'u32', g: type })
    t.deepEqual(d.get(5), { id: 5, g: value })
    const d2 = d.dropColumn('g')
    t.deepEqual(d2.get(5), { id: 5 })
    t.deepEqual(Object.keys(d2.columns), ['id'])
    d2.close()
    const e = MmapVec.open(path, { id: 'u32' })
    t.is(e.length, 5000)
    t.true([...e].every((x, i) => x.id === i))
    e.close()
    t.deepEqual(readdirSync(path).sort(), ['c0.col', 'header', 'live'], 'the dropped column file is gone')
  })
}

test('a dropped and re-added column reads zero, not its old data', (t) => {
  const path = fresh()
  using v = MmapVec.open(path, { hp: 'u16', id: 'u32' })
  for (let i = 0; i < 100; i++) v.push({ id: i, hp: i + 1 })
  const w = v.dropColumn('hp').addColumn('hp', 'u16')
  t.true([...w].every((r, i) => r.id === i && r.hp === 0))
  t.deepEqual(readdirSync(path).sort(), ['c1.col', 'c2.col', 'header', 'live'], "a new column never takes a file name in use")
})

test('pushMany, swapRemove, pop and iteration follow the new schema', (t) => {
  using v = MmapVec.open(fresh(), { id: 'u32' })
  v.pushMany({ id: new Uint32Array([0, 1, 2]) })
  const w = v.addColumn('pos', ['f64', 2]).addColumn('alive', 'bool')
  w.pushMany({ id: [3, 4], pos: new Float64Array([1, 2, 3, 4]), alive: [true, false] })
  w.pushMany([{ id: 5, pos: [5, 6], alive: true }])
  t.deepEqual(w.swapRemove(0), { id: 0, pos: [0, 0], alive: false })
  t.deepEqual(w.pop(), { id: 4, pos: [3, 4], alive: false })
  t.deepEqual([...w].map((r) => r.id), [5, 1, 2, 3])
  t.deepEqual(w.get(0), { id: 5, pos: [5, 6], alive: true })
  code(t, () => w.push({ id: 9 } as never), 'EINVAL')
  t.is(w.length, 4, 'a push missing the new field adds nothing')
  const x = w.renameColumn('pos', 'xy')
  t.deepEqual(x.get(3), { id: 3, xy: [1, 2], alive: true })
  x.set(0, { pos: [1, 1] } as never) // set ignores fields the schema does not have
  t.deepEqual(x.get(0), { id: 5, xy: [5, 6], alive: true })
})

test('views: a dropped column\'s become empty, the others stay valid', (t) => {
  using v = MmapVec.open(fresh(), { a: 'f64', b: 'u32', c: 'i64' })
  for (let i = 0; i < 100; i++) v.push({ a: i, b: i, c: BigInt(i) })
  const { a, b, c } = v.columns
  const w = v.dropColumn('b')
  t.is(b.length, 0, 'detached')
  t.is<number | undefined, undefined>(b[0], undefined)
  b[0] = 5 // ignored, never a crash
  t.is(a.length, 100)
  a[3] = 42
  t.is(w.get(3).a, 42, 'a view taken before the change still writes the rows')
  c[4] = -1n
  t.is(w.get(4).c, -1n)
  const r = w.renameColumn('a', 'x')
  a[5] = 7
  t.is(r.get(5).x, 7, 'renaming keeps the views')
  const added = r.addColumn('y', 'u8')
  t.is(added.columns.x, added.columns.x, 'columns is cached again')
  c[6] = 9n
  t.is(added.get(6).c, 9n)
})

test('the row count keeps landing in the live header: kills after a change lose nothing mmap mode keeps', (t) => {
  const path = fresh()
  const child = runChild('schema-change.mjs', [path, '700', '300'])
  t.is(child.signal, 'SIGKILL', child.stderr)
  using v = MmapVec.open(path, { id: 'u32', big: 'i64', hp: 'u16' })
  // A change makes everything before it durable (buffered mode writes it back first); rows
  // pushed after it are in the page cache in mmap and overlay modes and only in the process in
  // buffered mode.
  t.is(v.length, v.mode === 'buffered' ? 700 : 1000)
  for (let i = 0; i < v.length; i++) {
    const r = v.get(i)
    if (r.id !== i || r.big !== BigInt(i) || r.hp !== (i < 700 ? 0 : i)) t.fail(`row ${i}: ${JSON.stringify(r, (_: string, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))}`)
  }
})

test('ESCHEMA on open names the difference and the call that migrates; nothing changes', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { pos: ['f32', 3], hp: 'u16', old: 'bool' })
  v.push({ pos: [1, 2, 3], hp: 4, old: true })
  v.close()
  const before = fingerprint(path)
  const added = code(t, () => MmapVec.open(path, { pos: ['f32', 3], hp: 'u16', old: 'bool', mana: 'f64' }), 'ESCHEMA', path)
  t.regex(added.message, /the stored schema has no column 'mana' \(f64\)/)
  t.regex(added.message, /open it with the stored schema \{ pos: \['f32', 3\], hp: 'u16', old: 'bool' \} and call vec\.addColumn\('mana', 'f64'\)/)
  const renamed = code(t, () => MmapVec.open(path, { pos: ['f32', 3], health: 'u16', old: 'bool' }), 'ESCHEMA', path)
  t.regex(renamed.message, /likely renamed/)
  t.regex(renamed.message, /vec\.renameColumn\('hp', 'health'\)/)
  const dropped = code(t, () => MmapVec.open(path, { pos: ['f32', 3], hp: 'u16' }), 'ESCHEMA', path)
  t.regex(dropped.message, /the stored column 'old' \(bool\) is not in the requested schema/)
  t.regex(dropped.message, /vec\.dropColumn\('old'\)/)
  const retyped = code(t, () => MmapVec.open(path, { pos: ['f32', 2], hp: 'u16', old: 'bool' }), 'ESCHEMA', path)
  t.regex(retyped.message, /column 'pos' is \[f32, 3\] stored and \[f32, 2\] requested/)
  t.regex(retyped.message, /cannot change in place/)
  const scalar = code(t, () => MmapVec.open(path, 'f64'), 'ESCHEMA', path)
  t.regex(scalar.message, /plain values/)
  t.deepEqual(fingerprint(path), before)
})

test('bad requests are refused with a clear error and change no file', (t) => {
  const path = fresh()
  // Room made at open: a growth would fault pages in on a thread of its own, which moves the
  // files' mtimes while the fingerprints are taken.
  using v = MmapVec.open(path, { id: 'u32', pos: ['f32', 2] }, { capacity: 4096 })
  for (let i = 0; i < 2000; i++) v.push({ id: i, pos: [i, -i] })
  v.set(7, { id: 70 }) // unflushed in buffered mode: a refused call must not write it back either
  const before = fingerprint(path)
  const any = v as unknown as Record<string, (...a: unknown[]) => unknown>
  const cases: [string, () => unknown, ErrorCode, RegExp][] = [
    ['duplicate', () => v.addColumn('id', 'u8'), 'ESCHEMA', /already has a column 'id'/],
    ['empty name', () => v.addColumn('', 'u8'), 'EINVAL', /non-empty string/],
    ['name not a string', () => any.addColumn(5, 'u8'), 'EINVAL', /non-empty string/],
    ['unknown type', () => any.addColumn('x', 'f16'), 'EINVAL', /unknown type 'f16'/],
    ['zero width', () => any.addColumn('x', ['f32', 0]), 'EINVAL', /array length/],
    ['not a type', () => any.addColumn('x', 5), 'EINVAL', /not a type/],
    ['missing type', () => any.addColumn('x'), 'EINVAL', /not a type/],
    ['long name', () => v.addColumn('n'.repeat(300), 'u8'), 'EINVAL', /longer than 255 bytes/],
    ['long new name', () => v.renameColumn('id', 'é'.repeat(128)), 'EINVAL', /longer than 255 bytes/],
    ['drop unknown', () => any.dropColumn('nope'), 'ESCHEMA', /no column 'nope'; its columns are 'id', 'pos'/],
    ['drop non-string', () => any.dropColumn(undefined), 'EINVAL', /non-empty string/],
    ['rename unknown', () => any.renameColumn('nope', 'x'), 'ESCHEMA', /no column 'nope'/],
    ['rename onto another', () => v.renameColumn('id', 'pos'), 'ESCHEMA', /already has a column 'pos'/],
    ['rename to empty', () => v.renameColumn('id', ''), 'EINVAL', /non-empty string/],
  ]
  for (const [what, fn, want, message] of cases) {
    const e = code(t, fn, want, path)
    t.regex(e.message, message, what)
  }
  t.deepEqual(fingerprint(path), before)
  t.deepEqual(v.schema, { id: 'u32', pos: ['f32', 2] })
  t.deepEqual(v.get(7), { id: 70, pos: [7, -7] })
  v.renameColumn('id', 'id') // the same name: nothing to do
  t.deepEqual(fingerprint(path), before)

  using one = MmapVec.open(fresh(), { only: 'u8' })
  const last = code(t, () => one.dropColumn('only'), 'ESCHEMA', one.path)
  t.regex(last.message, /only column.*MmapVec\.remove/)
  using s = MmapVec.open(fresh(), 'f64')
  const sb = fingerprint(s.path)
  const anys = s as unknown as Record<string, (...a: unknown[]) => unknown>
  for (const fn of [() => anys.addColumn('x', 'u8'), () => anys.dropColumn('value'), () => anys.renameColumn('value', 'v')]) {
    t.regex(code(t, fn, 'ESCHEMA', s.path).message, /plain values, which has no named columns/)
  }
  t.deepEqual(fingerprint(s.path), sb)
})

test('read-only vecs refuse with EREADONLY, closed ones with ECLOSED', (t) => {
  const path = fresh()
  MmapVec.open(path, { id: 'u32' }).close()
  const before = fingerprint(path)
  using r = MmapVec.open(path, { id: 'u32' }, { readOnly: true })
  code(t, () => r.addColumn('hp', 'u16'), 'EREADONLY', path)
  code(t, () => r.dropColumn('id'), 'EREADONLY', path)
  code(t, () => r.renameColumn('id', 'k'), 'EREADONLY', path)
  r.close()
  code(t, () => r.addColumn('hp', 'u16'), 'ECLOSED', path)
  t.deepEqual(fingerprint(path), before)
})

test('the lock follows the new header: other writers stay out until close; readers see the new schema at once', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { x: 'f64', y: 'u8' })
  v.push({ x: 1, y: 2 })
  const w = v.addColumn('z', 'i16').renameColumn('z', 'q')
  const held = JSON.parse(runChild('access.mjs', [path]).stdout) as { readWrite: string; readOnly: string }
  // A reader opens beside the writer, and finds the new schema, not the one it asked for.
  t.deepEqual([held.readWrite, held.readOnly], ['ELOCKED', 'ESCHEMA'])
  code(t, () => MmapVec.open(path, { x: 'f64', y: 'u8', q: 'i16' }), 'ELOCKED')
  w.close()
  const after = JSON.parse(runChild('access.mjs', [path]).stdout) as { readWrite: string; message: string }
  t.is(after.readWrite, 'ESCHEMA')
  t.regex(after.message, /vec\.dropColumn\('q'\)/)
  using again = MmapVec.open(path, { q: 'i16', x: 'f64', y: 'u8' })
  t.deepEqual(again.get(0), { q: 0, x: 1, y: 2 })
})

test('temp vecs change their schema too', (t) => {
  using v = MmapVec.temp({ id: 'u32' })
  for (let i = 0; i < 3000; i++) v.push({ id: i })
  const w = v.addColumn('hp', 'u16').renameColumn('id', 'key')
  w.set(10, { hp: 3 })
  for (let i = 3000; i < 9000; i++) w.push({ key: i, hp: 1 })
  const x = w.dropColumn('key')
  t.deepEqual([x.get(10), x.get(2999), x.get(8999)], [{ hp: 3 }, { hp: 0 }, { hp: 1 }])
})

test('flush and close after a change keep the data; shrinkToFit and reserve work on new columns', async (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { id: 'u32' }, { capacity: 10_000 })
  for (let i = 0; i < 100; i++) v.push({ id: i })
  const w = v.addColumn('big', 'u64')
  w.set(99, { big: 5n })
  await w.flush()
  w.shrinkToFit()
  t.true(w.capacity < 10_000)
  w.reserve(20_000)
  t.deepEqual(w.get(99), { id: 99, big: 5n })
  w.close()
  using r = MmapVec.open(path, { id: 'u32', big: 'u64' }, { readOnly: true })
  t.deepEqual(r.get(99), { id: 99, big: 5n })
  t.is(r.length, 100)
})

// Kill at any moment: a child pushes rows and cycles the schema (add, rename, drop) until it is
// killed at a random instant. After every kill the vec must open with exactly one of the
// schemas of the cycle, every row below its length must be what the child wrote, and what a
// cut-off change left must never pile up (the next change removes it).
const soak = Number(process.env.MMAPVEC_SOAK) || 1
const KILLS = 60 * soak
const seed = Number(process.env.MMAPVEC_SEED) || 20261123
let prng = seed
const rnd = () => ((prng = (Math.imul(prng, 1664525) + 1013904223) >>> 0) / 2 ** 32)

type ChaosRow = { a: number; b: bigint; c: number[]; ok: boolean; hp?: number; health?: number }

async function lane(id: number, kills: number) {
  const stats = { kills: 0, rows: 0, leftovers: 0, states: [0, 0, 0] }
  const path = join(dir, `chaos${id}.mvec`)
  rmSync(path, { recursive: true, force: true })
  for (let k = 0; k < kills; k++) {
    const c = startChild('schema-chaos.mjs', [path, String(seed + id * 1_000_003 + k)])
    await c.ready
    await new Promise((r) => setTimeout(r, rnd() * 80))
    c.child.kill('SIGKILL')
    await c.exited
    stats.kills++
    const files = readdirSync(path)
    const opened: number[] = []
    const schemas = States as Record<string, FieldType>[]
    for (const [s, schema] of schemas.entries()) {
      try {
        MmapVec.open(path, schema).close()
        opened.push(s)
      } catch (e) {
        if ((e as MmapVecError).code !== 'ESCHEMA') throw new Error(`after kill ${k} of lane ${id}: ${String(e)} (files: ${files.join(' ')})`, { cause: e })
      }
    }
    if (opened.length !== 1) throw new Error(`after kill ${k} of lane ${id}: opens with schemas ${JSON.stringify(opened)}`)
    const v = MmapVec.open(path, schemas[opened[0]])
    try {
      stats.states[opened[0]]++
      const extraName = ['', 'hp', 'health'][opened[0]]
      // A cut-off change leaves at most a column file and a header file that nothing names;
      // opening leaves them, and the next change removes them before it makes its own.
      const cols = Object.keys(v.schema).length
      const now = readdirSync(path).sort()
      const colFiles = now.filter((f) => /^c\d+\.col$/.test(f)).length
      const tmp = now.filter((f) => /^\.header-.*\.tmp$/.test(f)).length
      const left = colFiles - cols + tmp
      // + 2: the header and the live file.
      if (now.join(' ') !== files.sort().join(' ') || colFiles + tmp + 2 !== now.length || left < 0 || left > 2) {
        throw new Error(`after kill ${k} of lane ${id}: files ${now.join(' ')} (before the opens: ${files.join(' ')}) for ${cols} columns`)
      }
      if (left > 0) stats.leftovers++
      for (let i = 0; i < v.length; i++) {
        const got = v.get(i) as ChaosRow
        const want = (row as (i: number) => ChaosRow)(i)
        const x = extraName === '' ? 0 : (got as Record<string, unknown>)[extraName]
        if (got.a !== want.a || got.b !== want.b || got.c[0] !== want.c[0] || got.c[1] !== want.c[1] || got.ok !== want.ok || (x !== 0 && x !== (extra as (i: number) => number)(i))) {
          throw new Error(`after kill ${k} of lane ${id}: row ${i} of ${v.length} is ${JSON.stringify(got, (_: string, y: unknown) => (typeof y === 'bigint' ? `${y}n` : y))}`)
        }
      }
      stats.rows += v.length
    } finally {
      v.close()
    }
  }
  return stats
}

test(`${KILLS} kills during schema changes leave the old schema or the new one, with every row`, async (t) => {
  const lanes = await Promise.all([lane(0, KILLS / 2), lane(1, KILLS / 2)])
  const total = lanes.reduce((s, r) => ({
    kills: s.kills + r.kills,
    rows: s.rows + r.rows,
    leftovers: s.leftovers + r.leftovers,
    states: s.states.map((x, i) => x + r.states[i]),
  }))
  t.log(
    `seed ${seed}: ${total.kills} kills, ${total.rows} rows checked, found in states ${total.states.join('/')} (plain/hp/health), ` +
      `${total.leftovers} times a cut-off change had left files behind (removed by the next change)`,
  )
  t.is(total.kills, KILLS)
  t.true(total.rows > 0, 'the children made progress before being killed')
})
