/**
 * Opening a damaged vec never crashes, never hangs and never changes the files.
 *
 * One template vec per schema is built and closed; every case copies it, damages the copy in one
 * way, fingerprints it, opens it read-write and readOnly, and requires either an MmapVecError
 * with an expected code or a vec whose every row reads back as the template's (apart from rows
 * whose column bytes the damage overwrote), and the same fingerprint after both closes.
 *
 * Random cases are seeded: MMAPVEC_SEED=<n> reproduces a run (the seed is logged), and
 * MMAPVEC_SOAK=<k> multiplies the number of random cases by k. Every failure names the template,
 * the kind of damage, its parameters and the seed.
 */
import test, { type ExecutionContext } from 'ava'
import { MmapVec, MmapVecError, type ErrorCode, type Schema } from 'mmapvec'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  closeSync,
  cpSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { endianness } from 'node:os'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { runChild, scratch } from './helpers/util.mjs'

// ---- configuration ----

const DEFAULT_SEED = 0x6d6d6170
const SEED = process.env.MMAPVEC_SEED !== undefined ? Number(process.env.MMAPVEC_SEED) >>> 0 : DEFAULT_SEED
const SOAK = Math.max(1, Math.floor(Number(process.env.MMAPVEC_SOAK ?? 1)) || 1)
/** Random cases per template (multiplied by MMAPVEC_SOAK). */
const FLIPS = 500 * SOAK
const GARBAGE = 150 * SOAK
const COUNTS = 30 * SOAK
const DATA_PER_FILE = 80 * SOAK

/** The codes a damaged vec may be refused with. */
const ALLOWED: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['EFORMAT', 'EARCH', 'ESCHEMA', 'EVERSION', 'EACCES', 'ENOENT'])

const LE = endianness() === 'LE'
const MAGIC = Buffer.from('MMAPVEC\0', 'latin1')
const BOM = 0x0a0b0c0d
const BOM_SWAPPED = 0x0d0c0b0a
const OFF = { bom: 8, format: 12, size: 16, schemaLen: 20, version: 24, length: 32, crc: 40, reserved: 44, arch: 48, schema: 64 }
const MAX_SCHEMA_BYTES = 1 << 20

const u32 = (b: Buffer, o: number) => (LE ? b.readUInt32LE(o) : b.readUInt32BE(o))
const putU32 = (b: Buffer, o: number, v: number) => (LE ? b.writeUInt32LE(v >>> 0, o) : b.writeUInt32BE(v >>> 0, o))
const f64 = (b: Buffer, o: number) => (LE ? b.readDoubleLE(o) : b.readDoubleBE(o))
const putF64 = (b: Buffer, o: number, v: number) => (LE ? b.writeDoubleLE(v, o) : b.writeDoubleBE(v, o))

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
function crc32(...parts: Buffer[]): number {
  let c = 0xffffffff
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
/** The header checksum as docs/FORMAT.md defines it: bytes 0..32 and 44..(64 + schema length). */
const headerCrc = (b: Buffer, schemaLen: number) => crc32(b.subarray(0, 32), b.subarray(OFF.reserved, OFF.schema + schemaLen))

/** mulberry32: a small seeded PRNG. Each (template, kind) gets its own stream. */
function prng(...salt: string[]): () => number {
  let a = SEED ^ crc32(Buffer.from(salt.join('/')))
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const int = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo)) // [lo, hi)
const randomBytes = (r: () => number, n: number) => Buffer.from(Array.from({ length: n }, () => int(r, 0, 256)))

// ---- templates ----

const root = scratch()
// The vecs must be reachable by the unprivileged user of the permission cases.
chmodSync(root, 0o755)

interface StoredColumn {
  name: string
  type: string
  count: number
  file: string
  offset: number
}

interface Column extends StoredColumn {
  rowBytes: number
  /** The column file's size in the template. */
  size: number
  /** The template's bytes of rows 0..capacity (rows past the length are zeros). */
  expected: Buffer
}

interface Template {
  name: string
  dir: string
  schema: Schema
  rows: number
  capacity: number
  header: Buffer
  schemaLen: number
  storedJson: string
  columns: Column[]
  /** header, then the column files. */
  files: string[]
  /** What `get(i)` returns for rows 0..capacity. */
  expectedRows: unknown[]
}

const SIZES: Record<string, number> = { i8: 1, u8: 1, bool: 1, i16: 2, u16: 2, i32: 4, u32: 4, f32: 4, i64: 8, u64: 8, f64: 8 }

const Struct = { pos: ['f32', 3], id: 'u32', big: 'i64', ok: 'bool' } as const
const structRow = (i: number) => ({
  pos: [Math.fround(i * 0.5), Math.fround(-i), Math.fround(i + 0.25)],
  id: Math.imul(i, 2654435761) >>> 0,
  big: BigInt(i) * -1234567890123n + 7n,
  ok: i % 3 === 0,
})
const structZero = { pos: [0, 0, 0], id: 0, big: 0n, ok: false }
const scalarRow = (i: number) => i * 1.5 - 100 + 1 / 3

