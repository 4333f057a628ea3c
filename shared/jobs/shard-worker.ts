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
import type { FinalizeMessage, JobDeps, ShardMessage } from './planner.js';
import { JobStore } from './store.js';
import { isPatchJobPlan, runPatchShard } from './patches.js';
import { finishedStatus, isRetryable, newStatus, type JobError, type JobStatus } from './status.js';

export type ShardOutcome = 'written' | 'existed' | 'duplicate' | 'skipped' | 'failed';

/** Validates a shard message (a malformed one is permanent: acknowledged, logged). */
export function parseShardMessage(json: unknown): ShardMessage {
  const m = json as Partial<ShardMessage> | null;
  if (!m || typeof m.jobId !== 'string' || typeof m.bucket !== 'string' || !Number.isInteger(m.shard) || (m.shard as number) < 0)
    throw new GeotfrError('BAD_REQUEST', `not a shard message: ${JSON.stringify(json)?.slice(0, 200)}`);
  return { jobId: m.jobId, bucket: m.bucket, shard: m.shard as number };
}

export async function runShard(msg: ShardMessage, attempt: number, deps: JobDeps, signal?: AbortSignal): Promise<ShardOutcome> {
  const now = deps.now ?? (() => new Date());
  const store = await openBucket(msg.bucket);
  const job = new JobStore(store, msg.jobId);
  const notify = () => deps.queue.publish(deps.config.finalizeTopic, { jobId: msg.jobId, bucket: msg.bucket } satisfies FinalizeMessage, { kind: 'finalize', jobId: msg.jobId, bucket: msg.bucket });
  try {
    const terminal = await job.terminal();
    if (terminal) return 'skipped';
    const plan = await job.loadPlan<ExportPlan>();
    if (isPatchJobPlan(plan)) return await runPatchShard(msg, plan, job, attempt, now, notify, signal);
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
