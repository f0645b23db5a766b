// Apache Arrow interop: toArrow shares the vec's memory, writeArrowIPC writes IPC files that a
// fresh apache-arrow and an independent implementation (Polars, in Rust) read, and fromArrow
// makes a vec from a Table or an IPC file, leaving nothing behind when it fails.
import test, { type ExecutionContext } from 'ava'
import * as arrow from 'apache-arrow'
import { MmapVec, MmapVecError, fromArrowIPC, toArrow, writeArrowIPC, writeArrowIPCSync, type Mode, type Schema } from 'mmapvec'
import pl from 'nodejs-polars'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fingerprint, runChild, scratch } from './helpers/util.mjs'

const dir = scratch()
let n = 0
const fresh = (ext = 'mvec', inside = dir) => join(inside, `a${n++}.${ext}`)
/** A directory of one test's own, to check that nothing is left in it. */
const own = () => {
  const d = join(dir, `own${n++}`)
  mkdirSync(d)
  return d
}
const MODES: Mode[] = ['mmap', 'buffered']

const SCALARS = ['i8', 'u8', 'i16', 'u16', 'i32', 'u32', 'i64', 'u64', 'f32', 'f64', 'bool'] as const
type Scalar = (typeof SCALARS)[number]

/** Every field type, plain and as an array of 3 (and a long array of one). */
const Every = {
  ...Object.fromEntries(SCALARS.map((s) => [s, s])),
  ...Object.fromEntries(SCALARS.map((s) => [`${s}x3`, [s, 3]])),
  f64x100: ['f64', 100],
} as Record<string, Scalar | readonly [Scalar, number]>

/** Edge values of each type, then whatever a cheap generator gives. */
const EDGES: Record<Scalar, unknown[]> = {
  i8: [-128, 127, 0, -1],
  u8: [0, 255, 1],
  i16: [-32768, 32767, 0],
  u16: [0, 65535],
  i32: [-(2 ** 31), 2 ** 31 - 1, 0],
  u32: [0, 2 ** 32 - 1],
  i64: [-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n],
  u64: [0n, 2n ** 64n - 1n, 2n ** 63n],
  f32: [NaN, -0, 0, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45],
  f64: [NaN, -0, 0, Infinity, -Infinity, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, 0.1],
  bool: [true, false],
}

function value(t: Scalar, i: number): unknown {
  const e = EDGES[t]
  if (i < e.length) return e[i]
  const r = Math.imul(i, 2654435761) >>> 0
  switch (t) {
    case 'i8':
      return (r & 0xff) - 128
    case 'u8':
      return r & 0xff
    case 'i16':
      return (r & 0xffff) - 32768
    case 'u16':
      return r & 0xffff
    case 'i32':
      return r | 0
    case 'u32':
      return r
    case 'i64':
      return BigInt(r | 0) * 4294967311n
    case 'u64':
      return BigInt(r) * 4294967311n
    case 'f32':
      return Math.fround((r / 7) * (r & 1 ? -1 : 1))
    case 'f64':
      return (r / 7) * (r & 1 ? -1 : 1)
    case 'bool':
      return (r & 1) === 1
  }
}

function row(schema: Record<string, Scalar | readonly [Scalar, number]>, i: number): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(schema).map(([k, f]) => [k, typeof f === 'string' ? value(f, i) : Array.from({ length: f[1] }, (_, j) => value(f[0], i + j))]),
  )
}

function filled(schema: Record<string, Scalar | readonly [Scalar, number]>, rows: number, options: { mode?: Mode } = {}): MmapVec<Schema> {
  const v = MmapVec.open(fresh(), schema, options)
  for (let i = 0; i < rows; i++) v.push(row(schema, i) as never)
  return v
}

/** A row as apache-arrow's `get` gives it, in the form the vec's `get` has. */
function arrowRow(table: arrow.Table, i: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of table.schema.fields) {
    const x: unknown = table.getChild(f.name)!.get(i)
    out[f.name] = x instanceof arrow.Vector ? [...x] : x
  }
  return out
}

