// A full disk: a 4 MiB tmpfs mounted for the test. Growth that does not fit fails with ENOSPC,
// the vec keeps its old capacity and every row, and no write into a mapped page ever faults
// (disk blocks are reserved with fallocate when the file grows).
import test from 'ava'
import { MmapVec, type MmapVecError } from 'mmapvec'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fingerprint, scratch } from './helpers/util.mjs'

const mountpoint = mkdtempSync(join(tmpdir(), 'mmapvec-small-disk-'))
const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountpoint], { encoding: 'utf8' })
const mounted = mount.status === 0
process.on('exit', () => {
  if (mounted) spawnSync('umount', ['-l', mountpoint])
  rmSync(mountpoint, { recursive: true, force: true })
})
// Mounting needs root (or a user namespace); the RLIMIT_FSIZE case in errors.spec.mts covers
// the same error path without it.
const onSmallDisk = mounted ? test.serial : test.skip
if (!mounted) console.warn(`cannot mount a tmpfs here (${mount.stderr.trim()}): the small-disk tests are skipped`)

const Row = { x: 'f64', y: ['f32', 4] } as const
const row = (i: number) => ({ x: i, y: [i, -i, i / 2, 1] })

onSmallDisk('growth past a full disk is ENOSPC; every row stays and the vec stays usable', (t) => {
  const path = join(mountpoint, 'full.mvec')
  const v = MmapVec.open(path, Row)
  let err: MmapVecError | undefined
  try {
    for (let i = 0; ; i++) v.push(row(i))
  } catch (e) {
    err = e as MmapVecError
  }
  t.is(err?.code, 'ENOSPC')
  t.true(err?.message.includes(path), err?.message)
  t.regex(err?.message ?? '', /no space left/)
  const n = v.length
  t.true(n > 10_000, `only ${n} rows fit`)
  t.is(v.capacity, n, 'the failed growth left the old capacity')
  t.deepEqual(v.get(n - 1), row(n - 1))
  t.throws(() => v.push(row(n)), { code: 'ENOSPC' } as object)
  t.throws(() => v.reserve(1_000_000), { code: 'ENOSPC' } as object)
  t.is(v.capacity, n)
  t.throws(() => v.pushMany({ x: new Float64Array(5000), y: new Float32Array(20_000) }), { code: 'ENOSPC' } as object)
  t.is(v.length, n)
  v.set(0, { x: -1 })
  const { x } = v.columns
  for (let i = 1; i < n; i++) x[i] = i * 2
  v.flushSync()
  v.close()
  using w = MmapVec.open(path, Row)
  t.is(w.length, n)
  t.is(w.get(0).x, -1)
  t.is(w.get(n - 1).x, (n - 1) * 2)
  w.truncate(100)
  w.shrinkToFit()
  w.push(row(100))
  t.is(w.length, 101, 'space given back can be used again')
})

onSmallDisk('creating a vec on a full disk is ENOSPC and leaves nothing behind', (t) => {
  const filler = join(mountpoint, 'filler')
  let size = 4 << 20
  for (;;) {
    try {
      writeFileSync(filler, Buffer.alloc(size))
      break
    } catch {
      size -= 64 << 10
    }
  }
  const before = readdirSync(mountpoint).sort()
  const e = t.throws(() => MmapVec.create(join(mountpoint, 'new.mvec'), Row, { capacity: 100_000 }), { code: 'ENOSPC' } as object)
  t.truthy(e)
  t.deepEqual(readdirSync(mountpoint).sort(), before)
  rmSync(filler)
})

/** Fills the small disk until only `room` bytes (rounded down to pages) are free; returns the filler's path. */
function fill(room = 0): string {
  const filler = join(mountpoint, 'filler')
  const { bavail, bsize } = statfsSync(mountpoint)
  writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - room)))
  return filler
}

onSmallDisk('a sparse copy of a vec (cp --sparse=always) on a full disk: open is ENOSPC, never a SIGBUS on a later write', (t) => {
  // Rows whose column `z` is all zeros: a sparse copy has holes there, and past the rows.
  const src = join(scratch(), 'src.mvec')
  const n = 100_000
  {
    const v = MmapVec.open(src, { x: 'f64', z: 'f64' }, { capacity: n + 50_000 })
    v.pushMany({ x: Float64Array.from({ length: n }, (_, i) => i + 1), z: new Float64Array(n) })
    v.close()
  }
  const copy = join(mountpoint, 'sparse.mvec')
  const cp = spawnSync('cp', ['-r', '--sparse=always', src, copy], { encoding: 'utf8' })
  t.is(cp.status, 0, cp.stderr)
  const zfile = readdirSync(copy).filter((f) => f.endsWith('.col')).sort()[1]
  t.true(statSync(join(copy, zfile)).blocks * 512 < n * 8, 'the copy is sparse')
  let filler = fill()
  const before = fingerprint(copy)
  const e = t.throws(() => MmapVec.open(copy, { x: 'f64', z: 'f64' }), { code: 'ENOSPC' } as object)
  t.true(e?.message.includes(copy), e?.message)
  t.regex(e?.message ?? '', /sparse/)
  t.deepEqual(fingerprint(copy), before, 'the refused open changed nothing')
  // With room for the rows (and 160 KiB more) it opens; every row is there and can be written
  // (its blocks are reserved).
  rmSync(filler)
  const v = MmapVec.open(copy, { x: 'f64', z: 'f64' })
  t.is(v.length, n)
  filler = fill(160 << 10)
  const { z } = v.columns
  for (let i = 0; i < n; i++) z[i] = i
  // The capacity past the rows is a hole in the file: growing into it reserves its blocks,
  // within what the disk has, and past that it is ENOSPC like any growth.
  v.reserve(5000)
  for (let i = 0; i < 5000; i++) v.push({ x: -i, z: -i })
  t.throws(() => v.reserve(50_000), { code: 'ENOSPC' } as object)
  v.flushSync()
  v.close()
  rmSync(filler)
  using w = MmapVec.open(copy, { x: 'f64', z: 'f64' }, { readOnly: true })
  t.is(w.length, n + 5000)
  t.deepEqual(w.get(n - 1), { x: n, z: n - 1 })
  t.deepEqual(w.get(n + 4999), { x: -4999, z: -4999 })
  rmSync(copy, { recursive: true })
})
