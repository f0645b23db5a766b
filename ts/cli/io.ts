/** Streaming output with backpressure, and the progress bar. */
import { SingleBar, Presets } from 'cli-progress'
import type { Writable } from 'node:stream'

/** Bytes of text gathered before one write to the stream. */
const CHUNK = 64 * 1024

/**
 * Writes text to a stream in chunks of about 64 KiB, waiting for `drain` whenever the stream
 * is full, so that output never piles up in memory. A stream error (EPIPE when the reader
 * went away) rejects the next write.
 */
export class Sink {
  private parts: string[] = []
  private size = 0
  private error: Error | undefined

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
    if (!this.out.write(chunk)) {
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

  /** Throws the stream's error, if it had one (a method: it may have come during an await). */
  private throwIfFailed(): void {
    if (this.error !== undefined) throw this.error
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