/** The bytes of every column: equal bytes mean equal values, NaN payloads and -0 included. */
function bytesOf(v: MmapVec<Schema>): Record<string, Buffer> {
  const cols = v.columns as unknown as Record<string, ArrayBufferView>
  return Object.fromEntries(Object.entries(cols).map(([k, c]) => [k, Buffer.from(c.buffer, c.byteOffset, c.byteLength)]))
}

const expectedType: Record<Scalar, string> = {
  i8: 'Int8',
  u8: 'Uint8',
  i16: 'Int16',
  u16: 'Uint16',
  i32: 'Int32',
  u32: 'Uint32',
  i64: 'Int64',
  u64: 'Uint64',
  f32: 'Float32',
  f64: 'Float64',
  bool: 'Bool',
}

function checkRows(t: ExecutionContext, table: arrow.Table, v: MmapVec<Schema>, what: string) {
  t.is(table.numRows, v.length, what)
  for (let i = 0; i < v.length; i++) {
    const want = v.get(i) as Record<string, unknown>
    const got = arrowRow(table, i)
    if (JSON.stringify(Object.keys(got)) !== JSON.stringify(Object.keys(want))) t.fail(`${what}: columns ${Object.keys(got).join(', ')}`)
    for (const k of Object.keys(want)) {
      // deepEqual tells NaN from any number and -0 from 0.
      const same = JSON.stringify([got[k]], (_: string, x: unknown) => (typeof x === 'bigint' ? `${x}n` : Object.is(x, -0) ? '-0' : Number.isNaN(x) ? 'NaN' : x))
      const exp = JSON.stringify([want[k]], (_: string, x: unknown) => (typeof x === 'bigint' ? `${x}n` : Object.is(x, -0) ? '-0' : Number.isNaN(x) ? 'NaN' : x))
      if (same !== exp) t.fail(`${what}: row ${i} column ${k}: ${same} !== ${exp}`)
    }
  }
}

for (const mode of MODES) {
  test(`${mode}: every field type goes vec -> IPC file -> a fresh apache-arrow reader -> vec unchanged`, async (t) => {
    const v = filled(Every, 300, { mode })
    t.is(v.mode, mode)
    const file = fresh('arrow')
    await writeArrowIPC(v, file)
    // The ES module build of apache-arrow, which mmapvec's writer (CommonJS) does not share.
    const table = arrow.tableFromIPC(readFileSync(file))
    for (const f of table.schema.fields) {
      const [type, count] = typeof Every[f.name] === 'string' ? [Every[f.name] as Scalar, 1] : (Every[f.name] as [Scalar, number])
      t.is(String(f.type), count === 1 ? expectedType[type] : `FixedSizeList[${count}]<${expectedType[type]}>`, f.name)
      t.false(f.nullable, `${f.name}: mmapvec columns have no nulls`)
    }
    checkRows(t, table, v, 'read by apache-arrow')

    const w = await MmapVec.fromArrow(fresh(), file, { mode })
    t.deepEqual(w.schema, v.schema)
    t.is(w.length, 300)
    t.deepEqual(bytesOf(w), bytesOf(v), 'every byte of every column comes back')
    const u = MmapVec.fromArrow(fresh(), table, { mode })
    t.deepEqual(bytesOf(u), bytesOf(v), 'the same from the Table')
    for (const x of [v, w, u]) x.close()
  })

  test(`${mode}: toArrow's numeric columns are the vec's own memory, both ways`, (t) => {
    const v = MmapVec.open(fresh(), { pos: ['f32', 3], id: 'u32', big: 'i64', alive: 'bool' }, { mode })
    for (let i = 0; i < 10; i++) v.push({ pos: [i, i, i], id: i, big: BigInt(i), alive: true })
    const table = toArrow(v)
    const cols = v.columns
    t.is((table.getChild('id')!.data[0].values as Uint32Array).buffer, cols.id.buffer)
    t.is((table.getChild('big')!.data[0].values as BigInt64Array).buffer, cols.big.buffer)
    t.is((table.getChild('pos')!.data[0].children[0].values as Float32Array).buffer, cols.pos.buffer, 'a FixedSizeList over the same memory')

    cols.id[3] = 1234
    v.set(4, { pos: [7, 8, 9], big: -5n })
    t.is(table.getChild('id')!.get(3), 1234, 'a write through the vec shows in the table')
    t.deepEqual([...(table.getChild('pos')!.get(4) as Iterable<number>)], [7, 8, 9])
    t.is(table.getChild('big')!.get(4), -5n)
    table.getChild('id')!.set(5, 777)
    t.is(v.get(5).id, 777, 'and a write through the table shows in the vec')

    // Arrow packs booleans into bits: that column is a copy, taken when the table was made.
    v.set(0, { alive: false })
    t.true(table.getChild('alive')!.get(0))

    const part = toArrow(v, { from: 3, to: 6 })
    t.is(part.numRows, 3)
    t.is(part.getChild('id')!.get(0), 1234)

    v.close()
    t.is((table.getChild('id')!.data[0].values as Uint32Array).length, 0, 'after close the views are detached, as the vec says')
    t.is(table.getChild('id')!.get(3), undefined)
  })
}

