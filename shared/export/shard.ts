/**
 * Writing one shard (docs/semantics.md §5): its chunks in row-major order into one object, atomically through the
 * BlobStore (temporary name, then rename; GCS: visible only when complete), so a killed run never
 * leaves a torn shard and a redelivered task writes the same bytes again or finds the object done.
 */
import { once } from 'node:events';
import { PreconditionFailed, type BlobInfo, type BlobStore, type BlobWriter } from '../storage/port.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import type { ChunkResult } from './chunk.js';
import { inOrder, inProcessPool } from './pool.js';
import { GZIP_HEADER, GzipTrailer } from './gzipchunks.js';
import { shardChunks, type ExportPlan, type ImageSpecOpener } from './plan.js';

/** Receives a shard's chunks in order and publishes the object on commit. */
export class ShardSink {
  private next = 0;
  private readonly trailer = new GzipTrailer();
  private error: Error | undefined;

  private constructor(
    private readonly writer: BlobWriter,
    private readonly compressed: boolean,
    private readonly uri: string,
  ) {
    writer.stream.on('error', (err) => (this.error ??= err));
  }

  /** Opens the shard's pending object (nothing is visible under its name until `commit()`). */
  static async open(store: BlobStore, plan: ExportPlan, shardIndex: number, opts: { createOnly?: boolean } = {}): Promise<ShardSink> {
    const s = plan.shards[shardIndex];
    const writer = await store.createWriter(s.name, { ifNotExists: opts.createOnly, contentType: 'application/octet-stream' });
    const sink = new ShardSink(writer, plan.request.formatOptions.compressed, store.uri(s.name));
    if (sink.compressed) await sink.put(GZIP_HEADER);
    return sink;
  }

  private async put(buf: Uint8Array): Promise<void> {
    if (this.error) throw asGeotfrError(this.error, { file: this.uri });
    const ok = this.writer.stream.write(buf);
    if (!ok) {
      const ac = new AbortController();
      const failed = once(this.writer.stream, 'error', { signal: ac.signal }).then(([err]) => {
        throw asGeotfrError(err, { file: this.uri });
      });
      try {
        await Promise.race([once(this.writer.stream, 'drain', { signal: ac.signal }), failed]);
      } finally {
        ac.abort();
        failed.catch(() => {});
      }
    }
  }

  /** Appends the next chunk; chunks must arrive in `seq` order. */
  async write(chunk: ChunkResult): Promise<void> {
    if (chunk.seq !== this.next) throw new GeotfrError('INTERNAL', `shard chunk ${chunk.seq} arrived before chunk ${this.next}`, { file: this.uri });
    this.next++;
    if (this.compressed) this.trailer.add(chunk);
    if (chunk.data.length) await this.put(chunk.data);
  }

  private sealed = false;

  /**
   * Writes the gzip trailer and ends the stream without publishing: the finished temporary waits for
   * `commit()`, so an overwrite replaces the old shards only once every new one is complete.
   */
  async seal(): Promise<void> {
    if (this.sealed) return;
    this.sealed = true;
    if (this.compressed) await this.put(this.trailer.finish());
    const w = this.writer.stream;
    if (this.error) throw asGeotfrError(this.error, { file: this.uri });
    await new Promise<void>((resolve, reject) => {
      w.once('error', reject);
      w.end(() => resolve());
    });
  }

  async commit(): Promise<BlobInfo> {
    if (!this.sealed && this.compressed) await this.put(this.trailer.finish());
    this.sealed = true;
    return this.writer.commit();
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}

export interface WriteShardOptions {
  signal?: AbortSignal;
  /** Create-once: if the shard already exists, leave it and report `alreadyExisted` (Pub/Sub redelivery). */
  createOnly?: boolean;
  /** Called after each chunk with the patches written and uncompressed framed bytes. */
  onPatch?: (patches: number, bytes: number) => void;
  /** Image opener override (tests). */
  open?: ImageSpecOpener;
  /** Store override (default `openBucket(plan.request.bucket)`). */
  store?: BlobStore;
}

/**
 * Writes exactly one shard of `plan`, deterministically (same plan → same bytes) and atomically.
 * Used as is by cloud workers (one shard per message); the embedded runner produces the same bytes
 * with chunks computed on a thread pool.
 */
export async function writeShard(plan: ExportPlan, shardIndex: number, opts: WriteShardOptions = {}): Promise<{ info: BlobInfo; alreadyExisted: boolean }> {
  const tasks = shardChunks(plan, shardIndex);
  const store = opts.store ?? (await openBucket(plan.request.bucket));
  const name = plan.shards[shardIndex].name;
  if (opts.createOnly) {
    const existing = await store.stat(name);
    if (existing) return { info: existing, alreadyExisted: true };
  }
  // The embedded export's in-process pipeline: the next chunks' blocks inflate and earlier chunks
  // deflate on libuv's pool while this thread frames and writes.
  const pool = await inProcessPool(plan, opts.open, opts.signal);
  let sink: ShardSink | undefined;
  try {
    sink = await ShardSink.open(store, plan, shardIndex, { createOnly: opts.createOnly });
    for await (const chunk of inOrder(pool, tasks, opts.signal)) {
      await sink.write(chunk);
      opts.onPatch?.(chunk.patches, chunk.rawBytes);
    }
    opts.signal?.throwIfAborted();
    const s = sink;
    sink = undefined;
    try {
      return { info: await s.commit(), alreadyExisted: false };
    } catch (err) {
      if (err instanceof PreconditionFailed) {
        const existing = await store.stat(name);
        if (existing) return { info: existing, alreadyExisted: true };
      }
      throw err;
    }
  } catch (err) {
    await sink?.abort();
    throw cancelled(err, opts.signal);
  } finally {
    await pool.close();
  }
}

/** Maps an abort into a CANCELLED GeotfrError (the signal's reason when it is one). */
export function cancelled(err: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted) {
    const r = signal.reason;
    return r instanceof GeotfrError ? r : new GeotfrError('CANCELLED', 'export cancelled');
  }
  return err;
}
