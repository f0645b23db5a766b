/**
 * The `mmapvec` command against hostile inputs and surroundings: write errors and permissions
 * on `export --out`, long file names, inputs that cannot be read or parse, closed pipes, damaged
 * Arrow files, values out of range, and option misuse. Each case checks the exit code, that the
 * message names the file, that no stack trace is printed, and that nothing is left on disk.
 */
import test from 'ava'
import * as arrow from 'apache-arrow'
import { MmapVec } from 'mmapvec'
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { binForOthers, nodeForOthers, scratch, startChild } from './helpers/util.mjs'

const BIN = fileURLToPath(new URL('../dist/cli/bin.js', import.meta.url))

/** The exit codes of ts/cli/exit-codes.ts. */
const EXIT = { ok: 0, usage: 2, ENOENT: 5, EFORMAT: 6, ENOSPC: 13, EINVAL: 14, EACCES: 15, EIO: 16, pipe: 141 }

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The command, run without blocking the test's event loop; killed after `timeout` ms. */
function run(args: string[], timeout = 60_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { timeout })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('close', (status) => resolve({ status, stdout, stderr }))
  })
}

/** Runs `script` in bash, where `M` runs the command (`M export ...`); `${PIPESTATUS[0]}` works. */
function bash(script: string, cwd?: string) {
  const r = spawnSync('bash', ['-c', `M() { "$NODE" "$BIN" "$@"; }; ${script}`], {
    encoding: 'utf8',
    timeout: 60_000,
    cwd,
    env: { ...process.env, NODE: process.execPath, BIN },
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** No JavaScript stack trace and no internal error in what the command printed. */
function noStack(text: string): boolean {
  return !/\n\s+at |internal error|node:events|Unhandled/.test(text)
}

/** A vec of `rows` rows, { x: f64, y: [u16, 4] }, in `dir`. */
function rowsVec(dir: string, rows: number, name = 'v.mvec'): string {
  const path = join(dir, name)
  const v = MmapVec.open(path, { x: 'f64', y: ['u16', 4] })
  v.pushMany({ x: new Float64Array(rows).map((_, i) => i / 7), y: new Uint16Array(rows * 4).map((_, i) => i) })
  v.close()
  return path
}

test('export --out: a write refused at the file size limit is ENOSPC, and the old output stays whole', (t) => {
  const dir = scratch()
  rowsVec(dir, 2000)
  // 200 rows fit in one chunk: the failing write is the last one.
  for (const [name, rows] of [['out.csv', 200], ['out.csv', 2000], ['out.jsonl', 2000], ['out.arrow', 2000]] as const) {
    writeFileSync(join(dir, name), 'precious old content\n')
    // ulimit -f 1: writes past 1 KiB fail with EFBIG (Node ignores SIGXFSZ).
    const r = bash(`ulimit -f 1; M export v.mvec --out ${name} --to ${rows}`, dir)
    t.is(r.status, EXIT.ENOSPC, `${name}: ${r.stderr}`)
    t.regex(r.stderr, new RegExp(`^mmapvec: ENOSPC: ${name.replace('.', '\\.')}: `), name)
    t.true(noStack(r.stderr), r.stderr)
    t.is(readFileSync(join(dir, name), 'utf8'), 'precious old content\n', name)
  }
  t.deepEqual(readdirSync(dir).sort(), ['out.arrow', 'out.csv', 'out.jsonl', 'v.mvec'], 'no partial files left')
})

test('export --out arrow: a short write of the last piece (the footer) is not taken as written', (t) => {
  // Finds a row count whose Arrow file has a KiB boundary inside its footer, so that the limit
  // cuts the last write short: the writer must go on writing (and fail), not stop there.
  const dir = scratch()
  let found: { rows: number; kib: number } | undefined
  for (let rows = 1; rows < 400 && found === undefined; rows++) {
    const vec = rowsVec(dir, rows, `r${rows}.mvec`)
    const file = join(dir, `r${rows}.arrow`)
    const r = cli('export', vec, '--out', file)
    t.is(r.status, 0, r.stderr)
    const b = readFileSync(file)
    const footerStart = b.length - 10 - b.readInt32LE(b.length - 10)
    const kib = Math.ceil(footerStart / 1024)
    if (kib * 1024 > footerStart + 8 && kib * 1024 < b.length - 10) found = { rows, kib }
  }
  if (found === undefined) return t.fail('no row count puts a KiB boundary inside the footer')
  writeFileSync(join(dir, 'out.arrow'), 'old\n')
  const r = bash(`ulimit -f ${found.kib}; M export r${found.rows}.mvec --out out.arrow`, dir)
  t.is(r.status, EXIT.ENOSPC, r.stderr)
  t.is(readFileSync(join(dir, 'out.arrow'), 'utf8'), 'old\n')
  t.false(readdirSync(dir).some((f) => f.startsWith('.')), 'no temporary file left')
})

test('export --out into a directory the user may not write is EACCES naming the output', (t) => {
  const dir = scratch()
  chmodSync(dir, 0o755)
  const vec = rowsVec(dir, 10)
  chmodSync(vec, 0o755)
  for (const f of readdirSync(vec)) chmodSync(join(vec, f), 0o644)
  const ro = join(dir, 'ro')
  mkdirSync(ro, { mode: 0o555 })
  chmodSync(ro, 0o555)
  // Permissions do not bind root: run as "nobody" then.
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  const node = user.uid === undefined ? process.execPath : nodeForOthers()
  for (const name of ['x.csv', 'x.jsonl', 'x.arrow']) {
    const r = spawnSync(node, [user.uid === undefined ? BIN : binForOthers(), 'export', vec, '--out', join(ro, name)], { encoding: 'utf8', timeout: 60_000, ...user })
    t.is(r.status, EXIT.EACCES, `${name}: ${r.stderr}`)
    t.true(r.stderr.startsWith(`mmapvec: EACCES: ${join(ro, name)}: `), r.stderr)
    t.true(noStack(r.stderr), r.stderr)
  }
  t.deepEqual(readdirSync(ro), [])
})

test('export --out takes any legal file name, up to 255 bytes', (t) => {
  const dir = scratch()
  const vec = rowsVec(dir, 3)
  for (const ext of ['.csv', '.jsonl', '.arrow']) {
    const name = 'n'.repeat(255 - ext.length) + ext
    const r = cli('export', vec, '--out', join(dir, name))
    t.is(r.status, 0, `${ext}: ${r.stderr}`)
    t.true(existsSync(join(dir, name)))
  }
  t.is(readFileSync(join(dir, 'n'.repeat(251) + '.csv'), 'utf8').split('\n')[0], 'x,y[0],y[1],y[2],y[3]')
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temporary file left')
})

test('import of an input that cannot be read fails with its code, naming it, and leaves no vec', (t) => {
  const dir = scratch()
  chmodSync(dir, 0o777)
  const schema = '{"x":"i32"}'
  mkdirSync(join(dir, 'dir.csv'))
  mkdirSync(join(dir, 'dir.jsonl'))
  mkdirSync(join(dir, 'dir.arrow'))
  const cases: [string[], number, string][] = [
    [[join(dir, 'dir.csv')], EXIT.EIO, join(dir, 'dir.csv')],
    [[join(dir, 'dir.jsonl')], EXIT.EIO, join(dir, 'dir.jsonl')],
    [[join(dir, 'dir.arrow')], EXIT.EIO, join(dir, 'dir.arrow')],
    [[join(dir, 'missing.csv')], EXIT.ENOENT, join(dir, 'missing.csv')],
    // Reading /proc/self/mem from offset 0 fails with EIO: a read error after the open.
    [['/proc/self/mem', '--format', 'csv'], EXIT.EIO, '/proc/self/mem'],
    [['/proc/self/mem', '--format', 'jsonl'], EXIT.EIO, '/proc/self/mem'],
  ]
  for (const [[file, ...rest], code, named] of cases) {
    const target = join(dir, 'o.mvec')
    const r = cli('import', file, target, '--schema', schema, ...rest)
    t.is(r.status, code, `${file}: ${r.stderr}`)
    t.true(r.stderr.startsWith(`mmapvec: ${Object.entries(EXIT).find(([, n]) => n === code)![0]}: ${named}: `), r.stderr)
    t.true(noStack(r.stderr), r.stderr)
    t.false(existsSync(target), file)
  }
  // A file the user may not read (as "nobody": permissions do not bind root).
  writeFileSync(join(dir, 'secret.csv'), 'x\n1\n', { mode: 0o600 })
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  const node = user.uid === undefined ? process.execPath : nodeForOthers()
  const r = spawnSync(node, [user.uid === undefined ? BIN : binForOthers(), 'import', join(dir, 'secret.csv'), join(dir, 's.mvec'), '--schema', schema], { encoding: 'utf8', timeout: 60_000, ...user })
  t.is(r.status, EXIT.EACCES, r.stderr)
  t.true(r.stderr.startsWith(`mmapvec: EACCES: ${join(dir, 'secret.csv')}: `), r.stderr)
  t.false(existsSync(join(dir, 's.mvec')))
})

test('import reads a named pipe whose writer writes once and leaves', async (t) => {
  const dir = scratch()
  const fifo = join(dir, 'in.csv')
  t.is(spawnSync('mkfifo', [fifo]).status, 0)
  const writer = spawn('sh', ['-c', `printf 'x\\n1\\n2\\n' > "${fifo}"`])
  const exited = new Promise((resolve) => writer.on('exit', resolve))
  const r = await run(['import', fifo, join(dir, 'o.mvec'), '--schema', '{"x":"i32"}'], 20_000)
  writer.kill()
  await exited
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /imported 2 rows/)
})

test('malformed CSV is EINVAL naming the file and line, and leaves no vec', (t) => {
  const dir = scratch()
  const cases: [string, string, RegExp][] = [
    ['ragged.csv', 'x,y\n1,2\n3\n', /^mmapvec: EINVAL: \S*ragged\.csv:3: 1 values, the header has 2/],
    ['long.csv', 'x,y\n1,2,3\n', /^mmapvec: EINVAL: \S*long\.csv:2: 3 values, the header has 2/],
    ['unclosed.csv', 'x,y\n1,"2\n', /^mmapvec: EINVAL: \S*unclosed\.csv:2: not valid CSV: Quote Not Closed/],
    ['stray.csv', 'x,y\n1,2"x"\n', /^mmapvec: EINVAL: \S*stray\.csv:2: not valid CSV: Invalid Opening Quote/],
    ['closing.csv', 'x,y\n1,"2"x\n', /^mmapvec: EINVAL: \S*closing\.csv:2: not valid CSV: Invalid Closing Quote/],
  ]
  for (const [name, text, expected] of cases) {
    writeFileSync(join(dir, name), text)
    const target = join(dir, `${name}.mvec`)
    const r = cli('import', join(dir, name), target, '--schema', '{"x":"i32","y":"f32"}')
    t.is(r.status, EXIT.EINVAL, `${name}: ${r.stderr}`)
    t.regex(r.stderr, expected, name)
    t.true(noStack(r.stderr), r.stderr)
    t.false(existsSync(target), name)
  }
})

test('a failed import removes the parent directories it made, and only those', (t) => {
  const dir = scratch()
  writeFileSync(join(dir, 'bad.csv'), 'x\n99999999999\n')
  mkdirSync(join(dir, 'keep'))
  for (const format of ['csv', 'arrow']) {
    const target = join(dir, 'keep', 'a', 'b', 'o.mvec')
    const args = format === 'csv' ? [join(dir, 'bad.csv'), target, '--schema', '{"x":"i32"}'] : [join(dir, 'bad.csv'), target, '--format', 'arrow']
    const r = cli('import', ...args)
    t.is(r.status, format === 'csv' ? EXIT.EINVAL : EXIT.EFORMAT, r.stderr)
    t.deepEqual(readdirSync(join(dir, 'keep')), [], format)
  }
  t.deepEqual(readdirSync(dir).sort(), ['bad.csv', 'keep'])
})

test('a closed standard output or error ends the command quietly', (t) => {
  const dir = scratch()
  rowsVec(dir, 5)
  writeFileSync(join(dir, 'one.csv'), 'x,y[0],y[1],y[2],y[3]\n1,2,3,4,5\n')
  const schema = `'{"x":"f64","y":["u16",4]}'`
  t.is(spawnSync('mkfifo', [join(dir, 'gone')]).status, 0)
  for (const c of ['info v.mvec', 'info --json v.mvec', 'verify v.mvec', 'verify --json v.mvec', '--help', 'help info', 'info --help', 'head v.mvec', `import one.csv i.mvec --schema ${schema}`]) {
    // Standard output is a pipe whose reader is gone before the command starts: opened for
    // reading and writing (3), for writing (4), then the only reader (3) closed.
    const r = bash(`exec 3<>gone 4>gone 3<&-; M ${c} >&4; echo "exit=$?"`, dir)
    t.is(r.stdout, `exit=${EXIT.pipe}\n`, `${c}: ${r.stderr}`)
    t.is(r.stderr, '', c)
  }
  t.true(existsSync(join(dir, 'i.mvec')), 'the import itself went through')
  // An error message to a closed standard error: the exit code still says what went wrong.
  const r = bash(`M info missing.mvec 2>&1 >/dev/null | true; echo "exit=\${PIPESTATUS[0]}"`, dir)
  t.is(r.stdout, `exit=${EXIT.ENOENT}\n`, r.stderr)
  t.is(r.stderr, '')
})

test('a reader that leaves early ends an export quietly with 141 in every format: standard output, /dev/stdout, a named pipe', (t) => {
  const dir = scratch()
  rowsVec(dir, 200_000) // megabytes in every format: far more than a pipe holds
  for (const format of ['csv', 'jsonl', 'arrow']) {
    const outs = format === 'arrow' ? ['--out /dev/stdout'] : ['', '--out /dev/stdout']
    for (const out of outs) {
      const r = bash(`M export v.mvec --format ${format} ${out} 2>err | head -c 100 >/dev/null; echo "exit=\${PIPESTATUS[0]}"; cat err`, dir)
      t.is(r.stdout, `exit=${EXIT.pipe}\n`, `${format} ${out}: ${r.stderr}`)
    }
    // A named pipe whose reader takes 100 bytes and leaves.
    const fifo = `p.${format}`
    const r = bash(`mkfifo ${fifo}; head -c 100 ${fifo} >/dev/null & M export v.mvec --out ${fifo} 2>err; echo "exit=$?"; wait; cat err; rm ${fifo}`, dir)
    t.is(r.stdout, `exit=${EXIT.pipe}\n`, `${format} --out ${fifo}: ${r.stderr}`)
    t.is(r.stderr, '', format)
  }
  t.deepEqual(readdirSync(dir).sort(), ['err', 'v.mvec'], 'no temporary file left')
})

test('help of an unknown command and options given twice are usage errors', (t) => {
  const dir = scratch()
  const vec = rowsVec(dir, 5)
  for (const [args, expected] of [
    [['help', 'bogus'], /unknown command 'bogus'/],
    [['help', 'constructor'], /unknown command 'constructor'/],
    [['help', 'info', 'head'], /help takes one command/],
    [['head', vec, '-n', '3', '-n', '4'], /-n is given twice/],
    [['head', vec, '-n', '3', '--n=4'], /--n is given twice/],
    [['cat', vec, '--from', '1', '--from', '2'], /--from is given twice/],
    [['export', vec, '--format', 'csv', '--format', 'jsonl'], /--format is given twice/],
    [['info', vec, '--json', '--json'], /--json is given twice/],
  ] as const) {
    const r = cli(...args)
    t.is(r.status, EXIT.usage, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, expected, args.join(' '))
    t.regex(r.stderr, /\nRun 'mmapvec .*--help' for usage\.\n$/, args.join(' '))
    t.is(r.stdout, '', args.join(' '))
  }
})

test('floats that would round to Infinity or to 0 are refused, naming the line and field', (t) => {
  const dir = scratch()
  const cases: [string, string, string, RegExp][] = [
    ['f32.csv', '{"y":"f32"}', 'y\n1\n1e39\n', /f32\.csv:3: y: expected a number of size at most 3\.4028235e38 .*got "1e39"/],
    ['f32neg.csv', '{"y":"f32"}', 'y\n-3.5e38\n', /f32neg\.csv:2: y: .*got "-3\.5e38"/],
    ['f32tiny.csv', '{"y":"f32"}', 'y\n1e-50\n', /f32tiny\.csv:2: y: .*too small and would be rounded to 0, got "1e-50"/],
    ['f64.csv', '{"y":"f64"}', 'y\n1e309\n', /f64\.csv:2: y: expected a number of size at most 1\.7976931348623157e308/],
    ['f64tiny.csv', '{"y":"f64"}', 'y\n-1e-400\n', /f64tiny\.csv:2: y: .*rounded to 0, got "-1e-400"/],
    ['arr.csv', '{"y":["f32",2]}', 'y[0],y[1]\n1,1e39\n', /arr\.csv:2: y\[1\]: /],
    ['f64.jsonl', '{"y":"f64"}', '{"y":1e400}\n', /f64\.jsonl:1: y: expected a number of size at most .*got 1e400$/m],
    ['f64tiny.jsonl', '{"y":"f64"}', '{"y":0.5}\n{"y":1e-400}\n', /f64tiny\.jsonl:2: y: .*rounded to 0, got 1e-400$/m],
    ['f32.jsonl', '{"y":"f32"}', '{"y":1e39}\n', /f32\.jsonl:1: y: .*got 1e\+39$/m],
    ['f32tiny.jsonl', '{"y":"f32"}', '{"y":1e-50}\n', /f32tiny\.jsonl:1: y: .*rounded to 0, got 1e-50$/m],
    ['arr.jsonl', '{"y":["f64",3]}', '{"y":[1,2e999,3]}\n', /arr\.jsonl:1: y\[1\]: .*got 2e999$/m],
    ['scalar.jsonl', '"f64"', '1\n-1e400\n', /scalar\.jsonl:2: value: .*got -1e400$/m],
  ]
  for (const [name, schema, text, expected] of cases) {
    writeFileSync(join(dir, name), text)
    const target = join(dir, `${name}.mvec`)
    const r = cli('import', join(dir, name), target, '--schema', schema)
    t.is(r.status, EXIT.EINVAL, `${name}: ${r.stderr}`)
    t.regex(r.stderr, expected, name)
    t.false(existsSync(target), name)
  }
  // The limits themselves, zeros, the smallest subnormals, and infinities spelled as such.
  writeFileSync(join(dir, 'ok.csv'), 'a,b\n3.4028235e38,1.7976931348623157e308\n1e-45,5e-324\n-0,0e999\nInfinity,-Infinity\nNaN,1e-2\n')
  const ok = cli('import', join(dir, 'ok.csv'), join(dir, 'ok.mvec'), '--schema', '{"a":"f32","b":"f64"}')
  t.is(ok.status, 0, ok.stderr)
  t.is(cli('export', join(dir, 'ok.mvec'), '--format', 'csv').stdout, 'a,b\n3.4028235e+38,1.7976931348623157e+308\n1e-45,5e-324\n-0,0\nInfinity,-Infinity\nNaN,0.01\n')
  writeFileSync(join(dir, 'ok.jsonl'), '{"a":3.4028235e38,"b":"Infinity"}\n{"a":1e-45,"b":5e-324}\n{"a":"NaN","b":"-Infinity"}\n')
  t.is(cli('import', join(dir, 'ok.jsonl'), join(dir, 'okj.mvec'), '--schema', '{"a":"f32","b":"f64"}').status, 0)
})

test('JSON lines: numbers beyond f64 are quoted as written, missing fields are missing, a BOM is dropped', (t) => {
  const dir = scratch()
  const cases: [string, string, string, RegExp][] = [
    ['u64.jsonl', '{"a":"u64"}', '{"a":1e400}\n', /u64\.jsonl:1: a: expected a whole number .*got 1e400$/m],
    ['u8.jsonl', '{"a":"u8"}', '{"a": -1E+400 }\n', /u8\.jsonl:1: a: expected a whole number .*got -1E\+400$/m],
    ['dup.jsonl', '{"a":"f64"}', '{"a":1,"a":1e400}\n', /dup\.jsonl:1: a: .*got 1e400$/m],
    ['str.jsonl', '{"a":"f64","b":"f64"}', '{"b":"1e400 \\"x\\"","a":1e400}\n', /str\.jsonl:1: a: .*got 1e400$/m],
    ['big.jsonl', '{"a":"u64"}', '{"a":12345678901234567890}\n', /big\.jsonl:1: a: .*\(in JSON, a string of digits\), got 12345678901234567890$/m],
    ['unsafe.jsonl', '{"a":"i64"}', '{"a":9007199254740993}\n', /unsafe\.jsonl:1: a: .*got 9007199254740993$/m],
    ['ctor.jsonl', '{"a":"u8","constructor":"f64"}', '{"a":1}\n', /ctor\.jsonl:1: field 'constructor' is missing/],
    ['tostr.jsonl', '{"a":"u8","toString":"u8"}', '{"a":1}\n', /tostr\.jsonl:1: field 'toString' is missing/],
    ['proto.jsonl', '{"a":"u8","__proto__":"u8"}', '{"a":1}\n', /proto\.jsonl:1: field '__proto__' is missing/],
  ]
  for (const [name, schema, text, expected] of cases) {
    writeFileSync(join(dir, name), text)
    const target = join(dir, `${name}.mvec`)
    const r = cli('import', join(dir, name), target, '--schema', schema)
    t.is(r.status, EXIT.EINVAL, `${name}: ${r.stderr}`)
    t.regex(r.stderr, expected, name)
    t.false(existsSync(target), name)
  }
  // An integer past 2^53 in a float field is a float like any other.
  writeFileSync(join(dir, 'float.jsonl'), '{"a":9007199254740993}\n')
  t.is(cli('import', join(dir, 'float.jsonl'), join(dir, 'float.mvec'), '--schema', '{"a":"f64"}').status, 0)
  t.is(cli('export', join(dir, 'float.mvec'), '--format', 'jsonl').stdout, '{"a":9007199254740992}\n')
  // A duplicated key whose last value is sound is taken, as JSON.parse takes it.
  writeFileSync(join(dir, 'dup-ok.jsonl'), '{"a":1e400,"a":2}\n{"a":1e400,"a":"NaN"}\n{"a":[1e400],"a":3}\n{"a":1e-400,"a":0}\n')
  const dup = cli('import', join(dir, 'dup-ok.jsonl'), join(dir, 'dup-ok.mvec'), '--schema', '{"a":"f64"}')
  t.is(dup.status, 0, dup.stderr)
  t.is(cli('export', join(dir, 'dup-ok.mvec'), '--format', 'jsonl').stdout, '{"a":2}\n{"a":"NaN"}\n{"a":3}\n{"a":0}\n')
  writeFileSync(join(dir, 'bom.jsonl'), '\uFEFF{"a":1,"__proto__":2}\n{"a":2,"__proto__":3}\n')
  const r = cli('import', join(dir, 'bom.jsonl'), join(dir, 'bom.mvec'), '--schema', '{"a":"u8","__proto__":"u8"}')
  t.is(r.status, 0, r.stderr)
  t.is(cli('export', join(dir, 'bom.mvec'), '--format', 'jsonl').stdout, '{"a":1,"__proto__":2}\n{"a":2,"__proto__":3}\n')
})

/** An Arrow IPC file of one record batch of `rows` rows, each column as given (its data unchecked). */
function arrowFile(file: string, rows: number, columns: [string, arrow.DataType, arrow.Data][], kind: 'file' | 'stream' = 'file'): void {
  const schema = new arrow.Schema(columns.map(([name, type]) => new arrow.Field(name, type, false)))
  const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: rows, nullCount: 0, children: columns.map(([, , d]) => d) })
  writeFileSync(file, arrow.tableToIPC(new arrow.Table([new arrow.RecordBatch(schema, data)]), kind))
}

