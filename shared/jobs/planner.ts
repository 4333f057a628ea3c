/**
 * The planner (docs/semantics.md §10): validates a request against the deployment policy, plans its shards, stores
 * the job under `.geotfr/jobs/<id>/` and publishes one message per shard. A table request (docs/semantics.md §8)
 * writes one file: it is published to the same worker topic as one shard, so the export runs in a
 * worker with the worker's time limit and retries, never inside the planner's HTTP request.
 *
 * A job id names one request (`JobStore.claim`): a redelivered request reuses the stored plan and
 * republishes only the shards that have no marker yet (duplicate shard messages are harmless, see
 * shard-worker.ts); a different request under a taken id is a CONFLICT and changes nothing.
 */
import { type BlobStore } from '../storage/port.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { checkValueDepth, exceedsJsonDepth } from '../limits.js';
import { checkDestination, checkRequestPolicy, checkSourceUri } from './policy.js';
import type { Queue } from '../queue/port.js';
import { planImageExport, type ExportPlan } from '../export/plan.js';
import { dryRun, type DryRun } from '../export/dryrun.js';
import { utcDate } from '../export/request.js';
import { claimPrefix } from '../export/prefix.js';
import type { CloudConfig } from './config.js';
import { JobStore } from './store.js';
import { finishedStatus, newStatus, type JobStatus } from './status.js';
import { isPatchRequest, submitPatchJob } from './patches.js';

export interface JobDeps {
  queue: Queue;
  config: CloudConfig;
  now?: () => Date;
}

/** What a shard worker receives (also copied into message attributes for logs and dead-lettering). */
export interface ShardMessage {
  jobId: string;
  bucket: string;
  shard: number;
}

/** The stored plan of a table job: its one output is written by a worker as shard 0. */
export interface TablePlan {
  kind: 'table';
  request: Record<string, unknown>;
  /** The one output object, `PREFIX.tfrecord.gz`. */
  output: string;
}

/** What the finalizer receives after each shard. */
export interface FinalizeMessage {
  jobId: string;
  bucket: string;
}

export interface SubmitResult {
  jobId: string;
  kind: 'image' | 'table';
  state: JobStatus['state'] | 'dry-run';
  statusUri: string;
  shards: number;
  /** With `"dryRun": true`: what the export would do (nothing stored, nothing published). */
  dryRun?: DryRun;
}

/** A job's prefix lease outlives every retry (Pub/Sub retries for up to a day); a finished job's lease is stale at once. */
const CLOUD_LEASE_TTL_MS = 24 * 3600 * 1000;

async function jobFinished(store: BlobStore, jobId: string): Promise<boolean> {
  try {
    return (await new JobStore(store, jobId).terminal()) !== undefined;
  } catch {
    return false;
  }
}

/** Fraction of the function time limit a shard may be planned to use (the rest is start-up and slack). */
export const SHARD_TIME_FRACTION = 0.5;

/**
 * Fits shards to the function time limit (issue 6: "planning splits shards further when one would not
 * finish within a function's time limit"). A shard may take `SHARD_TIME_FRACTION` of the limit at the
 * measured worker throughput; when the plan's largest shard would not, the split is expressed as EE's
 * own `formatOptions.maxFileSize` (whole patches per file), so the job's effective request, stored at
 * `.geotfr/jobs/<id>/request.json`, reproduces the very same files with `geotfr export-image`.
 * Returns null when no split is needed. Deterministic: depends only on the plan and two settings.
 */
export function shardSplit(
  plan: ExportPlan,
  config: Pick<CloudConfig, 'functionTimeoutSeconds' | 'shardBytesPerSecond'>,
): { maxFileSize: number; patchesPerShard: number } | null {
  const budget = config.functionTimeoutSeconds * SHARD_TIME_FRACTION * config.shardBytesPerSecond;
  let bytesPerPatch = 0;
  let largest = 0;
  for (const s of plan.shards) {
    if (s.patchCount > 0) bytesPerPatch = Math.max(bytesPerPatch, s.bytesFramed / s.patchCount);
    largest = Math.max(largest, s.bytesFramed);
  }
  if (largest <= budget || bytesPerPatch === 0) return null;
  const patchesPerShard = Math.max(1, Math.floor(budget / bytesPerPatch));
  if (patchesPerShard >= Math.max(...plan.shards.map((s) => s.patchCount))) return null;
  return { maxFileSize: Math.ceil(patchesPerShard * bytesPerPatch), patchesPerShard };
}

