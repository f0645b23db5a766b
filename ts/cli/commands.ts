/**
 * The commands of `mmapvec` (info, head, tail, cat, verify, export, import): their help and options
 * as one table, and what each runs. main.ts parses the command line and reports errors.
 */
import { lstatSync, readFileSync, rmdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { ParseArgsConfig } from 'node:util'
import { fromSystemError } from '../errors.js'
import { MmapVec, MmapVecError, type Schema, type VecInfo } from '../index.js'
import { refuseInsideVec } from '../paths.js'
import { normalizeSchema } from '../schema.js'
import { EXIT_CODES } from './exit-codes.js'
import { FORMATS, UsageError, columnsOf, findFormat, jsonLine, type Format, type Slice } from './formats.js'
import { interruptible, print, toStdout, writeOut, type Sink } from './io.js'
import { cellFormatter } from './values.js'

const FORMAT_NAMES = FORMATS.map((f) => f.name).join('|')

/** A command: its help, its options (for parseArgs), and what it runs. */
export interface Command {
  usage: string
  summary: string
  help: string
  options: NonNullable<ParseArgsConfig['options']>
  positionals: number
  run(args: string[], values: Record<string, string | boolean | undefined>): Promise<number>
}

const JSON_OPT = { json: { type: 'boolean' } } as const

/** The commands, by name. */
export const COMMANDS: Record<string, Command> = {
  info: {
    usage: 'mmapvec info <path> [--json]',
    summary: 'what a vec is: schema, rows, capacity, file sizes, versions, lock',
    help: `Prints the schema, length, capacity, bytes on disk per column, byte order, format and
application version of the vec at <path>, and whether a process has it open (the lock:
none, shared = open readOnly, exclusive = open read-write, with or without readers
beside the writer). Takes no lock and changes
nothing, so it works while another process writes the vec.

  --json   one JSON object (the fields of MmapVec.inspect)`,
    options: JSON_OPT,
    positionals: 1,
    run: ([path], o) => info(path, o.json === true),
  },
  head: {
    usage: 'mmapvec head <path> [-n N] [--json]',
    summary: 'the first rows, as a table',
    help: `Prints the first N rows (default 10) of the vec at <path> as an aligned table: arrays as
[1, 2, 3], bools as true/false, i64/u64 as decimals, floats as the shortest decimal that
reads back as the same value. Opens the vec readOnly, beside any writer.

  -n N     rows to print (default 10)
  --json   JSON lines instead: one object per row, i64/u64 as strings of digits,
           NaN and Infinity as strings`,
    options: { n: { type: 'string', short: 'n' }, ...JSON_OPT },
    positionals: 1,
    run: async ([path], o) => rows(path, 0, count(o.n, '-n') ?? 10, o.json === true),
  },
  tail: {
    usage: 'mmapvec tail <path> [-n N] [-f] [--json]',
    summary: 'the last rows; with -f, new rows as a writer adds them',
    help: `Prints the last N rows (default 10) of the vec at <path>, as head does. With -f, keeps
reading beside the writer and prints each row it adds (waiting on the writer's publishes,
without polling on Linux), until interrupted (Ctrl-C). Rows the writer removes are noted on
stderr and printing goes on from the new end (rows removed and added again between two of
its looks show as a smaller cut).

  -n N       rows to print first (default 10)
  -f         follow: print new rows as the writer adds them
  --json     JSON lines instead (see mmapvec head --help)`,
    options: { n: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' }, ...JSON_OPT },
    positionals: 1,
    run: async ([path], o) => tail(path, count(o.n, '-n') ?? 10, o.follow === true, o.json === true),
  },
  cat: {
    usage: 'mmapvec cat <path> [--from I] [--to J] [--json]',
    summary: 'rows I to J (all by default), as a table',
    help: `Prints rows [I, J) of the vec at <path> (all rows by default) as an aligned table, as
head does. Opens the vec readOnly, beside any writer.

  --from I   first row (default 0)
  --to J     row after the last (default: the length)
  --json     JSON lines instead (see mmapvec head --help)`,
    options: { from: { type: 'string' }, to: { type: 'string' }, ...JSON_OPT },
    positionals: 1,
    run: async ([path], o) => rows(path, ...rowRange(o), o.json === true),
  },
  verify: {
    usage: 'mmapvec verify <path> [--json]',
    summary: 'every check the format allows; exit 1 on any problem',
    help: `Checks the vec at <path>: the header (magic, byte order, format version, size,
checksum, reserved bytes, padding, schema, row count), each column file (present, a regular
file, whole pages, zeros before the rows, room for the row count) and the values of bool
columns. Prints every problem found, with its error code and check name, and exits 1 when
there is any (0 when there is none). Reads only: takes no lock and never changes a file.
Problems seen while another process changed the vec are checked again (up to 20 times); a
vec that changed under every check is ELOCKED (exit 3): run verify again when it is idle.

  --json   one JSON object: { path, ok, problems: [{ code, check, message }] }`,
    options: JSON_OPT,
    positionals: 1,
    run: ([path], o) => verify(path, o.json === true),
  },
  export: {
    usage: `mmapvec export <path> --format ${FORMAT_NAMES} [--out FILE] [--from I] [--to J]`,
    summary: 'write rows as CSV or JSON lines, streaming',
    help: `Writes the rows of the vec at <path> to FILE (or to standard output), streaming. Opens the
vec readOnly, beside any writer (rows it adds during the export are not in it). A progress
bar shows on stderr when the run is long and stderr is a terminal.

  --format F   ${FORMATS.map((f) => `${f.name}: ${f.description}`).join('\n               ')}
               (default: from the extension of --out)
  --out FILE   written under a temporary name and renamed when complete
  --from I     first row (default 0)
  --to J       row after the last (default: the length)

CSV: a header row, array fields as pos[0],pos[1],...; bools true/false. JSON lines: i64/u64
as strings of digits; NaN and Infinity as strings. Floats print exactly: an export imports
back to the same values.`,
    options: { format: { type: 'string' }, out: { type: 'string', short: 'o' }, from: { type: 'string' }, to: { type: 'string' } },
    positionals: 1,
    run: async ([path], o) => exportVec(path, o),
  },
  import: {
    usage: `mmapvec import <FILE> <path> --schema JSON [--format ${FORMAT_NAMES}]`,
    summary: 'read CSV or JSON lines into a new vec, streaming',
    help: `Creates the vec at <path> (EEXIST if something is there) and pushes the rows of FILE,
streaming. On a bad row it stops with EINVAL naming the line and the field, and removes the
new vec. A progress bar shows on stderr when the run is long and stderr is a terminal.

  --schema S   the vec's schema, as JSON ('{"pos":["f32",3],"id":"u32"}', '"f64"') or
               @file.json; required: neither CSV nor JSON lines say the types of their
               values (mmapvec info --json <vec> prints a vec's schema)
  --format F   ${FORMAT_NAMES} (default: from FILE's extension: .csv, .jsonl/.ndjson, .arrow)

CSV needs a header row naming every field (array fields as pos[0],pos[1],..., in any
order); bools are true/false or 1/0. JSON lines: one object per row with every field;
i64/u64 as strings of digits (or safe integers); NaN and Infinity as strings. Values out
of their type's range are refused rather than wrapped or rounded: an integer too large, a
float that would become Infinity (1e39 in f32) or 0 (1e-50 in f32).`,
    options: { schema: { type: 'string' }, format: { type: 'string' } },
    positionals: 2,
    run: async ([file, path], o) => importFile(file, path, o),
  },
}

/** The rows [--from, --to) asked for; --to before --from is a mistake, not an empty range. */
function rowRange(o: Record<string, string | boolean | undefined>): [number, number | undefined] {
  const from = count(o.from, '--from') ?? 0
  const to = count(o.to, '--to')
  if (to !== undefined && from > to) throw new UsageError(`--from ${from} is past --to ${to}; rows are [--from, --to)`)
  return [from, to]
}

/** A whole number option, or undefined when absent. */
function count(v: string | boolean | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n)) throw new UsageError(`${name} must be a whole number >= 0, got '${String(v)}'`)
  return n
}

