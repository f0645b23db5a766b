/**
 * Hostile use of the API: getters and Proxies that re-enter the vec in the middle of a call,
 * transferred and detached buffers, values and numbers at and past every limit, odd names and
 * paths. Each case asserts the promises: a coded MmapVecError (never a raw TypeError), nothing
 * half-written (the vec agrees with a plain model of what succeeded), and a vec that still opens.
 */
import test, { type ExecutionContext } from 'ava'
import { MmapVec, MmapVecError, type ErrorCode } from 'mmapvec'
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MessageChannel } from 'node:worker_threads'
import { fingerprint, mode, runChild, scratch } from './helpers/util.mjs'

const Row = { x: 'f64', pos: ['f32', 3], alive: 'bool' } as const
type R = { x: number; pos: number[]; alive: boolean }
const row = (i: number): R => ({ x: i, pos: [i, i + 0.5, -i], alive: i % 2 === 0 })

function fresh(rows = 0) {
  const path = join(scratch(), 'v.mvec')
  const v = MmapVec.open(path, Row)
  for (let i = 0; i < rows; i++) v.push(row(i))
  return { v, path }
}

function fails(t: ExecutionContext, f: () => unknown, code: ErrorCode, path?: string): MmapVecError | undefined {
  try {
    f()
  } catch (e) {
    if (!(e instanceof MmapVecError)) {
      t.fail(`not an MmapVecError: ${String((e as Error)?.stack ?? e)}`)
      return undefined
    }
    t.is(e.code, code, e.message)
    if (path !== undefined) t.true(e.message.includes(path), `the message names ${path}: ${e.message}`)
    return e
  }
  t.fail(`expected ${code}, nothing was thrown`)
  return undefined
}

/** Every row of `path`, read back by a fresh open (the vec must still open). */
function reread(path: string): R[] {
  using w = MmapVec.open(path, Row)
  return [...w]
}

// ---- re-entrant getters and Proxies ----

test('push: a getter that truncates and shrinks the vec runs first; the row lands after what is left', (t) => {
  const { v, path } = fresh(3000)
  const r = { x: 7, alive: true, get pos() {
    v.truncate(10)
    v.shrinkToFit()
    return [1, 2, 3]
  } }
  t.is(v.push(r), 11)
  t.deepEqual(v.get(10), { x: 7, pos: [1, 2, 3], alive: true })
  t.deepEqual(v.get(9), row(9))
  v.close()
  t.is(reread(path).length, 11)
})

test('push: a getter that pushes rows: both rows land whole, the inner one first', (t) => {
  const { v, path } = fresh(5)
  const r = { x: 100, alive: false, get pos() {
    v.push(row(50))
    return [9, 9, 9]
  } }
  t.is(v.push(r), 7)
  t.deepEqual(v.get(5), row(50))
  t.deepEqual(v.get(6), { x: 100, pos: [9, 9, 9], alive: false })
  v.close()
  t.deepEqual(reread(path).slice(5), [row(50), { x: 100, pos: [9, 9, 9], alive: false }])
})

test('push: an array-like whose element getter clears the vec does not bring cleared rows back', (t) => {
  const { v, path } = fresh(20)
  const pos = { length: 3, 0: 1, get 1() {
    v.clear()
    return 2
  }, 2: 3 }
  t.is(v.push({ x: 1, pos: pos, alive: true }), 1)
  t.is(v.length, 1)
  v.close()
  t.deepEqual(reread(path), [{ x: 1, pos: [1, 2, 3], alive: true }])
})

test('push: a getter that closes the vec makes the push fail with ECLOSED, nothing written', (t) => {
  const { v, path } = fresh(4)
  fails(t, () => v.push({ x: 1, alive: true, get pos() {
    v.close()
    return [1, 2, 3]
  } }), 'ECLOSED', path)
  t.is(reread(path).length, 4)
})

test('push: a Proxy row and a Proxy array are read once per field and element', (t) => {
  const { v } = fresh(0)
  const reads = new Map<PropertyKey, number>()
  const count = <T extends object>(o: T) =>
    new Proxy(o, { get(target, k, recv) {
      reads.set(k, (reads.get(k) ?? 0) + 1)
      return Reflect.get(target, k, recv) as unknown
    } })
  v.push(count({ x: 1, pos: count([1, 2, 3]), alive: true }))
  for (const k of ['x', 'pos', 'alive', '0', '1', '2', 'length']) t.is(reads.get(k), 1, `read ${k} ${reads.get(k)} times`)
  t.deepEqual(v.get(0), { x: 1, pos: [1, 2, 3], alive: true })
})

