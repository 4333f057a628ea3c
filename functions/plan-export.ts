/**
 * `planExport` (docs/semantics.md §10): one HTTP service receiving export requests three ways, as a Cloud Run
 * service does — a direct HTTP POST of the request, a Pub/Sub push (request topic; scheduled exports
 * publish there), or an Eventarc/GCS `object.finalized` CloudEvent for `requests/*.json` drops.
 * It only decodes the event; `submitJob` (shared/jobs/planner.ts) does the work.
 *
 * Responses: 202 (HTTP) or 200 (events) with `{jobId, statusUri, …}` when planned; for events, 2xx acknowledges (also for
 * permanent errors, recorded in the job status) and 5xx asks for redelivery (retryable errors).
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { openBucket } from '../shared/storage/open.js';
import { GeotfrError, asGeotfrError } from '../shared/errors.js';
import { checkRequestSize, type Policy } from '../shared/jobs/policy.js';
import { JobStore } from '../shared/jobs/store.js';
import { decodePushMessage } from '../shared/queue/push.js';
import { dropJobId, httpJobId, pubsubJobId } from '../shared/jobs/id.js';
import { recordRejected, statusStore, submitJob, type JobDeps } from '../shared/jobs/planner.js';
import { isRetryable } from '../shared/jobs/status.js';
import { deps, log } from './context.js';
import { decodeStorageEvent, readDroppedJson } from './storage-event.js';

const PUBSUB_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';
const STORAGE_FINALIZED = 'google.cloud.storage.object.v1.finalized';

/** Where the request came from, and the id its job gets (id.ts). */
interface Intake {
  via: 'http' | 'pubsub' | 'bucket';
  jobId: string;
  eventTime: Date;
  request: unknown;
  /** For drops: the bucket the request was dropped into (status goes there if the request names none). */
  dropBucket?: string;
}

/** Recognizes the event kind from CloudEvent headers (binary mode), a structured CloudEvent, or a raw push. */
function eventKind(req: Request): { type: string; data: unknown; time?: string; id?: string } {
  const h = req.headers;
  const body = req.body as Record<string, unknown> | undefined;
  if (typeof h['ce-type'] === 'string') return { type: h['ce-type'], data: body, time: h['ce-time'] as string | undefined, id: h['ce-id'] as string | undefined };
  if (body && typeof body.specversion === 'string' && typeof body.type === 'string')
    return { type: body.type, data: body.data, time: body.time as string | undefined, id: body.id as string | undefined };
  if (body && typeof body.subscription === 'string' && body.message && typeof body.message === 'object') return { type: PUBSUB_TYPE, data: body };
  return { type: 'http', data: body };
}

async function intake(req: Request, policy: Policy): Promise<Intake | undefined> {
  const ev = eventKind(req);
  if (ev.type === PUBSUB_TYPE) {
    const raw = ev.data as { message?: { data?: string; publishTime?: string } };
    checkRequestSize(Buffer.byteLength(raw?.message?.data ?? '', 'base64'), policy);
    const msg = decodePushMessage(ev.data, 'requests');
    const when = raw?.message?.publishTime ?? ev.time;
    return { via: 'pubsub', jobId: pubsubJobId(msg.id, msg.attributes), eventTime: when ? new Date(when) : new Date(), request: msg.json };
  }
  if (ev.type === STORAGE_FINALIZED) {
    const obj = decodeStorageEvent(ev.data);
    // Every object in the bucket triggers the function; only request drops are ours.
    if (!/^requests\/[^/].*\.json$/.test(obj.name)) return undefined;
    checkRequestSize(obj.size, policy);
    const request = await readDroppedJson(obj);
    return { via: 'bucket', jobId: dropJobId(obj.name, obj.generation), eventTime: obj.timeCreated ? new Date(obj.timeCreated) : new Date(), request, dropBucket: obj.bucket };
  }
  if (ev.type !== 'http') throw new GeotfrError('BAD_REQUEST', `unexpected event type ${ev.type}`);
  if (req.method !== 'POST') throw new GeotfrError('BAD_REQUEST', `POST an export request (got ${req.method})`);
  const size = Number(req.headers['content-length'] ?? Buffer.byteLength(JSON.stringify(req.body ?? '')));
  checkRequestSize(size, policy);
  if (req.body === undefined || typeof req.body !== 'object' || Buffer.isBuffer(req.body)) throw new GeotfrError('BAD_REQUEST', 'the body must be a JSON export request (Content-Type: application/json)');
  const q = req.query.jobId;
  return { via: 'http', jobId: httpJobId(typeof q === 'string' ? q : undefined), eventTime: new Date(), request: req.body };
}

async function recordRequestError(job: Intake, e: GeotfrError, d: JobDeps): Promise<void> {
  const store = await statusStore(job.request, d.config);
  if (!store) return;
  await new JobStore(store, job.jobId).recordError('request', { code: e.code, message: e.message, at: new Date().toISOString() });
}

const httpStatus = (e: GeotfrError) =>
  ({ BAD_REQUEST: 400, BAD_INPUT: 400, NOT_FOUND: 404, FORBIDDEN: 403, LIMIT: 413, CANCELLED: 503, IO: 503, INTERNAL: 500 } as Record<string, number>)[e.code] ?? 500;

export async function planExport(req: Request, res: Response): Promise<void> {
  let job: Intake | undefined;
  let d: JobDeps | undefined;
  try {
    d = deps();
    job = await intake(req, d.config.policy);
    if (!job) {
      res.status(204).send('');
      return;
    }
    const result = await submitJob(job.request, job.jobId, job.eventTime, d);
    if (result.dryRun) {
      res.status(200).json(result);
      return;
    }
    log('INFO', `planned job ${result.jobId}: ${result.shards} shard(s)`, { jobId: result.jobId, via: job.via });
    // The Pub/Sub emulator treats only 200/204 as an acknowledgement (Pub/Sub itself also takes 202).
    res.status(job.via === 'http' ? 202 : 200).json(result);
  } catch (err) {
    const e = asGeotfrError(err);
    if (isRetryable(e)) {
      log('WARNING', `planExport: retryable: ${e.code}: ${e.message}`, { jobId: job?.jobId });
      // Best effort, for the dead-letter reason if every redelivery fails the same way.
      if (job && d) await recordRequestError(job, e, d).catch(() => {});
      res.status(httpStatus(e)).json({ error: e.toJSON(), jobId: job?.jobId });
      return;
    }
    let statusUri: string | undefined;
    if (job && d) {
      const fallback = job.dropBucket ? await openBucket(`gs://${job.dropBucket}`).catch(() => undefined) : undefined;
      const s = await recordRejected(job.jobId, job.request, e, d, fallback).catch((err2) => {
        log('ERROR', `could not record rejected job ${job?.jobId}: ${asGeotfrError(err2).message}`);
        return undefined;
      });
      if (s) statusUri = s.destination;
    }
    log('ERROR', `planExport: rejected: ${e.code}: ${e.message}`, { jobId: job?.jobId, via: job?.via });
    // Events are acknowledged (2xx) so a bad request is not redelivered forever; HTTP callers get the code.
    const status = job?.via === 'http' || !job ? httpStatus(e) : 200;
    res.status(status).json({ error: e.toJSON(), jobId: job?.jobId, state: 'failed', ...(statusUri ? { destination: statusUri } : {}) });
  }
}