test('in mmap mode a write through the table reaches the file', (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { x: 'f64' }, { mode: 'mmap' })
  v.pushMany({ x: new Float64Array(100) })
  toArrow(v).getChild('x')!.set(42, 4.5)
  v.close()
  const w = MmapVec.open(path, { x: 'f64' }, { create: false })
  t.is(w.get(42).x, 4.5)
  w.close()
})

test("toArrow's Table works with the apache-arrow that import and require give", (t) => {
  // Tables of apache-arrow's CommonJS and ES module builds do not mix; each entry of mmapvec
  // builds with the one its caller gets. Plain Node, as a program runs:
  for (const fixture of ['arrow-esm.mjs', 'arrow-cjs.cjs']) {
    const child = runChild(fixture, [])
    t.is(child.status, 0, child.stderr)
    const out = JSON.parse(child.stdout) as { types: string[]; rows: unknown[] }
    t.deepEqual(out.types, ['pos: FixedSizeList[2]<Float32>', 'id: Uint32', 'big: Int64'], fixture)
    t.deepEqual(out.rows[4], { pos: [4, -4], id: 4, big: '-12' }, fixture)
  }
  // This test runs under tsx, whose require hook makes a copy of apache-arrow of its own: the
  // arrow option names the module to build with.
  const v = MmapVec.temp({ pos: ['f32', 2], id: 'u32', big: 'i64' })
  for (let i = 0; i < 5; i++) v.push({ pos: [i, -i], id: i, big: BigInt(i) * -3n })
  const table = toArrow(v, { arrow })
  t.true(table instanceof arrow.Table && Object.getPrototypeOf(table) === arrow.Table.prototype)
  checkRows(t, arrow.tableFromIPC(arrow.tableToIPC(table, 'file')), v, 'arrow option')
  t.throws(() => toArrow(v, { arrow: {} as typeof arrow }), { code: 'EINVAL', message: /apache-arrow module/ } as object)
  v.close()
})

test('a vec of plain values comes back as one', async (t) => {
  const v = MmapVec.temp('f64')
  v.pushMany(new Float64Array([1.5, -0, NaN]))
  const file = fresh('arrow')
  writeArrowIPCSync(v, file)
  const table = arrow.tableFromIPC(readFileSync(file))
  t.deepEqual(table.schema.fields.map(String), ['value: Float64'])
  const w = await MmapVec.fromArrow(fresh(), file)
  t.is(w.schema, 'f64')
  t.deepEqual([...w.values], [1.5, -0, NaN])
  // A column named 'value' without that metadata is a field like any other.
  const x = MmapVec.fromArrow(fresh(), arrow.tableFromArrays({ value: new Float64Array([1]) }))
  t.deepEqual(x.schema, { value: 'f64' })
  for (const y of [v, w, x]) y.close()
})

