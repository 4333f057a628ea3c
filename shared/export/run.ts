/**
 * The embedded runner: planner → chunk tasks on a `worker_threads` pool → ordered shard writers →
 * finalizer. Chunks are computed in parallel (read, encode, deflate) and written in plan order, so
 * the bytes equal `writeShard()`'s whatever the worker count. A failed or cancelled run removes what
 * it wrote: no shard, no mixer, no manifest.
 */
import { availableParallelism } from 'node:os';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { LocalBlobStore, openBucket, type BlobStore } from '../blobstore.js';
import { GeotfrError, abortable, asGeotfrError, fromWireError as fromWire, toWireError as toWire } from '../errors.js';
import { Progress } from '../progress.js';
import { ChunkProducer, type ChunkResult } from './chunk.js';
import { finalizeExport } from './finalize.js';
import { planImageExport, shardChunks, type ChunkTask, type ExportPlan, type ImageSpecOpener } from './plan.js';
import { ShardSink, cancelled } from './shard.js';
import type { FromWorker, ToWorker } from './worker.js';

export interface RunOptions {
  /** Worker threads (default: the core count); 0 computes chunks on the calling thread. */
  workers?: number;
  signal?: AbortSignal;
  /** Progress on stderr (patches, MB/s, ETA). */
  progress?: boolean;
  /** Image opener override (tests with in-memory sources; forces workers = 0). */
  open?: ImageSpecOpener;
  /** Clock for `{date}` in fileNamePrefix. */
  now?: Date;
}

export interface ExportSummary {
  /** Shards written. */
  files: number;
  /** Patches written (excluding those dropped by maskedThreshold). */
  patches: number;
  skippedPatches: number;
  /** Bytes of the shards as stored (compressed when compressed). */
  bytes: number;
  /** Uncompressed framed bytes. */
  bytesFramed: number;
  seconds: number;
  /** URI of the mixer, or null when none is written (maskedThreshold ≠ 1). */
  mixer: string | null;
  shards: string[];
  manifest: string;
}

/** Computes chunks: in-process, or on a pool of worker threads. */
interface ChunkPool {
  /** Resolves with the chunk's result; rejects with the task's error. */
  run(task: ChunkTask): Promise<ChunkResult>;
  /** How many tasks to keep in flight. */
  readonly depth: number;
  close(): Promise<void>;
}

async function inProcessPool(plan: ExportPlan, open: ImageSpecOpener | undefined, signal?: AbortSignal): Promise<ChunkPool> {
  const producer = await ChunkProducer.open(plan, { open, signal });
  return { run: (t) => producer.produce(t, signal), depth: 1, close: () => producer.close() };
}

/** A worker thread started ahead of the plan (it loads its modules while the main thread plans). */
interface Spawned {
  w: Worker;
  /** Rejects if the worker errors or exits before the pool attaches its own listeners. */
  failed: Promise<never>;
}

function spawnWorkers(n: number): Spawned[] {
  const url = new URL('./worker.js', import.meta.url);
  return Array.from({ length: n }, () => {
    // workerData must be an object: geotiff's `web-worker` dependency destructures it in any worker thread.
    const w = new Worker(url, { workerData: { role: 'geotfr-export' } });
    const failed = new Promise<never>((_, reject) => {
      w.once('error', reject);
      w.once('exit', (code) => reject(new GeotfrError('INTERNAL', `export worker exited with code ${code}`)));
    });
    failed.catch(() => {});
    return { w, failed };
  });
}

async function terminateSpawned(spawned: Spawned[]): Promise<void> {
  await Promise.all(
    spawned.map(async ({ w }) => {
      w.removeAllListeners('exit');
      await w.terminate().catch(() => {});
    }),
  );
}

/**
 * The image opened once more on this thread with its decoded blocks in shared memory: workers ask
 * for blocks by file and position (worker.ts) and every block decodes once for all of them.
 */
interface BlockServer {
  /** Answers a worker's block request (the block, or the error decoding it). */
  serve(w: Worker, m: Extract<FromWorker, { type: 'block' }>): void;
  close(): Promise<void>;
}

