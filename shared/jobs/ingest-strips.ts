/**
 * Distributed prediction ingest as a job (docs/semantics.md §13): plan strips and publish one message
 * per strip (`submitIngest`), write one strip's parts (`runStrip`), assemble the COG once every
 * strip is done (`finalizeIngest`). The job lives in the output's bucket under `.geotfr/jobs/<id>/`
 * like an export (store.ts), with these objects of its own:
 *
 * | object                    | written by     | how                                                  |
 * |---------------------------|----------------|------------------------------------------------------|
 * | `plan.json`               | planner        | the strip plan (record offsets per strip), create-once |
 * | `parts/sNNNNN-lKK`        | strip worker   | strip N's tiles of level K, create-once              |
 * | `parts/sNNNNN-raw`        | strip worker   | strip N's rows of level m+1, raw, create-once        |
 * | `shards/NNNNN.json`       | strip worker   | strip N's marker with its tile sizes, create-once    |
 * | `parts/head`              | finalizer      | header, IFDs and the coarse levels' tiles            |
 * | `compose/…`               | finalizer      | intermediate objects of a compose tree               |
 *
 * The output is composed create-once from head and parts, then the job is marked done, then the
 * parts are deleted: a redelivered strip finds its marker (or its parts) and changes nothing; a
 * second finalizer finds the job done. Strip markers live in `shards/` so the dead-letter handler
 * (deadletter.ts) treats strips like shards: a dead-lettered strip fails the job with its last error.
 *
 * Ingest request (`ingest/NAME.json`, HTTP POST or the ingest request topic): the fields of
 * `parseIngestRequest` (ingest.ts) plus `tileSize`, `stripTileRows` (a power of two), `workers`
 * (at least that many strips), `nodata` (a number or "nan"), `depth` (of `[D, h, w]` features).
 */
import { isPreconditionFailed } from '../storage/port.js';
import { openBucket, resolveUri } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { option } from '../options.js';
import { CoarseLevels, fileByteCounts } from '../cog/strips.js';
import { cogOptionsOf, planStrips, type IngestLayout } from '../ingest/strips.js';
import { buildStrip } from './strip-build.js';
import { parseIngestRequest, type IngestRequest } from './ingest.js';
import type { JobDeps, SubmitResult } from './planner.js';
import { failJob } from './shard-worker.js';
import { JobStore, type ShardMark } from './store.js';
import { finishedStatus, isRetryable, newStatus, type JobError, type JobStatus } from './status.js';

/** Settings of the distributed ingest (declared in shared/options.ts). */
export interface IngestConfig {
  requestTopic: string;
  stripTopic: string;
  finalizeTopic: string;
  /** Pixel bytes per strip when a request sets neither `stripTileRows` nor `workers` (4 GB at ~20 MB/s ≈ 200 s, inside half of 540 s). */
  maxStripBytes: number;
  /** Time limit of the planner and the finalizer, HTTP functions (infra/: `ingest_timeout_seconds`). */
  timeoutSeconds: number;
}

export function ingestConfigFromEnv(env: NodeJS.ProcessEnv = process.env): IngestConfig {
  return {
    requestTopic: option('ingestRequestTopic', env),
    stripTopic: option('stripTopic', env),
    finalizeTopic: option('ingestFinalizeTopic', env),
    maxStripBytes: option('maxStripBytes', env),
    timeoutSeconds: option('ingestTimeoutSeconds', env),
  };
}

/** A strip message (also in the attributes, as `shard`, for logs and the dead-letter handler). */
export interface StripMessage {
  jobId: string;
  bucket: string;
  strip: number;
}

export interface IngestFinalizeMessage {
  jobId: string;
  bucket: string;
}

export interface StripIngestRequest extends IngestRequest {
  tileSize?: number;
  stripTileRows?: number;
  workers?: number;
  nodata?: number;
  depth?: number;
}

/** The job's plan.json. */
export interface IngestJobPlan {
  kind: 'ingest-strips';
  out: string;
  outKey: string;
  bucket: string;
  layout: IngestLayout;
}

/** A strip's marker: a shard marker plus the sizes of its tiles (per level 0…m, row-major). */
export interface StripMark extends ShardMark {
  byteCounts: number[][];
  partBytes: number[];
  rawBytes: number;
  /**
   * Where the strip's `seconds` went: reading, decoding and compressing its records (pipelined, so
   * one figure), then writing its parts and raw level to the bucket.
   */
  phaseSeconds?: { build: number; upload: number };
}

