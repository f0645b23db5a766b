/**
 * The `mmapvec` command, run as users run it: the built bin as a child process. Every command,
 * the help of each, exit codes (missing path, damaged vec, bad arguments, locks), info while
 * another process holds the lock, table alignment, and export/import round trips.
 */
import test from 'ava'
import { MmapVec, type VecInfo } from 'mmapvec'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fingerprint, scratch, startChild } from './helpers/util.mjs'

const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const COMMANDS = ['info', 'head', 'cat', 'verify', 'export', 'import']

/** The exit codes the help documents; the table in ts/cli/exit-codes.ts. */
const EXIT = { ok: 0, problems: 1, usage: 2, ELOCKED: 3, EEXIST: 4, ENOENT: 5, EFORMAT: 6, EINVAL: 14, EDEPENDENCY: 17 }

const Small = { id: 'u32', pos: ['f32', 2], ok: 'bool', big: 'i64' } as const

function small(dir: string, name = 's.mvec'): string {
  const path = join(dir, name)
  const v = MmapVec.open(path, Small)
  v.push({ id: 7, pos: [1.5, -2], ok: true, big: -12345678901234n })
  v.push({ id: 123456, pos: [0.1, 100], ok: false, big: 0n })
  v.push({ id: 0, pos: [-0, 3], ok: true, big: 42n })
  v.close()
  return path
}

test('--help of the command lists every command and the exit codes', (t) => {
  const r = cli('--help')
  t.is(r.status, 0)
  for (const c of COMMANDS) t.regex(r.stdout, new RegExp(`^  ${c} `, 'm'))
  for (const [code, n] of [['ELOCKED', 3], ['ENOENT', 5], ['EFORMAT', 6], ['EINVAL', 14], ['EIO', 16], ['EDEPENDENCY', 17]] as const) {
    t.regex(r.stdout, new RegExp(`^ +${n}  ${code}:`, 'm'))
  }
  t.regex(r.stdout, /^ +1 {2}verify found problems/m)
  t.regex(r.stdout, /^ +2 {2}usage error/m)
  // Without a command: the same help, as a usage error.
  const none = cli()
  t.is(none.status, EXIT.usage)
  t.regex(none.stderr, /Commands:/)
})

for (const c of COMMANDS) {
  test(`${c} --help`, (t) => {
    for (const args of [[c, '--help'], [c, '-h'], ['help', c]]) {
      const r = cli(...args)
      t.is(r.status, 0, args.join(' '))
      t.true(r.stdout.startsWith(`Usage: mmapvec ${c} `), r.stdout)
      t.is(r.stderr, '')
    }
  })
}

test('bad arguments are usage errors (exit 2)', (t) => {
  const path = small(scratch())
  for (const args of [
    ['frobnicate', path],
    ['info'],
    ['info', path, 'extra'],
    ['info', path, '--bogus'],
    ['head', path, '-n', 'ten'],
    ['cat', path, '--from', '-1'],
    ['export', path],
    ['export', path, '--format', 'xml'],
    ['import', 'x.csv'],
    ['import', 'x.txt', join(scratch(), 'n.mvec'), '--schema', '"f64"'],
  ]) {
    const r = cli(...args)
    t.is(r.status, EXIT.usage, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /^mmapvec: .*\nRun 'mmapvec .*--help' for usage\.\n$/s, args.join(' '))
    t.is(r.stdout, '')
  }
})

test('a missing path is ENOENT (exit 5) for every command that reads a vec', (t) => {
  const missing = join(scratch(), 'nothing.mvec')
  for (const args of [['info', missing], ['head', missing], ['cat', missing], ['verify', missing], ['export', missing, '--format', 'csv']]) {
    const r = cli(...args)
    t.is(r.status, EXIT.ENOENT, args.join(' '))
    t.regex(r.stderr, /^mmapvec: ENOENT: .*nothing\.mvec/)
  }
  t.false(existsSync(missing))
})