test('push: an element getter that returns a number when checked and an object when written cannot sneak in', (t) => {
  const { v } = fresh(0)
  let n = 0
  const pos = { length: 3, 0: 1, 1: 2, get 2() {
    return n++ === 0 ? 3 : { valueOf: () => 99 }
  } }
  v.push({ x: 1, pos: pos as unknown as number[], alive: true })
  t.deepEqual(v.get(0).pos, [1, 2, 3])
})

test('set: a getter that truncates the vec below the index fails with ERANGE, nothing written', (t) => {
  const { v, path } = fresh(100)
  fails(t, () => v.set(50, { get x() {
    v.truncate(10)
    return -1
  } }), 'ERANGE', path)
  t.is(v.length, 10)
  v.push(row(10))
  v.close()
  t.deepEqual(reread(path), Array.from({ length: 11 }, (_, i) => row(i)))
})

test('pushMany (rows): a generator that pushes and clears in between: all rows of the call land together, after', (t) => {
  const { v, path } = fresh(10)
  function* rows() {
    yield row(100)
    v.push(row(200))
    yield row(101)
    v.clear()
    yield row(102)
  }
  t.is(v.pushMany(rows()), 3)
  t.deepEqual([...v], [row(100), row(101), row(102)])
  v.close()
  t.deepEqual(reread(path), [row(100), row(101), row(102)])
})

test('pushMany (rows): a bad row far in, or an iterator that throws, adds nothing', (t) => {
  const { v, path } = fresh(3)
  fails(t, () => v.pushMany([row(3), row(4), { x: 'no' } as unknown as R]), 'EINVAL', path)
  t.throws(() => v.pushMany((function* () {
    yield row(3)
    throw new Error('the source failed')
  })()), { message: 'the source failed' })
  t.is(v.length, 3)
  v.close()
  t.is(reread(path).length, 3)
})

test('pushMany (rows) of the vec itself doubles it once and ends', (t) => {
  const { v } = fresh(50)
  t.is(v.pushMany(v), 100)
  t.deepEqual(v.get(75), row(25))
})

test('pushMany (columns): a getter on the object that truncates runs before the length is read', (t) => {
  const { v, path } = fresh(30)
  const cols = {
    x: new Float64Array([1, 2]),
    pos: new Float32Array(6),
    get alive() {
      v.truncate(5)
      return new Uint8Array([1, 0])
    },
  }
  t.is(v.pushMany(cols), 7)
  t.deepEqual(v.get(5), { x: 1, pos: [0, 0, 0], alive: true })
  v.close()
  t.is(reread(path).length, 7)
})

test('pushMany (columns): a column detached by a later getter is EINVAL, nothing added', (t) => {
  const { v, path } = fresh(4)
  const x = new Float64Array(2)
  const cols = {
    x,
    get pos() {
      structuredClone(x.buffer, { transfer: [x.buffer] })
      return new Float32Array(6)
    },
    alive: [true, false],
  }
  fails(t, () => v.pushMany(cols), 'EINVAL', path)
  t.is(v.length, 4)
})

test('pushMany (columns): array-likes with negative, fractional or huge lengths are EINVAL and change nothing', (t) => {
  const { v, path } = fresh(4)
  for (const length of [-3, 1.5, 2 ** 53, NaN]) {
    fails(t, () => v.pushMany({ x: { length }, pos: { length: 0 }, alive: { length: 0 } } as never), 'EINVAL', path)
    t.is(v.length, 4)
  }
  v.close()
  t.is(reread(path).length, 4)
})

test('pushMany (columns): a bool column takes a Uint8Array of 0 and 1, such as another vec\'s columns', (t) => {
  const { v: a } = fresh(40)
  const { v: b, path } = fresh(0)
  t.is(b.pushMany(a.columns), 40)
  t.deepEqual([...b], [...a])
  fails(t, () => b.pushMany({ x: new Float64Array(1), pos: new Float32Array(3), alive: new Uint8Array([2]) }), 'EINVAL', path)
  fails(t, () => b.pushMany({ x: new Float64Array(1), pos: new Float32Array(3), alive: new Int8Array([1]) } as never), 'EINVAL', path)
  t.is(b.length, 40)
  using s = MmapVec.temp('bool')
  t.is(s.pushMany(new Uint8Array([1, 0, 1])), 3)
  t.deepEqual([...s], [true, false, true])
  t.throws(() => s.pushMany(new Uint8Array([1, 7])), { code: 'EINVAL' } as object)
})

// ---- transferred buffers ----

