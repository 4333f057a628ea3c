/**
 * A shard worker (docs/semantics.md §10): writes exactly one shard of a planned job, then tells the finalizer.
 *
 * Exactly-once outcome over at-least-once delivery (issue 6):
 * - the shard is written create-once through the BlobStore (`createOnly`): a duplicate or redelivered
 *   message either finds the object (`alreadyExisted`, success) or races and loses the precondition;
 *   either way one object, never a second copy;
 * - an upload is visible only when complete, so a worker killed mid-upload leaves nothing, and the
 *   redelivery writes the shard again from scratch (deterministic: same plan, same bytes);
 * - retryable errors are recorded in `errors/NNNNN.json` and rethrown (Pub/Sub redelivers; after the
 *   subscription's attempts the dead-letter handler reads that record); permanent ones fail the job and
 *   the message is acknowledged.
 */
import { openBucket } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { writeShard } from '../export/shard.js';
import type { ExportPlan } from '../export/plan.js';
import type { FinalizeMessage, JobDeps, ShardMessage, TablePlan } from './planner.js';
import { parseDocument, shardMessageSchema, storedPlanSchema } from './messages.js';
import { JobStore } from './store.js';
import { isPatchJobPlan, runPatchShard } from './patches.js';
import { finishedStatus, isRetryable, newStatus, type JobError, type JobStatus } from './status.js';

export type ShardOutcome = 'written' | 'existed' | 'duplicate' | 'skipped' | 'failed';

/** Validates a shard message (a malformed one is permanent: acknowledged, logged). */
export function parseShardMessage(json: unknown): ShardMessage {
  return parseDocument(shardMessageSchema, json, 'shard message');
}

export async function runShard(msg: ShardMessage, attempt: number, deps: JobDeps, signal?: AbortSignal): Promise<ShardOutcome> {
  const now = deps.now ?? (() => new Date());
  const store = await openBucket(msg.bucket);
  const job = new JobStore(store, msg.jobId);
  const notify = () =>
    deps.queue.publish(deps.config.finalizeTopic, { jobId: msg.jobId, bucket: msg.bucket } satisfies FinalizeMessage, {
      kind: 'finalize',
      jobId: msg.jobId,
      bucket: msg.bucket,
    });
  try {
    const terminal = await job.terminal();
    if (terminal) return 'skipped';
    const stored = await loadJobPlan(job);
    if (isPatchJobPlan(stored)) return await runPatchShard(msg, stored, job, attempt, now, notify, signal);
    if ('kind' in stored && stored.kind === 'table') return await runTable(stored, msg, attempt, job, notify, now, signal);
    const plan = stored as ExportPlan;
    const shard = plan.shards.find((s) => s.index === msg.shard);
    if (!shard) throw new GeotfrError('BAD_REQUEST', `job ${msg.jobId} has no shard ${msg.shard} (it has ${plan.shards.length})`, { field: 'shard' });
    if (await job.hasShardMark(msg.shard)) {
      await notify();
      return 'duplicate';
    }
    const t0 = performance.now();
    const res = await writeShard(plan, msg.shard, { createOnly: true, signal });
    const seconds = (performance.now() - t0) / 1000;
    await job.markShard({
      shard: msg.shard,
      name: shard.name,
      size: res.info.size,
      patches: shard.patchCount,
      seconds: Math.round(seconds * 1000) / 1000,
      attempt,
      alreadyExisted: res.alreadyExisted,
      at: now().toISOString(),
    });
    await notify();
    return res.alreadyExisted ? 'existed' : 'written';
  } catch (err) {
    const e = asGeotfrError(err);
    const rec: JobError = { code: e.code, message: e.message, shard: msg.shard, attempt, at: now().toISOString() };
    if (isRetryable(e)) {
      // Best effort: the record only improves the dead-letter reason; the redelivery is what matters.
      await job.recordError(msg.shard, rec).catch(() => {});
      throw e;
    }
    await failJob(job, rec, now);
    return 'failed';
  }
}

/** A job's stored plan, checked against its schema before a worker trusts it (an export's or a table's). */
export async function loadJobPlan(job: JobStore): Promise<ExportPlan | TablePlan> {
  const plan = await job.loadPlan<ExportPlan | TablePlan>();
  parseDocument(storedPlanSchema, plan, 'job plan', { file: job.store.uri(`${job.dir}plan.json`) });
  return plan;
}

/** A table job's one output, written by a worker like a shard (docs/semantics.md §8). */
async function runTable(
  plan: TablePlan,
  msg: ShardMessage,
  attempt: number,
  job: JobStore,
  notify: () => Promise<unknown>,
  now: () => Date,
  signal?: AbortSignal,
): Promise<ShardOutcome> {
  if (msg.shard !== 0) throw new GeotfrError('BAD_REQUEST', `table job ${msg.jobId} has one output (shard 0), not shard ${msg.shard}`, { field: 'shard' });
  if (await job.hasShardMark(0)) {
    await notify();
    return 'duplicate';
  }
  const { runTableExport } = await import('../table/export.js');
  const t0 = performance.now();
  const summary = await runTableExport(plan.request, { signal });
  const seconds = Math.round(performance.now() - t0) / 1000;
  await job.markShard({
    shard: 0,
    name: plan.output,
    size: summary.bytes,
    patches: summary.features,
    seconds,
    attempt,
    alreadyExisted: false,
    at: now().toISOString(),
  });
  await notify();
  return 'written';
}

/**
 * Marks a job failed with one error (create-once: the first failure wins; a done job stays done).
 * Returns the terminal status that won.
 */
export async function failJob(job: JobStore, error: JobError, now: () => Date): Promise<JobStatus> {
  const current = await job.status();
  const at = now().toISOString();
  const base = current ?? newStatus(job.jobId, 'image', job.store, '', new Date(at));
  return job.finish({ ...finishedStatus(base, 'failed', at), errors: [...base.errors, error] });
}
