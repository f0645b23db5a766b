import test from 'ava'
import { MmapVec, MmapVecError, type ErrorCode } from 'mmapvec'
import { chmodSync, mkdirSync, readFileSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fingerprint, runChild, scratch } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = () => join(dir, `e${n++}.mvec`)

function code(t: { throws: (fn: () => unknown, e?: object) => unknown }, fn: () => unknown, want: ErrorCode, path?: string): MmapVecError {
  const e = t.throws(fn, { instanceOf: MmapVecError }) as MmapVecError
  if (e.code !== want) throw new Error(`expected ${want}, got ${e.code}: ${e.message}`)
  if (path !== undefined && !e.message.includes(path)) throw new Error(`message does not name ${path}: ${e.message}`)
  return e
}

/** A vec with 100 rows on disk, closed. */
function made(schema: Record<string, 'f64' | 'u8'> = { x: 'f64', y: 'u8' }): string {
  const path = fresh()
  const v = MmapVec.open(path, schema)
  for (let i = 0; i < 100; i++) v.push({ x: i, y: i })
  v.close()
  return path
}

test('ELOCKED: a second read-write open, in this process or another; the message says which; readers open beside', (t) => {
  const path = made()
  using v = MmapVec.open(path, { x: 'f64', y: 'u8' })
  const e = code(t, () => MmapVec.open(path, { x: 'f64', y: 'u8' }), 'ELOCKED', path)
  t.regex(e.message, /this same process/)
  t.regex(e.message, /lockTimeoutMs/)
  using r = MmapVec.open(path, { x: 'f64', y: 'u8' }, { readOnly: true })
  t.is(r.length, 100)
  const other = JSON.parse(runChild('access.mjs', [path]).stdout) as { readWrite: string; readOnly: string; message: string }
  t.is(other.readWrite, 'ELOCKED')
  t.is(other.readOnly, 'ok')
  t.regex(other.message, /another process/)
  t.is(v.length, 100)
})

test('EEXIST: create over an existing vec or file', (t) => {
  const path = made()
  code(t, () => MmapVec.create(path, { x: 'f64', y: 'u8' }), 'EEXIST', path)
  const file = join(dir, 'plain-file')
  writeFileSync(file, 'hello')
  code(t, () => MmapVec.create(file, { x: 'f64' }), 'EEXIST', file)
  t.is(readFileSync(file, 'utf8'), 'hello')
})

test('ENOENT: open with create: false, readOnly or remove of a missing vec', (t) => {
  const path = fresh()
  code(t, () => MmapVec.open(path, 'f64', { create: false }), 'ENOENT', path)
  code(t, () => MmapVec.open(path, 'f64', { readOnly: true }), 'ENOENT', path)
  code(t, () => MmapVec.remove(path), 'ENOENT', path)
})

test('EFORMAT: things that are not vecs, and damaged vecs; nothing on disk changes', (t) => {
  const file = join(dir, 'not-a-vec.txt')
  writeFileSync(file, 'hello')
  code(t, () => MmapVec.open(file, 'f64'), 'EFORMAT', file)
  t.is(readFileSync(file, 'utf8'), 'hello')
  const empty = join(dir, 'empty-dir')
  mkdirSync(empty)
  code(t, () => MmapVec.open(empty, 'f64'), 'EFORMAT', empty)
  code(t, () => MmapVec.remove(empty), 'EFORMAT', empty)

  const damages: [string, (p: string) => void][] = [
    ['truncated header', (p) => truncateSync(join(p, 'header'), 40)],
    ['garbage header', (p) => writeFileSync(join(p, 'header'), Buffer.alloc(4096, 0x5a))],
    ['flipped schema byte', (p) => {
      const b = readFileSync(join(p, 'header'))
      b[80] ^= 1
      writeFileSync(join(p, 'header'), b)
    }],
    ['length beyond the column files', (p) => {
      const b = readFileSync(join(p, 'header'))
      b.writeDoubleLE(1e9, 32)
      writeFileSync(join(p, 'header'), b)
    }],
    ['short column file', (p) => truncateSync(join(p, 'c0.col'), 100)],
    ['missing column file', (p) => unlinkSync(join(p, 'c1.col'))],
    ['header is a symlink to /dev/zero', (p) => {
      unlinkSync(join(p, 'header'))
      symlinkSync('/dev/zero', join(p, 'header'))
    }],
    ['column file is a directory', (p) => {
      unlinkSync(join(p, 'c0.col'))
      mkdirSync(join(p, 'c0.col'))
    }],
  ]
  for (const [what, damage] of damages) {
    const path = made()
    damage(path)
    const before = fingerprint(path)
    const e = code(t, () => MmapVec.open(path, { x: 'f64', y: 'u8' }), 'EFORMAT', path)
    t.truthy(e.message, what)
    t.deepEqual(fingerprint(path), before, `${what}: the failed open changed the files`)
  }
})