const u8 = (length: number, values: number) => arrow.makeData({ type: new arrow.Uint8(), length, nullCount: 0, data: new Uint8Array(values).fill(7) })

test('a damaged Arrow file (columns shorter than their record batch) is EFORMAT naming it, and nothing is made', async (t) => {
  const dir = scratch()
  const f = (name: string) => join(dir, name)
  arrowFile(f('u8.arrow'), 1_000_000, [['x', new arrow.Uint8(), u8(1_000_000, 10)]])
  arrowFile(f('u8.stream.arrow'), 1_000_000, [['x', new arrow.Uint8(), u8(1_000_000, 10)]], 'stream')
  arrowFile(f('bool.arrow'), 100_000, [['b', new arrow.Bool(), arrow.makeData({ type: new arrow.Bool(), length: 100_000, nullCount: 0, data: new Uint8Array([255]) })]])
  const list = new arrow.FixedSizeList(3, new arrow.Field('item', new arrow.Float32(), false))
  const child = arrow.makeData({ type: new arrow.Float32(), length: 6, nullCount: 0, data: new Float32Array(6) })
  arrowFile(f('list.arrow'), 100, [['p', list, arrow.makeData({ type: list, length: 100, nullCount: 0, child })]])
  // Columns of different lengths: apache-arrow pads a short column with nulls when it writes,
  // so a sound file has its second column's length (777, in the record batch's field nodes:
  // a count, then a length and a null count per column) changed to 8.
  arrowFile(f('two.arrow'), 777, [['x', new arrow.Float64(), arrow.makeData({ type: new arrow.Float64(), length: 777, nullCount: 0, data: new Float64Array(777) })], ['y', new arrow.Uint8(), u8(777, 777)]])
  const b = readFileSync(f('two.arrow'))
  const nodes = Buffer.alloc(36)
  nodes.writeUInt32LE(2, 0)
  nodes.writeBigInt64LE(777n, 4)
  nodes.writeBigInt64LE(777n, 20)
  const at = b.indexOf(nodes)
  t.true(at > 0 && b.indexOf(nodes, at + 1) === -1, 'the field nodes are found once')
  b.writeBigInt64LE(8n, at + 20)
  writeFileSync(f('two.arrow'), b)
  const cases: [string, RegExp][] = [
    ['u8.arrow', /record batch 0 claims 1000000 rows but column 'x' holds only \d+ values/],
    ['u8.stream.arrow', /record batch 0 claims 1000000 rows but column 'x' holds only \d+ values/],
    ['bool.arrow', /record batch 0 claims 100000 rows but column 'b' holds only \d+ values/],
    ['list.arrow', /record batch 0 claims 100 rows but column 'p' holds 6 values, not 3 a row/],
    ['two.arrow', /record batch 0 claims 777 rows but column 'y' has 8/],
  ]
  for (const [name, expected] of cases) {
    const target = join(dir, 'new', `${name}.mvec`)
    const r = cli('import', f(name), target)
    t.is(r.status, EXIT.EFORMAT, `${name}: ${r.stderr}`)
    t.true(r.stderr.startsWith(`mmapvec: EFORMAT: ${f(name)}: `), r.stderr)
    t.regex(r.stderr, expected, name)
    t.true(noStack(r.stderr), r.stderr)
    t.false(existsSync(join(dir, 'new')), name)
    // The library call: refused before the vec (and so its new parent directory) is made,
    // for a file, whose batches are checked from their headers first.
    await t.throwsAsync(MmapVec.fromArrow(target, f(name)), { code: 'EFORMAT', message: expected } as object, name)
    if (!name.includes('stream')) t.false(existsSync(join(dir, 'new')), name)
    rmSync(join(dir, 'new'), { recursive: true, force: true })
  }
  // A Table a program built the same way is refused (EINVAL) as the file is.
  const schema = new arrow.Schema([new arrow.Field('x', new arrow.Uint8(), false)])
  const table = new arrow.Table([new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: 1000, nullCount: 0, children: [u8(1000, 10)] }))])
  t.throws(() => MmapVec.fromArrow(join(dir, 't.mvec'), table), { code: 'EINVAL', message: /record batch 0 of the Table claims 1000 rows but column 'x' holds only 10 values/ })
  t.false(existsSync(join(dir, 't.mvec')))
})