async function blockServer(plan: ExportPlan, signal?: AbortSignal): Promise<BlockServer> {
  const { openImage } = await import('../raster/open.js');
  const src = await openImage(plan.request.image, { signal, sharedBlocks: true });
  const files = new Map(src.files.map((f) => [f.uri, f]));
  return {
    serve(w, m) {
      const reply = (r: Omit<Extract<ToWorker, { type: 'block' }>, 'type' | 'id'>) => w.postMessage({ type: 'block', id: m.id, ...r } satisfies ToWorker);
      const file = files.get(m.uri);
      if (!file) return reply({ error: toWire(new GeotfrError('INTERNAL', `a worker asked for a block of ${m.uri}, which is not in the export`)) });
      file.sharedBlock(m.bx, m.by, m.plane).then(
        (buffer) => reply({ buffer }),
        (err) => reply({ error: toWire(err) }),
      );
    },
    close: () => src.close(),
  };
}

async function threadPool(plan: ExportPlan, spawned: Spawned[], signal?: AbortSignal): Promise<ChunkPool> {
  const n = spawned.length;
  const workers: { w: Worker; load: number; pending: Map<number, { resolve: (r: ChunkResult) => void; reject: (e: unknown) => void }> }[] = [];
  let nextId = 0;
  let fatal: unknown;
  const ready: Promise<void>[] = [];
  let blocks: BlockServer;
  try {
    blocks = await blockServer(plan, signal);
  } catch (err) {
    await terminateSpawned(spawned);
    throw err;
  }
  for (let i = 0; i < n; i++) {
    const w = spawned[i].w;
    const slot = { w, load: 0, pending: new Map<number, { resolve: (r: ChunkResult) => void; reject: (e: unknown) => void }>() };
    workers.push(slot);
    const failAll = (err: unknown) => {
      fatal ??= err;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    ready.push(
      Promise.race([spawned[i].failed, new Promise<void>((resolve, reject) => {
        w.on('message', (m: FromWorker) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'result') {
            const p = slot.pending.get(m.id);
            slot.pending.delete(m.id);
            slot.load--;
            const d = m.result.data as Uint8Array;
            p?.resolve({ ...m.result, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength) });
          } else if (m.type === 'block') {
            blocks.serve(w, m);
          } else if (m.type === 'error') {
            const err = fromWire(m.error);
            if (m.id === undefined) {
              reject(err);
              failAll(err);
            } else {
              const p = slot.pending.get(m.id);
              slot.pending.delete(m.id);
              slot.load--;
              p?.reject(err);
            }
          }
        });
        w.on('error', (err) => {
          reject(err);
          failAll(asGeotfrError(err));
        });
        w.on('exit', (code) => {
          const err = new GeotfrError('INTERNAL', `export worker exited with code ${code}`);
          reject(err);
          failAll(err);
        });
      })]),
    );
    w.postMessage({ type: 'init', plan } satisfies ToWorker);
  }
  const close = async () => {
    await Promise.all(
      workers.map(async ({ w }) => {
        w.removeAllListeners('exit');
        w.postMessage({ type: 'cancel' } satisfies ToWorker);
        await w.terminate();
      }),
    );
    await blocks.close();
  };
  try {
    await Promise.all(ready);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    depth: 2 * n,
    run(task) {
      if (fatal) return Promise.reject(fatal);
      const slot = workers.reduce((a, b) => (b.load < a.load ? b : a));
      const id = nextId++;
      slot.load++;
      return new Promise<ChunkResult>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        slot.w.postMessage({ type: 'task', id, task } satisfies ToWorker);
      });
    },
    close,
  };
}

