/**
 * The dead-letter handler (docs/semantics.md §10): a message that failed all its delivery attempts marks its job
 * failed, with the last recorded error as the reason. Never throws for a message it cannot place (a
 * dead-letter that is redelivered forever helps nobody): it logs and acknowledges instead.
 */
import { openBucket } from '../storage/open.js';
import { asGeotfrError, type GeotfrError } from '../errors.js';
import type { QueueMessage } from '../queue/port.js';
import type { JobDeps } from './planner.js';
import { JobStore } from './store.js';
import type { JobError, JobStatus } from './status.js';
import { failJob, parseShardMessage } from './shard-worker.js';
import { jobAttributesSchema } from './messages.js';

export interface DeadLetterResult {
  jobId?: string;
  /** What happened: the job was failed, was already terminal, or the message named no job. */
  outcome: 'failed' | 'already-terminal' | 'shard-exists' | 'unplaced';
  status?: JobStatus;
}

export async function handleDeadLetter(msg: QueueMessage, deps: JobDeps): Promise<DeadLetterResult> {
  const now = deps.now ?? (() => new Date());
  const body = (msg.json ?? {}) as Record<string, unknown>;
  // Routing attributes that do not match their schema are ignored (the body may still place the job).
  const parsed = jobAttributesSchema.safeParse(msg.attributes);
  const attrs = parsed.success ? parsed.data : {};
  const jobId = attrs.jobId ?? (typeof body.jobId === 'string' ? body.jobId : undefined);
  const bucket = attrs.bucket ?? (typeof body.bucket === 'string' ? body.bucket : undefined);
  if (!jobId || !bucket) {
    process.stderr.write(`geotfr dead-letter: message ${msg.id} names no job; dropped: ${JSON.stringify(msg.json)?.slice(0, 300)}\n`);
    return { outcome: 'unplaced' };
  }
  try {
    const job = new JobStore(await openBucket(bucket), jobId);
    const terminal = await job.terminal();
    if (terminal) return { jobId, outcome: 'already-terminal', status: terminal };
    const shardAttr = attrs.shard ?? (typeof body.shard === 'number' ? String(body.shard) : undefined);
    const shard = shardAttr === undefined ? undefined : Number(shardAttr);
    // A duplicate of a shard message whose twin succeeded is harmless: the shard exists.
    if (shard !== undefined && Number.isInteger(shard) && (await job.hasShardMark(shard))) return { jobId, outcome: 'shard-exists' };
    const attempts = msg.attributes.CloudPubSubDeadLetterSourceDeliveryCount ?? '';
    const last = await job.lastError<JobError>(shard ?? 'request').catch(() => undefined);
    const what = shard !== undefined ? `shard ${shard}` : attrs.kind === 'finalize' ? 'finalizing' : 'request';
    const reason = `${what} failed after ${attempts || 'all'} delivery attempts${last ? `: ${last.code}: ${last.message}` : ''}`;
    const status = await failJob(job, { code: last?.code ?? 'DEAD_LETTER', message: reason, shard, at: now().toISOString() }, now);
    return { jobId, outcome: 'failed', status };
  } catch (err) {
    const e = asGeotfrError(err);
    process.stderr.write(`geotfr dead-letter: could not record failure of job ${jobId}: ${e.code}: ${e.message}\n`);
    if (e.retryable) throw e;
    return { jobId, outcome: 'unplaced' };
  }
}

/**
 * Fails the job of a shard message that was dropped for its age before a worker ran it (functions/event.ts):
 * acknowledged, it would never be redelivered or dead-lettered, and the job would stay `running`. A shard
 * that has its marker, or any other error, changes nothing.
 */
export async function failStaleShard(msg: QueueMessage | undefined, e: GeotfrError, deps: JobDeps): Promise<{ destination: string } | undefined> {
  if (!msg || e.context.field !== 'eventTime') return undefined;
  const now = deps.now ?? (() => new Date());
  const m = parseShardMessage(msg.json);
  const job = new JobStore(await openBucket(m.bucket), m.jobId);
  if ((await job.terminal()) || (await job.hasShardMark(m.shard))) return undefined;
  const status = await failJob(
    job,
    { code: e.code, message: `shard ${m.shard}: ${e.message}`, shard: m.shard, attempt: msg.deliveryAttempt, at: now().toISOString() },
    now,
  );
  return { destination: status.destination };
}
