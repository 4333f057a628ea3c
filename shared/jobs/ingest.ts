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
import { GeotfrError } from '../errors.js';
import { checkValueDepth } from '../limits.js';
import { checkSourceUri, checkDestination } from './policy.js';
import type { JobDeps } from './planner.js';
import { finishedStatus, newStatus, type JobStatus } from './status.js';
import { JobStore } from './store.js';

export interface IngestRequest {
  files: string[];
  mixer: string;
  out: string;
  kernelSize?: [number, number];
}

const KEYS = new Set(['files', 'prefix', 'mixer', 'out', 'kernelSize']);

/** Validates the request shape and the policy, and expands `prefix` into the sorted TFRecord files under it. */
export async function parseIngestRequest(raw: unknown, deps: JobDeps): Promise<IngestRequest> {
  const policy = deps.config.policy;
  checkValueDepth(raw); // a permanent BAD_INPUT before anything walks a hostile nesting (docs/limits.md)
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new GeotfrError('BAD_REQUEST', 'an ingest request must be a JSON object');
  const r = raw as Record<string, unknown>;
  const unknown = Object.keys(r).filter((k) => !KEYS.has(k));
  if (unknown.length) throw new GeotfrError('BAD_REQUEST', `Unknown ingest request fields: ${unknown.join(', ')}`);
  if (typeof r.mixer !== 'string') throw new GeotfrError('BAD_REQUEST', 'mixer (a gs:// URI) is required', { field: 'mixer' });
  if (typeof r.out !== 'string' || !r.out.startsWith('gs://')) throw new GeotfrError('BAD_REQUEST', 'out must be a gs:// URI of the output GeoTIFF', { field: 'out' });
  checkSourceUri(r.mixer, policy, 'mixer');
  const outLoc = r.out.slice(5);
  const outBucket = outLoc.split('/')[0]!;
  checkDestination(`gs://${outBucket}`, outLoc.slice(outBucket.length + 1), policy);
  let kernelSize: [number, number] | undefined;
  if (r.kernelSize !== undefined) {
    const k = r.kernelSize;
    if (!Array.isArray(k) || k.length !== 2 || !k.every((v) => Number.isInteger(v) && v > 0)) throw new GeotfrError('BAD_REQUEST', 'kernelSize must be [x, y] positive integers', { field: 'kernelSize' });
    kernelSize = [k[0], k[1]];
  }
  let files: string[];
  if (Array.isArray(r.files) && r.prefix === undefined) {
    if (!r.files.length || !r.files.every((f) => typeof f === 'string')) throw new GeotfrError('BAD_REQUEST', 'files must be a non-empty list of URIs', { field: 'files' });
    files = r.files as string[];
    files.forEach((f, i) => checkSourceUri(f, policy, `files[${i}]`));
  } else if (typeof r.prefix === 'string' && r.files === undefined) {
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

/** Runs an ingest job; permanent errors are recorded as a failed job and rethrown for the caller to ack. */
export async function runIngestJob(raw: unknown, jobId: string, deps: JobDeps): Promise<JobStatus> {
  const now = deps.now ?? (() => new Date());
  const req = await parseIngestRequest(raw, deps);
  const { store, key } = await resolveUri(req.out, 'out');
  const job = new JobStore(store, jobId);
  const terminal = await job.terminal();
  if (terminal) return terminal;
  const started = now();
  const base: JobStatus = { ...newStatus(jobId, 'image', job.store, key, started), state: 'running', startedAt: started.toISOString(), shards: { total: req.files.length, done: 0 } };
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