test('info shows the schema, sizes, versions and lock', (t) => {
  const path = small(scratch())
  const r = cli('info', path)
  t.is(r.status, 0)
  t.is(r.stderr, '')
  t.regex(r.stdout, /^length +3 rows$/m)
  t.regex(r.stdout, /^capacity +\d+ rows$/m)
  t.regex(r.stdout, /^format +mmapvec format 1, (little|big)-endian, created on \w+$/m)
  t.regex(r.stdout, /^lock +none/m)
  t.regex(r.stdout, /^schema +\{"id":"u32","pos":\["f32",2\],"ok":"bool","big":"i64"\}$/m)
  const lines = r.stdout.split('\n')
  const head = lines.indexOf('columns:') + 1
  t.is(lines[head], '  field  type  count  file    offset  bytes  rows')
  t.regex(lines[head + 1], /^ {2}id {5}u32 {7}1 {2}c0\.col {7}0 {2} *\d+ {2}\d+$/)
  const json = JSON.parse(cli('info', path, '--json').stdout) as VecInfo
  t.like(json, { length: 3, version: 0, formatVersion: 1, lock: 'none', schema: { id: 'u32', pos: ['f32', 2], ok: 'bool', big: 'i64' } })
  t.deepEqual(
    json.columns.map((c) => [c.name, c.bytes]),
    [['id', 4096], ['pos', 12288], ['ok', 4096], ['big', 12288]],
  )
})

test('info, verify and head work while another process has the vec open, read-write or readOnly', async (t) => {
  const path = join(scratch(), 'locked.mvec')
  MmapVec.open(path, { x: 'f64' }).close()
  for (const [readOnly, lock] of [['0', 'exclusive'], ['1', 'shared']] as const) {
    const holder = startChild('locker.mjs', [path, readOnly, '60000'])
    try {
      await holder.ready
      const before = fingerprint(path)
      const info = cli('info', path, '--json')
      t.is(info.status, 0, info.stderr)
      t.like(JSON.parse(info.stdout), { lock, lockedByThisProcess: false })
      t.regex(cli('info', path).stdout, new RegExp(`^lock +${lock} \\(open ${lock === 'shared' ? 'readOnly' : 'read-write'} by a process\\)$`, 'm'))
      t.is(cli('verify', path).status, 0)
      // A reader opens beside the writer.
      const head = cli('head', path)
      t.is(head.status, 0, head.stderr)
      t.deepEqual(fingerprint(path), before)
    } finally {
      holder.child.kill()
      await holder.exited
    }
  }
  t.like(JSON.parse(cli('info', path, '--json').stdout), { lock: 'none' })
})

test('head and cat print an aligned table', (t) => {
  const path = small(scratch())
  const r = cli('head', path)
  t.is(r.status, 0)
  t.is(r.stderr, '')
  t.is(
    r.stdout,
    [
      '#      id  pos         ok                 big',
      '0       7  [1.5, -2]   true   -12345678901234',
      '1  123456  [0.1, 100]  false                0',
      '2       0  [-0, 3]     true                42',
      '',
    ].join('\n'),
  )
  t.is(cli('head', path, '-n', '1').stdout.split('\n').length, 3)
  const cat = cli('cat', path, '--from', '1', '--to', '2')
  t.deepEqual(cat.stdout.split('\n').slice(1, -1).map((l) => l.split(/ +/)[0]), ['1'])
  // Every line is as wide as the header where the last column is right-aligned.
  const lines = cli('cat', path).stdout.trimEnd().split('\n')
  t.true(lines.every((l) => l.length === lines[0].length), lines.join('\n'))
})

test('--json prints one JSON object per row, i64 as strings', (t) => {
  const path = small(scratch())
  const r = cli('cat', path, '--json', '--from', '1')
  t.is(r.status, 0)
  t.deepEqual(
    r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown),
    [
      { id: 123456, pos: [0.1, 100], ok: false, big: '0' },
      { id: 0, pos: [-0, 3], ok: true, big: '42' },
    ],
  )
  t.is(cli('head', path, '--json', '-n', '0').stdout, '')
})