test('an empty vec makes a valid file with its schema, and comes back empty', async (t) => {
  const v = MmapVec.temp({ pos: ['f32', 3], ok: 'bool' })
  const file = fresh('arrow')
  const seen: [number, number][] = []
  await writeArrowIPC(v, file, { onProgress: (a, b) => seen.push([a, b]) })
  t.deepEqual(seen, [[0, 0]])
  const table = arrow.tableFromIPC(readFileSync(file))
  t.is(table.numRows, 0)
  t.deepEqual(table.schema.fields.map(String), ['pos: FixedSizeList[3]<Float32>', 'ok: Bool'])
  t.is(toArrow(v).numRows, 0)
  const w = await MmapVec.fromArrow(fresh(), file)
  t.deepEqual(w.schema, v.schema)
  t.is(w.length, 0)
  v.close()
  w.close()
})

test('a big vec is written in several record batches and read back batch by batch', async (t) => {
  const S = { pos: ['f32', 3], id: 'u32', big: 'u64', alive: 'bool' } as const
  const v = MmapVec.temp(S)
  const rows = 200_000
  const pos = new Float32Array(rows * 3).map((_, i) => i * 0.5)
  const id = new Uint32Array(rows).map((_, i) => i)
  const big = new BigUint64Array(rows).map((_, i) => BigInt(i) << 40n)
  const alive = Array.from({ length: rows }, (_, i) => i % 3 === 0)
  v.pushMany({ pos, id, big, alive })
  const file = fresh('arrow')
  const out: [number, number][] = []
  await writeArrowIPC(v, file, { onProgress: (a, b) => out.push([a, b]) })
  t.deepEqual(out, [[0, rows], [65536, rows], [131072, rows], [196608, rows], [rows, rows]])
  const reader = arrow.RecordBatchReader.from(readFileSync(file))
  t.is([...reader].length, 4, '65536 rows per batch')

  const back: [number, number | undefined][] = []
  const w = await fromArrowIPC(fresh(), file, { schema: S, onProgress: (a, b) => back.push([a, b]) })
  t.deepEqual(back, out, 'the total is known before the first batch')
  t.deepEqual(bytesOf(w as MmapVec<Schema>), bytesOf(v as MmapVec<Schema>))
  t.is(w.columns.id[rows - 1], rows - 1, 'the schema option types the vec')

  const part = fresh('arrow')
  await writeArrowIPC(v, part, { from: 1000, to: 1010, batchRows: 4 })
  const pt = arrow.tableFromIPC(readFileSync(part))
  t.is(pt.batches.length, 3)
  t.deepEqual(arrowRow(pt, 0), { pos: [1500, 1500.5, 1501], id: 1000, big: 1000n << 40n, alive: false })
  v.close()
  w.close()
})

test('Polars (the Rust Arrow implementation) reads every field type from the file', (t) => {
  const v = filled(Every, 50)
  const file = fresh('arrow')
  writeArrowIPCSync(v, file)
  const df = pl.scanIPC(file).collectSync()
  t.is(df.height, 50)
  const cols = v.columns as unknown as Record<string, ArrayLike<unknown>>
  for (const [name, f] of Object.entries(Every)) {
    const [type, count] = typeof f === 'string' ? [f, 1] : f
    const polarsType = { i8: 'Int8', u8: 'UInt8', i16: 'Int16', u16: 'UInt16', i32: 'Int32', u32: 'UInt32', i64: 'Int64', u64: 'UInt64', f32: 'Float32', f64: 'Float64', bool: 'Bool' }[type]
    const s = df.getColumn(name)
    t.is(String(s.dtype), count === 1 ? `DataType(${polarsType})` : `DataType(FixedSizeList(DataType(${polarsType}),${count}))`, name)
    const flat = count === 1 ? s : (s.explode() as pl.Series)
    const want = Array.from(cols[name], (x) => (type === 'bool' ? x !== 0 : typeof x === 'bigint' ? String(x) : x))
    // 64-bit integers as decimal strings: Polars gives some of them as (rounded) numbers.
    const got = type === 'i64' || type === 'u64' ? flat.cast(pl.Utf8).toArray() : flat.toArray()
    t.deepEqual(got, want, name)
  }
  v.close()
})