function build(name: string, schema: Schema, rows: number, row: (i: number) => unknown, zero: unknown): Template {
  const dir = join(root, `template-${name}.mvec`)
  const v = MmapVec.open(dir, schema)
  for (let i = 0; i < rows; i++) v.push(row(i) as never)
  v.close()
  const header = readFileSync(join(dir, 'header'))
  const schemaLen = u32(header, OFF.schemaLen)
  const storedJson = header.subarray(OFF.schema, OFF.schema + schemaLen).toString('utf8')
  const stored = JSON.parse(storedJson) as { columns: StoredColumn[] }
  let capacity = Infinity
  const columns = stored.columns.map((c) => {
    const rowBytes = SIZES[c.type] * c.count
    const bytes = readFileSync(join(dir, c.file))
    capacity = Math.min(capacity, Math.floor(Math.max(0, bytes.length - c.offset) / rowBytes))
    return { ...c, rowBytes, size: bytes.length, expected: bytes }
  })
  for (const c of columns) c.expected = Buffer.from(c.expected.subarray(c.offset, c.offset + capacity * c.rowBytes))
  const expectedRows = Array.from({ length: capacity }, (_, i) => (i < rows ? row(i) : zero))
  return {
    name,
    dir,
    schema,
    rows,
    capacity,
    header,
    schemaLen,
    storedJson,
    columns,
    files: ['header', ...columns.map((c) => c.file)],
    expectedRows,
  }
}

const templates: Template[] = [
  build('struct', Struct, 300, structRow, structZero),
  build('scalar', 'f64', 500, scalarRow, 0),
]

// ---- fingerprints ----

/**
 * Like `fingerprint` from helpers/util.mts (name, size, mode, mtime, sha256 of every file), but
 * with lstat: symlinks show their target and are never followed, FIFOs are never opened,
 * directories are walked; the directory itself is included, and mtimes are in nanoseconds.
 */
function fingerprintDeep(dir: string, rel = '.'): string[] {
  const line = (p: string, name: string): string[] => {
    const s = lstatSync(p, { bigint: true })
    // The live file is the writer's state for readers, not data (see fingerprint in util.mts).
    if (name === './live' && s.isFile()) return [`${name} ${s.size} ${s.mode.toString(8)} (live state)`]
    const meta = `${name} ${s.size} ${s.mode.toString(8)} ${s.mtimeNs}`
    if (s.isSymbolicLink()) return [`${meta} -> ${readlinkSync(p)}`]
    if (s.isFile()) return [`${meta} ${hashFile(p, s.size, s.blocks)}`]
    if (s.isDirectory()) return [`${meta} dir`, ...(name === '.' ? [] : fingerprintDeep(p, name))]
    return [`${meta} ${s.isFIFO() ? 'fifo' : s.isSocket() ? 'socket' : 'special'}`]
  }
  const out = rel === '.' ? line(dir, '.') : []
  for (const name of readdirSync(dir).sort()) {
    out.push(...line(join(dir, name), `${rel}/${name}`))
  }
  return out
}

const HASHED = 1 << 20
/**
 * sha256 of a file; of a huge (sparse) file, of its first MiB, with its allocated blocks: a
 * write anywhere past them would allocate blocks (and change the mtime).
 */
function hashFile(p: string, size: bigint, blocks: bigint): string {
  if (size <= BigInt(HASHED)) return createHash('sha256').update(readFileSync(p)).digest('hex')
  const fd = openSync(p, 'r')
  try {
    const b = Buffer.alloc(HASHED)
    const n = readSync(fd, b, 0, HASHED, 0)
    return `head ${createHash('sha256').update(b.subarray(0, n)).digest('hex')} blocks ${blocks}`
  } finally {
    closeSync(fd)
  }
}

// ---- cases ----

/** Rows of each field (by name) whose bytes the damage overwrote: their values are arbitrary. */
type Touched = Map<string, Set<number>>

/** What an open must do. */
type Want =
  | { code: ErrorCode } // fail with exactly this code
  | { rows: number; touched?: Touched } // open with exactly this many rows, each intact
  | { either: true } // fail with an allowed code, or open with every row intact

interface Stats {
  cases: number
  outcomes: Record<string, number>
}
const stats = new Map<string, Stats>()
function record(kind: string, outcome: string): void {
  let s = stats.get(kind)
  if (s === undefined) stats.set(kind, (s = { cases: 0, outcomes: {} }))
  s.outcomes[outcome] = (s.outcomes[outcome] ?? 0) + 1
}

let nextCase = 0
function caseDir(tpl: Template): string {
  const dir = join(root, `case-${nextCase++}.mvec`)
  cpSync(tpl.dir, dir, { recursive: true })
  return dir
}

function describeWant(w: Want): string {
  return 'code' in w ? w.code : 'rows' in w ? `open with ${w.rows} rows` : 'an allowed code or intact rows'
}

/** Checks an open vec against the template; returns what is wrong, if anything. */
function checkRows(tpl: Template, v: MmapVec<Schema>, want: Want): string | undefined {
  const n = v.length
  if ('rows' in want && n !== want.rows) return `length ${n}, expected ${want.rows}`
  if (!Number.isSafeInteger(n) || n < 0 || n > v.capacity) return `length ${n} with capacity ${v.capacity}`
  if (n > tpl.capacity) return `length ${n} is past the template's capacity ${tpl.capacity}`
  const touched = 'touched' in want ? want.touched : undefined
  const cols = v.columns as unknown as Record<string, ArrayBufferView>
  for (const c of tpl.columns) {
    const a = cols[c.name]
    const got = Buffer.from(a.buffer, a.byteOffset, a.byteLength)
    if (got.length !== n * c.rowBytes) return `column '${c.name}' has ${got.length} bytes for ${n} rows`
    const skip = touched?.get(c.name)
    if (skip === undefined && got.equals(c.expected.subarray(0, n * c.rowBytes))) continue
    for (let i = 0; i < n; i++) {
      if (skip?.has(i)) continue
      const at = i * c.rowBytes
      if (!got.subarray(at, at + c.rowBytes).equals(c.expected.subarray(at, at + c.rowBytes))) {
        return `column '${c.name}' row ${i} differs from the template`
      }
    }
  }
  for (let i = 0; i < n; i++) {
    if (touched !== undefined && tpl.columns.some((c) => touched.get(c.name)?.has(i))) continue
    const row = v.get(i)
    if (!isDeepStrictEqual(row, tpl.expectedRows[i])) return `get(${i}) is ${String(JSON.stringify(row, big))}`
  }
  return undefined
}
const big = (_: string, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)

