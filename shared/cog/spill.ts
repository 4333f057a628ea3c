/**
 * An append-only byte buffer that keeps recent chunks in memory and spills them to a temporary file
 * once they exceed a budget, so a writer's memory stays bounded whatever the output size
 * (issue 4: "compressed tiles spill to a temporary file when large"). Read back once, in order.
 */
import { promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';

/**
 * Writes `b` to `out`, waiting for 'drain' when its buffer is full (backpressure); checks `signal`
 * first. A stream that has already failed (an upload refused mid-way destroys it) throws its error:
 * a write to it returns false, and waiting for a 'drain' that never comes would hang.
 */
export async function writeWithDrain(out: Writable, b: Uint8Array, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (out.errored) throw out.errored;
  if (out.destroyed) throw new Error('write to a destroyed stream');
  if (!out.write(b)) await once(out, 'drain', { signal });
}

export class SpillBuffer {
  private chunks: Uint8Array[] = [];
  private memBytes = 0;
  private fh: fs.FileHandle | undefined;
  private fileBytes = 0;

  /** `file` is created on the first spill; `limitBytes` is the in-memory budget. */
  constructor(
    private readonly file: string,
    private readonly limitBytes: number,
  ) {}

  async append(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk);
    this.memBytes += chunk.length;
    if (this.memBytes > this.limitBytes) await this.spill();
  }

  private async spill(): Promise<void> {
    if (!this.fh) {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      this.fh = await fs.open(this.file, 'w+');
    }
    const chunks = this.chunks;
    this.chunks = [];
    this.memBytes = 0;
    // writev may write partially; loop until every chunk is on disk.
    let pending = chunks;
    while (pending.length) {
      const want = pending.reduce((n, c) => n + c.length, 0);
      const { bytesWritten } = await this.fh.writev(pending, this.fileBytes);
      this.fileBytes += bytesWritten;
      if (bytesWritten === want) break;
      let skip = bytesWritten;
      const rest: Uint8Array[] = [];
      for (const c of pending) {
        if (skip >= c.length) skip -= c.length;
        else {
          rest.push(skip ? c.subarray(skip) : c);
          skip = 0;
        }
      }
      pending = rest;
    }
  }

  /** Writes everything appended, in order, to `out` (honouring backpressure); does not end `out`. */
  async pipeTo(out: Writable, signal?: AbortSignal): Promise<void> {
    if (this.fh) {
      for (let pos = 0; pos < this.fileBytes; ) {
        // A fresh buffer per read: `out` may hold on to it after write() returns, and reading into
        // one reused buffer meant copying every chunk out of it (the whole spill once more).
        const buf = Buffer.allocUnsafe(Math.min(1 << 20, this.fileBytes - pos));
        const { bytesRead } = await this.fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw new Error(`temporary file ${this.file} is shorter than written`);
        await writeWithDrain(out, bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), signal);
        pos += bytesRead;
      }
    }
    for (const c of this.chunks) await writeWithDrain(out, c, signal);
  }

  /** Closes and deletes the temporary file (idempotent). */
  async dispose(): Promise<void> {
    this.chunks = [];
    this.memBytes = 0;
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close().catch(() => {});
    await fs.rm(this.file, { force: true }).catch(() => {});
  }
}