test('--schema @file: its read errors name it, a BOM is dropped; bools may have spaces around them as numbers may', (t) => {
  const dir = scratch()
  const f = (name: string) => join(dir, name)
  writeFileSync(f('in.csv'), 'x, b\n1, true\n2 ,false \n')
  mkdirSync(f('dir.json'))
  writeFileSync(f('bad.json'), '{"x":"u99"}')
  for (const [arg, code, expected] of [
    [`@${f('missing.json')}`, EXIT.ENOENT, `ENOENT: ${f('missing.json')}: reading the --schema file failed`],
    [`@${f('dir.json')}`, EXIT.EIO, `EIO: ${f('dir.json')}: reading the --schema file failed`],
    [`@${f('bad.json')}`, EXIT.EINVAL, `EINVAL: --schema @${f('bad.json')}: invalid schema`],
  ] as const) {
    const r = cli('import', f('in.csv'), f('o.mvec'), '--schema', arg)
    t.is(r.status, code, r.stderr)
    t.true(r.stderr.startsWith(`mmapvec: ${expected}`), r.stderr)
    t.false(existsSync(f('o.mvec')))
  }
  writeFileSync(f('bom.json'), '\uFEFF{"x":"i32"," b":"bool"}')
  const r = cli('import', f('in.csv'), f('o.mvec'), '--schema', `@${f('bom.json')}`)
  t.is(r.status, 0, r.stderr)
  t.is(cli('export', f('o.mvec'), '--format', 'jsonl').stdout, '{"x":1," b":true}\n{"x":2," b":false}\n')
  // A header name that differs only by spaces says so.
  const h = cli('import', f('in.csv'), f('h.mvec'), '--schema', '{"x":"i32","b":"bool"}')
  t.is(h.status, EXIT.EINVAL)
  t.regex(h.stderr, /missing: b; not in the schema: {2}b \(names are compared as written, spaces included\)/)
})