class Run {
  problems: string[] = []
  constructor(readonly kind: string) {}

  fail(tpl: Template, label: string, what: string): void {
    this.problems.push(`[${tpl.name}] ${this.kind} ${label}: ${what} (MMAPVEC_SEED=${SEED})`)
  }

  /** Opens the damaged copy at `dir` in one mode and checks the outcome against `want`. */
  attempt(tpl: Template, dir: string, label: string, readOnly: boolean, want: Want): void {
    const mode = readOnly ? 'readOnly' : 'read-write'
    let v: MmapVec<Schema>
    try {
      v = readOnly ? MmapVec.open(dir, tpl.schema, { readOnly: true }) : MmapVec.open(dir, tpl.schema)
    } catch (e) {
      if (!(e instanceof MmapVecError)) {
        record(this.kind, 'not an MmapVecError')
        return this.fail(tpl, label, `${mode} open threw ${String(e)}`)
      }
      record(this.kind, e.code)
      if (!ALLOWED.has(e.code)) return this.fail(tpl, label, `${mode} open failed with ${e.code}: ${e.message}`)
      if (!('either' in want) && !('code' in want && want.code === e.code)) {
        return this.fail(tpl, label, `${mode} open failed with ${e.code} (${e.message}); expected ${describeWant(want)}`)
      }
      return
    }
    record(this.kind, 'opened')
    try {
      if ('code' in want) return this.fail(tpl, label, `${mode} open succeeded (length ${v.length}); expected ${want.code}`)
      const wrong = checkRows(tpl, v, want)
      if (wrong !== undefined) this.fail(tpl, label, `${mode}: ${wrong}`)
    } finally {
      try {
        v.close()
      } catch (e) {
        this.fail(tpl, label, `${mode} close threw ${String(e)}`)
      }
    }
  }

  /** One case: copy the template, damage it, open it both ways, and compare fingerprints. */
  run(tpl: Template, label: string, damage: (dir: string) => void, want: Want): void {
    const dir = caseDir(tpl)
    damage(dir)
    const before = fingerprintDeep(dir)
    this.attempt(tpl, dir, label, false, want)
    this.attempt(tpl, dir, label, true, want)
    const after = fingerprintDeep(dir)
    if (!isDeepStrictEqual(before, after)) {
      const changed = after.filter((l) => !before.includes(l))
      this.fail(tpl, label, `the files changed: ${before.filter((l) => !after.includes(l)).join('; ')} => ${changed.join('; ')}`)
    }
    stats.get(this.kind)!.cases++
    rmSync(dir, { recursive: true, force: true })
    if (nextCase % 256 === 0) (globalThis as { gc?: () => void }).gc?.()
  }

  finish(t: ExecutionContext): void {
    const s = stats.get(this.kind)
    if (s !== undefined) {
      const outcomes = Object.entries(s.outcomes)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
      t.log(`${this.kind}: ${s.cases} cases (${s.cases * 2} opens: ${outcomes.join(', ')})`)
    }
    if (this.problems.length > 0) {
      t.fail(`${this.problems.length} problems:\n${this.problems.slice(0, 40).join('\n')}`)
    } else {
      t.pass()
    }
  }
}

// ---- helpers for damages ----

const headerOf = (dir: string) => readFileSync(join(dir, 'header'))
const writeHeader = (dir: string, b: Buffer) => writeFileSync(join(dir, 'header'), b)
const mkfifo = (p: string) => execFileSync('mkfifo', [p])
/** Leaves a Unix socket (with nobody listening) at `p`. */
const mksock = (p: string) => execFileSync(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.exit(0))", p])

/**
 * What opening a vec with these header bytes must do, by the rules of docs/FORMAT.md: a
 * reference of the header checks (the template's column files being intact).
 */
function expectHeader(tpl: Template, b: Buffer): Want {
  if (b.length < OFF.schema || !b.subarray(0, 8).equals(MAGIC)) return { code: 'EFORMAT' }
  const bom = u32(b, OFF.bom)
  if (bom === BOM_SWAPPED) return { code: 'EARCH' }
  if (bom !== BOM || u32(b, OFF.format) !== 1) return { code: 'EFORMAT' }
  const size = u32(b, OFF.size)
  const schemaLen = u32(b, OFF.schemaLen)
  if (size < OFF.schema || size % 4096 !== 0 || size !== b.length) return { code: 'EFORMAT' }
  if (schemaLen === 0 || schemaLen > MAX_SCHEMA_BYTES || OFF.schema + schemaLen > size) return { code: 'EFORMAT' }
  if (u32(b, OFF.crc) !== headerCrc(b, schemaLen)) return { code: 'EFORMAT' }
  // The reserved field and the padding after the schema must be zero.
  if (u32(b, OFF.reserved) !== 0) return { code: 'EFORMAT' }
  if (b.subarray(OFF.schema + schemaLen).some((x) => x !== 0)) return { code: 'EFORMAT' }
  // The checksum matches: past this point only crafted headers get here.
  const same =
    schemaLen === tpl.schemaLen &&
    b.subarray(0, 32).equals(tpl.header.subarray(0, 32)) &&
    b.subarray(OFF.crc, OFF.schema + schemaLen).equals(tpl.header.subarray(OFF.crc, OFF.schema + schemaLen))
  if (!same) return { either: true }
  return expectCount(tpl, f64(b, OFF.length))
}