/** `status.json` of an ingest job: a job status with the strip counts (docs/semantics.md §13). */
export type IngestStatus = JobStatus & { strips: number; stripsDone: number };

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const pad = (n: number, w = 5) => String(n).padStart(w, '0');
const partKey = (job: JobStore, s: number, k: number) => `${job.dir}parts/s${pad(s)}-l${pad(k, 2)}`;
const rawKey = (job: JobStore, s: number) => `${job.dir}parts/s${pad(s)}-raw`;
const headKey = (job: JobStore) => `${job.dir}parts/head`;

const EXTRA = ['tileSize', 'stripTileRows', 'workers', 'nodata', 'depth'] as const;

/** Validates a distributed ingest request: `parseIngestRequest`'s fields and checks, plus the strip options. */
export async function parseStripIngestRequest(raw: unknown, deps: JobDeps): Promise<StripIngestRequest> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new GeotfrError('BAD_REQUEST', 'an ingest request must be a JSON object');
  const r = { ...(raw as Record<string, unknown>) };
  const extra: Partial<StripIngestRequest> = {};
  const posInt = (k: (typeof EXTRA)[number], v: unknown, ok: (n: number) => boolean, why: string) => {
    if (!(typeof v === 'number' && Number.isInteger(v) && v > 0 && ok(v)))
      throw new GeotfrError('BAD_REQUEST', `${k} must be ${why}, got ${JSON.stringify(v)}`, { field: k });
    return v;
  };
  if (r.tileSize !== undefined) extra.tileSize = posInt('tileSize', r.tileSize, (n) => n % 16 === 0 && n <= 4096, 'a multiple of 16 up to 4096');
  if (r.stripTileRows !== undefined) extra.stripTileRows = posInt('stripTileRows', r.stripTileRows, (n) => (n & (n - 1)) === 0, 'a power of two');
  if (r.depth !== undefined) extra.depth = posInt('depth', r.depth, (n) => n <= 65535, 'an integer from 1 to 65535');
  if (r.workers !== undefined) extra.workers = posInt('workers', r.workers, (n) => n <= 10000, 'an integer from 1 to 10000');
  if (r.nodata !== undefined) {
    if (typeof r.nodata !== 'number' && r.nodata !== 'nan' && r.nodata !== 'NaN')
      throw new GeotfrError('BAD_REQUEST', `nodata must be a number or "nan", got ${JSON.stringify(r.nodata)}`, { field: 'nodata' });
    extra.nodata = typeof r.nodata === 'number' ? r.nodata : NaN;
  }
  for (const k of EXTRA) delete r[k];
  return { ...(await parseIngestRequest(r, deps)), ...extra };
}

function outLocation(out: string): { bucket: string } {
  return { bucket: `gs://${out.slice(5).split('/')[0]}` };
}

function ingestStatus(base: JobStatus, strips: number, done: number): IngestStatus {
  return { ...base, strips, stripsDone: done };
}

/**
 * Plans (or resumes) a distributed ingest and publishes a message per strip not yet done. The
 * planning scan reads every record once (shared/ingest/strips.ts); a redelivered request reuses the
 * stored plan. Throws GeotfrError: permanent codes for bad requests and inputs (nothing is written
 * under the output name), IO for the caller to rethrow.
 */
export async function submitIngest(
  raw: unknown,
  jobId: string,
  deps: JobDeps,
  opts: { countDeliveries?: boolean } = {},
): Promise<SubmitResult & { strips: number }> {
  const now = deps.now ?? (() => new Date());
  const req = await parseStripIngestRequest(raw, deps);
  const { store, key } = await resolveUri(req.out, 'out');
  const job = new JobStore(store, jobId);
  await job.claim(raw, now());
  const terminal = await job.terminal();
  if (terminal) return { jobId, kind: 'image', state: terminal.state, statusUri: job.statusUri, shards: terminal.shards.total, strips: terminal.shards.total };
  if (!opts.countDeliveries) return planAndPublish(req, raw, job, key, deps);
  // A bucket drop has no dead-letter topic (Eventarc retries for a day): count its deliveries as
  // runIngestJob does (ingest.ts) and fail the job after GEOTFR_MAX_DELIVERY_ATTEMPTS.
  const attempt = await job.countAttempt(now());
  const max = deps.config.maxDeliveryAttempts;
  const fail = async (e: { code: string; message: string }, n: number) => {
    const s = await failJob(
      job,
      { code: e.code, message: `ingest failed after ${n} delivery attempts: ${e.code}: ${e.message}`, attempt: n, at: now().toISOString() },
      now,
    );
    return { jobId, kind: 'image' as const, state: s.state, statusUri: job.statusUri, shards: s.shards.total, strips: s.shards.total };
  };
  if (attempt > max) {
    const last = await job.lastError<JobError>('request').catch(() => undefined);
    return fail(last ?? { code: 'DEAD_LETTER', message: 'the planner never finished: killed or out of time' }, attempt - 1);
  }
  try {
    return await planAndPublish(req, raw, job, key, deps);
  } catch (err) {
    const e = asGeotfrError(err);
    if (!isRetryable(e)) throw e;
    await job.recordError('request', { code: e.code, message: e.message, at: now().toISOString() }).catch(() => {});
    // The last allowed delivery's failure is final even when retryable: nobody would redeliver it.
    if (attempt < max) throw e;
    return fail(e, attempt);
  }
}

