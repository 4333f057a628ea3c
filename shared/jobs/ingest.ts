/**
 * Prediction ingest as a job (docs/semantics.md §7, §10): an ingest request dropped into a bucket names prediction
 * files (or a prefix), the mixer and the output COG; this runs `ingestImage` on it and records the job
 * in the output's bucket like an export.
 *
 * Request (`ingest/NAME.json`):
 * `{ "files": ["gs://b/p-00000.tfrecord.gz", …] | "prefix": "gs://b/preds/p-", "mixer": "gs://…-mixer.json",
 *    "out": "gs://b/preds/p.tif", "kernelSize": [x, y] }` (kernelSize optional: the export manifest is used).
 */
import { resolveUri } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { checkValueDepth } from '../limits.js';
import { checkSourceUri, checkDestination } from './policy.js';
import type { JobDeps } from './planner.js';
import { finishedStatus, isRetryable, newStatus, type JobError, type JobStatus } from './status.js';
import { failJob } from './shard-worker.js';
import { parseMixer } from '../mixer.js';
import { ingestRequestSchema, parseDocument } from './messages.js';
import { JobStore } from './store.js';

export interface IngestRequest {
  files: string[];
  mixer: string;
  out: string;
  kernelSize?: [number, number];
}

/** Validates the request shape and the policy, and expands `prefix` into the sorted TFRecord files under it. */
export async function parseIngestRequest(raw: unknown, deps: JobDeps): Promise<IngestRequest> {
  const policy = deps.config.policy;
  checkValueDepth(raw); // a permanent BAD_INPUT before anything walks a hostile nesting (docs/limits.md)
  const r = parseDocument(ingestRequestSchema, raw, 'ingest request');
  checkSourceUri(r.mixer, policy, 'mixer');
  const outLoc = r.out.slice(5);
  const outBucket = outLoc.split('/')[0]!;
  checkDestination(`gs://${outBucket}`, outLoc.slice(outBucket.length + 1), policy);
  const kernelSize = r.kernelSize;
  let files: string[];
  if (r.files && r.prefix === undefined) {
    files = r.files;
    for (const [i, f] of files.entries()) checkSourceUri(f, policy, `files[${i}]`);
  } else if (r.prefix !== undefined && r.files === undefined) {
    // A directory-like prefix (`…/`) is checked and resolved as a name inside it.
    const probe = r.prefix.endsWith('/') ? r.prefix + 'x' : r.prefix;
    checkSourceUri(probe, policy, 'prefix');
    const { store, key } = await resolveUri(probe, 'prefix');
    const keyPrefix = r.prefix.endsWith('/') ? key.slice(0, -1) : key;
    files = (await store.list(keyPrefix)).filter((i) => /\.tfrecord(\.gz)?$/.test(i.key)).map((i) => store.uri(i.key));
    if (!files.length) throw new GeotfrError('NOT_FOUND', `no .tfrecord or .tfrecord.gz files under ${r.prefix}`, { field: 'prefix' });
  } else throw new GeotfrError('BAD_REQUEST', 'give exactly one of files (a list) or prefix', { field: 'files' });
  return { files, mixer: r.mixer, out: r.out, ...(kernelSize ? { kernelSize } : {}) };
}

/**
 * Reads and checks the mixer before anything is allocated from it: a drop naming an absurd grid is a
 * permanent LIMIT (recorded, acknowledged), not a crash retried for a day.
 */
async function checkMixer(uri: string, deps: JobDeps): Promise<void> {
  const { store, key } = await resolveUri(uri, 'mixer');
  const m = parseMixer((await store.read(key)).toString('utf8'), uri);
  const width = m.patchesPerRow * m.patchDimensions[0];
  const height = (m.totalPatches / m.patchesPerRow) * m.patchDimensions[1];
  const cap = deps.config.policy.maxPixelsCap;
  if (width * height > cap)
    throw new GeotfrError(
      'LIMIT',
      `the mixer's grid is ${width}×${height} = ${width * height} pixels, more than this deployment's cap of ${cap} (GEOTFR_MAX_PIXELS_CAP)`,
      {
        file: uri,
        field: 'patchDimensions',
      },
    );
}

/**
 * Runs an ingest job. Permanent errors are thrown for the caller to record (`recordRejected`) and
 * acknowledge. Bucket drops have no dead-letter topic, so deliveries are counted here: the
 * `GEOTFR_MAX_DELIVERY_ATTEMPTS`-th one ends the job: its retryable error is final, and a delivery
 * after it (the last worker was killed mid-run and the event came again) fails the job with the last
 * recorded error instead of leaving it `running`.
 */
export async function runIngestJob(raw: unknown, jobId: string, deps: JobDeps): Promise<JobStatus> {
  const now = deps.now ?? (() => new Date());
  const req = await parseIngestRequest(raw, deps);
  const { store, key } = await resolveUri(req.out, 'out');
  const job = new JobStore(store, jobId);
  await job.claim(raw, now());
  const terminal = await job.terminal();
  if (terminal) return terminal;
  const attempt = await job.countAttempt(now());
  const max = deps.config.maxDeliveryAttempts;
  if (attempt > max) {
    const last = await job.lastError<JobError>('request').catch(() => undefined);
    const reason = `ingest failed after ${attempt - 1} delivery attempts${last ? `: ${last.code}: ${last.message}` : ' (the worker never finished: killed or out of time)'}`;
    return failJob(job, { code: last?.code ?? 'DEAD_LETTER', message: reason, attempt, at: now().toISOString() }, now);
  }
  try {
    return await ingestOnce(req, job, key, deps);
  } catch (err) {
    const e = asGeotfrError(err);
    // The last allowed delivery's failure is final even when retryable: nobody would redeliver it.
    if (!isRetryable(e) || attempt < max) throw e;
    return failJob(
      job,
      { code: e.code, message: `ingest failed after ${attempt} delivery attempts: ${e.code}: ${e.message}`, attempt, at: now().toISOString() },
      now,
    );
  }
}

async function ingestOnce(req: IngestRequest, job: JobStore, key: string, deps: JobDeps): Promise<JobStatus> {
  const now = deps.now ?? (() => new Date());
  await checkMixer(req.mixer, deps);
  const started = now();
  const previous = await job.status();
  const base: JobStatus = {
    ...newStatus(job.jobId, 'image', job.store, key, previous ? new Date(previous.createdAt) : started),
    state: 'running',
    startedAt: started.toISOString(),
    shards: { total: req.files.length, done: 0 },
  };
  await job.writeStatus(base);
  const { ingestImage } = await import('../ingest/image.js');
  const t0 = performance.now();
  const summary = await ingestImage({ files: req.files, mixer: req.mixer, out: req.out, kernelSize: req.kernelSize });
  const seconds = (performance.now() - t0) / 1000;
  return job.finish({
    ...finishedStatus(base, 'done', now().toISOString()),
    shards: { total: req.files.length, done: req.files.length },
    patches: { total: summary.patches, done: summary.patches },
    bytes: summary.bytes,
    workerSeconds: Math.round(seconds * 1000) / 1000,
    maxShardSeconds: Math.round(seconds * 1000) / 1000,
    outputs: [key],
    mixer: null,
  });
}
