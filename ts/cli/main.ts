/**
 * The `mmapvec` command: look at, check, print, export and import vecs.
 * `main(args)` parses the command line, runs one command (commands.ts) and resolves to its
 * exit code (see exit-codes.ts), reporting any error on stderr.
 */
import { parseArgs } from 'node:util'
import { systemCode } from '../errors.js'
import { MmapVecError } from '../index.js'
import { COMMANDS, type Command } from './commands.js'
import { EXIT_CODES, exitCodeHelp } from './exit-codes.js'
import { UsageError } from './formats.js'
import { isEpipe, print } from './io.js'

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length))
  return `mmapvec: look at, check, print, export and import mmapvec vecs

Usage: mmapvec <command> [options]    (mmapvec <command> --help for each)

Commands:
${Object.entries(COMMANDS)
  .map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Exit codes:
${exitCodeHelp()}`
}

function commandHelp(c: Command): string {
  return `Usage: ${c.usage}\n\n${c.help}\n\nExit codes: mmapvec --help`
}

/** The exit code for an error, after printing it to stderr. */
function fail(err: unknown, command: string | undefined): number {
  // A closed standard error is ignored (see main): the exit code still tells.
  const say = (m: string) => process.stderr.write(`mmapvec: ${m}\n`)
  const e = err as { code?: unknown; message?: string }
  if (err instanceof UsageError || (typeof e?.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS'))) {
    say(`${e.message}\nRun 'mmapvec ${command ?? ''}${command ? ' ' : ''}--help' for usage.`)
    return EXIT_CODES.USAGE
  }
  if (err instanceof MmapVecError) {
    say(`${err.code}: ${err.message}`)
    return EXIT_CODES[err.code]
  }
  // Errors of files the command reads or writes itself (import input, export --out) that no
  // fromSystemError named: the library's code for them.
  if (typeof e?.code === 'string' && (e as { syscall?: unknown }).syscall !== undefined) {
    const code = systemCode(e.code)
    say(`${code}: ${e.message}`)
    return EXIT_CODES[code]
  }
  say(`internal error (please report it): ${err instanceof Error ? err.stack : String(err)}`)
  return EXIT_CODES.INTERNAL
}

/** The command named `name` (an own key: `constructor` is no command). */
function command(name: string): Command {
  if (Object.hasOwn(COMMANDS, name)) return COMMANDS[name]
  throw new UsageError(`unknown command '${name}'; the commands are ${Object.keys(COMMANDS).join(', ')}`)
}

/** Runs the command line `args` (without `node` and the script) and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  // Standard error closed: nothing can report it, and it must not crash the command (an
  // 'error' event without a listener throws).
  if (!process.stderr.listeners('error').includes(ignore)) process.stderr.on('error', ignore)
  const [name, ...rest] = args
  try {
    if (name === undefined) {
      // Without a command, the help is a usage error: on stderr, exit code 2.
      process.stderr.write(mainHelp() + '\n')
      return EXIT_CODES.USAGE
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      const topics = name === 'help' ? rest : []
      if (topics.length > 1) throw new UsageError(`help takes one command, got ${topics.length}: mmapvec help <command>`)
      await print((topics.length === 0 ? mainHelp() : commandHelp(command(topics[0]))) + '\n')
      return EXIT_CODES.OK
    }
  } catch (err) {
    if (isEpipe(err)) return EXIT_CODES.PIPE
    return fail(err, undefined)
  }
  let c: Command
  try {
    c = command(name)
  } catch (err) {
    return fail(err, undefined)
  }
  try {
    const { values, positionals, tokens } = parseArgs({
      args: rest,
      options: { ...c.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
      tokens: true,
    })
    // parseArgs keeps the last of an option given twice; which one was meant is unclear.
    const seen = new Set<string>()
    for (const tk of tokens) {
      if (tk.kind !== 'option') continue
      if (seen.has(tk.name)) throw new UsageError(`${tk.rawName} is given twice; give each option once`)
      seen.add(tk.name)
    }
    if (values.help === true) {
      await print(commandHelp(c) + '\n')
      return EXIT_CODES.OK
    }
    if (positionals.length !== c.positionals) {
      throw new UsageError(`${name} takes ${c.positionals === 1 ? 'one path' : `${c.positionals} arguments`}, got ${positionals.length}: ${c.usage}`)
    }
    // An empty path ('' from an unset shell variable) is no file; --out '' failed only at the
    // rename, after the whole export.
    const out = (values as Record<string, unknown>).out
    if (positionals.includes('') || out === '') throw new UsageError(`${out === '' ? '--out' : 'a path'} is empty: ${c.usage}`)
    return await c.run(positionals, values)
  } catch (err) {
    // The reader of the output went away (`mmapvec cat v | head`, or of an --out pipe, in
    // every format): stop quietly, with the status of a command that SIGPIPE ended.
    if (isEpipe(err)) return EXIT_CODES.PIPE
    return fail(err, name)
  }
}

/** Drops an error that nobody can be told of (standard error itself failed). */
function ignore(): void {}
