/**
 * Opening a vec: the options ({@link OpenOptions}, {@link CloseOptions}, {@link Mode}) and their
 * checks, the defaults the environment sets (`MMAPVEC_MODE`, `MMAPVEC_PACK_MIN_BYTES`), and what
 * the native open is asked for.
 */
import { constants as bufferConstants } from 'node:buffer'
import { externalBuffersAllowed, guardSignals, type OpenArgs } from '../native/binding.js'
import { checkCount, invalid, type MmapVecError } from './errors.js'

/**
 * Options of {@link MmapVec.open}, {@link MmapVec.create} and {@link MmapVec.temp}. An unknown
 * option, or one of the wrong type, is `EINVAL`.
 *
 * @example
 * ```ts
 * const v = MmapVec.open('world/units.mvec', Unit, { capacity: 100_000, autoFlushMs: 1000, version: 2 })
 * ```
 */
export interface OpenOptions {
  /**
   * Create the vec (and missing parent directories) when nothing is at the path; with `false`,
   * a missing vec is `ENOENT`. Default `true`. For {@link MmapVec.open} only: `create` with
   * `create: false` is `EINVAL`.
   */
  create?: boolean
  /**
   * Open with a shared lock (other `readOnly` opens are allowed, a read-write one gets
   * `ELOCKED`); every change throws `EREADONLY`. Writes through `columns` change only this
   * process's view, never the files. Default `false`.
   */
  readOnly?: boolean
  /**
   * Rows to make room for at once, a whole number >= 0: a new vec starts with it, and an
   * existing read-write one grows to it when it has less. Default 0.
   */
  capacity?: number
  /**
   * Milliseconds to wait for the lock, blocking the calling thread, before failing with
   * `ELOCKED`. Default 0: fail at once.
   */
  lockTimeoutMs?: number
  /**
   * The application's data version, a whole number >= 0: stored when the vec is created (0
   * when not given); opening an existing vec with another one fails with `EVERSION`. Without
   * it, an open accepts any stored version. See {@link MmapVec.version}.
   */
  version?: number
  /**
   * Flush in the background every this many milliseconds (more than 0 and less than 2^31),
   * changed or not: writes through views held from earlier are included, and only changed
   * pages are written. A failed background flush is thrown by the next {@link MmapVec.flush}
   * or {@link MmapVec.flushSync}. Ignored for `readOnly` vecs.
   */
  autoFlushMs?: number
  /**
   * Address space (bytes) to reserve per column, default 1 GiB. A column grows in place within
   * its reservation, so views taken earlier stay valid; past it, the column moves to a new
   * reservation and earlier views of it become empty. Costs no memory, only address space.
   */
  reservation?: number
  /**
   * `'mmap'`: columns are views of the file's pages (zero copy). `'buffered'`: columns live in
   * memory V8 allocates, read from the files at open and written back on flush, autoFlush and
   * close; it costs memory equal to the data, and a crash loses what was not flushed. The
   * default is `'mmap'`, or `'buffered'` where the runtime forbids views of other memory
   * (Electron's V8 memory cage); the environment variable `MMAPVEC_MODE` overrides it.
   * `'overlay'` (opt-in, experimental): each column is a WebAssembly memory that V8 allocated
   * with the file mapped over it, so views are the file's pages with no copy and no external
   * buffer; views become empty on every growth, and a column holds at most 4 GiB. Meant for the
   * memory cage, but tested in plain Node only, not inside Electron.
   */
  mode?: Mode
}

/** Options of {@link MmapVec.close}. */
export interface CloseOptions {
  /** Flush before closing (default true); `false` leaves the rows in the page cache only. */
  flush?: boolean
}

/**
 * How a vec's columns reach JavaScript: `'mmap'` (views of the file's pages), `'buffered'`
 * (copies in memory V8 allocates, written back on flush and close) or `'overlay'` (WebAssembly
 * memories with the files mapped over them; experimental); see {@link OpenOptions.mode}.
 */
export type Mode = 'mmap' | 'buffered' | 'overlay'

const MODES: readonly string[] = ['mmap', 'buffered', 'overlay']

let signalsHooked = false

/**
 * While a program listens with `process.on('SIGBUS')`, Node puts its own SIGBUS handler in
 * place of mmapvec's (which turns a fault in a file cut short under a vec into an error of the
 * vec: docs/DESIGN.md), and the default back when it stops listening. Node's own hooks for
 * that run first, so these put mmapvec's handler back right after each, chained to Node's.
 */
export function hookSignals(): void {
  if (signalsHooked) return
  signalsHooked = true
  const again = (event: string | symbol) => {
    if (event === 'SIGBUS') guardSignals()
  }
  process.on('newListener', again)
  process.on('removeListener', again)
}

