import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MmapVec, type Mode } from 'mmapvec'

/** The mode vecs open in by default here ('buffered' or 'overlay' under MMAPVEC_MODE). */
export const mode: Mode = (() => {
  using v = MmapVec.temp('u8')
  return v.mode
})()

const scratchDirs: string[] = []
process.on('exit', () => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true })
})

/** A fresh directory for one test, removed when the process exits. */
export function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mmapvec-test-'))
  scratchDirs.push(dir)
  return dir
}

/** A script in __test__/fixtures by name, or any script by absolute path (the examples). */
export const fixture = (name: string): string => (isAbsolute(name) ? name : fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url)))

const root = fileURLToPath(new URL('../../', import.meta.url))
let staged: string | undefined

/**
 * A copy of what a fixture needs to import 'mmapvec' (package.json, dist/, native/, the
 * fixtures), in a folder every user may enter: the clone itself may sit where others cannot (a
 * clone in /root, or in a mode-700 folder), and then a child run as another user could not even
 * load its script. Made once per test file, removed at exit.
 */
export function stagedForOthers(): string {
  if (staged !== undefined) return staged
  const dir = mkdtempSync(join(tmpdir(), 'mmapvec-staged-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(root, 'package.json'), join(dir, 'package.json'))
  for (const sub of ['dist', 'native', '__test__/fixtures']) cpSync(join(root, sub), join(dir, sub), { recursive: true })
  // The command line needs the package's own dependencies (not the dev ones).
  for (const dep of productionDependencies()) cpSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep), { recursive: true })
  const open = (p: string) => {
    chmodSync(p, statSync(p).isDirectory() ? 0o755 : 0o644)
    if (statSync(p).isDirectory()) for (const f of readdirSync(p)) open(join(p, f))
  }
  open(dir)
  staged = dir
  return dir
}

/**
 * The package's dependencies and optional peers (apache-arrow, for `--format arrow`), and
 * theirs, as folders under node_modules (a flat install; a package that is not installed is
 * left out, as it would be for a user).
 */
function productionDependencies(): string[] {
  type Manifest = { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> }
  const manifest = (dir: string): Manifest | undefined => {
    try {
      return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest
    } catch {
      return undefined
    }
  }
  const found = new Set<string>()
  const visit = (names: string[]) => {
    for (const name of names) {
      if (found.has(name)) continue
      const m = manifest(join(root, 'node_modules', name))
      if (m === undefined) continue
      found.add(name)
      visit(Object.keys(m.dependencies ?? {}))
    }
  }
  const top = manifest(root) ?? {}
  visit([...Object.keys(top.dependencies ?? {}), ...Object.keys(top.peerDependencies ?? {})])
  return [...found]
}

/** The `mmapvec` command in {@link stagedForOthers}, for a child run as another user. */
export function binForOthers(): string {
  return join(stagedForOthers(), 'dist', 'cli', 'bin.js')
}

/** Runs a fixture script in a child Node process and returns its exit code and output. */
export function runChild(script: string, args: string[], env: Record<string, string> = {}, user: { uid?: number; gid?: number } = {}) {
  const node = user.uid === undefined ? process.execPath : nodeForOthers()
  const path = user.uid === undefined || isAbsolute(script) ? fixture(script) : join(stagedForOthers(), '__test__/fixtures', basename(script))
  const r = spawnSync(node, [path, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
    ...user,
  })
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}

/**
 * Starts a fixture script and resolves once it printed `line` (e.g. "ready"). Its standard
 * input is a pipe (`child.stdin`) the test may write to or end.
 */
export function startChild(script: string, args: string[], line = 'ready', env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [fixture(script), ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let out = ''
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.split('\n').includes(line)) resolve()
    })
    child.on('exit', (code, signal) => reject(new Error(`child exited (${code ?? signal}) before '${line}': ${err}`)))
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return { child, ready, exited, ended, output: () => out, errors: () => err }
}

/**
 * Name, size, mode, mtime and a hash of every file in a directory: compare before and after.
 * The live file is the writer's state for readers beside it (docs/FORMAT.md), not data: only
 * its name, size and mode count.
 */
export function fingerprint(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const p = join(dir, name)
      const s = statSync(p)
      if (name === 'live' && s.isFile()) return `${name} ${s.size} ${s.mode} (live state)`
      const hash = s.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'dir'
      return `${name} ${s.size} ${s.mode} ${s.mtimeMs} ${hash}`
    })
}

/** Collects garbage twice (the tests run with --expose-gc), letting finalizers run between. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run the tests with --expose-gc')
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
  }
}

/**
 * A Node binary that the unprivileged user "nobody" can run: this one when its whole path is
 * open to others (a Node that npx unpacked under /root is not), else the system's.
 */
export function nodeForOthers(): string {
  const open = (p: string) => {
    try {
      return (statSync(p).mode & 0o001) !== 0
    } catch {
      return false
    }
  }
  const runnable = (bin: string) => {
    for (let p = bin; p !== '/'; p = join(p, '..')) if (!open(p)) return false
    return true
  }
  const found = [process.execPath, '/usr/bin/node', '/usr/local/bin/node'].find(runnable)
  if (found === undefined) throw new Error('no Node binary that an unprivileged user may run')
  return found
}

export function hasStrace(): boolean {
  return spawnSync('strace', ['-V']).status === 0
}
