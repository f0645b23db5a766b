/**
 * Durability: `flush` (on the libuv thread pool), `flushSync`, the autoFlush interval, and
 * `close` (the last write-back and flush, then the storage let go). Column data is made durable
 * before the header that claims it (the native flush's order; docs/DESIGN.md).
 */
import type { NativeVec } from '../native/binding.js'
import { callNative, fromNative } from './errors.js'
import { setColumns, type VecInternals } from './internals.js'
import { publish } from './live.js'
import { ARRAY_TYPES } from './schema.js'

/** A failed background flush is reported by the next flush call. */
function throwFlushError(vec: VecInternals): void {
  if (vec._flushError === undefined) return
  const e: unknown = vec._flushError
  vec._flushError = undefined
  throw e
}

/**
 * What both flushes do first: throw ECLOSED, or the error of a failed background flush, then
 * (unless read-only: false, nothing to flush) check the views and write buffered rows back.
 */
function beforeSync(vec: VecInternals): boolean {
  vec._open()
  throwFlushError(vec)
  if (vec._readOnly) return false
  vec._checkViews()
  vec._storage.writeBack(vec)
  publish(vec)
  return true
}

/** The body of `MmapVec.flush`. */
export async function flush(vec: VecInternals): Promise<void> {
  if (!beforeSync(vec)) return
  try {
    await vec._native.flushJob().run()
  } catch (err) {
    fromNative(err, vec._path)
  }
}

/** The body of `MmapVec.flushSync`. */
export function flushSync(vec: VecInternals): void {
  if (beforeSync(vec)) callNative(vec._path, () => vec._native.flushSync())
}

/** Flushes `vec` in the background every `ms` milliseconds, without keeping the process alive. */
export function autoFlushEvery(vec: VecInternals, ms: number): ReturnType<typeof setInterval> {
  const timer = setInterval(() => autoFlush(vec), ms)
  timer.unref()
  return timer
}

function autoFlush(vec: VecInternals): void {
  // Every interval, changed or not: writes through views held from earlier leave no trace the
  // vec could see, and the kernel (or, buffered, the page comparison) writes only what changed.
  if (vec._flushing || vec._closed) return
  vec._flushing = true
  let job: ReturnType<NativeVec['flushJob']>
  try {
    vec._checkViews()
    vec._storage.writeBack(vec)
    publish(vec)
    // Making the job checks the vec (a damaged one is refused): kept for the next flush call.
    job = callNative(vec._path, () => vec._native.flushJob())
  } catch (e) {
    vec._flushing = false
    vec._flushError = e
    return
  }
  job.run().then(
    () => {
      vec._flushing = false
    },
    (err: unknown) => {
      vec._flushing = false
      try {
        fromNative(err, vec._path)
      } catch (e) {
        vec._flushError = e
      }
    },
  )
}

/** The body of `MmapVec.close`. */
export function close(vec: VecInternals, options: { flush?: boolean } | undefined): void {
  // Read first: a getter that pushes, or closes the vec, runs before anything is written back.
  const flush = options?.flush !== false
  if (vec._closed) return
  if (vec._timer !== undefined) clearInterval(vec._timer)
  vec._timer = undefined
  try {
    // Buffered columns always go back to the files (the page cache), compared page by page so
    // that unchanged pages stay clean: writes through views leave no trace the vec could see.
    if (!vec._readOnly) vec._checkViews()
    vec._storage.writeBack(vec) // nothing to write back for a read-only vec
    if (flush && !vec._readOnly) callNative(vec._path, () => vec._native.flushSync())
  } finally {
    vec._storage.release(vec)
    vec._closed = true
    vec._len = 0
    vec._cap = 0
    vec._limit = -1
    setColumns(
      vec,
      vec._spec.columns.map((c) => new ARRAY_TYPES[c.type](0)),
    )
    vec._columnsCache = undefined
  }
}
