/**
 * What `markAsUntransferable` (node:worker_threads) does to an ArrayBuffer in this runtime. On
 * Node 20 and 22 the mark is Node's own flag, which V8's detaching ignores; on Node 24 it is a V8
 * detach key, and detaching a keyed buffer without the key (`napi_detach_arraybuffer`,
 * `WebAssembly.Memory.prototype.grow`) aborts the process.
 */
import * as workerThreads from 'node:worker_threads'

/** Whether a buffer marked untransferable can no longer be detached (the mark is a detach key). */
export const marksBlockDetaching: boolean = (() => {
  const transfer = (ArrayBuffer.prototype as { transfer?: (n: number) => ArrayBuffer }).transfer
  // Node 20: no transfer(), and no detach keys.
  if (typeof transfer !== 'function') return false
  const probe = new ArrayBuffer(8)
  workerThreads.markAsUntransferable(probe)
  try {
    transfer.call(probe, 0)
    return false
  } catch {
    return true
  }
})()

/**
 * `isMarkedAsUntransferable` where a mark blocks detaching (see {@link marksBlockDetaching});
 * read through the namespace, since Node 20 has no such export.
 */
export const isMarkedAsUntransferable: ((value: object) => boolean) | undefined = marksBlockDetaching
  ? (workerThreads as { isMarkedAsUntransferable?: (value: object) => boolean }).isMarkedAsUntransferable
  : undefined
