/**
 * Patch exports in the cloud (docs/semantics.md §10, §12): the same planner, shard worker and finalizer
 * roles as image exports, over the same topics and job store. The generic code dispatches here on
 * the request (`points`) or on the stored plan (`kind: "patches"`).
 *
 * - Planner: runs the point pass once (the table streamed, or the seeded sample drawn), cuts it into
 *   shards and chunks with the CLI's rule (patches/plan.ts), and stores each shard's chunks as
 *   `.geotfr/jobs/<id>/points/NNNNN.bin`; then the plan, the status, one message per shard.
 * - Worker: reads its shard's chunks, produces each (same producer as the CLI's threads) and writes
 *   the file create-once; the bytes equal the CLI's because the chunks and the gzip pieces are the same.
 * - Finalizer: once every shard has its marker and its object, writes the patch manifest (as the CLI
 *   does) and marks the job done.
 */
import { isPreconditionFailed, type BlobStore } from '../storage/port.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { openPatchImage } from '../patches/image.js';
import { PatchChunkProducer } from '../patches/chunk.js';
import { chunkPoints, deserializeChunks, patchFileName, serializeChunk, type PatchPlan } from '../patches/plan.js';
import { openPatchExport, PatchFileSink, patchFeatures, patchParseSpec, type PatchFeature } from '../patches/run.js';
import type { DropCounts } from '../patches/points.js';
import { makePatchManifest, writePatchManifest } from '../patches/manifest.js';
import { checkSourceUri, type Policy } from './policy.js';
import type { FinalizeMessage, JobDeps, ShardMessage, SubmitResult } from './planner.js';
import type { ShardOutcome } from './shard-worker.js';
import { JobStore } from './store.js';
import { finishedStatus, newStatus, type JobStatus } from './status.js';

export interface PatchShardPlan {
  index: number;
  name: string;
  /** The shard's point chunks (serializeChunk, concatenated). */
  pointsKey: string;
  points: number;
}

/** plan.json of a patch job. */
export interface PatchJobPlan {
  kind: 'patches';
  plan: PatchPlan;
  shards: PatchShardPlan[];
  inputPoints: number;
  /** Drops known at planning time (outside the image, no coordinates); masked centres are counted by workers. */
  dropped: Omit<DropCounts, 'masked'>;
  features: PatchFeature[];
  parseSpec: string;
}

export const isPatchRequest = (r: unknown): boolean => !!r && typeof r === 'object' && (r as { points?: unknown }).points !== undefined;
export const isPatchJobPlan = (p: unknown): p is PatchJobPlan => !!p && typeof p === 'object' && (p as { kind?: unknown }).kind === 'patches';

/** Plans a patch job (or resumes it from the stored plan) and publishes its shard messages. */
export async function submitPatchJob(request: Record<string, unknown>, job: JobStore, store: BlobStore, deps: JobDeps, now: () => Date): Promise<SubmitResult> {
  if (typeof request.points === 'string') checkSourceUri(request.points, deps.config.policy, 'points');
  let plan: PatchJobPlan;
  try {
    plan = await job.loadPlan<PatchJobPlan>();
  } catch (err) {
    if (!(err instanceof GeotfrError) || err.code !== 'NOT_FOUND') throw err;
    plan = (await job.savePlan(await planPatchJob(request, job, store, deps.config.policy), request)).plan;
  }
  const req = plan.plan.request;
  const existing = await job.status();
  const status: JobStatus = existing ?? {
    ...newStatus(job.jobId, 'table', store, req.fileNamePrefix, now()),
    shards: { total: plan.shards.length, done: 0 },
    patches: { total: plan.shards.reduce((s, x) => s + x.points, 0), done: 0 },
    mixer: null,
  };
  if (!existing) await job.writeStatus(status);
  const marked = new Set(await job.markedShards());
  const bucket = request.bucket as string;
  for (const s of plan.shards) {
    if (marked.has(s.index)) continue;
    const msg: ShardMessage = { jobId: job.jobId, bucket, shard: s.index };
    await deps.queue.publish(deps.config.shardTopic, msg, { kind: 'shard', jobId: job.jobId, bucket, shard: String(s.index) });
  }
  if (marked.size === plan.shards.length)
    await deps.queue.publish(deps.config.finalizeTopic, { jobId: job.jobId, bucket } satisfies FinalizeMessage, { kind: 'finalize', jobId: job.jobId, bucket });
  return { jobId: job.jobId, kind: 'table', state: status.state, statusUri: job.statusUri, shards: plan.shards.length };
}

