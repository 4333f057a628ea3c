/**
 * TFRecord files: streaming writers and readers over the framing of framing.ts.
 *
 * Writers stream into any Node Writable (optionally through gzip, one stream, zlib level 6 by default,
 * docs/semantics.md §5). Readers are async iterators over a byte stream that detect gzip by its magic bytes, accept
 * concatenated gzip members, verify both CRCs, and report corruption with file, record and offset.
 */
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { floatAlignmentShift } from './example.js';
import {
  framedSize,
  headerCrc,
  headerLength,
  RECORD_FOOTER_BYTES,
  RECORD_HEADER_BYTES,
  recordFooter,
  recordHeader,
  storedFooterCrc,
  storedHeaderCrc,
} from './framing.js';
import { maskedCrc32c } from './crc32c.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { limit, limitError } from '../limits.js';

// Re-exported so that imports of the framing helpers from record.js keep working.
export { framedSize, frameRecords, recordFooter, recordHeader, RECORD_OVERHEAD_BYTES } from './framing.js';

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

export interface RecordWriterOptions {
  /** gzip the whole stream (docs/semantics.md §5). */
  compressed?: boolean;
  /** zlib level 1–9 (default 6, TensorFlow's). */
  compressionLevel?: number;
}

/**
 * Streams framed records into `sink`, through gzip when asked. Honours backpressure: `await write()`.
 * `close()` flushes gzip and ends the sink, resolving once the sink has finished.
 */
export class RecordWriter {
  private readonly out: Writable;
  private readonly gzip?: zlib.Gzip;
  /** Uncompressed framed bytes written so far (what `maxFileSize` bounds, docs/semantics.md §5). */
  bytesFramed = 0;
  records = 0;

  constructor(
    private readonly sink: Writable,
    opts: RecordWriterOptions = {},
  ) {
    if (opts.compressed) {
      this.gzip = zlib.createGzip({ level: opts.compressionLevel ?? 6, chunkSize: 1 << 20 });
      this.gzip.pipe(sink);
      this.out = this.gzip;
    } else {
      this.out = sink;
    }
  }

  async write(payload: Uint8Array): Promise<void> {
    const header = recordHeader(payload.length);
    const footer = recordFooter(payload);
    let ok = this.out.write(header);
    ok = this.out.write(payload) && ok;
    ok = this.out.write(footer) && ok;
    this.bytesFramed += framedSize(payload.length);
    this.records++;
    if (!ok) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    const finished = new Promise<void>((resolve, reject) => {
      this.sink.once('finish', resolve);
      this.sink.once('close', resolve);
      this.sink.once('error', reject);
      this.gzip?.once('error', reject);
    });
    this.out.end();
    await finished;
  }
}

/** Gzip a whole framed buffer in one go (synchronous; for small outputs and tests). */
export function gzipSync(data: Uint8Array, level = 6): Buffer {
  return zlib.gzipSync(data, { level });
}

export interface TFRecord {
  /** The record's payload (usually a serialized tf.train.Example). */
  data: Uint8Array;
  /** 0-based index within the file. */
  index: number;
  /** Offset of the record's header in the (uncompressed) stream. */
  offset: number;
}

export interface ReadRecordsOptions {
  /** Name used in error messages. */
  file?: string;
  /** Verify length and data CRCs (default true). */
  verify?: boolean;
  /**
   * Refuse records larger than this, at their header, before buffering them (default: the
   * maxRecordBytes limit, docs/limits.md): a corrupt or hostile length must not exhaust memory.
   */
  maxRecordBytes?: number;
  /**
   * Why `maxRecordBytes` is what it is, when the caller knows the exact bound (ingest: the largest
   * record the mixer's patch allows); the error is then BAD_INPUT saying so instead of LIMIT.
   */
  maxRecordBytesReason?: string;
  /** Called with the number of input bytes consumed so far (compressed bytes for gzip). */
  onProgress?: (bytesIn: number) => void;
  /** Stops reading (throws the signal's reason, or a CANCELLED error) between chunks. */
  signal?: AbortSignal;
  /**
   * A record's `data` is only valid until the next one is asked for: records that span input
   * chunks are assembled in one reused buffer instead of a new one each (for consumers that copy
   * the values out at once, such as ingest; saves a multi-MiB allocation per large record).
   */
  reuseBuffer?: boolean;
}