test('a column buffer given to structuredClone or postMessage with a transfer list loses no row', (t) => {
  const { v, path } = fresh(100)
  const col = v.columns.x
  let transferred = false
  try {
    structuredClone(col, { transfer: [col.buffer as ArrayBuffer] })
    transferred = true
  } catch (e) {
    t.is((e as Error).name, 'DataCloneError')
  }
  const { port1 } = new MessageChannel()
  try {
    port1.postMessage(v.columns.pos, [v.columns.pos.buffer as ArrayBuffer])
  } catch (e) {
    t.is((e as Error).name, 'DataCloneError')
  }
  port1.close()
  for (let i = 100; i < 200; i++) v.push(row(i))
  if (transferred && col.length === 0) {
    // Only where the runtime lets a buffered column be transferred (Node 24's buffered mode):
    // the rows that left are reported, and the files keep the rows of the last flush.
    t.is(mode, 'buffered')
    fails(t, () => v.columns, 'EINVAL', path)
    fails(t, () => v.flushSync(), 'EINVAL', path)
    fails(t, () => v.close(), 'EINVAL', path)
    t.true(v.closed)
    t.is(reread(path).length, 0)
    return
  }
  v.close()
  t.deepEqual(reread(path), Array.from({ length: 200 }, (_, i) => row(i)))
})

// ---- values and numbers at the limits ----

test('values at and past the limits: stored as TypedArrays store them, or refused with EINVAL', (t) => {
  const path = join(scratch(), 'n.mvec')
  using v = MmapVec.open(path, { f: 'f32', d: 'f64', u: 'u8', b: 'u64', i: 'i64' })
  v.push({ f: 1e39, d: -0, u: 256, b: 2n ** 64n + 1n, i: -(2n ** 63n) - 1n })
  t.deepEqual(v.get(0), { f: Infinity, d: -0, u: 0, b: 1n, i: 2n ** 63n - 1n })
  v.push({ f: NaN, d: 2 ** 53 + 1, u: -1, b: 0n, i: 0n })
  t.true(Number.isNaN(v.get(1).f))
  t.is(v.get(1).u, 255)
  for (const bad of [{ f: '1' }, { d: 1n }, { b: 1 }, { u: true }, { f: null }, { f: undefined }, { f: { valueOf: () => 1 } }]) {
    fails(t, () => v.push({ f: 0, d: 0, u: 0, b: 0n, i: 0n, ...bad } as never), 'EINVAL', path)
  }
  t.is(v.length, 2)
  for (const i of [-0.5, 2, 2 ** 53, Infinity, NaN, -1]) {
    const e = fails(t, () => v.get(i), Number.isInteger(i) ? 'ERANGE' : 'EINVAL', path)
    t.truthy(e)
  }
  t.deepEqual(v.get(-0), v.get(0))
  t.is(v.at(-3), undefined)
  fails(t, () => v.truncate(-1), 'EINVAL', path)
  fails(t, () => v.truncate(NaN), 'EINVAL', path)
  fails(t, () => v.reserve(2 ** 53 - 1), 'ERANGE', path)
  fails(t, () => v.prefetch(5, 2.5), 'EINVAL', path)
  v.prefetch(10, 2)
  t.is(v.length, 2)
})

test('names: 255 bytes work, 256 bytes, lone surrogates and NUL bytes are EINVAL naming the path', (t) => {
  const dir = scratch()
  const long = 'é'.repeat(127) + 'a' // 255 bytes
  using v = MmapVec.open(join(dir, 'a.mvec'), { [long]: 'u8' })
  v.push({ [long]: 1 })
  t.deepEqual(v.get(0), { [long]: 1 })
  const path = join(dir, 'b.mvec')
  fails(t, () => MmapVec.open(path, { [long + 'a']: 'u8' }), 'EINVAL', path)
  fails(t, () => MmapVec.open(path, { '\uD800': 'u8' }), 'EINVAL', path)
  fails(t, () => v.addColumn('\uDC00x', 'u8'), 'EINVAL', v.path)
  fails(t, () => v.renameColumn(long, 'a\uD800'), 'EINVAL', v.path)
  t.deepEqual(Object.keys(v.schema), [long])
  fails(t, () => MmapVec.open(join(dir, 'c\0d'), 'u8'), 'EINVAL')
  fails(t, () => MmapVec.open(join(dir, 'c\uD800'), 'u8'), 'EINVAL')
  t.false(existsSync(path))
  t.deepEqual(readdirSync(dir).sort(), ['a.mvec'])
})

