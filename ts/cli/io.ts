/**
 * Output: streaming with backpressure (Sink), standard output, an output file written whole
 * or not at all (writeOut), and the progress bar.
 */
import { SingleBar, Presets } from 'cli-progress'
import { createWriteStream, rmSync } from 'node:fs'
import type { Writable } from 'node:stream'
import { MmapVecError, fromSystemError } from '../errors.js'
import { outputKind, replaceFile, tempBeside } from '../paths.js'

/** Bytes of text gathered before one write to the stream. */
const CHUNK = 64 * 1024

/**
 * Writes text to a stream in chunks of about 64 KiB, waiting for `drain` whenever the stream
 * is full, so that output never piles up in memory. A stream error (EPIPE when the reader
 * went away, EFBIG at the file size limit) rejects the next write, or `done`.
 */
export class Sink {
  private parts: string[] = []
  private size = 0
  private error: Error | undefined
  /** Settles when the last chunk handed to the stream is written (or failed). */
  private written: Promise<void> = Promise.resolve()

  constructor(private readonly out: Writable) {
    out.on('error', (e: Error) => (this.error ??= e))
  }

  async write(text: string): Promise<void> {
    this.parts.push(text)
    this.size += text.length
    if (this.size >= CHUNK) await this.flush()
  }

  async flush(): Promise<void> {
    this.throwIfFailed()
    if (this.parts.length === 0) return
    const chunk = this.parts.join('')
    this.parts = []
    this.size = 0
    let room = true
    this.written = new Promise<void>((resolve) => {
      room = this.out.write(chunk, (e) => {
        if (e) this.error ??= e
        resolve()
      })
    })
    if (!room) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          this.out.off('drain', done)
          this.out.off('error', done)
          if (e) reject(e)
          else resolve()
        }
        this.out.on('drain', done)
        this.out.on('error', done)
      })
    }
    this.throwIfFailed()
  }

  /**
   * Writes what is left and waits until the stream took all of it: the error of the last
   * write, which comes after `write` returned, is thrown here rather than lost.
   */
  async done(): Promise<void> {
    await this.flush()
    await this.written
    this.throwIfFailed()
  }

  /** `done`, then ends the stream (a file: its last bytes are written when this resolves). */
  async end(): Promise<void> {
    await this.done()
    await new Promise<void>((resolve, reject) => {
      this.out.end((e?: Error | null) => (e ? reject(this.error ?? e) : resolve()))
    })
    this.throwIfFailed()
  }

  /** Throws the stream's error, if it had one (a method: it may have come during an await). */
  private throwIfFailed(): void {
    if (this.error !== undefined) throw this.error
  }
}

/**
 * Writes `text` to standard output, waiting until it is written: a write error (EPIPE when the
 * reader went away) is thrown here, where main turns EPIPE into a quiet end (exit 141).
 */
export async function print(text: string): Promise<void> {
  await toStdout((sink) => sink.write(text))
}

/**
 * Runs `body` writing to standard output and waits until all is written. A write error is
 * named as standard output's (ENOSPC from > /dev/full); EPIPE stays as it is, for main.
 */
export async function toStdout(body: (sink: Sink) => Promise<void>): Promise<void> {
  const sink = new Sink(process.stdout)
  try {
    await body(sink)
    await sink.done()
  } catch (err) {
    if (isEpipe(err)) throw err
    throw fromSystemError(err, 'standard output', 'writing')
  }
}

/**
 * Whether `err` is the error of a reader that went away (`mmapvec cat v | head`), itself or as
 * the cause of the library's EIO (writeArrowIPC into a pipe).
 */
export function isEpipe(err: unknown): boolean {
  return (err as { code?: unknown } | null | undefined)?.code === 'EPIPE' || (err instanceof MmapVecError && isEpipe(err.cause))
}

/**
 * Writes `out` through `body`: into a new file beside it, synced, then renamed over it, so
 * that `out` is whole or as it was (on failure the new file is removed); a named pipe or a
 * device, which has no such thing, is written directly.
 */
