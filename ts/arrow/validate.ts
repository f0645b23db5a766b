/**
 * Checks an Arrow IPC file's flatbuffer metadata before apache-arrow decodes it.
 *
 * flatbuffers-js does no bounds checks, and apache-arrow decodes every vector it is given: a
 * damaged length (one byte of a 10 KB file) made it build 1.6 billion FieldNodes until V8
 * aborted, or loop for hours over custom metadata, deaf to signals (the CLI's handlers only
 * run between its steps). So every vector length apache-arrow will walk (fields and their
 * children, custom metadata, features, blocks, nodes, buffers) is checked here against the
 * bytes of the flatbuffer that holds it, through apache-arrow's own generated accessors
 * (`apache-arrow/fb/*`), and a length that cannot fit is EFORMAT naming the file.
 */
import type { FileHandle } from 'node:fs/promises'
import { createRequire } from 'node:module'
import type * as Fb from 'flatbuffers'
import type { Block } from 'apache-arrow/fb/block'
import type { DictionaryBatch } from 'apache-arrow/fb/dictionary-batch'
import type { Field } from 'apache-arrow/fb/field'
import type { Footer } from 'apache-arrow/fb/footer'
import type { Message } from 'apache-arrow/fb/message'
import type { RecordBatch } from 'apache-arrow/fb/record-batch'
import type { Schema } from 'apache-arrow/fb/schema'
import { MmapVecError } from '../errors.js'

/** The generated flatbuffer classes apache-arrow reads IPC metadata with, and its flatbuffers. */
interface FbModules {
  ByteBuffer: typeof Fb.ByteBuffer
  Footer: typeof Footer
  Message: typeof Message
  Field: typeof Field
  RecordBatch: typeof RecordBatch
  Schema: typeof Schema
  Block: typeof Block
  DictionaryBatch: typeof DictionaryBatch
}

let fbCache: FbModules | undefined

/** Loads apache-arrow's generated flatbuffer classes (and the flatbuffers package it uses). */
function fb(): FbModules {
  if (fbCache !== undefined) return fbCache
  // From apache-arrow's own place: flatbuffers is its dependency, not mmapvec's.
  const req = createRequire(require.resolve('apache-arrow'))
  /* eslint-disable @typescript-eslint/no-require-imports */
  fbCache = {
    ByteBuffer: (req('flatbuffers') as typeof Fb).ByteBuffer,
    Footer: (require('apache-arrow/fb/footer') as { Footer: typeof Footer }).Footer,
    Message: (require('apache-arrow/fb/message') as { Message: typeof Message }).Message,
    Field: (require('apache-arrow/fb/field') as { Field: typeof Field }).Field,
    RecordBatch: (require('apache-arrow/fb/record-batch') as { RecordBatch: typeof RecordBatch }).RecordBatch,
    Schema: (require('apache-arrow/fb/schema') as { Schema: typeof Schema }).Schema,
    Block: (require('apache-arrow/fb/block') as { Block: typeof Block }).Block,
    DictionaryBatch: (require('apache-arrow/fb/dictionary-batch') as { DictionaryBatch: typeof DictionaryBatch }).DictionaryBatch,
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  return fbCache
}

/** Message header types (Message.fbs). */
const HEADER = { schema: 1, dictionaryBatch: 2, recordBatch: 3 } as const
const MAGIC = Buffer.from('ARROW1', 'latin1')

/** Checks the flatbuffer vectors of one piece of metadata (`bytes` long, `what` names it). */
class Checker {
  constructor(
    private readonly file: string,
    private readonly what: string,
    private readonly bytes: number,
  ) {}

  damaged(detail: string): MmapVecError {
    return new MmapVecError('EFORMAT', `${this.file}: damaged Arrow IPC file: ${this.what} ${detail}; the file cannot be read, write it again or use a sound copy`, this.file)
  }

  /** A vector of `n` elements of `size` bytes must fit in the metadata that holds it. */
  vector(n: number, size: number, name: string): number {
    if (!Number.isInteger(n) || n < 0 || n * size > this.bytes) throw this.damaged(`claims ${n} ${name}, more than its ${this.bytes} bytes can hold`)
    return n
  }

  /** A schema: its fields and their children (walked without recursion: offsets can loop), metadata, features. */
  schema(s: Schema | null): void {
    if (s === null) return
    const { Field } = fb()
    this.vector(s.customMetadataLength(), 4, 'custom metadata entries')
    this.vector(s.featuresLength(), 8, 'features')
    const todo: Field[] = []
    for (let i = 0, n = this.vector(s.fieldsLength(), 4, 'fields'); i < n; i++) todo.push(s.fields(i, new Field()) ?? new Field())
    // Each field is a table of at least 4 bytes: more than fit are offsets that loop.
    let budget = this.bytes / 4
    for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
      if (--budget < 0) throw this.damaged('has fields that refer to each other in a loop')
      if (f.bb === null) continue
      this.vector(f.customMetadataLength(), 4, 'custom metadata entries of a field')
      for (let i = 0, n = this.vector(f.childrenLength(), 4, 'children of a field'); i < n; i++) {
        const child = f.children(i, new Field())
        if (child !== null) todo.push(child)
      }
    }
  }

  /** A record batch's nodes (16 bytes each), buffers (16) and variadic counts (8). */
  recordBatch(b: RecordBatch | null): void {
    if (b === null) return
    this.vector(b.nodesLength(), 16, 'field nodes')
    this.vector(b.buffersLength(), 16, 'buffers')
    this.vector(b.variadicBufferCountsLength(), 8, 'variadic buffer counts')
  }

  /** One message's header, as apache-arrow decodes it; returns its body length. */
  message(m: Message): bigint {
    const { DictionaryBatch, RecordBatch, Schema } = fb()
    this.vector(m.customMetadataLength(), 4, 'custom metadata entries')
    const type: number = m.headerType()
    if (type === HEADER.schema) this.schema(m.header(new Schema()) as Schema | null)
    else if (type === HEADER.recordBatch) this.recordBatch(m.header(new RecordBatch()) as RecordBatch | null)
    else if (type === HEADER.dictionaryBatch) {
      const d = m.header(new DictionaryBatch()) as DictionaryBatch | null
      this.recordBatch(d?.data(new RecordBatch()) ?? null)
    }
    return m.bodyLength()
  }
}

