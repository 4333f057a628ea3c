/**
 * Making one strip's COG parts (docs/cloud.md, "The strip worker's thread"): read the strip's
 * records, build its tiles and stream each level's part create-once to the bucket.
 *
 * `buildStrip` runs this on a worker thread of its own by default, and on the calling thread when
 * `GEOTFR_STRIP_THREAD=0`. A function instance runs every request inside a `domain` (the functions
 * framework does), and loading `domain` installs an async hook that tracks the destruction of every
 * promise the process makes; the strip's reads and tiles make promises per record and per tile, so
 * on the request's thread the tracking and the framework's larger heap cost a strip worker ~10× the
 * garbage-collection time of the embedded `geotfr ingest-image`. A worker thread's isolate has
 * neither. Its storage client is its own (the same environment); the job's state stays with the
 * caller (ingest-strips.ts).
 */
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { GeotfrError, abortable, fromWireError, toWireError, type WireError } from '../errors.js';
import { option } from '../options.js';
import { writeWithDrain } from '../cog/spill.js';
import type { TileSink } from '../cog/tiles.js';
import { StripWriter, type StripResult } from '../cog/strips.js';
import { cogOptionsOf, fillStrip, type IngestLayout } from '../ingest/strips.js';
import { openBucket } from '../storage/open.js';
import { isPreconditionFailed, type BlobStore, type BlobWriter } from '../storage/port.js';
import { workerEntry } from '../export/spawn.js';

/** What a strip build needs: plain data, posted to the thread as it is. */
export interface StripBuild {
  bucket: string;
  layout: IngestLayout;
  /** The output's URI (its name goes into the COG options). */
  out: string;
  strip: number;
  /** Object keys of the strip's parts: levels 0…m, then the raw level m+1 when the finalizer needs it. */
  keys: string[];
}

export interface BuiltStrip extends StripResult {
  /** Parts this build published; 0 when an earlier delivery had published them all. */
  wrote: number;
  /** When the last tile was made (ms since the epoch, comparable across threads); the rest is the parts' commits. */
  builtAt: number;
}

/**
 * One part of a strip, streamed create-once to the bucket while the strip is made. A create-once
 * conflict means an earlier delivery wrote the same bytes; it may surface on a write (a resumable
 * upload refused) or only at commit, and either way the part counts as existing and the rest of its
 * bytes are dropped (the strip is still finished: its marker needs the tile sizes).
 */
class PartUpload implements TileSink {
  private existed = false;
  private constructor(
    private readonly w: BlobWriter,
    private readonly signal?: AbortSignal,
  ) {}

  static async open(store: BlobStore, key: string, signal?: AbortSignal): Promise<PartUpload> {
    return new PartUpload(await store.createWriter(key, { ifNotExists: true }), signal);
  }

  async append(chunk: Uint8Array): Promise<void> {
    if (this.existed) return;
    try {
      await writeWithDrain(this.w.stream, chunk, this.signal);
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
      this.existed = true;
    }
  }

  /** Publishes the part; false when an earlier delivery already had. */
  async commit(): Promise<boolean> {
    if (!this.existed)
      try {
        await this.w.commit();
        return true;
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
      }
    await this.w.abort();
    return false;
  }

  abort(): Promise<void> {
    return this.w.abort();
  }
}

/** Builds the strip on this thread. */
export async function buildStripHere(b: StripBuild, signal?: AbortSignal): Promise<BuiltStrip> {
  const store = await openBucket(b.bucket);
  const g = b.layout.geometry;
  const parts: PartUpload[] = [];
  let committed = false;
  try {
    for (const key of b.keys) parts.push(await PartUpload.open(store, key, signal));
    const w = StripWriter.create(cogOptionsOf(b.layout, b.out), g, b.strip, { level: (k) => parts[k]!, raw: parts[g.m + 1] });
    await fillStrip(b.layout, b.strip, w, signal);
    const res = await w.finish();
    const builtAt = performance.timeOrigin + performance.now();
    committed = true;
    // Every commit settles before the first failure is rethrown (no upload is left running).
    const settled = await Promise.allSettled(parts.map((p) => p.commit()));
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    const wrote = settled.filter((r) => r.status === 'fulfilled' && r.value).length;
    return { ...res, wrote, builtAt };
  } finally {
    if (!committed) await Promise.all(parts.map((p) => p.abort().catch(() => {})));
  }
}

/** Messages between `buildStrip` and its thread (strip-thread.ts). */
export type ToStripThread = { type: 'build'; build: StripBuild } | { type: 'abort'; reason: WireError };
export type FromStripThread = { type: 'done'; built: BuiltStrip } | { type: 'error'; error: WireError };

/** Threads that finished a build, waiting (unreferenced) for the next one. */
const idle: Worker[] = [];
let started = 0;

/** Strip threads started by this process so far, and those idle now. */
export function stripThreadStats(): { started: number; idle: number } {
  return { started, idle: idle.length };
}

function startThread(): Worker {
  started++;
  return new Worker(workerEntry('strip', new URL('./strip-thread.js', import.meta.url)), { env: SHARE_ENV, workerData: { role: 'geotfr-strip' } });
}

/**
 * Starts a strip thread now, to wait idle for the first strip: the strip worker's entry point calls
 * this at start-up (functions/index.ts), so the thread's isolate and modules load before a strip
 * arrives rather than inside its time. Does nothing when `GEOTFR_STRIP_THREAD=0` or one is idle.
 */
export function prestartStripThread(env: NodeJS.ProcessEnv = process.env): void {
  if (!option('stripThread', env) || idle.length) return;
  const w = startThread();
  w.unref();
  idle.push(w);
  parkIdle(w);
}

/** An idle thread that dies (it should not) just leaves the pool. */
function parkIdle(w: Worker): void {
  w.once('error', () => {});
  w.once('exit', () => {
    const i = idle.indexOf(w);
    if (i >= 0) idle.splice(i, 1);
  });
}

/**
 * Builds the strip on a worker thread (see the module comment), or here when
 * `GEOTFR_STRIP_THREAD=0`. An abort reaches the thread, whose build stops at its next record or
 * write (as on this thread); a thread that dies is an INTERNAL error, which Pub/Sub redelivers.
 */
export async function buildStrip(b: StripBuild, signal?: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<BuiltStrip> {
  if (!option('stripThread', env)) return buildStripHere(b, signal);
  signal?.throwIfAborted();
  const w = idle.pop() ?? startThread();
  w.removeAllListeners('exit').removeAllListeners('error');
  w.ref();
  let reusable = false;
  const onAbort = () => w.postMessage({ type: 'abort', reason: toWireError(signal?.reason) } satisfies ToStripThread);
  const result = new Promise<BuiltStrip>((resolve, reject) => {
    w.on('message', (m: FromStripThread) => {
      reusable = true;
      if (m.type === 'done') resolve(m.built);
      else reject(fromWireError(m.error));
    });
    w.once('error', (err) => reject(new GeotfrError('INTERNAL', `the strip thread failed: ${err.message}`, {}, { cause: err })));
    w.once('exit', (code) => reject(new GeotfrError('INTERNAL', `the strip thread exited with code ${code}`)));
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  w.postMessage({ type: 'build', build: b } satisfies ToStripThread);
  try {
    // An abort rejects at once; the thread, told to stop, settles its uploads and then ends.
    return await abortable(result, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (reusable && !signal?.aborted) {
      w.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
      w.unref();
      idle.push(w);
      parkIdle(w);
    } else {
      w.unref();
      void result.catch(() => {}).finally(() => w.terminate());
    }
  }
}
