/**
 * Opening, creating and removing vecs: the options ({@link OpenOptions}, {@link CloseOptions})
 * and their checks, the defaults the environment sets (`MMAPVEC_MODE`,
 * `MMAPVEC_PACK_MIN_BYTES`), the storage chosen for the mode, what the native open is asked
 * for, and {@link createFilled} (a new vec that is removed again when filling it fails).
 */
import { existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { NativeVec, StorageMode, externalBuffersAllowed, guardSignals, remove as nativeRemove, type Layout, type OpenArgs, type SchemaRequest } from '../native/binding.js'
import { specialise } from './codegen.js'
import { callNative, checkCount, invalid, type MmapVecError } from './errors.js'
import type { VecInternals } from './internals.js'
import { checkPath, refuseInsideVec } from './paths.js'
import { normalizeSchema, schemaOf, type NormalizedSchema, type ScalarType, type Schema } from './schema.js'
import { BufferedStorage } from './storage/buffered.js'
import { MappedStorage } from './storage/mapped.js'
import { OverlayStorage } from './storage/overlay.js'
import type { Mode, Storage } from './storage/storage.js'


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
   * Open as a reader: beside the writer (in any process or thread) and other readers, never
   * waiting for them; it follows the writer at {@link MmapVec.refresh}. Every change throws
   * `EREADONLY`. Writes through `columns` change only this process's view, never the files.
   * Default `false`.
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

const MODES: readonly string[] = ['mmap', 'buffered', 'overlay']

let signalsHooked = false

/**
 * While a program listens with `process.on('SIGBUS')`, Node puts its own SIGBUS handler in
 * place of mmapvec's (which turns a fault in a file cut short under a vec into an error of the
 * vec: docs/DESIGN.md), and the default back when it stops listening. Node's own hooks for
 * that run first, so these put mmapvec's handler back right after each, chained to Node's.
 */
function hookSignals(): void {
  if (signalsHooked) return
  signalsHooked = true
  const again = (event: string | symbol) => {
    if (event === 'SIGBUS') guardSignals()
  }
  process.on('newListener', again)
  process.on('removeListener', again)
}

let defaultModeCache: Mode | undefined
function defaultMode(): Mode {
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

/**
 * The options as a plain object whose values were each read once, after checking that
 * `options` is an object (or undefined) with only options named in `known`: a getter (or a
 * Proxy) runs here, before anything it could change (the vec, its length) is looked at, and
 * never again.
 */
export function readOptions<T extends object>(options: T | undefined, known: readonly string[], where: string): Partial<T> {
  checkOptionNames(options, known, where)
  return Object.fromEntries(Object.entries(options ?? {})) as Partial<T>
}

/** Checks the options of an open (`path` names the vec in messages). */
function checkOptions(path: string, given: unknown): OpenOptions {
  if (given === undefined) return {}
  checkOptionsObject(given, path)
  // Each value read once (getters run once), then checked and used from the copy.
  const options = Object.fromEntries(Object.entries(given))
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

/** The stored schema as the facade works with it: names, types and widths in stored order. */
function storedSpec(layout: Layout): NormalizedSchema {
  return { scalar: layout.scalar, columns: layout.columns.map(({ name, type, count }) => ({ name, type: type as ScalarType, count })) }
}

/** A new vec's storage for `mode` (`where` and `path` name the vec in a refusal). */
function storageFor(mode: Mode, where: string, path: string): Storage<VecInternals> {
  switch (mode) {
    case 'mmap':
      return new MappedStorage()
    case 'buffered':
      return new BufferedStorage()
    case 'overlay':
      if (process.platform === 'win32') {
        throw invalid(`${where}: overlay mode needs mmap(MAP_FIXED) and runs on Linux and macOS only; use mode 'mmap' or 'buffered'`, path || undefined)
      }
      return new OverlayStorage()
  }
}

/** What the native open is asked for; `stored`: the vec opens with its stored schema (never created). */
function nativeOpenArgs(how: Making, o: OpenOptions, storage: Storage<VecInternals>, stored: boolean): OpenArgs {
  return {
    create: !stored && (how !== 'open' || o.create !== false),
    createNew: how === 'create',
    readOnly: o.readOnly === true,
    temp: how === 'temp',
    capacity: o.capacity ?? 0,
    lockTimeoutMs: o.lockTimeoutMs ?? 0,
    version: o.version,
    reservation: o.reservation,
    maxViewBytes: storage.maxViewBytes,
    viewLimitFix: storage.viewLimitFix,
    pack: storage.pack,
    packMinBytes: packMinBytes(),
    mode: STORAGE_MODES[storage.mode],
  }
}

/** The binding's name for each storage mode (which buffers its layouts show). */
const STORAGE_MODES: Record<Mode, StorageMode> = { mmap: StorageMode.Mapped, buffered: StorageMode.Buffered, overlay: StorageMode.Overlay }

/** A normalized schema as the binding takes it. */
function schemaRequest(spec: NormalizedSchema): SchemaRequest {
  return { scalar: spec.scalar, fields: spec.columns.map(({ name, type, count }) => ({ name, type, count })) }
}

/**
 * Opens, creates or makes a temp vec (the body of `MmapVec.open`, `create` and `temp`): checks
 * everything it can before the disk is touched, opens the native vec, and makes the vec of the
 * class specialised for its schema over it.
 */
export function openVec(how: Making, path: string, schema: Schema | undefined, options: OpenOptions | undefined): VecInternals {
  if (how !== 'temp') checkPath(path)
  const where = how === 'temp' ? 'temp vec' : path
  const o = checkOptions(where, options)
  if (how === 'create' && o.create === false) throw invalid(`${where}: create() with create: false makes no sense`, path)
  // Without a schema (`open` only), the stored one is used once the vec is open.
  const stored = how === 'open' && schema === undefined
  const requested = stored ? undefined : normalizeSchema(schema)
  if (typeof requested === 'string') throw invalid(`${where}: ${requested}`, path || undefined)
  // The storage for the mode, chosen once for the vec's life, before anything touches the
  // disk: a bad MMAPVEC_MODE fails here.
  const storage = storageFor(o.mode ?? defaultMode(), where, path)
  // A new vec inside another vec's directory would be deleted by removing that one while
  // open (the CLI refuses it too); checked only where something will be created.
  if (how !== 'temp' && !stored && o.create !== false && !existsSync(path)) refuseInsideVec(dirname(path), "a new vec's parent directory", path)
  hookSignals()
  const args = nativeOpenArgs(how, o, storage, stored)
  const nv = callNative(path || undefined, () => NativeVec.open(path, requested === undefined ? undefined : schemaRequest(requested), args))
  try {
    storage.opened(nv)
    // The one read of the vec's state: schema, length, capacity and the storage's buffers.
    const layout = callNative(path || undefined, () => nv.layout())
    const spec = requested ?? storedSpec(layout)
    const Cls = specialise(spec)
    return new Cls({
      native: nv,
      layout,
      // The schema as read once (normalized), never the caller's object: a getter in it, or a
      // change to it after the open, must not change what `schema` says.
      schema: schemaOf(spec),
      spec,
      storage,
      readOnly: o.readOnly === true,
      autoFlushMs: o.autoFlushMs,
      temp: how === 'temp',
    })
  } catch (e) {
    // Overlay mode may fail to make its memories, buffered mode its buffers: release the lock
    // at once, not at collection, and remove the vec if this open created it.
    nv.discard()
    throw e
  }
}

/** The body of `MmapVec.remove`. */
export function removeVec(path: string): void {
  checkPath(path)
  callNative(path, () => nativeRemove(path))
}

/**
 * Creates a vec at `path` and fills it with `fill`, for imports (Arrow, the CLI's CSV and JSON
 * lines): when `fill` throws or its Promise rejects, the vec is closed without a flush and
 * removed, so that nothing is left at `path`, and the error is thrown on. Returns the vec
 * (a Promise of it for an async `fill`), open unless `fill` closed it.
 */
export function createFilled(path: string, schema: Schema, options: OpenOptions, fill: (vec: VecInternals) => Promise<void>): Promise<VecInternals>
export function createFilled(path: string, schema: Schema, options: OpenOptions, fill: (vec: VecInternals) => void): VecInternals
export function createFilled(path: string, schema: Schema, options: OpenOptions, fill: (vec: VecInternals) => void | Promise<void>): VecInternals | Promise<VecInternals> {
  const vec = openVec('create', path, schema, options)
  const discard = (err: unknown): never => {
    vec.close({ flush: false })
    removeVec(path)
    throw err
  }
  let filling: void | Promise<void>
  try {
    filling = fill(vec)
  } catch (err) {
    return discard(err)
  }
  return filling instanceof Promise ? filling.then(() => vec, discard) : vec
}