test('verify passes a sound vec, and reports each kind of damage with exit 1 without changing the files', (t) => {
  const dir = scratch()
  const sound = small(dir)
  const ok = cli('verify', sound)
  t.is(ok.status, 0)
  t.regex(ok.stdout, /ok, no problems found/)
  const damages: [string, (p: string) => void, RegExp][] = [
    ['checksum', (p) => flip(join(p, 'header'), 24), /^EFORMAT header-checksum: /m],
    ['magic', (p) => flip(join(p, 'header'), 0), /^EFORMAT header-magic: /m],
    ['short column', (p) => truncateSync(join(p, 'c1.col'), 64), /^EFORMAT column-size: [\s\S]*^EFORMAT capacity: /m],
    ['missing column', (p) => unlinkSync(join(p, 'c3.col')), /^EFORMAT column-file: .*c3\.col of field 'big' is missing/m],
    ['bool value', (p) => poke(join(p, 'c2.col'), 128 + 1, 5), /^EFORMAT bool-value: .*first in row 1/m],
    ['no header', (p) => unlinkSync(join(p, 'header')), /^EFORMAT header-file: /m],
    ['row count', (p) => poke(join(p, 'header'), 32 + 7, 0x7f), /^EFORMAT (row-count|capacity): /m],
  ]
  for (const [name, damage, expected] of damages) {
    const path = small(dir, `${name.replace(' ', '-')}.mvec`)
    damage(path)
    const before = fingerprint(path)
    const r = cli('verify', path)
    t.is(r.status, EXIT.problems, name)
    t.regex(r.stdout, expected, name)
    t.regex(r.stdout, /problems? found\n$/, name)
    t.deepEqual(fingerprint(path), before, name)
    const json = JSON.parse(cli('verify', path, '--json').stdout) as { ok: boolean; problems: unknown[] }
    t.false(json.ok)
    t.true(json.problems.length > 0)
    // info refuses what opening refuses: EFORMAT, except for a lost column file it can show.
    if (name !== 'missing column' && name !== 'bool value' && name !== 'short column') t.is(cli('info', path).status, EXIT.EFORMAT, name)
  }
  const file = join(dir, 'plain-file')
  writeFileSync(file, 'not a vec')
  const r = cli('verify', file)
  t.is(r.status, EXIT.problems)
  t.regex(r.stdout, /^EFORMAT directory: /m)
  t.is(cli('info', file).status, EXIT.EFORMAT)
  t.is(cli('head', file).status, EXIT.EFORMAT)
})

function flip(file: string, at: number) {
  const b = readFileSync(file)
  b[at] ^= 1
  writeFileSync(file, b)
}

function poke(file: string, at: number, value: number) {
  const b = readFileSync(file)
  b[at] = value
  writeFileSync(file, b)
}

// Every field type, with the edge values of each.
const Every = {
  i8: 'i8', u8: 'u8', i16: 'i16', u16: 'u16', i32: 'i32', u32: 'u32', i64: 'i64', u64: 'u64',
  f32: 'f32', f64: 'f64', bool: 'bool', a: ['f32', 3], b: ['i64', 2], c: ['bool', 2], d: ['u8', 4],
} as const
const EDGE_ROWS = [
  { i8: -128, u8: 255, i16: -32768, u16: 65535, i32: -(2 ** 31), u32: 2 ** 32 - 1, i64: -(2n ** 63n), u64: 2n ** 64n - 1n, f32: Math.fround(0.1), f64: 0.1, bool: true, a: [-0, NaN, Infinity], b: [2n ** 63n - 1n, -1n], c: [true, false], d: [0, 1, 254, 255] },
  { i8: 127, u8: 0, i16: 32767, u16: 0, i32: 2 ** 31 - 1, u32: 0, i64: 0n, u64: 0n, f32: Math.fround(1e-45), f64: -Infinity, bool: false, a: [Math.fround(3.4e38), -1.5, 1e-7], b: [0n, 9007199254740993n], c: [false, true], d: [9, 8, 7, 6] },
  { i8: 0, u8: 1, i16: -1, u16: 1, i32: 0, u32: 1, i64: 1n, u64: 9007199254740993n, f32: -0, f64: 5e-324, bool: true, a: [1 / 3, 2 / 3, 1], b: [1n, 2n], c: [true, true], d: [1, 2, 3, 4] },
  { i8: -1, u8: 2, i16: 2, u16: 2, i32: -5, u32: 5, i64: -5n, u64: 5n, f32: 16777216, f64: 1.7976931348623157e308, bool: false, a: [0, 0, 0], b: [0n, 0n], c: [false, false], d: [0, 0, 0, 0] },
]

/** The bytes of every column's rows: equal means every value has the same bits. */
function columnBytes(path: string): Record<string, string> {
  const v = MmapVec.open(path, undefined, { readOnly: true })
  const out: Record<string, string> = {}
  for (const [k, a] of Object.entries(v.columns as Record<string, ArrayBufferView>)) out[k] = Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex')
  out.length = String(v.length)
  v.close()
  return out
}