/** The stored schema as normalized columns (with `open(path)`, this is the stored one). */
function specOf(v: MmapVec) {
  const spec = normalizeSchema(v.schema)
  if (typeof spec === 'string') throw new MmapVecError('EFORMAT', `${v.path}: ${spec}`, v.path)
  return spec
}

/** Pads cells into columns two spaces apart; `right[k]` right-aligns column k. */
function alignRows(rows: string[][], right: boolean[]): string[] {
  const widths = rows[0].map((_, k) => Math.max(...rows.map((r) => r[k].length)))
  return rows.map((r) =>
    r
      .map((cell, k) => (right[k] ? cell.padStart(widths[k]) : k === r.length - 1 ? cell : cell.padEnd(widths[k])))
      .join('  '),
  )
}

async function info(path: string, json: boolean): Promise<number> {
  const i = MmapVec.inspect(path)
  if (json) {
    await print(JSON.stringify(i, null, 2) + '\n')
    return EXIT_CODES.OK
  }
  const lock: Record<VecInfo['lock'], string> = {
    none: 'none (no process has it open)',
    shared: 'shared (open readOnly by a process)',
    exclusive: 'exclusive (open read-write by a process)',
  }
  const readers = i.lock === 'exclusive' && i.readers ? '; readers beside it' : ''
  const onDisk = i.headerBytes + i.columns.reduce((s, c) => s + (c.bytes ?? 0), 0)
  const lines = alignRows(
    [
      ['path', i.path],
      ['format', `mmapvec format ${i.formatVersion}, ${i.byteOrder}-endian, created on ${i.arch}`],
      ['version', `${i.version} (the application's data version)`],
      ['length', `${i.length} rows`],
      ['capacity', i.capacity === null ? 'unknown: a column file is missing (run mmapvec verify)' : `${i.capacity} rows`],
      ['lock', lock[i.lock] + readers + (i.lockedByThisProcess ? ', this process' : '')],
      ['on disk', `${onDisk} bytes (header ${i.headerBytes})`],
      ['schema', JSON.stringify(i.schema)],
    ],
    [false, false],
  )
  const table = alignRows(
    [
      ['field', 'type', 'count', 'file', 'offset', 'bytes', 'rows'],
      ...i.columns.map((c) => [c.name, c.type, String(c.count), c.file, String(c.offset), String(c.bytes ?? 'missing'), String(c.rows ?? '-')]),
    ],
    [false, false, true, false, true, true, true],
  )
  await print([...lines, 'columns:', ...table.map((l) => '  ' + l)].join('\n') + '\n')
  return EXIT_CODES.OK
}