async function planAndPublish(req: StripIngestRequest, raw: unknown, job: JobStore, key: string, deps: JobDeps): Promise<SubmitResult & { strips: number }> {
  const now = deps.now ?? (() => new Date());
  const cfg = ingestConfigFromEnv();
  const store = job.store;
  const jobId = job.jobId;
  const { bucket } = outLocation(req.out);
  let plan = await job.loadPlan<IngestJobPlan>().catch((err) => {
    if (asGeotfrError(err).code === 'NOT_FOUND') return undefined;
    throw err;
  });
  if (!plan) {
    // Outputs are never overwritten: a COG composed over an existing object would fail only at the end.
    if (await store.stat(key)) throw new GeotfrError('BAD_REQUEST', `${req.out} already exists; ingest to a new name`, { field: 'out' });
    const layout = await planStrips({
      files: req.files,
      mixer: req.mixer,
      kernelSize: req.kernelSize,
      tileSize: req.tileSize,
      nodata: req.nodata,
      depth: req.depth,
      stripTileRows: req.stripTileRows,
      workers: req.workers,
      maxStripBytes: cfg.maxStripBytes,
      maxPixels: deps.config.policy.maxPixelsCap,
    });
    plan = (await job.savePlan<IngestJobPlan>({ kind: 'ingest-strips', out: req.out, outKey: key, bucket, layout }, raw)).plan;
  }
  if (plan.kind !== 'ingest-strips') throw new GeotfrError('BAD_REQUEST', `job ${jobId} is not a distributed ingest`, { field: 'jobId' });
  const n = plan.layout.strips.length;
  const existing = await job.status();
  if (!existing)
    await job.writeStatus(
      ingestStatus(
        { ...newStatus(jobId, 'image', store, key, now()), shards: { total: n, done: 0 }, patches: { total: plan.layout.totalPatches, done: 0 }, mixer: null },
        n,
        0,
      ),
    );
  const marked = new Set(await job.markedShards());
  for (const st of plan.layout.strips) {
    if (marked.has(st.index)) continue;
    const msg: StripMessage = { jobId, bucket, strip: st.index };
    await deps.queue.publish(cfg.stripTopic, msg, { kind: 'strip', jobId, bucket, shard: String(st.index) });
  }
  if (marked.size === n) await deps.queue.publish(cfg.finalizeTopic, { jobId, bucket } satisfies IngestFinalizeMessage, { kind: 'finalize', jobId, bucket });
  return { jobId, kind: 'image', state: existing?.state ?? 'queued', statusUri: job.statusUri, shards: n, strips: n };
}

/** Validates a strip message (a malformed one is permanent: acknowledged, logged). */
export function parseStripMessage(json: unknown): StripMessage {
  const m = json as Partial<StripMessage> | null;
  if (!m || typeof m.jobId !== 'string' || typeof m.bucket !== 'string' || !Number.isInteger(m.strip) || (m.strip as number) < 0)
    throw new GeotfrError('BAD_REQUEST', `not a strip message: ${JSON.stringify(json)?.slice(0, 200)}`);
  return { jobId: m.jobId, bucket: m.bucket, strip: m.strip as number };
}

export function parseIngestFinalizeMessage(json: unknown): IngestFinalizeMessage {
  const m = json as Partial<IngestFinalizeMessage> | null;
  if (!m || typeof m.jobId !== 'string' || typeof m.bucket !== 'string')
    throw new GeotfrError('BAD_REQUEST', `not an ingest finalize message: ${JSON.stringify(json)?.slice(0, 200)}`);
  return { jobId: m.jobId, bucket: m.bucket };
}