/** The point pass: each shard's chunks stored for its worker, streamed (nothing grows with the table). */
async function planPatchJob(request: unknown, job: JobStore, store: BlobStore, policy: Policy): Promise<PatchJobPlan> {
  const opened = await openPatchExport(request, { checkSource: (uri, field) => checkSourceUri(uri, policy, field) });
  const { plan, points, encoder, drops } = opened;
  const req = plan.request;
  const shards: PatchShardPlan[] = [];
  const key = (i: number) => `${job.dir}points/${String(i).padStart(5, '0')}.bin`;
  let writer: Awaited<ReturnType<BlobStore['createWriter']>> | undefined;
  let current = -1;
  const open = async (i: number) => {
    writer = await store.createWriter(key(i), { contentType: 'application/octet-stream' });
    shards.push({ index: i, name: patchFileName(req, i), pointsKey: key(i), points: 0 });
    current = i;
  };
  try {
    for await (const c of chunkPoints(points.batches, (n) => encoder.framedBytes(n), { maxFileSize: req.maxFileSize, geometries: req.geometries })) {
      while (current < c.shard) {
        if (writer) await writer.commit();
        await open(current + 1);
      }
      if (!writer!.stream.write(serializeChunk(c))) await new Promise((r) => writer!.stream.once('drain', r));
      shards[shards.length - 1]!.points += c.index.length;
    }
    points.finish();
    // Every point dropped: one empty file, as the CLI writes.
    if (current < 0) await open(0);
    await writer!.commit();
    writer = undefined;
  } catch (err) {
    await writer?.abort().catch(() => {});
    await points.close();
    throw asGeotfrError(err);
  } finally {
    await opened.close();
  }
  const features = patchFeatures(opened);
  return {
    kind: 'patches',
    plan,
    shards,
    inputPoints: points.inputPoints(),
    dropped: { outside: drops.outside, noCoordinates: drops.noCoordinates },
    features,
    parseSpec: patchParseSpec(features),
  };
}

/**
 * Writes one shard of a patch job create-once (called by the shard worker, whose catch turns errors
 * into redeliveries or a failed job). `notify` tells the finalizer.
 */
export async function runPatchShard(
  msg: ShardMessage,
  plan: PatchJobPlan,
  job: JobStore,
  attempt: number,
  now: () => Date,
  notify: () => Promise<unknown>,
  signal?: AbortSignal,
): Promise<ShardOutcome> {
  const shard = plan.shards.find((s) => s.index === msg.shard);
  if (!shard) throw new GeotfrError('BAD_REQUEST', `job ${msg.jobId} has no shard ${msg.shard} (it has ${plan.shards.length})`, { field: 'shard' });
  if (await job.hasShardMark(msg.shard)) {
    await notify();
    return 'duplicate';
  }
  const store = job.store;
  const t0 = performance.now();
  let info = await store.stat(shard.name);
  const existed = info !== undefined;
  if (!info) {
    const chunks = await store.read(shard.pointsKey);
    // Only the plan's files, each opened when a window first touches it (docs/semantics.md §11).
    const source = await openPatchImage(plan.plan, { signal });
    let sink: PatchFileSink | undefined;
    try {
      const producer = new PatchChunkProducer(plan.plan, source);
      sink = await PatchFileSink.open(store, shard.name, { createOnly: true });
      for (const c of deserializeChunks(chunks, store.uri(shard.pointsKey))) {
        signal?.throwIfAborted();
        const r = await producer.produce(c, signal);
        await sink.write(r);
      }
      const s = sink;
      sink = undefined;
      info = await s.commit();
    } catch (err) {
      await sink?.abort().catch(() => {});
      if (!isPreconditionFailed(err)) throw err;
      info = await store.stat(shard.name);
      if (!info) throw err;
    } finally {
      await source.close();
    }
  }
  await job.markShard({
    shard: msg.shard,
    name: shard.name,
    size: info.size,
    patches: shard.points,
    seconds: Math.round(performance.now() - t0) / 1000,
    attempt,
    alreadyExisted: existed,
    at: now().toISOString(),
  });
  await notify();
  return existed ? 'existed' : 'written';
}

/** The finalizer's part for patch jobs: progress while shards are missing, then done. */
export async function finalizePatchJob(job: JobStore, plan: PatchJobPlan, current: JobStatus, now: () => Date): Promise<JobStatus> {
  const at = now().toISOString();
  const marks = await job.shardMarks();
  const total = plan.shards.reduce((s, x) => s + x.points, 0);
  const progress: JobStatus = {
    ...current,
    state: marks.length ? 'running' : current.state,
    startedAt: current.startedAt ?? (marks.length ? at : undefined),
    shards: { total: plan.shards.length, done: marks.length },
    patches: { total, done: marks.reduce((s, m) => s + m.patches, 0) },
    bytes: marks.reduce((s, m) => s + m.size, 0),
    updatedAt: at,
    workerSeconds: Math.round(marks.reduce((s, m) => s + m.seconds, 0) * 1000) / 1000,
    maxShardSeconds: marks.reduce((s, m) => Math.max(s, m.seconds), 0),
  };
  if (marks.length < plan.shards.length) return job.writeStatus(progress);
  for (const s of plan.shards)
    if (!(await job.store.stat(s.name)))
      throw new GeotfrError('NOT_FOUND', `shard ${s.index} is marked done but ${job.store.uri(s.name)} is missing`, { file: job.store.uri(s.name) });
  // The same manifest as the CLI's (written again by a repeated finalizer: same bytes).
  const req = plan.plan.request;
  await writePatchManifest(
    job.store,
    makePatchManifest(
      req.fileNamePrefix,
      req.kernelSize,
      plan.plan.bands,
      plan.shards.map((s) => s.name),
    ),
  );
  return job.finish({ ...finishedStatus(progress, 'done', now().toISOString()), outputs: plan.shards.map((s) => s.name), mixer: null });
}