async function verify(path: string, json: boolean): Promise<number> {
  const problems = MmapVec.verify(path)
  if (json) {
    await print(JSON.stringify({ path, ok: problems.length === 0, problems }, null, 2) + '\n')
  } else if (problems.length === 0) {
    await print(`${path}: ok, no problems found\n`)
  } else {
    const n = problems.length
    await print(problems.map((p) => `${p.code} ${p.check}: ${p.message}\n`).join('') + `${path}: ${n} problem${n === 1 ? '' : 's'} found\n`)
  }
  return problems.length === 0 ? EXIT_CODES.OK : EXIT_CODES.PROBLEMS
}

/**
 * The library's advice is for programs (MmapVec.open, readOnly, lockTimeoutMs), which a user of
 * the command cannot follow: the command's own advice instead, the rest of the message kept.
 */
const ADVICE: [RegExp, string][] = [
  [/; creating one needs a schema, e\.g\. MmapVec\.open\(.*\)$/, ''],
  [/; open it with MmapVec\.open, or remove it first with MmapVec\.remove$/, '; import makes a new vec: give another path, or remove the old one first'],
  [/, or open it with readOnly$/, ''],
]

function forTheCommand(err: unknown): unknown {
  if (!(err instanceof MmapVecError)) return err
  const message = ADVICE.reduce((m, [library, command]) => m.replace(library, command), err.message)
  return message === err.message ? err : new MmapVecError(err.code, message, err.path)
}