async function loadIngestPlan(job: JobStore): Promise<IngestJobPlan> {
  let plan: IngestJobPlan;
  try {
    plan = await job.loadPlan<IngestJobPlan>();
  } catch (err) {
    const e = asGeotfrError(err);
    if (e.code === 'NOT_FOUND')
      throw new GeotfrError('NOT_FOUND', `job ${job.jobId} does not exist (no plan at ${job.store.uri(job.dir + 'plan.json')})`, { field: 'jobId' });
    throw e;
  }
  if (plan.kind !== 'ingest-strips') throw new GeotfrError('BAD_REQUEST', `job ${job.jobId} is not a distributed ingest`, { field: 'jobId' });
  return plan;
}

export type StripOutcome = 'written' | 'existed' | 'duplicate' | 'skipped' | 'failed';

/**
 * Writes one strip's parts (create-once, built on a thread of their own: strip-build.ts) and its
 * marker, then tells the finalizer. Retryable errors are recorded and rethrown (Pub/Sub redelivers,
 * then dead-letters); permanent ones fail the job.
 */
export async function runStrip(msg: StripMessage, attempt: number, deps: JobDeps, signal?: AbortSignal): Promise<StripOutcome> {
  const now = deps.now ?? (() => new Date());
  const cfg = ingestConfigFromEnv();
  const store = await openBucket(msg.bucket);
  const job = new JobStore(store, msg.jobId);
  const notify = () =>
    deps.queue.publish(cfg.finalizeTopic, { jobId: msg.jobId, bucket: msg.bucket } satisfies IngestFinalizeMessage, {
      kind: 'finalize',
      jobId: msg.jobId,
      bucket: msg.bucket,
    });
  try {
    if (await job.terminal()) return 'skipped';
    const plan = await loadIngestPlan(job);
    const l = plan.layout;
    const st = l.strips[msg.strip];
    if (!st) throw new GeotfrError('BAD_REQUEST', `job ${msg.jobId} has no strip ${msg.strip} (it has ${l.strips.length})`, { field: 'strip' });
    if (await job.hasShardMark(msg.strip)) {
      await notify();
      return 'duplicate';
    }
    const t0 = performance.now();
    const g = l.geometry;
    // The parts stream to the bucket as the strip is made (each create-once on its own): uploaded
    // after it, they took longer than making it (docs/cloud.md).
    const keys = Array.from({ length: g.m + 1 }, (_, k) => partKey(job, msg.strip, k));
    if (g.m < g.levels - 1) keys.push(rawKey(job, msg.strip));
    const built = await buildStrip({ bucket: msg.bucket, layout: l, out: plan.out, strip: msg.strip, keys }, signal);
    const { wrote, builtAt, ...res } = built;
    const buildSeconds = (builtAt - performance.timeOrigin - t0) / 1000;
    const seconds = (performance.now() - t0) / 1000;
    const mark: StripMark = {
      shard: msg.strip,
      name: partKey(job, msg.strip, 0),
      size: res.partBytes.reduce((a, b) => a + b, 0),
      patches: st.patch1 - st.patch0,
      seconds: round3(seconds),
      attempt,
      alreadyExisted: wrote === 0,
      at: now().toISOString(),
      byteCounts: res.byteCounts,
      partBytes: res.partBytes,
      rawBytes: res.rawBytes,
      phaseSeconds: { build: round3(buildSeconds), upload: round3(seconds - buildSeconds) },
    };
    await job.markShard(mark);
    await notify();
    return wrote === 0 ? 'existed' : 'written';
  } catch (err) {
    const e = asGeotfrError(err);
    const rec: JobError = { code: e.code, message: e.message, shard: msg.strip, attempt, at: now().toISOString() };
    if (isRetryable(e)) {
      await job.recordError(msg.strip, rec).catch(() => {});
      throw e;
    }
    await failJob(job, rec, now);
    return 'failed';
  }
}

/**
 * Refreshes the status while strips are missing; once all are marked, assembles the COG (see the
 * module comment). Safe to run concurrently and repeatedly.
 */
export async function finalizeIngest(msg: IngestFinalizeMessage, deps: JobDeps, signal?: AbortSignal): Promise<JobStatus> {
  const now = deps.now ?? (() => new Date());
  const store = await openBucket(msg.bucket);
  const job = new JobStore(store, msg.jobId);
  try {
    return await assemble(job, now, signal);
  } catch (err) {
    const e = asGeotfrError(err);
    if (isRetryable(e)) throw e;
    // A concurrent finalizer may have finished (and deleted the parts) meanwhile.
    const terminal = await job.terminal();
    if (terminal) return terminal;
    return failJob(job, { code: e.code, message: e.message, at: now().toISOString() }, now);
  }
}

