/**
 * The embedded runner: planner → chunk tasks on a `worker_threads` pool → ordered shard writers →
 * finalizer. Chunks are computed in parallel (read, encode, deflate) and written in plan order, so
 * the bytes equal `writeShard()`'s whatever the worker count. A failed or cancelled run removes what
 * it wrote (no shard, no mixer, no manifest) and nothing else: an earlier export under the prefix is
 * refused, or with `overwrite` replaced only once the new one is complete (docs/semantics.md §5).
 */
import { availableParallelism } from 'node:os';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { type BlobStore } from '../storage/port.js';
import { LocalBlobStore } from '../storage/local.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError } from '../errors.js';
import { Progress } from '../progress.js';
import { makeManifest, writeExportMetadata } from './finalize.js';
import { dryRun, type DryRun } from './dryrun.js';
import { exportParseSpec } from './parsespec.js';
import { planImageExport, shardChunks, type ChunkTask, type ExportPlan, type ImageSpecOpener } from './plan.js';
import { ShardSink, cancelled } from './shard.js';
import { claimPrefix, newRunId, removeReplaced, type PrefixLease, type PriorExport } from './prefix.js';
import { defaultWorkers, inOrder, inProcessPool, spawnWorkers, terminateSpawned, threadPool, type ChunkPool } from './pool.js';
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
  /** Overrides the request's `overwrite` when true (`--overwrite`). */
  overwrite?: boolean;
  /** Lease lifetime without renewal (default 2 minutes; renewed every quarter of it). */
  leaseTtlMs?: number;
  /** Add the decoded block cache's activity to the summary (`--verbose`). */
  verbose?: boolean;
}

/** A local run renews its lease often, so a SIGKILLed run's lease goes stale quickly. */
const LEASE_TTL_MS = 2 * 60 * 1000;

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
  /** The region exported, and the region asked for: partial right/bottom patches are dropped (docs/semantics.md §3). */
  exportedPx: [number, number];
  regionPx: [number, number];
  /** Earlier export files removed by `overwrite` (URIs). */
  replaced: string[];
  /** Python that reads the shards: the dataset (with `compression_type="GZIP"` when compressed) and the parse spec. */
  parseSpec: string;
  /** What the user should know (partial patches dropped, a clamped defaultValue); also printed on stderr. */
  warnings: string[];
  /** With `verbose`: hits, decodes and re-decodes of source blocks dropped to stay in the memory budget. */
  blockCache?: BlockCacheStats;
}

/** Runs a whole image export on this machine (docs/semantics.md §2–6, §9). */
/** Whether a request asks for a dry run (`"dryRun": true`). */
export const wantsDryRun = (request: unknown): boolean => request !== null && typeof request === 'object' && (request as { dryRun?: unknown }).dryRun === true;

/** What the export would do (shared/export/dryrun.ts): plans only — no worker threads, no destination opened, nothing written. */
export async function dryRunImageExport(request: unknown, opts: Omit<RunOptions, 'progress'> = {}): Promise<DryRun> {
  const plan = await planImageExport(request, { open: opts.open, signal: opts.signal, now: opts.now });
  const threads = opts.open ? 0 : (opts.workers ?? defaultWorkers());
  return dryRun(plan, { workers: opts.open ? 1 : Math.max(1, opts.workers ?? availableParallelism()), threads });
}