export async function writeOut(out: string, body: (sink: Sink) => Promise<void>): Promise<void> {
  if (outputKind(out) === 'into') {
    // A named pipe or a device (/dev/stdout): written as it is.
    try {
      const sink = new Sink(createWriteStream(out))
      await body(sink)
      await sink.end()
    } catch (err) {
      // The reader of a pipe went away: a quiet end, as on standard output.
      if (isEpipe(err)) throw err
      throw fromSystemError(err, out, 'writing the output')
    }
    return
  }
  const tmp = tempBeside(out)
  // Interrupted (Ctrl-C): the new file goes, then the signal ends the process as it would have.
  const interrupted = (signal: NodeJS.Signals) => {
    for (const s of SIGNALS) process.off(s, interrupted)
    try {
      rmSync(tmp, { force: true })
    } finally {
      process.kill(process.pid, signal)
    }
  }
  for (const s of SIGNALS) process.on(s, interrupted)
  try {
    await replaceFile(out, tmp, 'the output file', async (fd) => {
      // The descriptor stays open after the stream ends, to be synced before the rename.
      const sink = new Sink(createWriteStream(tmp, { fd, autoClose: false }))
      await body(sink)
      await sink.end()
    })
  } finally {
    for (const s of SIGNALS) process.off(s, interrupted)
  }
}

/** The signals that end the command: caught only to clean up, then raised again. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

/** What `stop()` throws once a signal came: the work unwinds, cleaning up as after a failure. */
export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
  }
}

/**
 * Runs `body` so that SIGINT, SIGTERM or SIGHUP end it as a failure would (its cleanup runs),
 * then end the process as the signal would have: `body` calls `stop()` between pieces of work,
 * which throws {@link Interrupted} once a signal came, and ends what waits (an input stream
 * from a pipe) when `aborted` fires. `cleanup` runs after any failure.
 */
export async function interruptible<T>(body: (stop: () => void, aborted: AbortSignal) => Promise<T>, cleanup: () => void): Promise<T> {
  let came: NodeJS.Signals | undefined
  const abort = new AbortController()
  const caught = (signal: NodeJS.Signals) => {
    came = signal
    abort.abort(new Interrupted(signal))
  }
  for (const s of SIGNALS) process.on(s, caught)
  try {
    return await body(() => {
      if (came !== undefined) throw new Interrupted(came)
    }, abort.signal)
  } catch (err) {
    cleanup()
    const signal = err instanceof Interrupted ? err.signal : came
    if (signal !== undefined) {
      for (const s of SIGNALS) process.off(s, caught)
      process.kill(process.pid, signal)
      // The signal ends the process; nothing after it may run.
      await new Promise(() => {})
    }
    throw err
  } finally {
    for (const s of SIGNALS) process.off(s, caught)
  }
}

/** How long a run goes before its progress bar appears. */
const SHOW_AFTER_MS = 1000

/**
 * A progress bar on stderr for long runs: shown only when stderr is a terminal and the run
 * has taken longer than a second, so short runs and pipes stay quiet.
 */
export class Progress {
  private bar: SingleBar | undefined
  private readonly started = Date.now()
  private readonly enabled: boolean

  constructor(
    private readonly label: string,
    private total: number,
    private readonly unit: string,
  ) {
    this.enabled = process.stderr.isTTY === true
  }

  /** `total` updates the total when it was not known at the start (0). */
  update(done: number, total?: number): void {
    if (total !== undefined && total !== this.total) {
      this.total = total
      this.bar?.setTotal(total)
    }
    if (!this.enabled || !(this.total > 0)) return
    if (this.bar === undefined) {
      if (Date.now() - this.started < SHOW_AFTER_MS) return
      this.bar = new SingleBar(
        { format: `${this.label} [{bar}] {percentage}% | {value}/{total} ${this.unit} | {eta_formatted} left`, stream: process.stderr, hideCursor: true },
        Presets.shades_classic,
      )
      this.bar.start(this.total, done)
    } else {
      this.bar.update(done)
    }
  }

  /** Removes nothing: a finished bar stays on the terminal, at wherever the run got to. */
  stop(): void {
    this.bar?.stop()
  }
}