test('types a vec cannot hold are refused, naming the column and type, and nothing is created', async (t) => {
  const bad: [string, arrow.Table][] = [
    ['Utf8', arrow.tableFromArrays({ ok: new Int32Array([1]), s: ['a'] })],
    ['Float16', new arrow.Table({ h: arrow.makeVector(arrow.makeData({ type: new arrow.Float16(), length: 1, nullCount: 0, data: new Uint16Array([15360]) })) })],
    ['List', new arrow.Table({ l: arrow.vectorFromArray([[1, 2]], new arrow.List(new arrow.Field('item', new arrow.Float32()))) })],
    [
      'FixedSizeList[2]<FixedSizeList[2]',
      new arrow.Table({
        n: arrow.vectorFromArray([[[1, 2], [3, 4]]], new arrow.FixedSizeList(2, new arrow.Field('item', new arrow.FixedSizeList(2, new arrow.Field('item', new arrow.Int8()))))),
      }),
    ],
    ['Dictionary', new arrow.Table({ d: arrow.vectorFromArray(['x', 'y', 'x']) })],
  ]
  const here = own()
  for (const [type, table] of bad) {
    const path = fresh('mvec', here)
    const col = table.schema.fields.at(-1)!.name
    const e = t.throws(() => MmapVec.fromArrow(path, table), { code: 'EINVAL' } as object, type)
    t.true(e.message.includes(`column '${col}'`) && e.message.includes(type), e.message)
    t.false(existsSync(path))
    const file = fresh('arrow', here)
    writeFileSync(file, arrow.tableToIPC(table, 'file'))
    await t.throwsAsync(MmapVec.fromArrow(path, file), { code: 'EINVAL', message: new RegExp(`column '${col}'`) } as object)
    t.false(existsSync(path))
    t.deepEqual(readdirSync(here), [file.slice(here.length + 1)], 'nothing beside it either')
    rmSync(file)
  }
})

test('nulls are refused; in a file they are found mid-way and the half-made vec is removed', async (t) => {
  const here = own()
  const path = fresh('mvec', here)
  const nullable = new arrow.Table({ x: arrow.vectorFromArray([1, null, 3], new arrow.Float64()) })
  t.throws(() => MmapVec.fromArrow(path, nullable), { code: 'EINVAL', message: /column 'x' has 1 null/ } as object)
  // Nullable columns without nulls are fine (tableFromArrays makes nullable fields).
  const fine = MmapVec.fromArrow(fresh(), arrow.tableFromArrays({ x: new Float64Array([1, 2]) }))
  t.is(fine.length, 2)
  fine.close()

  const clean = new arrow.Table({ x: arrow.vectorFromArray([1, 2, 3], new arrow.Float64()) })
  const file = fresh('arrow', here)
  writeFileSync(file, arrow.tableToIPC(new arrow.Table([...clean.batches, ...nullable.batches]), 'file'))
  const progress: number[] = []
  await t.throwsAsync(MmapVec.fromArrow(path, file, { onProgress: (a) => progress.push(a) }), { code: 'EINVAL', message: /null/ } as object)
  t.deepEqual(progress, [0, 3], 'the first batch was read into the vec before the nulls were found')
  t.false(existsSync(path), 'and that vec is gone')
  t.deepEqual(readdirSync(here), [file.slice(here.length + 1)])
})

test('the schema option must match the Arrow columns, in any order', (t) => {
  const table = arrow.tableFromArrays({ a: new Float32Array([1, 2]), b: new BigInt64Array([3n, 4n]) })
  const v = MmapVec.fromArrow(fresh(), table, { schema: { b: 'i64', a: 'f32' } })
  t.deepEqual(v.get(1), { b: 4n, a: 2 })
  v.close()
  const path = fresh()
  const e = t.throws(() => MmapVec.fromArrow(path, table, { schema: { a: 'f64', b: 'i64' } }), { code: 'ESCHEMA' } as object)
  t.regex(e.message, /a: f32.*a: f64/)
  t.false(existsSync(path))
  t.throws(() => MmapVec.fromArrow(fresh(), table, { readOnly: true } as never), { code: 'EINVAL' } as object)
  t.throws(() => MmapVec.fromArrow(fresh(), {} as arrow.Table), { code: 'EINVAL', message: /Table or the path/ } as object)
})

