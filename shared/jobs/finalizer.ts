/**
 * The finalizer (docs/semantics.md §10): runs after each shard (one message per finished shard). While shards are
 * missing it refreshes `status.json` (running, counts, bytes, timings); once every shard has its marker
 * it writes the mixer and the export manifest (`writeExportMetadata`), then records the job done.
 *
 * Concurrent finalizers (two shards finishing together, or a redelivery) are expected: the mixer is
 * written create-once (a lost precondition means another finalizer wrote the same bytes), and the
 * terminal `done.json` marker is create-once too, so the job is finished exactly once. The mixer and
 * manifest are written by the export's own `writeExportMetadata` (shared/export/finalize.ts) in its
 * create-once mode, so they are the embedded runner's bytes by construction. A table job (one output,
 * written by a worker as shard 0) is done once its marker exists.
 */
import { openBucket } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { writeExportMetadata } from '../export/finalize.js';
import type { ExportPlan } from '../export/plan.js';
import type { FinalizeMessage, JobDeps, TablePlan } from './planner.js';
import { finalizeMessageSchema, parseDocument } from './messages.js';
import { JobStore } from './store.js';
import { finalizePatchJob, isPatchJobPlan } from './patches.js';
import { failJob, loadJobPlan } from './shard-worker.js';
import { finishedStatus, isRetryable, type JobStatus } from './status.js';

export function parseFinalizeMessage(json: unknown): FinalizeMessage {
  return parseDocument(finalizeMessageSchema, json, 'finalize message');
}

export async function finalizeJob(msg: FinalizeMessage, deps: JobDeps): Promise<JobStatus> {
  const now = deps.now ?? (() => new Date());
  const store = await openBucket(msg.bucket);
  const job = new JobStore(store, msg.jobId);
  try {
    return await finalizeIn(job, now);
  } catch (err) {
    const e = asGeotfrError(err);
    if (isRetryable(e)) throw e;
    return failJob(job, { code: e.code, message: e.message, at: now().toISOString() }, now);
  }
}

async function finalizeIn(job: JobStore, now: () => Date): Promise<JobStatus> {
  const store = job.store;
  const terminal = await job.terminal();
  if (terminal) return terminal;
  const stored = await loadJobPlan(job);
  const current = await job.status();
  if (!current) throw new GeotfrError('IO', `job ${job.jobId} has a plan but no status yet`, { file: job.statusUri });
  if (isPatchJobPlan(stored)) return finalizePatchJob(job, stored, current, now);
  if ('kind' in stored && stored.kind === 'table') return finalizeTable(job, stored, current, now);
  const plan = stored as ExportPlan;
  const at = now().toISOString();
  const marked = new Set(await job.markedShards());
  const listOutputs = () => store.list(plan.request.fileNamePrefix + '-');
  if (marked.size < plan.shards.length) {
    // Runs once per finished shard: two listings, no per-marker reads (that would be quadratic).
    const done = plan.shards.filter((s) => marked.has(s.index));
    const sizes = new Map((await listOutputs()).map((i) => [i.key, i.size]));
    return job.writeStatus({
      ...current,
      state: marked.size ? 'running' : current.state,
      startedAt: current.startedAt ?? (marked.size ? at : undefined),
      shards: { total: plan.shards.length, done: marked.size },
      patches: { total: plan.totalPatches, done: done.reduce((a, s) => a + s.patchCount, 0) },
      bytes: done.reduce((a, s) => a + (sizes.get(s.name) ?? 0), 0),
      updatedAt: at,
    });
  }
  const marks = await job.shardMarks();
  const workerSeconds = marks.reduce((s, m) => s + m.seconds, 0);
  const snapshot: JobStatus = {
    ...current,
    state: 'running',
    startedAt: current.startedAt ?? (marks.length ? marks.reduce((a, m) => (m.at < a ? m.at : a), marks[0]!.at) : at),
    shards: { total: plan.shards.length, done: marks.length },
    patches: { total: plan.totalPatches, done: marks.reduce((s, m) => s + m.patches, 0) },
    bytes: marks.reduce((s, m) => s + m.size, 0),
    updatedAt: at,
    workerSeconds: Math.round(workerSeconds * 1000) / 1000,
    maxShardSeconds: marks.reduce((s, m) => Math.max(s, m.seconds), 0),
  };

  // Every shard has a marker, and markers are written only after their object exists; check anyway
  // that none was deleted meanwhile, since a mixer over missing shards would be a lie.
  const present = new Set((await listOutputs()).map((i) => i.key));
  for (const s of plan.shards) {
    if (!present.has(s.name))
      throw new GeotfrError('NOT_FOUND', `shard ${s.index} is marked done but ${store.uri(s.name)} is missing`, { file: store.uri(s.name) });
  }
  // Create-once mixer (another finalizer may have written the same bytes); the manifest, under
  // .geotfr/, is rewritten harmlessly.
  await writeExportMetadata(plan, { store, createOnly: true });
  const end = now().toISOString();
  return job.finish({
    ...finishedStatus(snapshot, 'done', end),
    outputs: [...plan.shards.map((s) => s.name), ...(plan.mixerKey ? [plan.mixerKey] : [])],
    mixer: plan.mixerKey,
  });
}

/** A table job: done once its one output has a marker (written by the worker after the file). */
async function finalizeTable(job: JobStore, plan: TablePlan, current: JobStatus, now: () => Date): Promise<JobStatus> {
  const [mark] = await job.shardMarks();
  if (!mark) return current;
  const done = finishedStatus({ ...current, startedAt: current.startedAt ?? mark.at }, 'done', now().toISOString());
  return job.finish({
    ...done,
    shards: { total: 1, done: 1 },
    patches: { total: mark.patches, done: mark.patches },
    bytes: mark.size,
    workerSeconds: mark.seconds,
    maxShardSeconds: mark.seconds,
    outputs: [plan.output],
    mixer: null,
  });
}