test('a vec named with all 255 bytes a file name may have is created, removed and re-created', (t) => {
  const dir = scratch()
  const path = join(dir, 'v'.repeat(250) + '.mvec')
  const v = MmapVec.create(path, 'f64')
  v.push(1)
  v.close()
  MmapVec.remove(path)
  t.deepEqual(readdirSync(dir), [])
  using w = MmapVec.create(path, 'f64')
  t.is(w.length, 0)
})

test('a create that cannot finish leaves nothing behind, parent directories included', (t) => {
  const dir = scratch()
  const path = join(dir, 'a', 'b', 'v.mvec')
  fails(t, () => MmapVec.create(path, 'f64', { reservation: 2 ** 53 - 1 }), 'EINVAL', path)
  t.deepEqual(readdirSync(dir), [])
})

test('paths that are files, dangling symlinks or "." are refused with a code, and never changed', (t) => {
  const dir = scratch()
  const file = join(dir, 'file')
  writeFileSync(file, 'not a vec')
  fails(t, () => MmapVec.open(file, 'u8'), 'EFORMAT', file)
  fails(t, () => MmapVec.remove(file), 'EFORMAT', file)
  const dangling = join(dir, 'dangling')
  symlinkSync(join(dir, 'missing'), dangling)
  fails(t, () => MmapVec.remove(dangling), 'EINVAL', dangling)
  fails(t, () => MmapVec.open(dangling, 'u8', { create: false }), 'ENOENT', dangling)
  mkdirSync(join(dir, 'v'))
  fails(t, () => MmapVec.remove('.'), 'EINVAL')
  fails(t, () => MmapVec.remove(`${dir}/v/..`), 'EINVAL')
  t.deepEqual(readdirSync(dir).sort(), ['dangling', 'file', 'v'])
})

test('options with getters and Proxies are read once, before anything is created', (t) => {
  const dir = scratch()
  const path = join(dir, 'o.mvec')
  let reads = 0
  const options = new Proxy({ capacity: 10 }, { get(target, k, recv) {
    reads++
    return Reflect.get(target, k, recv) as unknown
  } })
  using v = MmapVec.open(path, 'u8', options)
  t.is(v.capacity >= 10, true)
  t.true(reads <= 20)
  fails(t, () => MmapVec.open(join(dir, 'p.mvec'), 'u8', { capacity: -1 }), 'EINVAL')
  t.false(existsSync(join(dir, 'p.mvec')))
})

test('every call on a closed vec is ECLOSED (close itself does nothing)', (t) => {
  const { v, path } = fresh(3)
  v.close()
  v.close()
  const calls: [string, () => unknown][] = [
    ['push', () => v.push(row(0))],
    ['pushMany', () => v.pushMany([row(0)])],
    ['get', () => v.get(0)],
    ['set', () => v.set(0, { x: 1 })],
    ['at', () => v.at(0)],
    ['pop', () => v.pop()],
    ['swapRemove', () => v.swapRemove(0)],
    ['truncate', () => v.truncate(0)],
    ['reserve', () => v.reserve(1)],
    ['shrinkToFit', () => v.shrinkToFit()],
    ['prefetch', () => v.prefetch()],
    ['columns', () => v.columns],
    ['addColumn', () => v.addColumn('z', 'u8')],
    ['flushSync', () => v.flushSync()],
    ['version', () => v.version],
  ]
  for (const [name, call] of calls) {
    const e = fails(t, call, name === 'get' || name === 'set' || name === 'swapRemove' ? 'ECLOSED' : 'ECLOSED', path)
    if (e === undefined) t.log(name)
  }
  t.is(v.length, 0)
  t.is(reread(path).length, 3)
})

test('a remove that may rename the vec but not delete its files is EACCES and leaves the vec where it was', (t) => {
  // As the unprivileged user "nobody" (root may delete anything): the parent is open to all,
  // the vec's own directory is not nobody's to change.
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined
  if (asUser === undefined) {
    t.pass('needs root to run a child as another user')
    return
  }
  const top = scratch()
  chmodSync(top, 0o755)
  const parent = join(top, 'open')
  mkdirSync(parent)
  chmodSync(parent, 0o777)
  const path = join(parent, 'v.mvec')
  const v = MmapVec.open(path, Row)
  for (let i = 0; i < 10; i++) v.push(row(i))
  v.close()
  chmodSync(path, 0o755)
  const before = fingerprint(path)
  const out = JSON.parse(runChild('remove.mjs', [path], {}, asUser).stdout) as { code?: string; message?: string }
  t.is(out.code, 'EACCES', JSON.stringify(out))
  t.true(out.message?.includes(path), out.message)
  t.deepEqual(readdirSync(parent), ['v.mvec'])
  t.deepEqual(fingerprint(path), before)
  t.deepEqual(reread(path), Array.from({ length: 10 }, (_, i) => row(i)))
})