export async function runImageExport(request: unknown, opts: RunOptions = {}): Promise<ExportSummary> {
  const t0 = performance.now();
  const signal = opts.signal;
  // A request that asks for a dry run must never write: its callers want dryRunImageExport.
  if (wantsDryRun(request))
    throw new GeotfrError('BAD_REQUEST', 'the request asks for a dry run; call dryRunImageExport (CLI: --dry-run)', { field: 'dryRun' });
  // Start the worker threads first: their start-up (isolate + module loading) overlaps the planning.
  const wanted = opts.open ? 0 : Math.max(0, opts.workers ?? defaultWorkers());
  let idle = wanted > 0 ? spawnWorkers(wanted) : [];
  let plan: ExportPlan;
  let store: BlobStore;
  let tasks: ChunkTask[];
  let lease: PrefixLease | undefined;
  let prior: PriorExport;
  try {
    plan = await planImageExport(opts.overwrite ? { ...(request as object), overwrite: true } : request, { open: opts.open, signal, now: opts.now });
    store = await openBucket(plan.request.bucket);
    tasks = plan.shards.flatMap((s) => shardChunks(plan, s.index));
    // One export per prefix at a time; an earlier export is refused unless overwrite (docs/semantics.md §5).
    ({ lease, prior } = await claimPrefix(store, plan, { runId: newRunId(), ttlMs: opts.leaseTtlMs ?? LEASE_TTL_MS }));
  } catch (err) {
    await terminateSpawned(idle);
    throw err;
  }
  const nWorkers = Math.min(wanted, tasks.length);
  if (idle.length > nWorkers) void terminateSpawned(idle.splice(nWorkers));
  const progress = opts.progress ? new Progress({ label: 'export-image', total: plan.totalPatches, unit: 'patches' }) : undefined;
  let leaseError: unknown;
  const ttl = opts.leaseTtlMs ?? LEASE_TTL_MS;
  const renewer = setInterval(() => void lease!.renew().catch((err) => (leaseError ??= err)), Math.max(50, ttl / 4));
  renewer.unref();
  // Overwriting: new shards wait, finished, under temporary names until all exist, then replace the
  // old ones together, so a failed overwrite leaves the earlier export as it was. Remote stores
  // publish on stream end, so there the old shards are replaced one by one (docs/semantics.md §5).
  const deferPublish = prior.keys.length > 0 && store instanceof LocalBlobStore;

  const written: string[] = [];
  const pending: ShardSink[] = [];
  const metadata: string[] = [];
  let sink: ShardSink | undefined;
  let pool: ChunkPool | undefined;
  let patches = 0;
  let skipped = 0;
  let bytes = 0;
  let bytesFramed = 0;
  let finalized: { mixerKey?: string; manifestKey: string } | undefined;
  let replaced: string[] = [];
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
    // Ctrl-C does not wait for a chunk in flight (inOrder).
    let i = -1;
    for await (const result of inOrder(pool, tasks, signal)) {
      if (leaseError) throw leaseError;
      const task = tasks[++i];
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
        if (deferPublish) {
          pending.push(s);
          await s.seal();
        } else {
          const info = await s.commit();
          written.push(info.key);
          bytes += info.size;
        }
      }
    }
    signal?.throwIfAborted();
    if (leaseError) throw leaseError;
    while (pending.length) {
      const info = await pending[0].commit();
      pending.shift();
      written.push(info.key);
      bytes += info.size;
    }
    finalized = await writeExportMetadata(plan, { store, onWritten: (k) => metadata.push(k) });
    cache = pool.cacheStats();
    // The new export is complete: only now do the earlier export's leftovers go (docs/semantics.md §5).
    replaced = (await removeReplaced(store, prior, [...written, ...metadata])).map((k) => store.uri(k));
    progress?.finish();
  } catch (err) {
    await sink?.abort().catch(() => {});
    await Promise.all(pending.map((s) => s.abort().catch(() => {})));
    await pool?.close().catch(() => {});
    pool = undefined;
    // Leave nothing behind from this run, and only from this run: an earlier export's mixer and
    // manifest stay (docs/semantics.md §5 "no partial output").
    const keys = [...written, ...metadata];
    await Promise.all(keys.map((k) => store.delete(k).catch(() => {})));
    throw cancelled(err, signal);
  } finally {
    clearInterval(renewer);
    await lease.release().catch(() => {});
    await removeEmptyDirs(store, plan);
    await pool?.close();
    await terminateSpawned(idle);
  }
  const g = plan.grid;
  const exportedPx: [number, number] = [g.patchesPerRow * g.patchWidth, g.rows * g.patchHeight];
  const regionPx: [number, number] = [g.region.width, g.region.height];
  const warnings = [...planWarnings(plan)];
  if (opts.progress) for (const w of warnings) process.stderr.write(`geotfr: warning: ${w}\n`);
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
    exportedPx,
    regionPx,
    replaced,
    parseSpec: exportParseSpec(makeManifest(plan)),
    warnings,
    ...(opts.verbose && cache ? { blockCache: cache } : {}),
  };
}

/**
 * What an export silently changes (docs/semantics.md §3, §4): the partial right/bottom patches it
 * drops, and a `defaultValue` a band's type cannot hold.
 */
export function planWarnings(plan: ExportPlan): string[] {
  const out: string[] = [];
  const g = plan.grid;
  const exported: [number, number] = [g.patchesPerRow * g.patchWidth, g.rows * g.patchHeight];
  if (exported[0] < g.region.width || exported[1] < g.region.height) out.push(droppedMessage(exported, [g.region.width, g.region.height]));
  for (const k of plan.request.ignored ?? []) out.push(`${k} is accepted for Earth Engine compatibility and changes nothing here (docs/semantics.md §2)`);
  const def = plan.request.formatOptions.defaultValue;
  for (const b of plan.layout.bands)
    if (b.fill !== def && !(b.type === 'float32' && Math.fround(def) === b.fill))
      out.push(`defaultValue ${def} becomes ${b.fill} in band ${JSON.stringify(b.name)} (${b.type}): masked pixels hold ${b.fill}`);
  return out;
}

/** "exported 2816×1792 of 3000×2000 px (partial patches dropped)" (docs/semantics.md §3). */
export function droppedMessage(exported: [number, number], region: [number, number]): string {
  return `exported ${exported[0]}×${exported[1]} of ${region[0]}×${region[1]} px (partial patches dropped)`;
}

/** A local destination keeps no empty directories from a run (`.geotfr/tmp`, `.geotfr/leases`, a failed run's prefix folders). */
async function removeEmptyDirs(store: BlobStore, plan: ExportPlan): Promise<void> {
  if (!(store instanceof LocalBlobStore)) return;
  const dirs = new Set<string>();
  for (let d = path.posix.dirname(plan.request.fileNamePrefix); d !== '.' && d !== '/'; d = path.posix.dirname(d)) dirs.add(d);
  for (const d of ['.geotfr/tmp', '.geotfr/leases', '.geotfr/manifests', '.geotfr']) dirs.add(d);
  for (let d = path.posix.dirname(plan.manifestKey); d !== '.geotfr' && d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  const sorted = [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
  for (const d of sorted) await fs.rmdir(path.join(store.root, d)).catch(() => {});
}