/** What a stored row count must do: a whole number from 0 to the capacity opens with that many rows. */
function expectCount(tpl: Template, raw: number): Want {
  return Number.isFinite(raw) && raw >= 0 && Number.isInteger(raw) && raw <= tpl.capacity ? { rows: raw } : { code: 'EFORMAT' }
}

/** The header with its schema replaced by `json` and its checksum made right again. */
function reheader(tpl: Template, json: string, edit?: (b: Buffer) => void): Buffer {
  const s = Buffer.from(json, 'utf8')
  const size = Math.ceil((OFF.schema + s.length) / 4096) * 4096
  const b = Buffer.alloc(size)
  tpl.header.copy(b, 0, 0, OFF.schema)
  s.copy(b, OFF.schema)
  putU32(b, OFF.size, size)
  putU32(b, OFF.schemaLen, s.length)
  edit?.(b)
  putU32(b, OFF.crc, headerCrc(b, u32(b, OFF.schemaLen)))
  return b
}

/** The stored schema, changed by `edit`, as JSON. */
function storedWith(tpl: Template, edit: (s: { scalar: boolean; columns: Record<string, unknown>[] }) => void): string {
  const s = JSON.parse(tpl.storedJson) as { scalar: boolean; columns: Record<string, unknown>[] }
  edit(s)
  return JSON.stringify(s)
}

// ---- the tests ----

test.serial('the templates read back as written', (t) => {
  t.log(`seed ${SEED}${process.env.MMAPVEC_SEED === undefined ? ' (default; set MMAPVEC_SEED to change)' : ''}, soak x${SOAK}`)
  for (const tpl of templates) {
    t.log(`${tpl.name}: ${tpl.rows} rows, capacity ${tpl.capacity}, files ${tpl.files.join(' ')}, schema ${tpl.schemaLen} bytes`)
    const before = fingerprintDeep(tpl.dir)
    for (const readOnly of [false, true]) {
      const v = MmapVec.open(tpl.dir, tpl.schema, { readOnly })
      t.is(v.length, tpl.rows)
      t.is(v.capacity, tpl.capacity)
      t.is(checkRows(tpl, v, { rows: tpl.rows }), undefined)
      v.close()
    }
    t.deepEqual(fingerprintDeep(tpl.dir), before, 'an open and close without changes changed the files')
  }
})

test.serial('truncated files: the header is EFORMAT; a column file is EFORMAT when it no longer holds every row', (t) => {
  const r = new Run('truncate')
  for (const tpl of templates) {
    for (const file of tpl.files) {
      const size = file === 'header' ? tpl.header.length : tpl.columns.find((c) => c.file === file)!.size
      const cuts = [0, 8, 12, 16, 20, 24, 32, 40, 44, 48, 64, OFF.schema + tpl.schemaLen, Math.floor(size / 2), size - 1]
      for (const n of [...new Set(cuts)].filter((n) => n < size)) {
        let want: Want = { code: 'EFORMAT' }
        const c = tpl.columns.find((c) => c.file === file)
        if (c !== undefined && Math.floor(Math.max(0, n - c.offset) / c.rowBytes) >= tpl.rows) want = { rows: tpl.rows }
        r.run(tpl, `${file} to ${n} bytes`, (d) => truncateSync(join(d, file), n), want)
      }
    }
  }
  r.finish(t)
})

test.serial('extended files: a longer header is EFORMAT, a longer column file opens', (t) => {
  const r = new Run('extend')
  for (const tpl of templates) {
    for (const file of tpl.files) {
      const size = file === 'header' ? tpl.header.length : tpl.columns.find((c) => c.file === file)!.size
      for (const extra of [1, 4096, 65536]) {
        const want: Want = file === 'header' ? { code: 'EFORMAT' } : { rows: tpl.rows }
        r.run(tpl, `${file} to ${size + extra} bytes`, (d) => truncateSync(join(d, file), size + extra), want)
      }
    }
  }
  r.finish(t)
})

test.serial('flipped header bytes: EFORMAT (EARCH for a swapped byte-order mark), unless only the row count changed', (t) => {
  const r = new Run('flip')
  for (const tpl of templates) {
    const rand = prng(tpl.name, 'flip')
    const used = OFF.schema + tpl.schemaLen
    for (let k = 0; k < FLIPS; k++) {
      const b = Buffer.from(tpl.header)
      const where = rand()
      const pick = () => (where < 0.7 ? int(rand, 0, used) : where < 0.8 ? int(rand, OFF.length, OFF.length + 8) : int(rand, 0, b.length))
      const shape = rand()
      const flips: [number, number][] = []
      if (shape < 0.6) {
        flips.push([pick(), int(rand, 1, 256)])
      } else if (shape < 0.85) {
        const at = Math.min(pick(), b.length - 4)
        for (let j = 0; j < 4; j++) flips.push([at + j, int(rand, 0, 256)])
      } else {
        for (let j = int(rand, 2, 9); j > 0; j--) flips.push([pick(), int(rand, 1, 256)])
      }
      for (const [at, x] of flips) b[at] ^= x
      const label = `#${k} xor ${flips.map(([at, x]) => `[${at}]^0x${x.toString(16)}`).join(' ')}`
      r.run(tpl, label, (d) => writeHeader(d, b), expectHeader(tpl, b))
    }
  }
  r.finish(t)
})