/** Queue of byte chunks with exact-size takes, copying only when a take spans chunks. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // read position in chunks[0]
  length = 0;
  /** With `reuse`, takes that span chunks are assembled here (see ReadRecordsOptions.reuseBuffer). */
  private scratch: Buffer | undefined;
  constructor(private readonly reuse = false) {}

  push(c: Uint8Array): void {
    if (c.length === 0) return;
    this.chunks.push(c);
    this.length += c.length;
  }

  take(n: number): Uint8Array {
    const first = this.chunks[0];
    if (first && first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      this.length -= n;
      return out;
    }
    // Uninitialised (every byte is filled below): zero-filling a multi-megabyte record is pure cost.
    // Three spare bytes let the payload be shifted so its float lists decode as aligned views.
    if (this.reuse && !(this.scratch && this.scratch.length >= n + 3)) this.scratch = Buffer.allocUnsafeSlow(n + 3);
    const host = this.reuse ? this.scratch! : Buffer.allocUnsafeSlow(n + 3);
    const out = host.subarray(0, n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0];
      const avail = c.length - this.head;
      const k = Math.min(avail, n - filled);
      out.set(c.subarray(this.head, this.head + k), filled);
      filled += k;
      this.head += k;
      if (this.head === c.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    const shift = n >= ALIGN_MIN_BYTES ? floatAlignmentShift(out) : 0;
    if (!shift) return out;
    host.copyWithin(shift, 0, n); // memmove within memory just written: cheap next to the copy itself
    return host.subarray(shift, shift + n);
  }
}

/** Records smaller than this are not worth realigning. */
const ALIGN_MIN_BYTES = 4096;

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Opens a local file as a byte stream with large reads (1 MiB). */
export function fileSource(path: string): Readable {
  return createReadStream(path, { highWaterMark: 1 << 20 });
}

/**
 * Reads TFRecords from a byte stream (plain or gzip, detected from the first two bytes).
 * Yields records in order; throws a GeotfrError (`BAD_INPUT`) naming file, record and offset on
 * corruption or truncation. Never skips silently.
 */
export async function* readRecords(source: ByteSource, opts: ReadRecordsOptions = {}): AsyncGenerator<TFRecord> {
  const file = opts.file;
  const verify = opts.verify ?? true;
  const maxRecordBytes = limit('maxRecordBytes', opts.maxRecordBytes);
  const iter = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]
    ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
    : toAsync((source as Iterable<Uint8Array>)[Symbol.iterator]());

  // Peek the first bytes to detect gzip.
  let first: IteratorResult<Uint8Array>;
  do first = await nextChunk(iter, file);
  while (!first.done && first.value.length === 0);
  if (first.done) return; // empty file: zero records
  let head = first.value;
  if (head.length < 2) {
    const second = await nextChunk(iter, file);
    if (!second.done) head = Buffer.concat([head, second.value]);
  }
  const isGzip = head.length >= 2 && head[0] === GZIP_MAGIC_0 && head[1] === GZIP_MAGIC_1;

  let bytesIn = 0;
  const rest: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: async function* () {
      bytesIn += head.length;
      opts.onProgress?.(bytesIn);
      yield head;
      for (;;) {
        const r = await nextChunk(iter, file);
        if (r.done) return;
        bytesIn += r.value.length;
        opts.onProgress?.(bytesIn);
        yield r.value;
      }
    },
  };
  const stream: AsyncIterable<Uint8Array> = isGzip ? gunzipStream(rest) : rest;
  yield* parseFramedStream(stream, {
    file,
    verify,
    maxRecordBytes,
    maxRecordBytesReason: opts.maxRecordBytesReason,
    compressed: isGzip,
    signal: opts.signal,
    reuseBuffer: opts.reuseBuffer ?? false,
  });
}

async function nextChunk(iter: AsyncIterator<Uint8Array>, file?: string): Promise<IteratorResult<Uint8Array>> {
  try {
    return await iter.next();
  } catch (err) {
    throw asGeotfrError(err, { file });
  }
}

async function* toAsync<T>(it: Iterator<T>): AsyncGenerator<T> {
  for (let r = it.next(); !r.done; r = it.next()) yield r.value;
}

async function* gunzipStream(input: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  // Node's gunzip continues through concatenated members (and rejects trailing garbage); output is
  // pulled, so a gzip bomb is decompressed only as fast as records are consumed (bounded memory).
  // Errors are passed on raw: parseFramedStream knows the record and offset to name.
  const gunzip = zlib.createGunzip({ chunkSize: 1 << 20 });
  const src = Readable.from(input, { objectMode: false });
  src.on('error', (e) => gunzip.destroy(e));
  src.pipe(gunzip);
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } finally {
    src.destroy();
    gunzip.destroy();
  }
}