test('export --out into a named pipe or a device writes into it, not over it; a directory is EINVAL', async (t) => {
  const dir = scratch()
  const vec = rowsVec(dir, 3)
  const expected = cli('export', vec, '--format', 'csv').stdout
  const fifo = join(dir, 'pipe.csv')
  t.is(spawnSync('mkfifo', [fifo]).status, 0)
  const reader = spawn('cat', [fifo])
  let got = ''
  reader.stdout.on('data', (d: Buffer) => (got += d.toString()))
  const done = new Promise((resolve) => reader.on('close', resolve))
  const r = await run(['export', vec, '--out', fifo], 20_000)
  reader.kill()
  await done
  t.is(r.status, 0, r.stderr)
  t.is(got, expected)
  t.true(lstatSync(fifo).isFIFO(), 'the pipe is still a pipe')
  // A link to /dev/null (as /dev/stdout is a link): the output goes through it, and both stay.
  for (const name of ['null.csv', 'null.arrow']) {
    symlinkSync('/dev/null', join(dir, name))
    const n = cli('export', vec, '--out', join(dir, name))
    t.is(n.status, 0, n.stderr)
    t.true(lstatSync(join(dir, name)).isSymbolicLink(), name)
    t.true(statSync('/dev/null').isCharacterDevice())
  }
  t.false(readdirSync(dir).some((f) => f.startsWith('.')), 'no temporary file left')
  mkdirSync(join(dir, 'd.csv'))
  const d = cli('export', vec, '--out', join(dir, 'd.csv'))
  t.is(d.status, EXIT.EINVAL, d.stderr)
  t.true(d.stderr.startsWith(`mmapvec: EINVAL: ${join(dir, 'd.csv')}: is a directory`), d.stderr)
})