/** Replaces `{date}` in `fileNamePrefix` with the event's UTC date, so a redelivery keeps the same name. */
export function resolveDate(request: unknown, when: Date): unknown {
  if (!request || typeof request !== 'object' || Array.isArray(request)) return request;
  const r = request as Record<string, unknown>;
  if (typeof r.fileNamePrefix !== 'string' || !r.fileNamePrefix.includes('{date}')) return request;
  return { ...r, fileNamePrefix: r.fileNamePrefix.replaceAll('{date}', utcDate(when)) };
}

/** The store a request's status belongs in, when its destination is usable (else undefined). */
export async function statusStore(request: unknown, config: CloudConfig): Promise<BlobStore | undefined> {
  try {
    const r = request as { bucket?: unknown; fileNamePrefix?: unknown };
    if (typeof r?.bucket !== 'string') return undefined;
    // Only allowed destinations get job state: a rejected request must not write into foreign buckets.
    checkDestination(r.bucket, 'x', config.policy);
    return await openBucket(r.bucket);
  } catch {
    return undefined;
  }
}

/**
 * Records a permanent planning failure as a failed job (when the destination is usable, or in
 * `fallback`, e.g. the bucket a request was dropped into) and returns the status written, if any.
 * `submitted` is the document the job id was claimed with (the request itself, unless the caller
 * derived `request` from it).
 */
export async function recordRejected(
  jobId: string,
  request: unknown,
  err: unknown,
  deps: JobDeps,
  fallback?: BlobStore,
  submitted: unknown = request,
): Promise<JobStatus | undefined> {
  const e = asGeotfrError(err);
  // A conflict is about someone else's job: recording it there would be the harm it prevents.
  if (e.code === 'CONFLICT') return undefined;
  const store = (await statusStore(request, deps.config)) ?? fallback;
  if (!store) return undefined;
  const now = (deps.now ?? (() => new Date()))();
  try {
    // Only a job id that names this request (or nothing yet) gets the rejection (issue 11 item 1).
    // A request nested too deep to digest (the digest recurses) is claimed as that (docs/limits.md).
    await new JobStore(store, jobId).claim(exceedsJsonDepth(submitted) ? { rejected: 'maxJsonDepth' } : submitted, now);
  } catch (err2) {
    if (asGeotfrError(err2).code === 'CONFLICT') return undefined;
    throw err2;
  }
  const prefix = typeof (request as { fileNamePrefix?: unknown })?.fileNamePrefix === 'string' ? (request as { fileNamePrefix: string }).fileNamePrefix : '';
  const kind = (request as { collection?: unknown })?.collection !== undefined ? 'table' : 'image';
  const s = newStatus(jobId, kind, store, prefix, now);
  const job = new JobStore(store, jobId);
  return job.finish({ ...finishedStatus(s, 'failed', s.createdAt), errors: [{ code: e.code, message: e.message, at: s.createdAt }] });
}

/**
 * Starts (or resumes) a job. Throws GeotfrError: permanent codes for bad requests (callers record them
 * with `recordRejected` and acknowledge), retryable ones (IO) for the caller to rethrow.
 */