async function assemble(job: JobStore, now: () => Date, signal?: AbortSignal): Promise<JobStatus> {
  const store = job.store;
  const terminal = await job.terminal();
  if (terminal) return terminal;
  const plan = await loadIngestPlan(job);
  const l = plan.layout;
  const g = l.geometry;
  const n = l.strips.length;
  const current = await job.status();
  if (!current) throw new GeotfrError('IO', `job ${job.jobId} has a plan but no status yet`, { file: job.statusUri });
  const marked = await job.markedShards();
  const at = now().toISOString();
  if (marked.length < n) {
    const done = new Set(marked);
    return job.writeStatus(
      ingestStatus(
        {
          ...current,
          state: marked.length ? 'running' : current.state,
          startedAt: current.startedAt ?? (marked.length ? at : undefined),
          shards: { total: n, done: marked.length },
          patches: { total: l.totalPatches, done: l.strips.filter((s) => done.has(s.index)).reduce((a, s) => a + s.patch1 - s.patch0, 0) },
          updatedAt: at,
        },
        n,
        marked.length,
      ),
    );
  }
  const marks = (await job.shardMarks()) as StripMark[];
  const present = new Set((await store.list(job.dir + 'parts/')).map((i) => i.key));
  const sources: string[] = [headKey(job)];
  for (let k = g.m; k >= 0; k--) for (let s = 0; s < n; s++) sources.push(partKey(job, s, k));
  const needed = [...sources.slice(1), ...(g.m < g.levels - 1 ? l.strips.map((s) => rawKey(job, s.index)) : [])];
  const missing = needed.filter((k) => !present.has(k));
  if (missing.length)
    throw new GeotfrError(
      'NOT_FOUND',
      `${missing.length} part(s) missing at finalize, e.g. ${store.uri(missing[0]!)}: the strips are marked done but their parts are gone`,
      {
        file: store.uri(missing[0]!),
      },
    );

  const opts = cogOptionsOf(l, plan.out);
  const coarse = await CoarseLevels.create(opts, g);
  let total: number;
  try {
    if (g.m < g.levels - 1)
      for (const st of l.strips) {
        let got = 0;
        for await (const chunk of store.readStream(rawKey(job, st.index))) {
          got += (chunk as Buffer).length;
          await coarse.push(chunk as Buffer);
        }
        if (got !== coarse.rawSize(st.index))
          throw new GeotfrError('BAD_INPUT', `strip ${st.index}'s raw part has ${got} bytes, expected ${coarse.rawSize(st.index)}`, {
            file: store.uri(rawKey(job, st.index)),
          });
      }
    const all = fileByteCounts(
      g,
      marks.map((m) => m.byteCounts),
      await coarse.finish(),
    );
    const cogPlan = coarse.layout.plan(all, 'auto');
    total = cogPlan.total;
    const w = await store.createWriter(headKey(job));
    try {
      w.stream.write(coarse.layout.header(cogPlan, all));
      await coarse.pipeTiles(w.stream, signal);
      await w.commit();
    } catch (err) {
      await w.abort();
      throw err;
    }
  } finally {
    await coarse.close();
  }
  try {
    await store.compose(sources, plan.outKey, { ifNotExists: true, contentType: 'image/tiff', tmpPrefix: `${job.dir}compose/` });
  } catch (err) {
    if (!isPreconditionFailed(err)) throw asGeotfrError(err);
    // Another finalizer composed it first (same bytes), unless someone else wrote that name.
    const info = await store.stat(plan.outKey);
    if (info?.size !== total)
      throw new GeotfrError('BAD_REQUEST', `${plan.out} already exists and is not this ingest's output; ingest to a new name`, { file: plan.out });
  }
  const info = await store.stat(plan.outKey);
  if (info?.size !== total) throw new GeotfrError('INTERNAL', `composed ${plan.out} has ${info?.size} bytes, planned ${total}`, { file: plan.out });
  const end = now().toISOString();
  const workerSeconds = marks.reduce((a, m) => a + m.seconds, 0);
  const done = await job.finish(
    ingestStatus(
      {
        ...finishedStatus(current, 'done', end),
        startedAt: current.startedAt ?? marks.reduce((a, m) => (m.at < a ? m.at : a), marks[0]!.at),
        shards: { total: n, done: n },
        patches: { total: l.totalPatches, done: l.totalPatches },
        bytes: total,
        workerSeconds: Math.round(workerSeconds * 1000) / 1000,
        maxShardSeconds: marks.reduce((a, m) => Math.max(a, m.seconds), 0),
        outputs: [plan.outKey],
        mixer: null,
      },
      n,
      n,
    ),
  );
  // Parts go only once the job is done: a concurrent finalizer that then misses them sees `done`.
  for (const i of await store.list(job.dir + 'parts/')) await store.delete(i.key);
  return done;
}