test('fromArrow over an existing vec is EEXIST and leaves it as it was', async (t) => {
  const path = fresh()
  const v = MmapVec.open(path, { a: 'f32' })
  v.push({ a: 1 })
  v.close()
  const before = fingerprint(path)
  const table = arrow.tableFromArrays({ a: new Float32Array([9]) })
  t.throws(() => MmapVec.fromArrow(path, table), { code: 'EEXIST' } as object)
  const file = fresh('arrow')
  writeFileSync(file, arrow.tableToIPC(table, 'file'))
  await t.throwsAsync(MmapVec.fromArrow(path, file), { code: 'EEXIST' } as object)
  t.deepEqual(fingerprint(path), before)
})

test('files that are not Arrow IPC files are EFORMAT, missing ones ENOENT, and nothing is created', async (t) => {
  const v = filled({ x: 'f64', y: ['i16', 2] }, 1000)
  const good = fresh('arrow')
  await writeArrowIPC(v, good, { batchRows: 100 })
  v.close()
  const garbage = fresh('arrow')
  writeFileSync(garbage, Buffer.alloc(5000, 7))
  const cut = fresh('arrow')
  cpSync(good, cut)
  truncateSync(cut, Math.floor(statSync(good).size / 2))
  for (const file of [garbage, cut]) {
    const path = fresh()
    await t.throwsAsync(MmapVec.fromArrow(path, file), { code: 'EFORMAT', message: new RegExp(file) } as object, file)
    t.false(existsSync(path))
  }
  await t.throwsAsync(MmapVec.fromArrow(fresh(), join(dir, 'nothing.arrow')), { code: 'ENOENT' } as object)
  // The IPC stream format (no footer) is read as well; its total is unknown.
  const stream = fresh('arrows')
  writeFileSync(stream, arrow.tableToIPC(arrow.tableFromIPC(readFileSync(good)), 'stream'))
  const totals = new Set<number | undefined>()
  const w = await MmapVec.fromArrow(fresh(), stream, { onProgress: (_, total) => totals.add(total) })
  t.is(w.length, 1000)
  t.deepEqual([...totals], [undefined])
  w.close()
})

test('writeArrowIPC: bad ranges and options, a closed vec, and a vec closed mid-way leave the target as it was', async (t) => {
  const v = filled({ x: 'f64' }, 100)
  const file = fresh('arrow')
  writeFileSync(file, 'old contents')
  await t.throwsAsync(writeArrowIPC(v, file, { from: 5, to: 101 }), { code: 'ERANGE' } as object)
  await t.throwsAsync(writeArrowIPC(v, file, { from: 6, to: 5 }), { code: 'ERANGE' } as object)
  await t.throwsAsync(writeArrowIPC(v, file, { from: 1.5 }), { code: 'EINVAL' } as object)
  await t.throwsAsync(writeArrowIPC(v, file, { batchRows: 0 }), { code: 'EINVAL' } as object)
  await t.throwsAsync(writeArrowIPC(v, file, { rows: 1 } as never), { code: 'EINVAL', message: /unknown option 'rows'/ } as object)
  await t.throwsAsync(writeArrowIPC(v, join(dir, 'no', 'such', 'dir.arrow')), { code: 'ENOENT' } as object)
  t.throws(() => toArrow(v, { to: 200 }), { code: 'ERANGE' } as object)

  // Closing the vec while the export waits for the disk: the export fails, the target keeps
  // its old contents, and no temporary file stays beside it.
  const sub = own()
  const target = join(sub, 'out.arrow')
  writeFileSync(target, 'old contents')
  await t.throwsAsync(
    writeArrowIPC(v, target, { batchRows: 10, onProgress: (done) => done === 20 && v.close() }),
    { code: 'ECLOSED' } as object,
  )
  t.is(readFileSync(target, 'utf8'), 'old contents')
  t.deepEqual(readdirSync(sub), ['out.arrow'])
  await t.throwsAsync(writeArrowIPC(v, target), { code: 'ECLOSED' } as object)
  t.throws(() => toArrow(v), { code: 'ECLOSED' } as object)
  t.is(readFileSync(file, 'utf8'), 'old contents')

  // A successful export replaces the file whole.
  const w = filled({ x: 'f64' }, 3)
  await writeArrowIPC(w, target)
  t.is(arrow.tableFromIPC(readFileSync(target)).numRows, 3)
  w.close()
})