/** Opens `path` as a reader (beside any writer) with its stored schema. */
function openReader(path: string): MmapVec {
  try {
    return MmapVec.open(path, undefined, { readOnly: true })
  } catch (err) {
    throw forTheCommand(err)
  }
}

/** Opens `path` readOnly with its stored schema and runs `body` on rows [from, to). */
async function withSlice(path: string, from: number, to: number | undefined, body: (s: Slice) => Promise<void>): Promise<void> {
  const vec = openReader(path)
  try {
    const end = Math.min(to ?? vec.length, vec.length)
    await body({ vec, spec: specOf(vec), from: Math.min(from, end), to: end })
  } finally {
    vec.close()
  }
}

async function rows(path: string, from: number, to: number | undefined, json: boolean): Promise<number> {
  await toStdout((sink) =>
    withSlice(path, from, to, async (s) => {
      if (json) {
        const line = jsonLine(s)
        for (let i = s.from; i < s.to; i++) await sink.write(line(i) + '\n')
      } else {
        await writeTable(s, sink)
      }
    }),
  )
  return EXIT_CODES.OK
}

/** How long `tail -f` waits for the writer before it looks again (a signal ends it sooner). */
const FOLLOW_WAIT_MS = 1000

async function tail(path: string, n: number, follow: boolean, json: boolean): Promise<number> {
  const vec = openReader(path)
  try {
    await toStdout(async (sink) => {
      const print = async (from: number, header: boolean) => {
        const s = { vec, spec: specOf(vec), from, to: vec.length }
        if (json) {
          const line = jsonLine(s)
          for (let i = s.from; i < s.to; i++) await sink.write(line(i) + '\n')
        } else if (s.to > s.from || header) {
          await writeTable(s, sink, header)
        }
        await sink.flush()
      }
      await print(Math.max(0, vec.length - n), true)
      if (!follow) return
      await interruptible(
        async (stop) => {
          let names = JSON.stringify(vec.schema)
          for (let printed = vec.length; ; ) {
            stop()
            await vec.changed({ timeoutMs: FOLLOW_WAIT_MS })
            stop()
            // Also after a wait that timed out: a writer killed before it published its last
            // rows never publishes again, and refresh then takes them from the header.
            if (!vec.refresh()) continue
            if (vec.length < printed) {
              process.stderr.write(`mmapvec: ${path}: the writer removed rows; ${vec.length} are left\n`)
              printed = vec.length
            }
            // After a schema change the table's names are printed again (JSON lines name
            // their fields in every row).
            const now = JSON.stringify(vec.schema)
            await print(printed, now !== names)
            names = now
            printed = vec.length
          }
        },
        () => {},
      )
    })
  } finally {
    vec.close()
  }
  return EXIT_CODES.OK
}

/**
 * An aligned table of the slice, `#` (the row index) first. Two passes over the (mapped)
 * rows: the first measures the columns, the second writes, so nothing is held in memory.
 * Without `header` (the rows `tail -f` adds), the names are not printed again.
 */
async function writeTable(s: Slice, sink: Sink, header = true): Promise<void> {
  const cols = columnsOf(s)
  const cells = s.spec.columns.map((c) => cellFormatter(c, 'text'))
  const names = s.spec.scalar ? ['value'] : s.spec.columns.map((c) => c.name)
  const right = [true, ...s.spec.columns.map((c) => c.count === 1 && c.type !== 'bool')]
  const widths = [Math.max(1, String(Math.max(0, s.to - 1)).length), ...names.map((n) => n.length)]
  for (let i = s.from; i < s.to; i++) {
    for (let k = 0; k < cells.length; k++) widths[k + 1] = Math.max(widths[k + 1], cells[k](cols[k], i).length)
  }
  const last = widths.length - 1
  const line = (parts: string[]) =>
    parts.map((p, k) => (right[k] ? p.padStart(widths[k]) : k === last ? p : p.padEnd(widths[k]))).join('  ') + '\n'
  if (header) await sink.write(line(['#', ...names]))
  for (let i = s.from; i < s.to; i++) {
    const parts = [String(i)]
    for (let k = 0; k < cells.length; k++) parts.push(cells[k](cols[k], i))
    await sink.write(line(parts))
  }
}