test.serial('a header overwritten with random bytes is EFORMAT', (t) => {
  const r = new Run('garbage')
  for (const tpl of templates) {
    const rand = prng(tpl.name, 'garbage')
    for (let k = 0; k < GARBAGE; k++) {
      const variant = k % 6
      const len = variant === 1 ? int(rand, 0, 9000) : tpl.header.length
      let b = randomBytes(rand, len)
      let what = ['random', 'random length', 'magic + random', 'valid fields to 32 + random', 'zeros', '0xff'][variant]
      if (variant >= 2 && variant <= 3) MAGIC.copy(b)
      if (variant === 3) {
        tpl.header.copy(b, 0, 0, 32)
        if (rand() < 0.5) putU32(b, OFF.schemaLen, int(rand, 1, 4033))
      }
      if (variant === 4) b = Buffer.alloc(len)
      if (variant === 5) b = Buffer.alloc(len, 0xff)
      what += ` (${len} bytes, sha256 ${createHash('sha256').update(b).digest('hex').slice(0, 12)})`
      r.run(tpl, `#${k} ${what}`, (d) => writeHeader(d, b), expectHeader(tpl, b))
    }
  }
  r.finish(t)
})

test.serial('a file replaced by nothing, a directory, a symlink, a FIFO or a socket is EFORMAT, without hanging', (t) => {
  const r = new Run('replace')
  for (const tpl of templates) {
    for (const file of tpl.files) {
      const replacements: [string, (p: string, d: string) => void][] = [
        ['deleted', (p) => unlinkSync(p)],
        ['an empty directory', (p) => (unlinkSync(p), mkdirSync(p))],
        ['a directory holding the original', (p) => (renameSync(p, `${p}.x`), mkdirSync(p), renameSync(`${p}.x`, join(p, file)))],
        ['a symlink to /dev/zero', (p) => (unlinkSync(p), symlinkSync('/dev/zero', p))],
        ['a symlink to a missing file', (p) => (unlinkSync(p), symlinkSync('missing-file', p))],
        ['a symlink to its own directory (.)', (p) => (unlinkSync(p), symlinkSync('.', p))],
        ['a symlink to its own directory (absolute)', (p, d) => (unlinkSync(p), symlinkSync(d, p))],
        ['a symlink to itself (a loop)', (p) => (unlinkSync(p), symlinkSync(file, p))],
        ['a symlink to the parent directory', (p) => (unlinkSync(p), symlinkSync('..', p))],
        ['a FIFO', (p) => (unlinkSync(p), mkfifo(p))],
        ['a Unix socket', (p) => (unlinkSync(p), mksock(p))],
      ]
      for (const [what, damage] of replacements) {
        r.run(tpl, `${file} is ${what}`, (d) => damage(join(d, file), d), { code: 'EFORMAT' })
      }
    }
  }
  r.finish(t)
})

test.serial('unknown files and directories inside a vec are ignored: it opens with every row', (t) => {
  const r = new Run('extra')
  const extras: [string, (d: string) => void][] = [
    ['a text file', (d) => writeFileSync(join(d, 'notes.txt'), 'hello')],
    ['a hidden file', (d) => writeFileSync(join(d, '.hidden'), 'x')],
    ['a file named like a column', (d) => writeFileSync(join(d, 'c9.col'), Buffer.alloc(8192, 0x55))],
    ['a copy of the header', (d) => cpSync(join(d, 'header'), join(d, 'header.bak'))],
    ['a directory with files', (d) => (mkdirSync(join(d, 'sub')), writeFileSync(join(d, 'sub', 'header'), 'not a header'))],
    ['a leftover creation directory', (d) => mkdirSync(join(d, '.x.mvec.creating-1-0-0'))],
    ['a FIFO', (d) => mkfifo(join(d, 'pipe'))],
    ['a Unix socket', (d) => mksock(join(d, 'sock'))],
    ['a dangling symlink', (d) => symlinkSync('nowhere', join(d, 'dangling'))],
    ['a symlink to /dev/zero', (d) => symlinkSync('/dev/zero', join(d, 'c99.col'))],
    ['a symlink loop', (d) => symlinkSync('loop', join(d, 'loop'))],
    ['an unreadable file', (d) => (writeFileSync(join(d, 'secret'), 'x'), chmodSync(join(d, 'secret'), 0))],
  ]
  for (const tpl of templates) {
    for (const [what, add] of extras) r.run(tpl, `plus ${what}`, add, { rows: tpl.rows })
    r.run(tpl, 'plus all of them', (d) => extras.forEach(([, add]) => add(d)), { rows: tpl.rows })
  }
  r.finish(t)
})

test.serial('row counts: not a whole number from 0 to the capacity is EFORMAT; a smaller one opens with fewer rows', (t) => {
  const r = new Run('count')
  for (const tpl of templates) {
    const n = tpl.rows
    const cap = tpl.capacity
    const fixed: [number, Want][] = [
      [NaN, { code: 'EFORMAT' }],
      [-NaN, { code: 'EFORMAT' }],
      [Infinity, { code: 'EFORMAT' }],
      [-Infinity, { code: 'EFORMAT' }],
      [-1, { code: 'EFORMAT' }],
      [0.5, { code: 'EFORMAT' }],
      [n - 0.5, { code: 'EFORMAT' }],
      [5e-324, { code: 'EFORMAT' }],
      [1e300, { code: 'EFORMAT' }],
      [2 ** 53, { code: 'EFORMAT' }],
      [2 ** 53 + 2, { code: 'EFORMAT' }],
      [cap + 1, { code: 'EFORMAT' }],
      [0, { rows: 0 }],
      [-0, { rows: 0 }],
      [1, { rows: 1 }],
      [Math.floor(n / 2), { rows: Math.floor(n / 2) }],
      [n - 1, { rows: n - 1 }],
      // Past the rows written but within the capacity: the extra rows are the zeros of the file.
      [n + 1, { rows: n + 1 }],
      [cap, { rows: cap }],
    ]
    for (const [count, want] of fixed) {
      r.run(tpl, `count ${Object.is(count, -0) ? '-0' : count}`, (d) => writeHeader(d, withCount(headerOf(d), count)), want)
    }
    const rand = prng(tpl.name, 'count')
    for (let k = 0; k < COUNTS; k++) {
      const pick = k % 3
      let count: number
      if (pick === 0) count = int(rand, 0, n)
      else if (pick === 1) count = int(rand, 0, cap + 50) + (rand() < 0.5 ? 0 : rand())
      else count = new Float64Array(new Uint32Array([int(rand, 0, 2 ** 32), int(rand, 0, 2 ** 32)]).buffer)[0]
      r.run(tpl, `#${k} count ${count}`, (d) => writeHeader(d, withCount(headerOf(d), count)), expectCount(tpl, count))
    }
  }
  r.finish(t)
})
function withCount(b: Buffer, count: number): Buffer {
  putF64(b, OFF.length, count)
  return b
}