test('--from past --to is a usage error, not an empty range', (t) => {
  const vec = rowsVec(scratch(), 5)
  for (const args of [['cat', vec, '--from', '3', '--to', '2'], ['export', vec, '--format', 'csv', '--from', '3', '--to', '2']]) {
    const r = cli(...args)
    t.is(r.status, EXIT.usage, r.stderr)
    t.regex(r.stderr, /--from 3 is past --to 2/)
    t.is(r.stdout, '')
  }
  // Equal ends, and ends past the rows, are fine: no rows, or the rows there are.
  t.is(cli('export', vec, '--format', 'csv', '--from', '2', '--to', '2').stdout, 'x,y[0],y[1],y[2],y[3]\n')
  t.is(cli('export', vec, '--format', 'csv', '--from', '4', '--to', '99').stdout.split('\n').length, 3)
  t.is(cli('export', vec, '--format', 'csv', '--from', '99').stdout, 'x,y[0],y[1],y[2],y[3]\n')
})

test('an endless row (a quote never closed, no line breaks) is EINVAL once past any row the schema can have', (t) => {
  const dir = scratch()
  const big = 'a'.repeat(3 << 20)
  for (const [name, text, line] of [
    ['quote.csv', `x\n1\n"${big}\n`, 3],
    ['line.csv', `x\n1\n${big}\n`, 3],
    ['line.jsonl', `{"x":1}\n{"x":2}\n{"x":"${big}"}\n`, 3],
    ['first.jsonl', `{"x":"${big}`, 1],
  ] as const) {
    writeFileSync(join(dir, name), text)
    const r = cli('import', join(dir, name), join(dir, 'o.mvec'), '--schema', '{"x":"f64"}')
    t.is(r.status, EXIT.EINVAL, `${name}: ${r.stderr}`)
    t.true(r.stderr.startsWith(`mmapvec: EINVAL: ${join(dir, name)}:${line}: a row longer than any of the schema's can be`), r.stderr)
    t.false(existsSync(join(dir, 'o.mvec')))
  }
  // Rows as long as the schema allows are taken: 1000 f64 values of 24 characters.
  const wide = Array.from({ length: 1000 }, () => '-1.7976931348623157e+308')
  writeFileSync(join(dir, 'wide.csv'), wide.map((_, i) => `a[${i}]`).join(',') + '\n' + wide.join(',') + '\n')
  writeFileSync(join(dir, 'wide.jsonl'), `{"a":[${wide.join(', ')}]}\n`)
  for (const name of ['wide.csv', 'wide.jsonl']) t.is(cli('import', join(dir, name), join(dir, `${name}.mvec`), '--schema', '{"a":["f64",1000]}').status, 0, name)
})