function format(name: string | undefined, file: string | undefined, what: string): Format {
  if (name !== undefined && !FORMATS.some((f) => f.name === name)) {
    throw new UsageError(`unknown format '${name}'; the formats are ${FORMAT_NAMES}`)
  }
  const f = findFormat(name, file)
  if (f === undefined) throw new UsageError(`${what}: say which format with --format ${FORMAT_NAMES}`)
  return f
}

async function exportVec(path: string, o: Record<string, string | boolean | undefined>): Promise<number> {
  const out = o.out as string | undefined
  const f = format(o.format as string | undefined, out, out === undefined ? 'export to standard output' : `--out ${out}`)
  const [from, to] = rowRange(o)
  if (out !== undefined) refuseInsideVec(out, '--out')
  const writeFile = f.writeFile
  if (writeFile !== undefined) {
    if (out === undefined) throw new UsageError(`--format ${f.name} is binary: say where to write it with --out FILE`)
    // Interrupted, it fails as any export does: its temporary file goes (the library removes it
    // when the export stops), then the signal ends the process.
    await interruptible(
      (stop) => withSlice(path, from, to, (s) => writeFile(s, out, stop)),
      () => {},
    )
    return EXIT_CODES.OK
  }
  if (out === undefined) {
    await toStdout((sink) => withSlice(path, from, to, (s) => f.write!(s, sink)))
    return EXIT_CODES.OK
  }
  await withSlice(path, from, to, (s) => writeOut(out, (sink) => f.write!(s, sink)))
  return EXIT_CODES.OK
}

function readSchema(arg: string | undefined): Schema | undefined {
  if (arg === undefined) return undefined
  const file = arg.startsWith('@') ? arg.slice(1) : undefined
  let text = arg
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw fromSystemError(err, file, 'reading the --schema file')
    }
    // A byte order mark, as editors on Windows write, is not part of the JSON.
    if (text.startsWith('\uFEFF')) text = text.slice(1)
  }
  const what = file === undefined ? '--schema' : `--schema ${arg}`
  let schema: unknown
  try {
    schema = JSON.parse(text)
  } catch (e) {
    throw new UsageError(`${what} is not JSON (${(e as Error).message}); e.g. --schema '{"pos":["f32",3],"id":"u32"}'`)
  }
  const spec = normalizeSchema(schema)
  if (typeof spec === 'string') throw new MmapVecError('EINVAL', `${what}: ${spec}`)
  return schema as Schema
}

async function importFile(file: string, path: string, o: Record<string, string | boolean | undefined>): Promise<number> {
  const f = format(o.format as string | undefined, file, `import ${file}`)
  const schema = readSchema(o.schema as string | undefined)
  // Only its parents: a vec at `path` itself is EEXIST, as create says.
  refuseInsideVec(dirname(path), 'the new vec\'s parent directory', path)
  const made = missingParents(path)
  let n: number
  try {
    // Interrupted (Ctrl-C), it fails as any import does: the partial vec and the directories
    // made for it go, and then the signal ends the process.
    n = await interruptible(
      (stop, aborted) => f.read!(file, path, schema, stop, aborted),
      () => removeEmpty(made),
    )
  } catch (err) {
    throw forTheCommand(err)
  }
  await print(`${path}: imported ${n} rows from ${file}\n`)
  return EXIT_CODES.OK
}

/** The parent directories of `path` that do not exist (that creating it makes), deepest first. */
function missingParents(path: string): string[] {
  const missing: string[] = []
  for (let dir = dirname(resolve(path)); dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      lstatSync(dir)
      break
    } catch (err) {
      // Only what is surely not there: a directory hidden by permissions may exist.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') break
      missing.push(dir)
    }
  }
  return missing
}

/** Removes the directories, deepest first, stopping at one that is not empty (or is gone). */
function removeEmpty(dirs: string[]): void {
  for (const d of dirs) {
    try {
      rmdirSync(d)
    } catch {
      return
    }
  }
}