test.serial('overwritten column data opens; only the rows it touched change', (t) => {
  const r = new Run('data')
  for (const tpl of templates) {
    const rand = prng(tpl.name, 'data')
    for (const c of tpl.columns) {
      const ranges: [number, number, string][] = [
        [0, c.size, 'the whole file'],
        [0, Math.min(4096, c.size), 'the first page'],
        [c.offset + c.rowBytes * (tpl.rows - 1), c.offset + c.rowBytes * tpl.rows, 'the last row'],
        [c.offset + c.rowBytes * tpl.rows, c.size, 'the bytes past the last row'],
      ]
      if (c.offset > 0) ranges.push([0, c.offset, 'the bytes before the rows'])
      for (let k = 0; k < DATA_PER_FILE; k++) {
        const len = rand() < 0.8 ? int(rand, 1, 65) : int(rand, 65, 4097)
        const at = int(rand, 0, c.size - Math.min(len, c.size) + 1)
        ranges.push([at, Math.min(at + len, c.size), `#${k}`])
      }
      for (const [from, to, what] of ranges) {
        const bytes = randomBytes(rand, to - from)
        const rows = new Set<number>()
        if (to > c.offset) {
          const first = Math.floor((Math.max(from, c.offset) - c.offset) / c.rowBytes)
          const last = Math.floor((to - 1 - c.offset) / c.rowBytes)
          for (let i = first; i <= Math.min(last, tpl.capacity - 1); i++) rows.add(i)
        }
        const damage = (d: string) => {
          const b = readFileSync(join(d, c.file))
          bytes.copy(b, from)
          writeFileSync(join(d, c.file), b)
        }
        r.run(tpl, `${c.file} bytes ${from}..${to} (${what})`, damage, { rows: tpl.rows, touched: new Map([[c.name, rows]]) })
      }
    }
  }
  r.finish(t)
})