// Serial: the other tests' spawnSync would stall the polling below for seconds.
test.serial('export --out interrupted (SIGINT, SIGTERM) removes its new file and leaves the old output', async (t) => {
  const dir = scratch()
  const path = join(dir, 'long.mvec')
  const v = MmapVec.open(path, 'f64')
  v.pushMany(new Float64Array(3_000_000).map((_, i) => i / 7))
  v.close()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    writeFileSync(join(dir, 'out.csv'), 'old\n')
    const child = spawn(process.execPath, [BIN, 'export', path, '--out', join(dir, 'out.csv')])
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)))
    // Waits for the new file beside the output, then interrupts.
    const started = Date.now()
    while (!readdirSync(dir).some((f) => f.startsWith('.')) && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 5))
    child.kill(signal)
    t.is(await exited, signal, 'the command ends by the signal')
    t.deepEqual(readdirSync(dir).sort(), ['long.mvec', 'out.csv'], signal)
    t.is(readFileSync(join(dir, 'out.csv'), 'utf8'), 'old\n')
  }
})

test('an empty path (an unset shell variable) is a usage error', (t) => {
  const dir = scratch()
  const vec = rowsVec(dir, 3)
  writeFileSync(join(dir, 'in.csv'), 'x\n1\n')
  for (const args of [
    ['export', vec, '--format', 'csv', '--out', ''],
    ['import', '', join(dir, 'o.mvec'), '--schema', '"f64"', '--format', 'csv'],
    ['import', join(dir, 'in.csv'), '', '--schema', '{"x":"f64"}'],
    ['info', ''],
  ]) {
    const r = cli(...args)
    t.is(r.status, EXIT.usage, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /^mmapvec: (--out|a path) is empty: mmapvec /, args.join(' '))
  }
  t.deepEqual(readdirSync(dir).sort(), ['in.csv', 'v.mvec'])
})