export async function submitJob(raw: unknown, jobId: string, eventTime: Date, deps: JobDeps): Promise<SubmitResult> {
  const now = deps.now ?? (() => new Date());
  // First: the job state below serializes the request, which would overflow on hostile nesting.
  checkValueDepth(raw);
  checkRequestPolicy(raw, deps.config.policy);
  const request = resolveDate(raw, eventTime) as Record<string, unknown>;
  // Every file an image resolves to (STAC asset hrefs, glob matches) is checked before it is opened.
  const sources = { checkSource: (uri: string, field: string) => checkSourceUri(uri, deps.config.policy, field) };
  if (request.dryRun === true && request.collection === undefined) {
    // Answered at once from the plan (split as a real job would be); no job state is written.
    let plan = await planImageExport(request, sources);
    const split = shardSplit(plan, deps.config);
    if (split) plan = await planImageExport({ ...request, formatOptions: { ...(request.formatOptions as object), maxFileSize: split.maxFileSize } }, sources);
    const rateMBps = deps.config.shardBytesPerSecond / 1e6;
    return {
      jobId,
      kind: 'image',
      state: 'dry-run',
      statusUri: '',
      shards: plan.shards.length,
      dryRun: dryRun(plan, { workers: plan.shards.length, rateMBps }),
    };
  }
  const store = await openBucket(request.bucket as string);
  const job = new JobStore(store, jobId);
  await job.claim(raw, now());
  const kind = request.collection !== undefined ? 'table' : 'image';
  const done = await job.terminal();
  if (done) return { jobId, kind, state: done.state, statusUri: job.statusUri, shards: done.shards.total };
  if (isPatchRequest(request)) return submitPatchJob(request, job, store, deps, now);
  if (kind === 'table') return queueTableJob(request, job, store, deps);

  let effective: Record<string, unknown> = request;
  let plan = await planImageExport(effective, sources);
  const split = shardSplit(plan, deps.config);
  if (split) {
    effective = { ...request, formatOptions: { ...(request.formatOptions as object), maxFileSize: split.maxFileSize } };
    plan = await planImageExport(effective, sources);
  }
  // The cloud finalizer does not yet remove the replaced export's files, so an overwrite here would
  // leave its extra shards beside the new ones (docs/semantics.md §5): refuse it rather than mix exports.
  if (plan.request.overwrite)
    throw new GeotfrError(
      'BAD_REQUEST',
      "overwrite is not available in the cloud yet (the earlier export's extra shards would stay): export to a new fileNamePrefix, or overwrite with geotfr export-image --overwrite (docs/semantics.md §5)",
      { field: 'overwrite' },
    );
  // One export per prefix (docs/semantics.md §5): the job holds the prefix's lease until it is terminal.
  await claimPrefix(store, plan, { runId: jobId, ttlMs: CLOUD_LEASE_TTL_MS, isStale: (l) => jobFinished(store, l.runId) });
  const saved = await job.savePlan(plan, effective);
  plan = saved.plan;
  const existing = await job.status();
  const status = existing ?? {
    ...newStatus(jobId, 'image', store, plan.request.fileNamePrefix, now()),
    shards: { total: plan.shards.length, done: 0 },
    patches: { total: plan.totalPatches, done: 0 },
    mixer: plan.mixerKey,
    split,
  };
  if (!existing) await job.writeStatus(status);
  const marked = new Set(await job.markedShards());
  const bucket = request.bucket as string;
  // Publish in shard order; Pub/Sub does not keep it, but a small job then usually finishes in order.
  for (const s of plan.shards) {
    if (marked.has(s.index)) continue;
    const msg: ShardMessage = { jobId, bucket, shard: s.index };
    await deps.queue.publish(deps.config.shardTopic, msg, { kind: 'shard', jobId, bucket, shard: String(s.index) });
  }
  // Zero-shard plans (every patch masked out) and resumed jobs whose shards all exist finish here.
  if (marked.size === plan.shards.length)
    await deps.queue.publish(deps.config.finalizeTopic, { jobId, bucket } satisfies FinalizeMessage, { kind: 'finalize', jobId, bucket });
  return { jobId, kind: 'image', state: status.state, statusUri: job.statusUri, shards: plan.shards.length };
}

/** Stores a table job and publishes it to the worker topic as shard 0 (shard-worker.ts runs it). */
async function queueTableJob(request: Record<string, unknown>, job: JobStore, store: BlobStore, deps: JobDeps): Promise<SubmitResult> {
  const now = deps.now ?? (() => new Date());
  // Validated here, so a bad table request is refused by the planner (400), not by a worker.
  const { parseTableExportRequest } = await import('../table/request.js');
  const prefix = parseTableExportRequest(request).fileNamePrefix;
  const plan: TablePlan = { kind: 'table', request, output: `${prefix}.tfrecord.gz` };
  await job.savePlan(plan, request);
  const existing = await job.status();
  const status = existing ?? { ...newStatus(job.jobId, 'table', store, prefix, now()), shards: { total: 1, done: 0 }, mixer: null };
  if (!existing) await job.writeStatus(status);
  const bucket = request.bucket as string;
  if (await job.hasShardMark(0))
    await deps.queue.publish(deps.config.finalizeTopic, { jobId: job.jobId, bucket } satisfies FinalizeMessage, { kind: 'finalize', jobId: job.jobId, bucket });
  else
    await deps.queue.publish(deps.config.shardTopic, { jobId: job.jobId, bucket, shard: 0 } satisfies ShardMessage, {
      kind: 'table',
      jobId: job.jobId,
      bucket,
      shard: '0',
    });
  return { jobId: job.jobId, kind: 'table', state: status.state, statusUri: job.statusUri, shards: 1 };
}