test('without apache-arrow installed, the Arrow functions say how to install it', (t) => {
  // A copy of the built package where nothing named apache-arrow can be resolved.
  const root = fileURLToPath(new URL('..', import.meta.url))
  const pkg = join(scratch(), 'mmapvec')
  for (const p of ['package.json', 'dist', 'native']) cpSync(join(root, p), join(pkg, p), { recursive: true })
  const child = runChild('arrow-missing.cjs', [pkg])
  t.is(child.status, 0, child.stderr)
  const out = JSON.parse(child.stdout) as Record<string, { code: string; message: string } | boolean>
  t.false(out.resolvable, 'the copy really cannot see apache-arrow')
  t.true(out.loaded, 'the rest of the package works without it')
  for (const k of ['toArrow', 'writeArrowIPC', 'fromArrow', 'esmToArrow']) {
    const e = out[k] as { code: string; message: string }
    t.is(e.code, 'EDEPENDENCY', k)
    t.regex(e.message, /npm install apache-arrow/, k)
  }
})

test('Arrow calls refuse what is not a vec, file names with NUL or lone surrogates, and a schema changed mid-export', async (t) => {
  const dir = scratch()
  const v = MmapVec.open(join(dir, 'v.mvec'), { a: 'u32', b: 'f64' })
  for (let i = 0; i < 200_000; i++) v.push({ a: i, b: i / 2 })
  t.throws(() => toArrow(null as never), { code: 'EINVAL' } as object)
  t.throws(() => toArrow(structuredClone({ ...v }) as never), { code: 'EINVAL' } as object)
  t.throws(() => writeArrowIPCSync(v, join(dir, 'x\0y.arrow')), { code: 'EINVAL' } as object)
  t.throws(() => writeArrowIPCSync(v, join(dir, 'lone\uD800.arrow')), { code: 'EINVAL' } as object)
  await t.throwsAsync(fromArrowIPC(join(dir, 'w.mvec'), join(dir, 'x\0y.arrow')), { code: 'EINVAL' } as object)
  const out = join(dir, 'out.arrow')
  const exporting = writeArrowIPC(v, out, { batchRows: 1000 })
  v.renameColumn('a', 'c')
  await t.throwsAsync(exporting, { code: 'ESCHEMA' } as object)
  t.false(existsSync(out))
  t.deepEqual(readdirSync(dir).sort(), ['v.mvec', 'w.mvec'].filter((n) => existsSync(join(dir, n))))
  v.close()
})

test('fromArrow of an empty Table made by apache-arrow makes an empty vec', (t) => {
  const table = arrow.tableFromArrays({ a: new Float64Array(0) })
  using v = MmapVec.fromArrow(join(scratch(), 'e.mvec'), table)
  t.is(v.length, 0)
  t.deepEqual(v.schema, { a: 'f64' })
})