let defaultModeCache: Mode | undefined
export function defaultMode(): Mode {
  if (defaultModeCache === undefined) {
    const env = process.env.MMAPVEC_MODE
    if (env !== undefined && env !== '' && !MODES.includes(env)) {
      throw invalid(`MMAPVEC_MODE must be 'mmap', 'buffered' or 'overlay', got '${env}'`)
    }
    defaultModeCache = env !== undefined && env !== '' ? (env as Mode) : externalBuffersAllowed() ? 'mmap' : 'buffered'
  }
  return defaultModeCache
}

/**
 * From how many mapped bytes a vec's columns share one ArrayBuffer: the core's 64 MiB, unless
 * `MMAPVEC_PACK_MIN_BYTES` says otherwise (the test suite sets 0 to run packed vecs of any size).
 */
function packMinBytes(): number | undefined {
  const env = process.env.MMAPVEC_PACK_MIN_BYTES
  if (env === undefined || env === '') return undefined
  const n = Number(env)
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`MMAPVEC_PACK_MIN_BYTES must be a whole number of bytes, or unset; got '${env}'`)
  return n
}

const OPTION_TYPES: Record<keyof OpenOptions, 'boolean' | 'number' | 'string'> = {
  create: 'boolean',
  readOnly: 'boolean',
  capacity: 'number',
  lockTimeoutMs: 'number',
  version: 'number',
  autoFlushMs: 'number',
  reservation: 'number',
  mode: 'string',
}

/** The error of an option that is not one of `known`. */
function unknownOption(name: string, known: readonly string[], where: string): MmapVecError {
  return invalid(`${where}: unknown option '${name}'; the options are ${known.join(', ')}`, where)
}

/** Throws EINVAL unless `options` is an object or undefined. */
export function checkOptionsObject(options: unknown, where: string): asserts options is object | undefined {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw invalid(`${where}: options must be an object`, where)
}

/** Throws EINVAL unless `options` is an object or undefined that has only options named in `known`. */
export function checkOptionNames(options: unknown, known: readonly string[], where: string): void {
  checkOptionsObject(options, where)
  for (const k of Object.keys(options ?? {})) if (!known.includes(k)) throw unknownOption(k, known, where)
}

/** Checks the options of an open (`where` names the vec in messages). */
export function checkOptions(path: string, options: unknown): OpenOptions {
  if (options === undefined) return {}
  checkOptionsObject(options, path)
  for (const [k, v] of Object.entries(options)) {
    const want = OPTION_TYPES[k as keyof OpenOptions]
    if (want === undefined) throw unknownOption(k, Object.keys(OPTION_TYPES), path)
    if (v !== undefined && typeof v !== want) throw invalid(`${path}: option '${k}' must be a ${want}, got ${String(v)}`, path)
  }
  const o = options as OpenOptions
  for (const k of ['capacity', 'lockTimeoutMs', 'version', 'reservation'] as const) if (o[k] !== undefined) checkCount(o[k], k, path)
  if (o.mode !== undefined && !MODES.includes(o.mode)) {
    throw invalid(`${path}: mode must be 'mmap', 'buffered' or 'overlay', got '${String(o.mode)}'`, path)
  }
  if (o.autoFlushMs !== undefined && !(o.autoFlushMs > 0 && o.autoFlushMs < 2 ** 31)) {
    throw invalid(`${path}: autoFlushMs must be a positive number of milliseconds, got ${o.autoFlushMs}`, path)
  }
  return o
}

/** How a vec is opened: `open` (created unless `create: false`), `create` (never an existing one) or `temp`. */
export type Making = 'open' | 'create' | 'temp'

/** A WebAssembly memory holds at most 4 GiB (65,536 pages); a column's pages stay within it. */
const OVERLAY_MAX_BYTES = 2 ** 32 - 2 ** 16

/** What the native open is asked for; `stored`: the vec opens with its stored schema (never created). */
export function nativeOpenArgs(how: Making, o: OpenOptions, mode: Mode, stored: boolean): OpenArgs {
  return {
    create: !stored && (how !== 'open' || o.create !== false),
    createNew: how === 'create',
    readOnly: o.readOnly === true,
    temp: how === 'temp',
    capacity: o.capacity ?? 0,
    lockTimeoutMs: o.lockTimeoutMs ?? 0,
    version: o.version,
    reservation: o.reservation,
    // Node 20 cannot make an ArrayBuffer over native memory past 4 GiB; the capacity of a
    // column stays within what a view of it can show.
    maxViewBytes: mode === 'overlay' ? Math.min(bufferConstants.MAX_LENGTH, OVERLAY_MAX_BYTES) : bufferConstants.MAX_LENGTH,
    // One ArrayBuffer for all columns of a large vec: V8 marks the heap for each new
    // buffer that adds 64 MiB of external memory (docs/DESIGN.md, "Packed columns").
    pack: mode === 'mmap',
    packMinBytes: packMinBytes(),
  }
}