for (const format of ['csv', 'jsonl'] as const) {
  test(`export and import ${format} round-trip every field type exactly`, (t) => {
    const dir = scratch()
    const src = join(dir, 'src.mvec')
    const v = MmapVec.open(src, Every)
    for (let i = 0; i < 3000; i++) v.push(EDGE_ROWS[i % EDGE_ROWS.length])
    v.close()
    const file = join(dir, `rows.${format}`)
    const ex = cli('export', src, '--out', file)
    t.is(ex.status, 0, ex.stderr)
    t.is(ex.stdout, '')
    t.is(ex.stderr, '', 'stderr is not a terminal: no progress bar')
    const schema = JSON.stringify((JSON.parse(cli('info', src, '--json').stdout) as VecInfo).schema)
    const dst = join(dir, 'dst.mvec')
    const im = cli('import', file, dst, '--schema', schema)
    t.is(im.status, 0, im.stderr)
    t.is(im.stderr, '')
    t.regex(im.stdout, /imported 3000 rows/)
    t.deepEqual(columnBytes(dst), columnBytes(src))
    // Standard output carries the same bytes as --out.
    t.is(cli('export', src, '--format', format).stdout, readFileSync(file, 'utf8'))
  })
}

test('CSV has a header row with array fields flattened, and scalar vecs round-trip', (t) => {
  const dir = scratch()
  const path = small(dir)
  const csv = cli('export', path, '--format', 'csv', '--from', '2').stdout
  t.is(csv, 'id,pos[0],pos[1],ok,big\n0,-0,3,true,42\n')
  const scalar = join(dir, 'scalar.mvec')
  const v = MmapVec.open(scalar, ['u16', 2])
  v.push([1, 2])
  v.push([65535, 0])
  v.close()
  t.is(cli('export', scalar, '--format', 'jsonl').stdout, '[1,2]\n[65535,0]\n')
  t.is(cli('export', scalar, '--format', 'csv').stdout, 'value[0],value[1]\n1,2\n65535,0\n')
  for (const format of ['csv', 'jsonl']) {
    const file = join(dir, `scalar.${format}`)
    t.is(cli('export', scalar, '--out', file).status, 0)
    const back = join(dir, `scalar-${format}.mvec`)
    t.is(cli('import', file, back, '--schema', '["u16",2]').status, 0)
    t.deepEqual(columnBytes(back), columnBytes(scalar))
  }
  // The schema may also come from a file; columns may come in any order.
  writeFileSync(join(dir, 'schema.json'), JSON.stringify(Small))
  writeFileSync(join(dir, 'reordered.csv'), 'big,ok,pos[1],pos[0],id\n5,1,2,3,4\n')
  const back = join(dir, 'reordered.mvec')
  t.is(cli('import', join(dir, 'reordered.csv'), back, '--schema', `@${join(dir, 'schema.json')}`).status, 0)
  const w = MmapVec.open(back, Small, { readOnly: true })
  t.deepEqual(w.get(0), { id: 4, pos: [3, 2], ok: true, big: 5n })
  w.close()
})

test('a bad input row fails with EINVAL naming the line and field, and leaves no vec', (t) => {
  const dir = scratch()
  const schema = JSON.stringify({ id: 'u8', x: ['f64', 2] })
  const cases: [string, string, RegExp][] = [
    ['bad.csv', 'id,x[0],x[1]\n1,2,3\n256,1,1\n', /bad\.csv:3: id: expected a whole number from 0 to 255/],
    ['bad2.csv', 'id,x[0],x[1]\n1,2,abc\n', /bad2\.csv:2: x\[1\]: expected a number/],
    ['header.csv', 'id,x\n1,2\n', /header row must name the columns id,x\[0\],x\[1\]; missing: x\[0\],x\[1\]; not in the schema: x/],
    ['bad.jsonl', '{"id":1,"x":[1,2]}\n{"id":1,"x":[1]}\n', /bad\.jsonl:2: field 'x' must be an array of 2 values/],
    ['bad2.jsonl', '{"id":1,"x":[1,2]}\n\n{"id":1,"x":[1,2],"y":0}\n', /bad2\.jsonl:3: no field named 'y'/],
    ['bad3.jsonl', '{"id":1,"x":[1,2]}\nnot json\n', /bad3\.jsonl:2: not JSON/],
  ]
  for (const [name, text, expected] of cases) {
    writeFileSync(join(dir, name), text)
    const target = join(dir, `${name}.mvec`)
    const r = cli('import', join(dir, name), target, '--schema', schema)
    t.is(r.status, EXIT.EINVAL, `${name}: ${r.stderr}`)
    t.regex(r.stderr, expected, name)
    t.false(existsSync(target), name)
  }
  const bad = cli('import', join(dir, 'bad.csv'), join(dir, 'y.mvec'), '--schema', '{"id":"u9"}')
  t.is(bad.status, EXIT.EINVAL)
  t.regex(bad.stderr, /unknown type 'u9'/)
})