test('EARCH: a vec written on the other byte order', (t) => {
  const path = made()
  const b = readFileSync(join(path, 'header'))
  b.writeUInt32BE(0x0a0b0c0d, 8)
  writeFileSync(join(path, 'header'), b)
  const e = code(t, () => MmapVec.open(path, { x: 'f64', y: 'u8' }), 'EARCH', path)
  t.regex(e.message, /byte order/)
})

test('ESCHEMA shows both schemas; EVERSION both versions; the vec is untouched', (t) => {
  const path = fresh()
  MmapVec.open(path, { pos: ['f32', 3], id: 'u32' }, { version: 2 }).close()
  const before = fingerprint(path)
  const e = code(t, () => MmapVec.open(path, { pos: ['f64', 3], id: 'u32' }), 'ESCHEMA', path)
  t.regex(e.message, /\{ pos: \[f32, 3\], id: u32 \}/)
  t.regex(e.message, /\{ pos: \[f64, 3\], id: u32 \}/)
  code(t, () => MmapVec.open(path, 'f64'), 'ESCHEMA', path)
  const v = code(t, () => MmapVec.open(path, { pos: ['f32', 3], id: 'u32' }, { version: 3 }), 'EVERSION', path)
  t.regex(v.message, /version 2/)
  t.deepEqual(fingerprint(path), before)
})

test('ECLOSED: every use after close', (t) => {
  const v = MmapVec.open(fresh(), { x: 'f64' })
  v.push({ x: 1 })
  v.close()
  for (const use of [
    () => v.push({ x: 1 }),
    () => v.get(0),
    () => v.set(0, { x: 2 }),
    () => v.at(0),
    () => v.pop(),
    () => v.columns,
    () => v.truncate(0),
    () => v.reserve(1),
    () => v.shrinkToFit(),
    () => v.flushSync(),
    () => v.prefetch(),
    () => v.pushMany([{ x: 1 }]),
  ]) {
    code(t, use, 'ECLOSED')
  }
  return t.throwsAsync(v.flush(), { code: 'ECLOSED' } as object)
})

test('EREADONLY: every change to a readOnly vec', (t) => {
  const path = made()
  using v = MmapVec.open(path, { x: 'f64', y: 'u8' }, { readOnly: true })
  t.true(v.readOnly)
  for (const use of [
    () => v.push({ x: 1, y: 1 }),
    () => v.set(0, { x: 2 }),
    () => v.pop(),
    () => v.swapRemove(0),
    () => v.truncate(0),
    () => v.clear(),
    () => v.reserve(10),
    () => v.shrinkToFit(),
    () => v.pushMany([{ x: 1, y: 1 }]),
  ]) {
    code(t, use, 'EREADONLY', path)
  }
  t.is(v.length, 100)
  // A write through a view of a readOnly vec stays in this process: no crash, no change on disk.
  const before = fingerprint(path)
  v.columns.x[0] = 12345
  t.is(v.get(0).x, 12345)
  t.deepEqual(fingerprint(path), before)
})