/** Runs a whole image export on this machine (SPEC §2–6, §9). */
export async function runImageExport(request: unknown, opts: RunOptions = {}): Promise<ExportSummary> {
  const t0 = performance.now();
  const signal = opts.signal;
  // Start the worker threads first: their start-up (isolate + module loading) overlaps the planning.
  const wanted = opts.open ? 0 : Math.max(0, opts.workers ?? availableParallelism());
  let idle = wanted > 0 ? spawnWorkers(wanted) : [];
  let plan: ExportPlan;
  let store: BlobStore;
  let tasks: ChunkTask[];
  try {
    plan = await planImageExport(request, { open: opts.open, signal, now: opts.now });
    store = await openBucket(plan.request.bucket);
    tasks = plan.shards.flatMap((s) => shardChunks(plan, s.index));
  } catch (err) {
    await terminateSpawned(idle);
    throw err;
  }
  const nWorkers = Math.min(wanted, tasks.length);
  if (idle.length > nWorkers) void terminateSpawned(idle.splice(nWorkers));
  const progress = opts.progress ? new Progress({ label: 'export-image', total: plan.totalPatches, unit: 'patches' }) : undefined;

  const written: string[] = [];
  let sink: ShardSink | undefined;
  let pool: ChunkPool | undefined;
  let patches = 0;
  let skipped = 0;
  let bytes = 0;
  let bytesFramed = 0;
  let finalized: { mixerKey?: string; manifestKey: string } | undefined;
  try {
    // Open the first shard before any heavy work: an unwritable destination fails at once.
    sink = await ShardSink.open(store, plan, 0);
    if (nWorkers === 0) pool = await inProcessPool(plan, opts.open, signal);
    else {
      const mine = idle;
      idle = [];
      pool = await threadPool(plan, mine, signal);
    }
    const inFlight: Promise<ChunkResult>[] = [];
    let next = 0;
    const fill = () => {
      while (next < tasks.length && inFlight.length < pool!.depth) {
        const p = pool!.run(tasks[next++]);
        p.catch(() => {}); // observed in order below
        inFlight.push(p);
      }
    };
    fill();
    for (let i = 0; i < tasks.length; i++) {
      signal?.throwIfAborted();
      // Ctrl-C does not wait for a chunk in flight.
      const result = await abortable(inFlight.shift()!, signal);
      fill();
      const task = tasks[i];
      if (!sink) sink = await ShardSink.open(store, plan, task.shard);
      await sink.write(result);
      patches += result.patches;
      skipped += result.skipped;
      bytesFramed += result.rawBytes;
      progress?.tick(result.patches + result.skipped, result.rawBytes);
      const lastOfShard = i + 1 === tasks.length || tasks[i + 1].shard !== task.shard;
      if (lastOfShard) {
        const s = sink;
        sink = undefined;
        const info = await s.commit();
        written.push(info.key);
        bytes += info.size;
      }
    }
    signal?.throwIfAborted();
    finalized = await finalizeExport(plan, { store });
    progress?.finish();
  } catch (err) {
    await sink?.abort().catch(() => {});
    await pool?.close().catch(() => {});
    pool = undefined;
    // Leave nothing behind from this run (SPEC §7-style "no partial output"; issue 3).
    const keys = [...written, ...(plan.mixerKey ? [plan.mixerKey] : []), plan.manifestKey];
    await Promise.all(keys.map((k) => store.delete(k).catch(() => {})));
    await removeEmptyDirs(store, plan);
    throw cancelled(err, signal);
  } finally {
    await pool?.close();
    await terminateSpawned(idle);
  }
  return {
    files: written.length,
    patches,
    skippedPatches: skipped,
    bytes,
    bytesFramed,
    seconds: Math.round((performance.now() - t0) / 10) / 100,
    mixer: finalized?.mixerKey ? store.uri(finalized.mixerKey) : null,
    shards: written.map((k) => store.uri(k)),
    manifest: store.uri(plan.manifestKey),
  };
}

/** A local destination keeps no empty directories from a failed run (`.geotfr/tmp`, the prefix's folders). */
async function removeEmptyDirs(store: BlobStore, plan: ExportPlan): Promise<void> {
  if (!(store instanceof LocalBlobStore)) return;
  const dirs = new Set<string>();
  for (let d = path.posix.dirname(plan.request.fileNamePrefix); d !== '.' && d !== '/'; d = path.posix.dirname(d)) dirs.add(d);
  for (const d of ['.geotfr/tmp', '.geotfr/manifests', '.geotfr']) dirs.add(d);
  for (let d = path.posix.dirname(plan.manifestKey); d !== '.geotfr' && d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  const sorted = [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const d of sorted) await fs.rmdir(path.join(store.root, d)).catch(() => {});
}