test('import refuses an existing target (EEXIST) and a missing input (ENOENT)', (t) => {
  const dir = scratch()
  const path = small(dir)
  writeFileSync(join(dir, 'in.csv'), 'id,pos[0],pos[1],ok,big\n1,1,1,true,1\n')
  const before = fingerprint(path)
  const r = cli('import', join(dir, 'in.csv'), path, '--schema', JSON.stringify(Small))
  t.is(r.status, EXIT.EEXIST)
  t.deepEqual(fingerprint(path), before)
  const m = cli('import', join(dir, 'missing.csv'), join(dir, 'new.mvec'), '--schema', JSON.stringify(Small))
  t.is(m.status, EXIT.ENOENT)
  t.false(existsSync(join(dir, 'new.mvec')))
})

test('export --out writes the whole file or leaves none', (t) => {
  const dir = scratch()
  const out = join(dir, 'out.csv')
  const r = cli('export', join(dir, 'missing.mvec'), '--out', out)
  t.is(r.status, EXIT.ENOENT)
  t.false(existsSync(out))
  const path = small(dir)
  t.is(cli('export', path, '--out', out).status, 0)
  t.is(readFileSync(out, 'utf8').split('\n').length, 5)
  t.is(cli('export', path, '--out', join(dir, 'no-such-dir', 'x.csv')).status, EXIT.ENOENT)
  rmSync(out)
})

test('export --format arrow and import of the .arrow file round-trip every row', (t) => {
  const dir = scratch()
  const path = small(dir)
  const out = join(dir, 'x.arrow')
  const usage = cli('export', path, '--format', 'arrow')
  t.is(usage.status, EXIT.usage, 'a binary format needs --out')
  t.regex(usage.stderr, /--out FILE/)
  const e = cli('export', path, '--out', out)
  t.is(e.status, 0, e.stderr)
  t.is(e.stderr, '')
  t.is(readFileSync(out).subarray(0, 6).toString('latin1'), 'ARROW1', 'an Arrow IPC file')
  const copy = join(dir, 'copy.mvec')
  const i = cli('import', out, copy)
  t.is(i.status, 0, i.stderr)
  t.regex(i.stdout, /imported 3 rows/)
  t.is(cli('cat', copy, '--json').stdout, cli('cat', path, '--json').stdout)
  // A row range, and a --schema that contradicts the file: ESCHEMA, no vec left behind.
  t.is(cli('export', path, '--out', join(dir, 'part.arrow'), '--from', '1', '--to', '2').status, 0)
  t.is(cli('import', join(dir, 'part.arrow'), join(dir, 'part.mvec')).status, 0)
  t.is(MmapVec.inspect(join(dir, 'part.mvec')).length, 1)
  const bad = cli('import', out, join(dir, 'bad.mvec'), '--schema', '{"id":"f64"}')
  t.is(bad.status, 7, bad.stderr) // ESCHEMA
  t.false(existsSync(join(dir, 'bad.mvec')))
})

test('a reader that goes away early (cat | head) ends the command quietly, with the status of SIGPIPE', (t) => {
  const path = join(scratch(), 'long.mvec')
  const v = MmapVec.open(path, 'f64')
  v.pushMany(new Float64Array(200_000).map((_, i) => i / 7))
  v.close()
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" cat "${path}" | head -n 2`], { encoding: 'utf8' })
  t.is(r.stdout, '     #                value\n     0                    0\n')
  const status = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" cat "${path}" | head -n 1 > /dev/null; echo \${PIPESTATUS[0]}`], { encoding: 'utf8' })
  t.is(status.stdout.trim(), '141')
  t.is(status.stderr, '')
})

test('CSV refuses a schema whose flattened names clash (a field named like an array element)', (t) => {
  const path = join(scratch(), 'clash.mvec')
  const v = MmapVec.open(path, { 'a[0]': 'u8', a: ['u8', 2] })
  v.push({ 'a[0]': 1, a: [2, 3] })
  v.close()
  const r = cli('export', path, '--format', 'csv')
  t.is(r.status, EXIT.EINVAL)
  t.regex(r.stderr, /'a\[0\]' names a field and an element of an array field; use jsonl/)
  t.is(cli('export', path, '--format', 'jsonl').stdout, '{"a[0]":1,"a":[2,3]}\n')
})