test('ERANGE and EINVAL: indexes', (t) => {
  using v = MmapVec.open(fresh(), { x: 'f64' })
  v.push({ x: 1 })
  code(t, () => v.get(1), 'ERANGE')
  code(t, () => v.get(-1), 'ERANGE')
  code(t, () => v.set(5, { x: 1 }), 'ERANGE')
  code(t, () => v.swapRemove(1), 'ERANGE')
  code(t, () => v.get(0.5), 'EINVAL')
  code(t, () => v.get('0' as unknown as number), 'EINVAL')
  code(t, () => v.get(NaN), 'EINVAL')
  code(t, () => v.at(1.5), 'EINVAL')
  code(t, () => v.truncate(-1), 'EINVAL')
  code(t, () => v.reserve(0.5), 'EINVAL')
})

test('EINVAL: bad schemas fail before anything touches the disk', (t) => {
  const bad: unknown[] = [
    {}, 'f16', ['f32', 0], ['f32', -1], ['f32', 1.5], { x: 'f16' }, { x: ['u8'] }, { '': 'u8' }, null, 42, { x: 1 },
  ]
  for (const schema of bad) {
    const path = fresh()
    code(t, () => MmapVec.open(path, schema as 'f64'), 'EINVAL')
    t.throws(() => readFileSync(join(path, 'header')), { code: 'ENOENT' }, `schema ${JSON.stringify(schema)} created files`)
  }
})

test('EINVAL: bad options and values', (t) => {
  code(t, () => MmapVec.open(fresh(), 'f64', { capacity: -1 }), 'EINVAL')
  code(t, () => MmapVec.open(fresh(), 'f64', { readonly: true } as object), 'EINVAL')
  code(t, () => MmapVec.open(fresh(), 'f64', { lockTimeoutMs: 'soon' } as unknown as object), 'EINVAL')
  code(t, () => MmapVec.open(fresh(), 'f64', { autoFlushMs: 0 }), 'EINVAL')
  code(t, () => MmapVec.open('', 'f64'), 'EINVAL')
  using v = MmapVec.open(fresh(), { x: 'f32', b: 'i64', ok: 'bool', v: ['f32', 2] })
  const rows: unknown[] = [
    null, 5, { x: 1, b: 1, ok: true, v: [1, 2] }, { x: '1', b: 1n, ok: true, v: [1, 2] }, { x: 1, b: 1n, ok: 1, v: [1, 2] },
    { x: 1, b: 1n, ok: true, v: [1] }, { x: 1, b: 1n, ok: true, v: [1, 'a'] }, { b: 1n, ok: true, v: [1, 2] },
  ]
  for (const r of rows) code(t, () => v.push(r as never), 'EINVAL')
  t.is(v.length, 0, 'no rejected row was added')
  using s = MmapVec.open(fresh(), 'u8')
  code(t, () => s.push('1' as unknown as number), 'EINVAL')
  code(t, () => s.values && MmapVec.open(fresh(), { a: 'u8' }).values, 'EINVAL')
})

test('ENOSPC: growth past the file size limit fails cleanly and keeps every row', (t) => {
  const path = fresh()
  // 2000 blocks of 512 bytes: about 1 MiB per file. SIGXFSZ is caught so the write fails with EFBIG.
  const r = runChild('fsize.mjs', [path], {})
  t.is(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { code: string; length: number; message: string; last: number }
  t.is(out.code, 'ENOSPC')
  t.regex(out.message, /RLIMIT_FSIZE/)
  t.true(out.length > 0)
  t.is(out.last, out.length - 1)
  using v = MmapVec.open(path, { x: 'f64' })
  t.is(v.length, out.length)
  t.is(v.get(out.length - 1).x, out.length - 1)
})

test('EACCES: a vec the process may not write opens readOnly only', (t) => {
  const path = made()
  chmodSync(path, 0o755)
  chmodSync(dir, 0o755)
  for (const f of ['header', 'c0.col', 'c1.col']) chmodSync(join(path, f), 0o444)
  // Root may write anything, so the check runs in a child as the unprivileged user "nobody".
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  const out = JSON.parse(runChild('access.mjs', [path], {}, asUser).stdout) as { readWrite: string; readOnly: string; message: string; length: number }
  t.is(out.readWrite, 'EACCES')
  t.true(out.message.includes(path), out.message)
  t.is(out.readOnly, 'ok')
  t.is(out.length, 100)
})
