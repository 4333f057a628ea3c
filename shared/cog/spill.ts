/**
 * Append-only byte buffers that keep their chunks in memory and spill the oldest to a temporary
 * file once the buffers sharing a pool exceed its budget, so a writer's memory stays bounded
 * whatever the output size (issue 4: "compressed tiles spill to a temporary file when large").
 * Each is read back once, in order.
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

/**
 * The memory the spill buffers of one writer share: when their chunks together exceed `limitBytes`,
 * the oldest chunks of the buffer holding the most in memory go to its temporary file, down to
 * `limitBytes - slack`, so only the overflow is written (not everything held, as a per-buffer limit
 * did: for a COG a little larger than the limit that was nearly every byte, written and read back).
 * One spill runs at a time; appends to any of the buffers wait for it.
 */
export class SpillPool {
  memBytes = 0;
  private readonly buffers = new Set<SpillBuffer>();
  private busy: Promise<void> = Promise.resolve();
  /** A failed spill: the bytes it took out of memory are lost, so every later use fails too. */
  private failed: unknown;
  /** What a spill frees beyond the overflow (fewer, larger writes): an eighth of the limit, at most 8 MiB. */
  private readonly slack: number;

  constructor(readonly limitBytes: number) {
    this.slack = Math.min(8 << 20, Math.floor(limitBytes / 8));
  }

  /** @internal */
  join(b: SpillBuffer): void {
    this.buffers.add(b);
  }

  /** @internal Spills until the pool is within its limit (serialized with other spills). */
  relieve(): Promise<void> {
    const run = this.busy.then(async () => {
      if (this.failed) throw this.failed;
      while (this.memBytes > this.limitBytes) {
        let most: SpillBuffer | undefined;
        for (const b of this.buffers) if (!most || b.memBytes > most.memBytes) most = b;
        if (!most || most.memBytes === 0) return;
        await most.spillOldest(this.memBytes - (this.limitBytes - this.slack));
      }
    });
    this.busy = run.catch((e) => {
      this.failed ??= e;
    });
    return run;
  }

  /** Resolves when no spill is running (before reading a buffer back); rejects if one failed. */
  async idle(): Promise<void> {
    await this.busy;
    if (this.failed) throw this.failed;
  }
}

/**
 * An append-only byte buffer in memory and, for its oldest bytes once its pool is over its limit, a
 * temporary file: the file holds a prefix of what was appended, memory the rest.
 */
export class SpillBuffer {
  private chunks: Uint8Array[] = [];
  /** Bytes of `chunks` (what this buffer holds in memory). */
  memBytes = 0;
  private fh: fs.FileHandle | undefined;
  /** Bytes written to the temporary file so far. */
  fileBytes = 0;
  private readonly pool: SpillPool;

  /**
   * `file` is created on the first spill. `limit` is the in-memory budget: bytes of this buffer
   * alone, or a pool shared with other buffers.
   */
  constructor(
    private readonly file: string,
    limit: number | SpillPool,
  ) {
    this.pool = typeof limit === 'number' ? new SpillPool(limit) : limit;
    this.pool.join(this);
  }

  async append(chunk: Uint8Array): Promise<void> {
    this.chunks.push(chunk);
    this.memBytes += chunk.length;
    this.pool.memBytes += chunk.length;
    if (this.pool.memBytes > this.pool.limitBytes) await this.pool.relieve();
  }

  /** @internal Writes at least `want` bytes of the oldest chunks (or all) to the file (the pool serializes calls). */
  async spillOldest(want: number): Promise<void> {
    let n = 0;
    let bytes = 0;
    while (n < this.chunks.length && bytes < want) bytes += this.chunks[n++].length;
    const pending0 = this.chunks.splice(0, n);
    this.memBytes -= bytes;
    this.pool.memBytes -= bytes;
    if (!this.fh) {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      this.fh = await fs.open(this.file, 'w+');
    }
    // writev may write partially; loop until every chunk is on disk.
    let pending = pending0;
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
    await this.pool.idle(); // a spill in progress has taken its chunks out of memory already
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
    await this.pool.idle().catch(() => {});
    this.pool.memBytes -= this.memBytes;
    this.chunks = [];
    this.memBytes = 0;
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close().catch(() => {});
    await fs.rm(this.file, { force: true }).catch(() => {});
  }
}
