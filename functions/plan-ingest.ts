/**
 * `planIngest` (docs/semantics.md §13): the distributed ingest's planner, an HTTP service (its
 * planning scan reads every record once, so it needs an HTTP function's longer time limit) that
 * takes an ingest request three ways: an HTTP POST, a Pub/Sub push from the ingest request topic, or
 * an Eventarc/GCS `object.finalized` CloudEvent for an `ingest/*.json` drop. `submitIngest`
 * (shared/jobs/ingest-strips.ts) does the work.
 *
 * Job ids as for exports (shared/jobs/id.ts): a drop `ingest/NAME.json` gets `NAME-<generation>`, a
 * Pub/Sub request `ps-<messageId>` (or its `jobId` attribute), an HTTP POST `?jobId=` or a fresh id.
 * Answers: 202 (HTTP) / 200 (events) with `{jobId, statusUri, strips}`; permanent errors are recorded
 * as a failed job in the output's bucket (events: acknowledged with 200; HTTP: 4xx); retryable: 5xx.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { GeotfrError, asGeotfrError } from '../shared/errors.js';
import { checkRequestSize } from '../shared/jobs/policy.js';
import { decodePushMessage } from '../shared/queue/push.js';
import { dropJobId, httpJobId, pubsubJobId } from '../shared/jobs/id.js';
import { recordRejected } from '../shared/jobs/planner.js';
import { submitIngest } from '../shared/jobs/ingest-strips.js';
import { isRetryable } from '../shared/jobs/status.js';
import { deps, log } from './context.js';
import { decodeStorageEvent, readDroppedJson } from './storage-event.js';

const PUBSUB_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';
const STORAGE_FINALIZED = 'google.cloud.storage.object.v1.finalized';

interface Intake {
  via: 'http' | 'pubsub' | 'bucket';
  jobId: string;
  request: unknown;
  dropBucket?: string;
}

async function intake(req: Request, maxBytes: Parameters<typeof checkRequestSize>[1]): Promise<Intake | undefined> {
  const h = req.headers;
  const body = req.body as Record<string, unknown> | undefined;
  let type = 'http';
  let data: unknown = body;
  if (typeof h['ce-type'] === 'string') type = h['ce-type'];
  else if (body && typeof body.specversion === 'string' && typeof body.type === 'string') [type, data] = [body.type, body.data];
  else if (body && typeof body.subscription === 'string' && body.message && typeof body.message === 'object') type = PUBSUB_TYPE;
  if (type === PUBSUB_TYPE) {
    checkRequestSize(Buffer.byteLength(String((data as { message?: { data?: string } })?.message?.data ?? ''), 'base64'), maxBytes);
    const msg = decodePushMessage(data, 'ingest-requests');
    return { via: 'pubsub', jobId: pubsubJobId(msg.id, msg.attributes), request: msg.json };
  }
  if (type === STORAGE_FINALIZED) {
    const obj = decodeStorageEvent(data);
    if (!/^ingest\/[^/].*\.json$/.test(obj.name)) return undefined;
    checkRequestSize(obj.size, maxBytes);
    return { via: 'bucket', jobId: dropJobId(obj.name.replace(/^ingest\//, ''), obj.generation), request: await readDroppedJson(obj), dropBucket: obj.bucket };
  }
  if (type !== 'http') throw new GeotfrError('BAD_REQUEST', `unexpected event type ${type}`);
  if (req.method !== 'POST') throw new GeotfrError('BAD_REQUEST', `POST an ingest request (got ${req.method})`);
  checkRequestSize(Number(h['content-length'] ?? Buffer.byteLength(JSON.stringify(body ?? ''))), maxBytes);
  if (body === undefined || typeof body !== 'object' || Buffer.isBuffer(body)) throw new GeotfrError('BAD_REQUEST', 'the body must be a JSON ingest request (Content-Type: application/json)');
  const q = req.query.jobId;
  return { via: 'http', jobId: httpJobId(typeof q === 'string' ? q : undefined), request: body };
}

const httpStatus = (e: GeotfrError) => ({ BAD_REQUEST: 400, BAD_INPUT: 400, NOT_FOUND: 404, FORBIDDEN: 403, LIMIT: 413 } as Record<string, number>)[e.code] ?? 500;

export async function planIngest(req: Request, res: Response): Promise<void> {
  let job: Intake | undefined;
  const d = deps();
  try {
    job = await intake(req, d.config.policy);
    if (!job) {
      res.status(204).send('');
      return;
    }
    const result = await submitIngest(job.request, job.jobId, d);
    log('INFO', `planned ingest ${result.jobId}: ${result.strips} strip(s)`, { jobId: result.jobId, via: job.via });
    res.status(job.via === 'http' ? 202 : 200).json(result);
  } catch (err) {
    const e = asGeotfrError(err);
    if (isRetryable(e)) {
      log('WARNING', `planIngest: retryable: ${e.code}: ${e.message}`, { jobId: job?.jobId });
      res.status(503).json({ error: e.toJSON(), jobId: job?.jobId });
      return;
    }
    if (job) {
      // The failure goes where the user looks: the output's bucket, else the drop bucket.
      const out = typeof (job.request as { out?: unknown })?.out === 'string' ? (job.request as { out: string }).out : '';
      const bucket = out.startsWith('gs://') ? `gs://${out.slice(5).split('/')[0]}` : job.dropBucket ? `gs://${job.dropBucket}` : '';
      if (bucket) await recordRejected(job.jobId, { bucket, fileNamePrefix: out.slice(bucket.length + 1) || 'ingest' }, e, d).catch(() => undefined);
    }
    log('ERROR', `planIngest: rejected: ${e.code}: ${e.message}`, { jobId: job?.jobId, via: job?.via });
    res.status(job?.via === 'http' || !job ? httpStatus(e) : 200).json({ error: e.toJSON(), jobId: job?.jobId, state: 'failed' });
  }
}