test('a full standard output (> /dev/full) is ENOSPC naming standard output', (t) => {
  const dir = scratch()
  rowsVec(dir, 5)
  for (const c of ['info v.mvec', 'verify v.mvec', 'cat v.mvec', 'export v.mvec --format jsonl', '--help']) {
    const r = bash(`M ${c} > /dev/full`, dir)
    t.is(r.status, EXIT.ENOSPC, `${c}: ${r.stderr}`)
    t.true(r.stderr.startsWith('mmapvec: ENOSPC: standard output: writing failed: '), r.stderr)
  }
})

test("messages give the command's advice, not the library's (MmapVec.open, readOnly, lockTimeoutMs)", async (t) => {
  const dir = scratch()
  chmodSync(dir, 0o755)
  const vec = rowsVec(dir, 3)
  const api = /MmapVec|open it with readOnly|lockTimeoutMs/
  writeFileSync(join(dir, 'in.csv'), 'x,y[0],y[1],y[2],y[3]\n1,2,3,4,5\n')
  t.is(cli('export', vec, '--out', join(dir, 'in.arrow')).status, 0)
  const cases: [string[], number, RegExp][] = [
    [['cat', join(dir, 'missing.mvec')], EXIT.ENOENT, /missing\.mvec: no such vec\n$/],
    [['export', join(dir, 'missing.mvec'), '--format', 'csv'], EXIT.ENOENT, /missing\.mvec: no such vec\n$/],
    [['import', join(dir, 'in.csv'), vec, '--schema', '{"x":"f64","y":["u16",4]}'], 4, /already exists; import makes a new vec: give another path, or remove the old one first\n$/],
    [['import', join(dir, 'in.arrow'), vec], 4, /already exists; import makes a new vec/],
  ]
  for (const [args, code, expected] of cases) {
    const r = cli(...args)
    t.is(r.status, code, r.stderr)
    t.regex(r.stderr, expected, args.join(' '))
    t.notRegex(r.stderr, api, args.join(' '))
  }
  const holder = startChild('locker.mjs', [join(dir, 'held.mvec'), '0', '60000'])
  try {
    await holder.ready
    // Beside a writer, the commands read (they open readOnly, which a writer never locks out).
    const r = cli('head', join(dir, 'held.mvec'))
    t.is(r.status, 0, r.stderr)
  } finally {
    holder.child.kill()
    await holder.exited
  }
  // A column file the user may not read (as "nobody": permissions do not bind root).
  chmodSync(vec, 0o755)
  for (const f of readdirSync(vec)) chmodSync(join(vec, f), 0o644)
  chmodSync(join(vec, 'c0.col'), 0o600)
  const user = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  const node = user.uid === undefined ? process.execPath : nodeForOthers()
  const r = spawnSync(node, [user.uid === undefined ? BIN : binForOthers(), 'head', vec], { encoding: 'utf8', timeout: 60_000, ...user })
  t.is(r.status, EXIT.EACCES, r.stderr)
  t.regex(r.stderr, /c0\.col: permission denied/)
  t.notRegex(r.stderr, api)
})