test.serial('crafted headers with a right checksum: each field is checked, with the expected code', (t) => {
  const r = new Run('crafted')
  for (const tpl of templates) {
    const other = tpl.name === 'struct' ? 'f64' : 'f32'
    const cases: [string, () => Buffer, Want, ((d: string) => void)?][] = [
      ['magic changed', () => reheader(tpl, tpl.storedJson, (b) => (b[0] = 0x6d)), { code: 'EFORMAT' }],
      ['byte-order mark swapped', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.bom, BOM_SWAPPED)), { code: 'EARCH' }],
      ['byte-order mark swapped, checksum not fixed', () => {
        const b = Buffer.from(tpl.header)
        putU32(b, OFF.bom, BOM_SWAPPED)
        return b
      }, { code: 'EARCH' }],
      ['format version 2', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.format, 2)), { code: 'EFORMAT' }],
      ['format version 0', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.format, 0)), { code: 'EFORMAT' }],
      ['application version 7 (none asked for)', () => reheader(tpl, tpl.storedJson, (b) => (LE ? b.writeBigUInt64LE(7n, OFF.version) : b.writeBigUInt64BE(7n, OFF.version))), { rows: tpl.rows }],
      ['architecture sparc64 (informational)', () => reheader(tpl, tpl.storedJson, (b) => (b.fill(0, OFF.arch, OFF.schema), b.write('sparc64', OFF.arch))), { rows: tpl.rows }],
      ['reserved bytes not zero', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.reserved, 1)), { code: 'EFORMAT' }],
      ['header size 8192 in a 4096-byte file', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.size, 8192)), { code: 'EFORMAT' }],
      ['header size 8192 in an 8192-byte file', () => {
        const b = Buffer.concat([reheader(tpl, tpl.storedJson), Buffer.alloc(4096)])
        putU32(b, OFF.size, 8192)
        putU32(b, OFF.crc, headerCrc(b, tpl.schemaLen))
        return b
      }, { rows: tpl.rows }],
      ['header size 4095 in a 4095-byte file', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.size, 4095)).subarray(0, 4095), { code: 'EFORMAT' }],
      ['header size 32', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.size, 32)), { code: 'EFORMAT' }],
      ['schema length 0', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.schemaLen, 0)), { code: 'EFORMAT' }],
      ['schema length one more (a NUL after the JSON)', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.schemaLen, tpl.schemaLen + 1)), { code: 'EFORMAT' }],
      ['schema length one less', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.schemaLen, tpl.schemaLen - 1)), { code: 'EFORMAT' }],
      ['schema length past the header', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.schemaLen, 4033)), { code: 'EFORMAT' }],
      ['schema length 2^32 - 1', () => reheader(tpl, tpl.storedJson, (b) => putU32(b, OFF.schemaLen, 0xffffffff)), { code: 'EFORMAT' }],
      ['schema not JSON', () => reheader(tpl, tpl.storedJson.replace('{', '[')), { code: 'EFORMAT' }],
      ['schema not UTF-8', () => reheader(tpl, tpl.storedJson, (b) => (b[OFF.schema + tpl.storedJson.indexOf('"name":"') + 8] = 0xff)), { code: 'EFORMAT' }],
      ['schema with no columns', () => reheader(tpl, storedWith(tpl, (s) => (s.columns = []))), { code: 'EFORMAT' }],
      ['scalar flag flipped', () => reheader(tpl, storedWith(tpl, (s) => (s.scalar = !s.scalar))), tpl.name === 'struct' ? { code: 'EFORMAT' } : { code: 'ESCHEMA' }],
      ['a column of another type', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].type = other))), { code: 'ESCHEMA' }],
      ['a column of an unknown type', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].type = 'f16'))), { code: 'EFORMAT' }],
      ['a column renamed', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].name = 'renamed'))), tpl.name === 'struct' ? { code: 'ESCHEMA' } : { code: 'EFORMAT' }],
      ['a column with an empty name', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].name = ''))), { code: 'EFORMAT' }],
      ['a column with another width', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].count = 2))), { code: 'ESCHEMA' }],
      ['a column of width 0', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].count = 0))), { code: 'EFORMAT' }],
      ['a column of width 2^20 + 1', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].count = 2 ** 20 + 1))), { code: 'EFORMAT' }],
      ['a column of width -1', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].count = -1))), { code: 'EFORMAT' }],
      ['a column twice', () => reheader(tpl, storedWith(tpl, (s) => s.columns.push({ ...s.columns[0], file: 'c7.col' }))), { code: 'EFORMAT' }],
      ['a column offset of 32', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].offset = 32))), { code: 'EFORMAT' }],
      ['a column offset of 4096', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].offset = 4096))), { code: 'EFORMAT' }],
      ['a column offset of -64', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].offset = -64))), { code: 'EFORMAT' }],
      ['a column file "../c0.col"', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = '../c0.col'))), { code: 'EFORMAT' }],
      ['a column file "/etc/passwd"', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = '/etc/passwd'))), { code: 'EFORMAT' }],
      ['a column file "header"', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = 'header'))), { code: 'EFORMAT' }],
      ['a column file ".."', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = '..'))), { code: 'EFORMAT' }],
      ['a column file ""', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = ''))), { code: 'EFORMAT' }],
      ['a column without a file', () => reheader(tpl, storedWith(tpl, (s) => delete s.columns[0].file)), { code: 'EFORMAT' }],
      ['a column file that is missing', () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = 'gone.col'))), { code: 'EFORMAT' }],
      [
        'a column file renamed, with the file renamed too',
        () => reheader(tpl, storedWith(tpl, (s) => (s.columns[0].file = 'data-0.col'))),
        { rows: tpl.rows },
        (d) => renameSync(join(d, 'c0.col'), join(d, 'data-0.col')),
      ],
      ['an unknown key in the schema', () => reheader(tpl, storedWith(tpl, (s) => ((s as Record<string, unknown>).extra = 1))), { code: 'EFORMAT' }],
      ['two columns naming one file', () => reheader(tpl, storedWith(tpl, (s) => s.columns.length > 1 && (s.columns[1].file = s.columns[0].file))), tpl.name === 'struct' ? { code: 'EFORMAT' } : { rows: tpl.rows }],
      ['a schema that spans two pages (an unknown key)', () => reheader(tpl, storedWith(tpl, (s) => ((s as Record<string, unknown>).pad = 'x'.repeat(5000)))), { code: 'EFORMAT' }],
    ]
    for (const [what, make, want, also] of cases) {
      const b = make()
      r.run(tpl, what, (d) => (writeHeader(d, b), also?.(d)), want)
    }
  }
  r.finish(t)
})

test.serial('files the process may not read or write: EACCES (checked as an unprivileged user)', (t) => {
  const r = new Run('access')
  const root0 = process.getuid?.() === 0
  // Permissions do not bind root: run the opens as "nobody", owning the files so that only the
  // mode stands in the way.
  const user = root0 ? { uid: 65534, gid: 65534 } : {}
  const own = (d: string) => {
    if (!root0) return
    chownSync(d, 65534, 65534)
    for (const f of readdirSync(d)) chownSync(join(d, f), 65534, 65534)
  }
  interface Planned {
    tpl: Template
    label: string
    dir: string
    before: string[]
    readWrite: Want
    readOnly: Want
  }
  const planned: Planned[] = []
  for (const tpl of templates) {
    const all: [string, (d: string) => void, Want, Want][] = [
      ['nothing changed (control)', () => {}, { rows: tpl.rows }, { rows: tpl.rows }],
      ['the directory mode 000', (d) => chmodSync(d, 0o000), { code: 'EACCES' }, { code: 'EACCES' }],
      ['the directory mode 555', (d) => chmodSync(d, 0o555), { rows: tpl.rows }, { rows: tpl.rows }],
      ['the directory mode 111', (d) => chmodSync(d, 0o111), { rows: tpl.rows }, { rows: tpl.rows }],
    ]
    for (const file of tpl.files) {
      all.push([`${file} mode 000`, (d) => chmodSync(join(d, file), 0o000), { code: 'EACCES' }, { code: 'EACCES' }])
      all.push([`${file} mode 200`, (d) => chmodSync(join(d, file), 0o200), { code: 'EACCES' }, { code: 'EACCES' }])
      all.push([`${file} mode 444`, (d) => chmodSync(join(d, file), 0o444), { code: 'EACCES' }, { rows: tpl.rows }])
    }
    for (const [label, damage, readWrite, readOnly] of all) {
      const dir = caseDir(tpl)
      own(dir)
      damage(dir)
      planned.push({ tpl, label, dir, before: fingerprintDeep(dir), readWrite, readOnly })
    }
  }
  for (const tpl of templates) {
    const mine = planned.filter((p) => p.tpl === tpl)
    const child = runChild('open-damaged.mjs', [JSON.stringify({ schema: tpl.schema, paths: mine.map((p) => p.dir) })], {}, user)
    if (child.status !== 0) {
      t.fail(`[${tpl.name}] the child failed (${child.status ?? child.signal}): ${child.stderr}`)
      continue
    }
    const results = JSON.parse(child.stdout) as ChildResult[]
    for (const [i, p] of mine.entries()) {
      for (const mode of ['readWrite', 'readOnly'] as const) checkChild(r, tpl, p.label, mode, results[i][mode], p[mode])
      const after = fingerprintDeep(p.dir)
      if (!isDeepStrictEqual(p.before, after)) r.fail(tpl, p.label, `the files changed: ${after.filter((l) => !p.before.includes(l)).join('; ')}`)
      stats.get(r.kind)!.cases++
      rmSync(p.dir, { recursive: true, force: true })
    }
  }
  r.finish(t)
})
type ChildOutcome = { code: string; message: string } | { length: number; capacity: number; rows: string }
type ChildResult = { path: string; readWrite: ChildOutcome; readOnly: ChildOutcome }