test('a getter that changes the schema mid-row: ESCHEMA, nothing written into the wrong columns', (t) => {
  const path = join(scratch(), 's.mvec')
  const v = MmapVec.open(path, { a: 'u8', b: 'u8', c: 'u8' })
  v.push({ a: 1, b: 2, c: 3 })
  const w = v as unknown as MmapVec
  fails(t, () => v.push({ get a() {
    w.dropColumn('a')
    w.addColumn('d', 'u8')
    return 10
  }, b: 20, c: 30 }), 'ESCHEMA', path)
  t.deepEqual([...w], [{ b: 2, c: 3, d: 0 }])
  fails(t, () => w.set(0, { get b() {
    w.renameColumn('c', 'e')
    return 9
  } }), 'ESCHEMA', path)
  fails(t, () => w.pushMany({ get b() {
    w.dropColumn('e')
    return new Uint8Array(1)
  }, d: new Uint8Array(1), e: new Uint8Array(1) }), 'ESCHEMA', path)
  t.deepEqual([...w], [{ b: 2, d: 0 }])
  w.close()
  using again = MmapVec.open(path, undefined)
  t.deepEqual([...again], [{ b: 2, d: 0 }])
})

test('pushMany of a detached, shrunk-under or stale TypedArray is EINVAL, nothing added', (t) => {
  const { v, path } = fresh(0)
  using s = MmapVec.temp('f64')
  const detached = new Float64Array(4)
  structuredClone(detached.buffer, { transfer: [detached.buffer] })
  fails(t, () => s.pushMany(detached), 'EINVAL', s.path)
  const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void }
  const b = new Resizable(64, { maxByteLength: 128 })
  const shrunk = new Float64Array(b, 0, 8)
  b.resize(8)
  fails(t, () => s.pushMany(shrunk), 'EINVAL', s.path)
  const pos = new Float32Array(3)
  structuredClone(pos.buffer, { transfer: [pos.buffer] })
  fails(t, () => v.pushMany({ x: new Float64Array(1), pos, alive: new Uint8Array(1) }), 'EINVAL', path)
  t.is(s.length, 0)
  t.is(v.length, 0)
})

test('a path with a name past 255 bytes is EINVAL naming the limit, not EIO', (t) => {
  const path = join(scratch(), 'n'.repeat(256), 'v.mvec')
  const e = fails(t, () => MmapVec.open(path, 'u8'), 'EINVAL', path)
  t.regex(e?.message ?? '', /255 bytes/)
})

test('a view the program detached itself (ArrayBuffer.prototype.transfer) is reported, never silently written past', (t) => {
  const { v, path } = fresh(10)
  const transfer = (ArrayBuffer.prototype as { transfer?: (this: ArrayBuffer) => ArrayBuffer }).transfer
  let detached = false
  try {
    if (transfer !== undefined) {
      transfer.call(v.columns.x.buffer as ArrayBuffer)
      detached = v.columns.x.length === 0 || (v.columns.x.buffer as { detached?: boolean }).detached === true
    }
  } catch {
    // The runtime refused (Node 20 has no transfer; WebAssembly memories cannot be detached).
  }
  if (!detached) {
    v.close()
    t.deepEqual(reread(path), Array.from({ length: 10 }, (_, i) => row(i)))
    return
  }
  fails(t, () => v.flushSync(), 'EINVAL', path)
  fails(t, () => v.close(), 'EINVAL', path)
  t.true(v.closed)
  t.is(reread(path).length, 10)
})

test('a new vec inside another vec is refused (removing the outer one would delete it while open)', (t) => {
  const { v, path } = fresh(1)
  const inner = join(path, 'inner.mvec')
  fails(t, () => MmapVec.open(inner, 'u8'), 'EINVAL', inner)
  fails(t, () => MmapVec.create(join(path, 'a', 'b.mvec'), 'u8'), 'EINVAL')
  t.false(existsSync(inner))
  v.close()
  t.is(reread(path).length, 1)
})

test('removing a vec through a symbolic link is EINVAL naming the vec, and removes nothing', (t) => {
  const { v, path } = fresh(2)
  v.close()
  const link = join(scratch(), 'link')
  symlinkSync(path, link)
  const e = fails(t, () => MmapVec.remove(link), 'EINVAL', link)
  t.true(e?.message.includes(path), e?.message)
  t.true(existsSync(link))
  t.is(reread(link).length, 2)
})