async function* parseFramedStream(
  stream: AsyncIterable<Uint8Array>,
  o: { file?: string; verify: boolean; maxRecordBytes: number; maxRecordBytesReason?: string; compressed: boolean; signal?: AbortSignal; reuseBuffer: boolean },
): AsyncGenerator<TFRecord> {
  const q = new ByteQueue(o.reuseBuffer);
  let offset = 0;
  let index = 0;
  const where = o.compressed ? 'uncompressed ' : '';
  const it = stream[Symbol.asyncIterator]();
  let ended = false;
  const fill = async (n: number): Promise<boolean> => {
    while (q.length < n && !ended) {
      if (o.signal?.aborted) throw cancelled(o.signal, o.file);
      let r: IteratorResult<Uint8Array>;
      try {
        r = await it.next();
      } catch (err) {
        throw streamError(err, { file: o.file, record: index, offset }, offset + q.length);
      }
      if (r.done) ended = true;
      else q.push(r.value);
    }
    return q.length >= n;
  };
  const fail = (msg: string, at: number): never => {
    throw new GeotfrError('BAD_INPUT', msg, { file: o.file, record: index, offset: at });
  };

  for (;;) {
    if (!(await fill(RECORD_HEADER_BYTES))) {
      if (q.length === 0) return;
      fail(`truncated record header: ${q.length} of 12 bytes at ${where}offset ${offset}`, offset);
    }
    const header = q.take(RECORD_HEADER_BYTES);
    if (o.verify) {
      const expect = storedHeaderCrc(header, 0);
      const actual = headerCrc(header, 0);
      if (expect !== actual) fail(`length CRC mismatch (stored 0x${hex(expect)}, computed 0x${hex(actual)}): corrupt length or not a TFRecord file`, offset);
    }
    const length = headerLength(header, 0);
    if (length > o.maxRecordBytes) {
      const ctx = { file: o.file, record: index, offset };
      if (o.maxRecordBytesReason) fail(`record length ${length} bytes is longer than ${o.maxRecordBytesReason} (${o.maxRecordBytes} bytes)`, offset);
      throw limitError('maxRecordBytes', o.maxRecordBytes, `record length ${length} bytes`, ctx);
    }
    if (!(await fill(length + RECORD_FOOTER_BYTES))) {
      fail(`truncated record: header says ${length} bytes of data + 4 CRC bytes, only ${q.length} remain`, offset);
    }
    const data = q.take(length);
    const footer = q.take(RECORD_FOOTER_BYTES);
    if (o.verify) {
      const expect = storedFooterCrc(footer, 0, 0);
      const actual = maskedCrc32c(data);
      if (expect !== actual) fail(`data CRC mismatch (stored 0x${hex(expect)}, computed 0x${hex(actual)}) in ${length}-byte record`, offset);
    }
    yield { data, index, offset };
    offset += framedSize(length);
    index++;
  }
}

const hex = (n: number) => n.toString(16).padStart(8, '0');

function cancelled(signal: AbortSignal, file?: string): GeotfrError {
  return signal.reason instanceof GeotfrError ? signal.reason : new GeotfrError('CANCELLED', 'reading stopped', { file });
}

/**
 * Names the record being read when the byte stream fails: a corrupt or truncated gzip stream is
 * BAD_INPUT at that record; read errors of the source keep their own code (IO is retryable).
 */
function streamError(err: unknown, ctx: { file?: string; record: number; offset: number }, uncompressedPos: number): GeotfrError {
  const z = err as NodeJS.ErrnoException;
  if (z && typeof z.code === 'string' && z.code.startsWith('Z_')) {
    return new GeotfrError('BAD_INPUT', `gzip stream is corrupt or truncated after ${uncompressedPos} uncompressed bytes (${z.message})`, ctx, { cause: err });
  }
  return asGeotfrError(err, ctx);
}

/** Reads all records of a local file (plain or gzip). */
export function readRecordFile(path: string, opts: Omit<ReadRecordsOptions, 'file'> = {}): AsyncGenerator<TFRecord> {
  return readRecords(fileSource(path), { ...opts, file: path });
}

/** Synchronous parse of an uncompressed in-memory buffer (tests, benchmarks). */
export function* parseRecordsSync(buf: Uint8Array, opts: { file?: string; verify?: boolean } = {}): Generator<TFRecord> {
  const verify = opts.verify ?? true;
  let offset = 0;
  let index = 0;
  const fail = (msg: string): never => {
    throw new GeotfrError('BAD_INPUT', msg, { file: opts.file, record: index, offset });
  };
  while (offset < buf.length) {
    if (buf.length - offset < RECORD_HEADER_BYTES) fail(`truncated record header: ${buf.length - offset} of 12 bytes`);
    const length = headerLength(buf, offset);
    if (verify && storedHeaderCrc(buf, offset) !== headerCrc(buf, offset)) fail('length CRC mismatch');
    const at = offset + RECORD_HEADER_BYTES;
    if (buf.length - at < length + RECORD_FOOTER_BYTES) fail(`truncated record: header says ${length} bytes of data + 4 CRC bytes`);
    const data = buf.subarray(at, at + length);
    if (verify && storedFooterCrc(buf, at, length) !== maskedCrc32c(data)) fail('data CRC mismatch');
    yield { data, index, offset };
    offset += framedSize(length);
    index++;
  }
}
