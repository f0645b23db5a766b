/** Every `code` an {@link MmapVecError} can carry. */
export type ErrorCode =
  | 'ELOCKED'
  | 'EEXIST'
  | 'ENOENT'
  | 'EFORMAT'
  | 'ESCHEMA'
  | 'EVERSION'
  | 'EARCH'
  | 'ECLOSED'
  | 'EREADONLY'
  | 'ERANGE'
  | 'ENOSPC'
  | 'EINVAL'
  | 'EACCES'
  | 'EIO'
  | 'EDEPENDENCY'

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'ELOCKED', 'EEXIST', 'ENOENT', 'EFORMAT', 'ESCHEMA', 'EVERSION', 'EARCH',
  'ECLOSED', 'EREADONLY', 'ERANGE', 'ENOSPC', 'EINVAL', 'EACCES', 'EIO',
])

/** The error every failing call throws: `code` is stable, `message` names the path and the fix. */
export class MmapVecError extends Error {
  readonly code: ErrorCode
  /** The vec's path, when the error concerns one. */
  readonly path: string | undefined

  constructor(code: ErrorCode, message: string, path?: string) {
    super(message)
    this.name = 'MmapVecError'
    this.code = code
    this.path = path
  }
}

/**
 * Native errors arrive as `"CODE: message"`; this turns them into {@link MmapVecError}s.
 * Anything else is rethrown unchanged.
 */
export function fromNative(err: unknown, path: string | undefined): never {
  if (err instanceof Error) {
    const m = /^([A-Z]+): ([\s\S]*)$/.exec(err.message)
    if (m && CODES.has(m[1])) throw new MmapVecError(m[1] as ErrorCode, m[2], path)
  }
  throw err
}

/** Runs a native call, converting its error. */
export function native<T>(path: string | undefined, call: () => T): T {
  try {
    return call()
  } catch (err) {
    fromNative(err, path)
  }
}