/** Reads `n` bytes at `position`; fewer at the end of the file. */
async function readAt(fh: FileHandle, n: number, position: number): Promise<Buffer> {
  const b = Buffer.alloc(n)
  const { bytesRead } = await fh.read(b, 0, n, position)
  return b.subarray(0, bytesRead)
}

/**
 * Checks the encapsulated message at `at` (0xFFFFFFFF, its metadata's length, the metadata;
 * files from before Arrow 0.15 have no 0xFFFFFFFF). Returns where the next message starts, or
 * undefined at the end-of-stream marker or the end of the file.
 */
async function checkMessageAt(fh: FileHandle, file: string, size: number, at: number, what: string): Promise<number | undefined> {
  const prefix = await readAt(fh, 8, at)
  if (prefix.length < 4) return undefined
  const skip = prefix.readInt32LE(0) === -1 ? 4 : 0
  if (prefix.length < skip + 4) return undefined
  const length = prefix.readInt32LE(skip)
  if (length === 0) return undefined
  const start = at + skip + 4
  const c = new Checker(file, what, length)
  if (length < 0 || start + length > size) throw c.damaged(`claims ${length} bytes of metadata, past the end of the file (${size} bytes)`)
  const { ByteBuffer, Message } = fb()
  const body = c.message(Message.getRootAsMessage(new ByteBuffer(await readAt(fh, length, start))))
  const next = BigInt(start + length) + body
  if (body < 0n || next > BigInt(size)) throw c.damaged(`claims a body of ${body} bytes, past the end of the file (${size} bytes)`)
  return Number(next)
}

/**
 * Checks the metadata of the Arrow IPC file (or stream) open as `fh`, a regular file of `size`
 * bytes, before apache-arrow reads it: the file format's footer (schema and blocks) and every
 * message a block points to; a stream's messages one after another. Throws EFORMAT naming
 * `file` for a vector length that cannot fit; anything else is left to apache-arrow's reader.
 */
export async function checkIPCMetadata(fh: FileHandle, file: string, size: number): Promise<void> {
  const head = await readAt(fh, MAGIC.length, 0)
  if (!head.equals(MAGIC)) {
    // The stream format: messages up to the end-of-stream marker.
    for (let at: number | undefined = 0, i = 0; at !== undefined; i++) at = await checkMessageAt(fh, file, size, at, `message ${i}`)
    return
  }
  const tail = await readAt(fh, 10, size - 10)
  if (size < 18 || tail.length < 10 || !tail.subarray(4).equals(MAGIC)) return // not a whole file: apache-arrow says so
  const length = tail.readInt32LE(0)
  const footer = new Checker(file, 'its footer', length)
  if (length <= 0 || length > size - 18) throw footer.damaged(`claims ${length} bytes, more than the file holds`)
  const { Block, ByteBuffer, Footer } = fb()
  const f = Footer.getRootAsFooter(new ByteBuffer(await readAt(fh, length, size - 10 - length)))
  footer.vector(f.customMetadataLength(), 4, 'custom metadata entries')
  footer.schema(f.schema())
  const blocks = [
    ...Array.from({ length: footer.vector(f.dictionariesLength(), 24, 'dictionary blocks') }, (_, i) => ({ block: f.dictionaries(i, new Block()), what: `dictionary batch ${i}` })),
    ...Array.from({ length: footer.vector(f.recordBatchesLength(), 24, 'record batch blocks') }, (_, i) => ({ block: f.recordBatches(i, new Block()), what: `record batch ${i}` })),
  ]
  for (const { block, what } of blocks) {
    if (block === null) continue
    const offset = block.offset()
    if (offset < 0n || offset >= BigInt(size)) throw footer.damaged(`puts ${what} at byte ${offset}, outside the file (${size} bytes)`)
    // Its metadata is read into a buffer of this length (countRows): it must be in the file.
    const meta = block.metaDataLength()
    if (meta < 0 || offset + BigInt(meta) > BigInt(size)) throw footer.damaged(`gives ${what} ${meta} bytes of metadata, past the end of the file (${size} bytes)`)
    await checkMessageAt(fh, file, size, Number(offset), what)
  }
}
