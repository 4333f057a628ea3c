/**
 * The embedded runner: planner → chunk tasks on a `worker_threads` pool → ordered shard writers →
 * finalizer. Chunks are computed in parallel (read, encode, deflate) and written in plan order, so
 * the bytes equal `writeShard()`'s whatever the worker count. A failed or cancelled run removes what
 * it wrote: no shard, no mixer, no manifest.
 */
import { availableParallelism } from 'node:os';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type BlobStore } from '../storage/port.js';
import { LocalBlobStore } from '../storage/local.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError, abortable } from '../errors.js';
import { Progress } from '../progress.js';
import type { ChunkResult } from './chunk.js';
import { writeExportMetadata } from './finalize.js';
import { dryRun, type DryRun } from './dryrun.js';
import { planImageExport, shardChunks, type ChunkTask, type ExportPlan, type ImageSpecOpener } from './plan.js';
import { ShardSink, cancelled } from './shard.js';
import { inProcessPool, spawnWorkers, terminateSpawned, threadPool, type ChunkPool } from './pool.js';
import type { BlockCacheStats } from './chunk.js';

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
  /** Add the decoded block cache's activity to the summary (`--verbose`). */
  verbose?: boolean;
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
  /** With `verbose`: hits, decodes and re-decodes of source blocks dropped to stay in the memory budget. */
  blockCache?: BlockCacheStats;
}

/** Runs a whole image export on this machine (docs/semantics.md §2–6, §9). */
/** Whether a request asks for a dry run (`"dryRun": true`). */
export const wantsDryRun = (request: unknown): boolean => request !== null && typeof request === 'object' && (request as { dryRun?: unknown }).dryRun === true;

/** What the export would do (shared/export/dryrun.ts): plans only — no worker threads, no destination opened, nothing written. */
export async function dryRunImageExport(request: unknown, opts: Omit<RunOptions, 'progress'> = {}): Promise<DryRun> {
  const plan = await planImageExport(request, { open: opts.open, signal: opts.signal, now: opts.now });
  return dryRun(plan, { workers: opts.open ? 1 : Math.max(1, opts.workers ?? availableParallelism()) });
}

export async function runImageExport(request: unknown, opts: RunOptions = {}): Promise<ExportSummary> {
  const t0 = performance.now();
  const signal = opts.signal;
  // A request that asks for a dry run must never write: its callers want dryRunImageExport.
  if (wantsDryRun(request)) throw new GeotfrError('BAD_REQUEST', 'the request asks for a dry run; call dryRunImageExport (CLI: --dry-run)', { field: 'dryRun' });
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
  let cache: BlockCacheStats | undefined;
  try {
    // Open the first shard before any heavy work: an unwritable destination fails at once.
    sink = await ShardSink.open(store, plan, 0);
    if (nWorkers === 0) pool = await inProcessPool(plan, opts.open, signal);
    else {
      const mine = idle;
      idle = [];
      pool = await threadPool(plan, mine, signal, tasks.slice(0, nWorkers));
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
    finalized = await writeExportMetadata(plan, { store });
    cache = pool.cacheStats();
    progress?.finish();
  } catch (err) {
    await sink?.abort().catch(() => {});
    await pool?.close().catch(() => {});
    pool = undefined;
    // Leave nothing behind from this run (docs/semantics.md §7 ("no partial output"); issue 3).
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
    ...(opts.verbose && cache ? { blockCache: cache } : {}),
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