/** Checks what an open in the child (fixtures/open-damaged.mjs) did against `want`. */
function checkChild(r: Run, tpl: Template, label: string, mode: string, got: ChildOutcome, want: Want): void {
  if ('code' in got) {
    record(r.kind, got.code)
    const ok = 'either' in want ? ALLOWED.has(got.code as ErrorCode) : 'code' in want && want.code === got.code
    if (!ok) r.fail(tpl, label, `${mode} open failed with ${got.code} (${got.message}); expected ${describeWant(want)}`)
  } else {
    record(r.kind, 'opened')
    const rows = 'rows' in want ? want.rows : got.length
    if ('code' in want) r.fail(tpl, label, `${mode} open succeeded; expected ${describeWant(want)}`)
    else if (got.length !== rows || got.rows !== rowsHash(tpl, rows)) r.fail(tpl, label, `${mode}: rows differ (length ${got.length})`)
  }
}

/** The child's digest of rows 0..n: sha256 of their JSON, bigints as "<n>n". */
function rowsHash(tpl: Template, n: number): string {
  return createHash('sha256').update(JSON.stringify(tpl.expectedRows.slice(0, n), big)).digest('hex')
}

test.serial('huge sparse files: a header is EFORMAT; longer column files open with every row; nothing crashes', (t) => {
  // Each open runs in a child process of its own, so that a crash is reported as a failure of
  // this case instead of taking the whole test file down.
  const r = new Run('huge')
  const G4 = 2 ** 32
  for (const tpl of templates) {
    const first = tpl.columns[0].file
    const cases: [string, (d: string) => void, Want][] = [
      ['header to 4 GiB', (d) => truncateSync(join(d, 'header'), G4), { code: 'EFORMAT' }],
      [`${first} alone to 4 GiB + 4 KiB`, (d) => truncateSync(join(d, first), G4 + 4096), { rows: tpl.rows }],
      [`${first} alone to 1 TiB`, (d) => truncateSync(join(d, first), 2 ** 40), { rows: tpl.rows }],
      ['every column file to 4 GiB', (d) => tpl.columns.forEach((c) => truncateSync(join(d, c.file), G4)), { rows: tpl.rows }],
      ['every column file to 4 GiB + 4 KiB', (d) => tpl.columns.forEach((c) => truncateSync(join(d, c.file), G4 + 4096)), { rows: tpl.rows }],
    ]
    for (const [label, damage, want] of cases) {
      const dir = caseDir(tpl)
      try {
        damage(dir)
      } catch (e) {
        t.log(`[${tpl.name}] ${label}: skipped, the file system refused (${String(e)})`)
        rmSync(dir, { recursive: true, force: true })
        continue
      }
      const before = fingerprintDeep(dir)
      for (const mode of ['readWrite', 'readOnly'] as const) {
        const child = runChild('open-damaged.mjs', [JSON.stringify({ schema: tpl.schema, paths: [dir], modes: [mode] })])
        if (child.status !== 0) {
          record(r.kind, `crash (${child.signal ?? child.status})`)
          const err = child.stderr.trim().split('\n').slice(0, 3).join(' | ')
          r.fail(tpl, label, `${mode} open crashed the process (${child.signal ?? `exit ${child.status}`}): ${err}`)
          continue
        }
        checkChild(r, tpl, label, mode, (JSON.parse(child.stdout) as ChildResult[])[0][mode], want)
      }
      const after = fingerprintDeep(dir)
      if (!isDeepStrictEqual(before, after)) r.fail(tpl, label, `the files changed: ${after.filter((l) => !before.includes(l)).join('; ')}`)
      stats.get(r.kind)!.cases++
      rmSync(dir, { recursive: true, force: true })
    }
  }
  r.finish(t)
})

test.serial('summary', (t) => {
  let total = 0
  const lines: string[] = []
  for (const [kind, s] of stats) {
    total += s.cases
    lines.push(`${kind} ${s.cases}`)
  }
  t.log(`${total} cases (${total * 2} opens), seed ${SEED}, soak x${SOAK}: ${lines.join(', ')}`)
  t.true(total >= 2000, `only ${total} cases ran`)
})