test('writeArrowIPC into a named pipe whose reader leaves early is EIO naming it, with the EPIPE as its cause', async (t) => {
  const d = own()
  const v = MmapVec.open(join(d, 'v.mvec'), { x: 'f64' })
  v.pushMany({ x: new Float64Array(200_000) }) // 1.6 MB: far more than a pipe holds
  const fifo = join(d, 'out.arrow')
  t.is(spawnSync('mkfifo', [fifo]).status, 0)
  const reader = spawn('head', ['-c', '100', fifo], { stdio: 'ignore' })
  const closed = new Promise((resolve) => reader.on('close', resolve))
  const e = await t.throwsAsync(writeArrowIPC(v, fifo), { instanceOf: MmapVecError, code: 'EIO' })
  t.true(e.message.startsWith(`${fifo}: writing the Arrow file failed: `), e.message)
  t.is((e.cause as NodeJS.ErrnoException | undefined)?.code, 'EPIPE')
  t.is(await closed, 0)
  v.close()
  t.deepEqual(readdirSync(d).sort(), ['out.arrow', 'v.mvec'])
})

/**
 * The 300-row, 5-column file of the seventh adversarial pass (record batches of 100 rows), and
 * that file with byte `at` set to `value`: its damaged copies were found by fuzzing.
 */
async function damagedCopy(at: number, value: number): Promise<string> {
  const src = fresh()
  const v = MmapVec.open(src, { a: 'u8', b: 'i64', p: ['f32', 3], ok: 'bool', d: 'f64' })
  for (let i = 0; i < 300; i++) v.push({ a: i & 255, b: BigInt(i) * 1000000007n, p: [i, i / 2, -i], ok: i % 3 === 0, d: i * 1.5 })
  const good = fresh('arrow')
  await writeArrowIPC(v, good, { batchRows: 100 })
  v.close()
  const bytes = readFileSync(good)
  if (bytes.length !== 10466) throw new Error(`the Arrow file is ${bytes.length} bytes, not the 10466 the damaged offsets are for`)
  bytes[at] = value
  const bad = fresh('arrow')
  writeFileSync(bad, bytes)
  return bad
}

test('a damaged Arrow schema that apache-arrow trips over (a FixedSizeList without its child) is EFORMAT naming the file', async (t) => {
  const bad = await damagedCopy(10254, 4)
  const path = fresh()
  await t.throwsAsync(fromArrowIPC(path, bad), { instanceOf: MmapVecError, code: 'EFORMAT', message: new RegExp(`^${bad}: column 'p' is a FixedSizeList without exactly one child type: .*sound copy`) } as object)
  t.false(existsSync(path))
  const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))
  const r = spawnSync(process.execPath, [BIN, 'import', bad, path], { encoding: 'utf8', timeout: 60_000 })
  t.is(r.status, 6, r.stderr)
  t.regex(r.stderr, new RegExp(`^mmapvec: EFORMAT: ${bad}: `))
  t.false(existsSync(path))
})

test('damaged flatbuffer vector lengths in an Arrow file are EFORMAT before apache-arrow decodes them (no unbounded allocation, no endless loop)', async (t) => {
  const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))
  // 279: a record batch's field nodes (apache-arrow made 1.6 billion of them until V8 aborted);
  // 10252: the footer schema's vectors (apache-arrow looped over them for hours, deaf to signals).
  for (const [at, value] of [[279, 100], [10252, 4]]) {
    const bad = await damagedCopy(at, value)
    const path = fresh()
    const child = (args: string[]) =>
      spawnSync(process.execPath, ['--max-old-space-size=256', ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' })
    const cliRun = child([BIN, 'import', bad, path])
    t.is(cliRun.signal, null, `byte ${at}: the import ended by itself, not killed at the timeout or by V8's abort`)
    t.is(cliRun.status, 6, `byte ${at}: ${cliRun.stderr}`)
    t.regex(cliRun.stderr, new RegExp(`^mmapvec: EFORMAT: ${bad}: damaged Arrow IPC file: .*write it again`))
    const lib = child([
      '--input-type=module',
      '-e',
      `import { fromArrowIPC } from 'mmapvec'; try { await fromArrowIPC(process.argv[1], process.argv[2]) } catch (e) { console.log(e.code) }`,
      path,
      bad,
    ])
    t.is(lib.signal, null, `byte ${at}: fromArrowIPC ended by itself`)
    t.is(lib.stdout.trim(), 'EFORMAT', `byte ${at}: ${lib.stderr}`)
    t.false(existsSync(path))
  }
})
