/**
 * `planIngest` (docs/semantics.md §13): the distributed ingest's planner, an HTTP service (its
 * planning scan reads every record once, so it needs an HTTP function's longer time limit) that
 * takes an ingest request three ways: an HTTP POST, a Pub/Sub push from the ingest request topic, or
 * a Cloud Storage `object.finalized` event for an `ingest/*.json` drop. `submitIngest`
 * (shared/jobs/ingest-strips.ts) does the work; functions/event.ts settles the outcome.
 *
 * Job ids as for exports (shared/jobs/id.ts): a drop `ingest/NAME.json` gets `NAME-<generation>`, a
 * Pub/Sub request `ps-<messageId>` (or its `jobId` attribute), an HTTP POST `?jobId=` or a fresh id.
 * A permanent failure is recorded as a failed job in the output's bucket (else the drop bucket).
 */
import { openBucket } from '../shared/storage/open.js';
import { checkRequestSize } from '../shared/jobs/policy.js';
import { dropJobId, httpJobId, pubsubJobId } from '../shared/jobs/id.js';
import { recordRejected } from '../shared/jobs/planner.js';
import { submitIngest } from '../shared/jobs/ingest-strips.js';
import { httpRequestBody, type FunctionEvent, type Handler } from './event.js';
import { readDroppedJson } from './storage-event.js';

/** Where an ingest job's state goes: the output's bucket, else the drop bucket. */
function statusPlace(ev: FunctionEvent): { bucket: string; fileNamePrefix: string } | undefined {
  const out = (ev.request as { out?: unknown } | undefined)?.out;
  const o = typeof out === 'string' ? out : '';
  const bucket = o.startsWith('gs://') ? `gs://${o.slice(5).split('/')[0]}` : ev.object ? `gs://${ev.object.bucket}` : '';
  return bucket ? { bucket, fileNamePrefix: o.slice(bucket.length + 1) || 'ingest' } : undefined;
}

export const planIngestHandler: Handler = {
  async prepare(ev, d) {
    const policy = d.config.policy;
    if (ev.message) {
      ev.jobId = pubsubJobId(ev.message.id, ev.message.attributes);
      ev.request = ev.message.json;
      return true;
    }
    if (ev.object) {
      if (!/^ingest\/[^/].*\.json$/.test(ev.object.name)) return false;
      ev.jobId = dropJobId(ev.object.name.replace(/^ingest\//, ''), ev.object.generation);
      checkRequestSize(ev.object.size, policy);
      ev.request = await readDroppedJson(ev.object);
      return true;
    }
    const http = ev.http!;
    const q = http.query.jobId;
    ev.jobId = httpJobId(typeof q === 'string' ? q : undefined);
    ev.request = httpRequestBody(http, policy.maxRequestBytes, 'ingest');
    return true;
  },
  async run(ev, d) {
    // Drops are counted and bounded (no dead-letter topic behind Eventarc); Pub/Sub has its own.
    const result = await submitIngest(ev.request, ev.jobId!, d, { countDeliveries: ev.via === 'bucket' });
    return { body: { ...result }, message: `planned ingest ${result.jobId}: ${result.strips} strip(s)` };
  },
  async recordFailure(ev, e, d) {
    const place = statusPlace(ev);
    if (!ev.jobId || !place) return undefined;
    const fallback = ev.object ? await openBucket(`gs://${ev.object.bucket}`).catch(() => undefined) : undefined;
    const s = await recordRejected(ev.jobId, place, e, d, fallback, ev.request ?? null);
    return s && { destination: s.destination };
  },
};
