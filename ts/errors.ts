import { ErrorCode as NativeErrorCode } from '../native/binding.js'

/**
 * Every `code` a {@link MmapVecError} can carry. The codes are stable: a program can switch on
 * them without parsing messages. The command-line tool maps each one to its own exit code.
 *
 * @example
 * ```ts
 * try {
 *   v = MmapVec.open('world/units.mvec', Unit)
 * } catch (e) {
 *   if (e instanceof MmapVecError && e.code === 'ELOCKED') console.error('another server runs')
 *   else throw e
 * }
 * ```
 */
export type ErrorCode =
  /** The lock is held by another process, or by another open handle in this process. */
  | 'ELOCKED'
  /** `create` (or `fromArrow`, `fromArrowIPC`) found something already at the path. */
  | 'EEXIST'
  /** Nothing is at the path and the call does not create (`create: false`, `open` without a schema, `inspect`, `verify`), or an input file is missing. */
  | 'ENOENT'
  /** Not a vec, or a damaged one; the message says what was expected and what was found. Also an Arrow IPC file that cannot be read. */
  | 'EFORMAT'
  /** The stored schema differs from the requested one (the message shows both and the calls that migrate), or a schema change does not fit the vec. */
  | 'ESCHEMA'
  /** The stored application version differs from the `version` option. */
  | 'EVERSION'
  /** The vec was written on a machine of the other byte order. */
  | 'EARCH'
  /** The vec was closed. */
  | 'ECLOSED'
  /** A change to a vec opened with `readOnly`. */
  | 'EREADONLY'
  /** An index or row range out of bounds, or a column larger than this runtime can show as one view (4 GiB on Node.js 20). */
  | 'ERANGE'
  /** The disk (or the file size limit) is full: the growth failed, nothing was lost, the old capacity remains. */
  | 'ENOSPC'
  /** A bad schema, argument, option or value. */
  | 'EINVAL'
  /** The operating system denied access. */
  | 'EACCES'
  /** Any other I/O failure. */
  | 'EIO'
  /** An optional dependency is missing: `apache-arrow`, for the Arrow functions. The message says what to install. */
  | 'EDEPENDENCY'

/**
 * The codes are defined once, in Rust (src/error.rs), as the binding's `ErrorCode`; the union
 * above restates them with their documentation, and this fails to compile unless it is exactly
 * the binding's codes and the facade's own EDEPENDENCY.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const SAME_CODES: Same<ErrorCode, `${NativeErrorCode}` | 'EDEPENDENCY'> = true

/** The codes errors of the binding carry, as the binding lists them. */
const NATIVE_CODES: ReadonlySet<string> = new Set<string>(SAME_CODES ? Object.values(NativeErrorCode) : [])

/**
 * The error every failing call of mmapvec throws. `code` is stable (see {@link ErrorCode});
 * `message` names the path and what to do. Nothing on disk is changed by a failed call.
 *
 * @example
 * ```ts
 * try {
 *   MmapVec.create('world/units.mvec', { id: 'u32' })
 * } catch (e) {
 *   if (!(e instanceof MmapVecError) || e.code !== 'EEXIST') throw e
 * }
 * ```
 */
export class MmapVecError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: ErrorCode
  /** The path of the vec (or file) the error concerns, when there is one. */
  readonly path: string | undefined

  /**
   * @param code - the stable code
   * @param message - what went wrong and what to do, naming the path
   * @param path - the path the error concerns
   * @param options - `cause`: the operating system's error this one stands for (an `EIO` of a
   *   write to a pipe whose reader went away has the `EPIPE` error as its cause)
   */
  constructor(code: ErrorCode, message: string, path?: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'MmapVecError'
    this.code = code
    this.path = path
  }
}

/**
 * Native errors arrive with their stable `code` set; this turns them into
 * {@link MmapVecError}s. Anything else is rethrown unchanged.
 */
export function fromNative(err: unknown, path: string | undefined): never {
  const code = (err as { code?: unknown } | null | undefined)?.code
  if (err instanceof Error && typeof code === 'string' && NATIVE_CODES.has(code)) {
    // Every message names the path; the core's schema checks do not know it.
    throw new MmapVecError(code as ErrorCode, path === undefined || err.message.includes(path) ? err.message : `${path}: ${err.message}`, path)
  }
  throw err
}

/** Runs `call` (a call of the native binding), turning its error into a {@link MmapVecError}. */
export function callNative<T>(path: string | undefined, call: () => T): T {
  try {
    return call()
  } catch (err) {
    fromNative(err, path)
  }
}

/** The `EINVAL` error of a bad argument, schema, option or value. */
export function invalid(message: string, path?: string): MmapVecError {
  return new MmapVecError('EINVAL', message, path)
}

/** Throws EINVAL unless `n` is a whole number >= 0 (`what` names it); returns it. */
export function checkCount(n: unknown, what: string, path: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalid(`${path}: ${what} must be a whole number >= 0, got ${String(n)}`, path)
  }
  return n
}

/** The library's code for an operating system error code, with what to do about it. */
const SYSTEM_CODES: Record<string, [ErrorCode, string]> = {
  ENOENT: ['ENOENT', 'check the path'],
  ENOTDIR: ['ENOENT', 'check the path'],
  EACCES: ['EACCES', 'check the permissions'],
  EPERM: ['EACCES', 'check the permissions'],
  EROFS: ['EACCES', 'the file system is read-only'],
  ENOSPC: ['ENOSPC', 'free some disk space'],
  EDQUOT: ['ENOSPC', 'the disk quota is used up'],
  EFBIG: ['ENOSPC', 'the file size limit (ulimit -f) is reached'],
  EEXIST: ['EEXIST', 'give another path, or remove what is there'],
  EMFILE: ['EIO', 'this process has too many files open: raise the limit on open files (ulimit -n) or close other files'],
  ENFILE: ['EIO', 'the system has too many files open: close other files, or raise the system limit (fs.file-max)'],
}

/** The {@link ErrorCode} of an operating system error code (`errno` such as `EACCES`): `EIO` for the ones without their own. */
export function systemCode(errno: string): ErrorCode {
  return SYSTEM_CODES[errno]?.[0] ?? 'EIO'
}

/**
 * An operating system error (one with an errno code such as EACCES, from `node:fs`) as an
 * {@link MmapVecError} naming `file` and what was being done, with the original as its `cause`;
 * any other error is returned unchanged. The Rust core maps its own I/O errors the same way (`Error::io`).
 */
export function fromSystemError(err: unknown, file: string, doing: string): unknown {
  const e = err as NodeJS.ErrnoException
  if (e instanceof MmapVecError || typeof e?.code !== 'string' || !/^E[A-Z0-9]+$/.test(e.code)) return err
  const [code, hint] = SYSTEM_CODES[e.code] ?? ['EIO', undefined]
  return new MmapVecError(code, `${file}: ${doing} failed: ${e.message}${hint === undefined ? '' : `; ${hint}`}`, file, { cause: err })
}