test('import of a CSV whose one array field has 65,536 values round-trips (the header is checked in linear time)', (t) => {
  const dir = scratch()
  const n = 1 << 16
  const names = Array.from({ length: n }, (_, i) => `a[${i}]`)
  const file = join(dir, 'wide.csv')
  writeFileSync(file, `${names.join(',')}\n${names.map((_, i) => i % 251).join(',')}\n`)
  const path = join(dir, 'wide.mvec')
  const r = cli('import', file, path, '--schema', JSON.stringify({ a: ['u8', n] }))
  t.is(r.status, EXIT.ok, r.stderr)
  using v = MmapVec.open(path, { a: ['u8', n] }, { readOnly: true })
  t.is(v.length, 1)
  t.is(v.get(0).a[n - 1], (n - 1) % 251)
})

test('a FIFO named header in a directory above the output is no vec, and hangs nothing (export, import, MmapVec.open)', async (t) => {
  const dir = scratch()
  const data = join(dir, 'data')
  mkdirSync(join(data, 'sub'), { recursive: true })
  t.is(spawnSync('mkfifo', [join(data, 'header')]).status, 0)
  rowsVec(dir, 3)
  writeFileSync(join(dir, 'in.csv'), 'a\n1\n')
  const exported = await run(['export', join(dir, 'v.mvec'), '--out', join(data, 'out.csv')], 10_000)
  t.is(exported.status, EXIT.ok, `export: ${exported.stderr}`)
  const imported = await run(['import', join(dir, 'in.csv'), join(data, 'sub', 'imp'), '--schema', '{"a":"u32"}'], 10_000)
  t.is(imported.status, EXIT.ok, `import: ${imported.stderr}`)
  const opened = spawnSync(process.execPath, ['--input-type=module', '-e', `import { MmapVec } from 'mmapvec'; MmapVec.open(process.argv[1], { a: 'u8' }).close()`, join(data, 'sub', 'new')], {
    encoding: 'utf8',
    timeout: 10_000,
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  })
  t.is(opened.status, 0, `MmapVec.open: ${opened.stderr}`)
})

test('a JSON lines value nested deeper than JSON.stringify can write is EINVAL naming the line and field', (t) => {
  const dir = scratch()
  const cases = [
    [5000, '{"a":"u32"}', /deep\.jsonl:1: a: expected a whole number .*, got an array of 1 value$/m],
    [100_000, '{"a":"u32"}', /deep\.jsonl:1: a: expected a whole number .*, got an array of 1 value$/m],
    [5000, '{"a":["u32",2]}', /deep\.jsonl:1: a\[0\]: expected a whole number .*, got an array of 1 value$/m],
  ] as const
  for (const [depth, schema, message] of cases) {
    const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`
    writeFileSync(join(dir, 'deep.jsonl'), `{"a":${schema.includes('[') ? `[${deep},5]` : deep}}\n`)
    const r = cli('import', join(dir, 'deep.jsonl'), join(dir, 'imp'), '--schema', schema)
    t.is(r.status, EXIT.EINVAL, `${depth} deep, ${schema}: ${r.stderr}`)
    t.regex(r.stderr, message, `${depth} deep, ${schema}`)
    t.true(noStack(r.stderr), r.stderr)
    t.false(existsSync(join(dir, 'imp')))
  }
})
