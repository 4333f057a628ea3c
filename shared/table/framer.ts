/**
 * Frames many small records straight into ~1 MiB buffers and hands each full buffer to a stream
 * (gzip) with backpressure.
 *
 * Why not `RecordWriter`: it writes three small buffers per record, and a table record is ~200 bytes;
 * every write into a zlib stream is a thread-pool round trip, which made table export ~15× slower
 * than this. The framing is tfrecord/framing.ts's, the same as `RecordWriter`'s.
 * Tests read the output with `readRecords` and TensorFlow.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { framedSize, RECORD_HEADER_BYTES, writeRecordFooter, writeRecordHeader } from '../tfrecord/framing.js';

export class RecordBatcher {
  private buf: Buffer;
  private pos = 0;
  /** Uncompressed framed bytes so far. */
  bytesFramed = 0;

  constructor(
    private readonly out: Writable,
    private readonly batchBytes = 1 << 20,
  ) {
    this.buf = Buffer.allocUnsafe(batchBytes);
  }

  /**
   * Appends one record of `length` bytes, written by `fill(buf, offset)`. Returns a promise only when
   * the downstream asked to wait (await it), so the common path costs no microtask.
   */
  add(length: number, fill: (buf: Buffer, offset: number) => void): Promise<void> | undefined {
    const framed = framedSize(length);
    let wait: Promise<void> | undefined;
    if (this.pos + framed > this.buf.length) {
      wait = this.flush();
      if (framed > this.buf.length) this.buf = Buffer.allocUnsafe(framed);
    }
    const b = this.buf;
    const o = this.pos;
    writeRecordHeader(b, o, length);
    fill(b, o + RECORD_HEADER_BYTES);
    writeRecordFooter(b, o + RECORD_HEADER_BYTES, length);
    this.pos = o + framed;
    this.bytesFramed += framed;
    return wait;
  }

  /** Sends the filled part downstream and starts a new buffer (the old one now belongs to the stream). */
  private flush(): Promise<void> | undefined {
    if (!this.pos) return undefined;
    const ok = this.out.write(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(this.batchBytes);
    this.pos = 0;
    return ok ? undefined : once(this.out, 'drain').then(() => undefined);
  }

  /** Flushes and ends the downstream stream. */
  async end(): Promise<void> {
    await this.flush();
    this.out.end();
  }
}
