/**
 * The finalizer (docs/semantics.md §10): runs after each shard (one message per finished shard). While shards are
 * missing it refreshes `status.json` (running, counts, bytes, timings); once every shard has its marker
 * it writes the mixer and the export manifest (`writeExportMetadata`), then records the job done.
 *
 * Concurrent finalizers (two shards finishing together, or a redelivery) are expected: the mixer is
 * written create-once (a lost precondition means another finalizer wrote the same bytes), and the
 * terminal `done.json` marker is create-once too, so the job is finished exactly once. The mixer and
 * manifest are the ones `writeExportMetadata` (shared/export/finalize.ts) writes, byte for byte; only the
 * mixer's create-once write is done here, since the embedded runner overwrites.
 */
import { isPreconditionFailed } from '../storage/port.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { formatMixer } from '../mixer.js';
import { makeManifest } from '../export/finalize.js';
import type { ExportPlan } from '../export/plan.js';
import type { FinalizeMessage, JobDeps } from './planner.js';
import { JobStore } from './store.js';
import { finalizePatchJob, isPatchJobPlan } from './patches.js';
import { failJob } from './shard-worker.js';
import { finishedStatus, isRetryable, type JobStatus } from './status.js';

export function parseFinalizeMessage(json: unknown): FinalizeMessage {
  const m = json as Partial<FinalizeMessage> | null;
  if (!m || typeof m.jobId !== 'string' || typeof m.bucket !== 'string') throw new GeotfrError('BAD_REQUEST', `not a finalize message: ${JSON.stringify(json)?.slice(0, 200)}`);
  return { jobId: m.jobId, bucket: m.bucket };
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
  const plan = await job.loadPlan<ExportPlan>();
  const current = await job.status();
  if (!current) throw new GeotfrError('IO', `job ${job.jobId} has a plan but no status yet`, { file: job.statusUri });
  if (isPatchJobPlan(plan)) return finalizePatchJob(job, plan, current, now);
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
    if (!present.has(s.name)) throw new GeotfrError('NOT_FOUND', `shard ${s.index} is marked done but ${store.uri(s.name)} is missing`, { file: store.uri(s.name) });
  }
  if (plan.mixer && plan.mixerKey) {
    const bytes = formatMixer(plan.mixer);
    try {
      await store.write(plan.mixerKey, bytes, { ifNotExists: true, contentType: 'application/json' });
    } catch (err) {
      if (!isPreconditionFailed(err)) throw asGeotfrError(err);
      // Another finalizer got there first (the bytes are a pure function of the plan), unless the
      // prefix already held a different export: outputs are never overwritten, so say so.
      const existing = (await store.read(plan.mixerKey)).toString('utf8');
      if (existing !== bytes)
        throw new GeotfrError('BAD_REQUEST', `${store.uri(plan.mixerKey)} already exists with different contents; export to a new fileNamePrefix`, { file: store.uri(plan.mixerKey) });
    }
  }
  // The manifest lives under .geotfr/ (ingest reads the kernel size from it); rewriting it is harmless.
  await store.write(plan.manifestKey, JSON.stringify(makeManifest(plan), null, 2) + '\n', { contentType: 'application/json' });
  const end = now().toISOString();
  return job.finish({
    ...finishedStatus(snapshot, 'done', end),
    outputs: [...plan.shards.map((s) => s.name), ...(plan.mixerKey ? [plan.mixerKey] : [])],
    mixer: plan.mixerKey,
  });
}
