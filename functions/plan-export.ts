/**
 * `planExport` (docs/semantics.md §10): one HTTP service receiving export requests three ways, as a Cloud Run
 * service does — a direct HTTP POST of the request, a Pub/Sub push (request topic; scheduled exports
 * publish there), or an Eventarc/GCS `object.finalized` CloudEvent for `requests/*.json` drops.
 * It names the job and reads the request; `submitJob` (shared/jobs/planner.ts) does the work, and
 * functions/event.ts settles it: 202 (HTTP) or 200 (events) with `{jobId, statusUri, …}`; a permanent
 * error is recorded as a failed job (unless the id belongs to another request: 409, nothing touched)
 * and answered with its status for HTTP, 200 for events; a retryable one with 503.
 */
import { openBucket } from '../shared/storage/open.js';
import { checkRequestSize } from '../shared/jobs/policy.js';
import { JobStore } from '../shared/jobs/store.js';
import { dropJobId, httpJobId, pubsubJobId } from '../shared/jobs/id.js';
import { recordRejected, statusStore, submitJob } from '../shared/jobs/planner.js';
import { httpRequestBody, type Handler } from './event.js';
import { readDroppedJson } from './storage-event.js';

export const planExportHandler: Handler = {
  async prepare(ev, d) {
    const policy = d.config.policy;
    if (ev.message) {
      ev.jobId = pubsubJobId(ev.message.id, ev.message.attributes);
      ev.request = ev.message.json;
      return true;
    }
    if (ev.object) {
      // Every object in the bucket triggers the function; only request drops are ours.
      if (!/^requests\/[^/].*\.json$/.test(ev.object.name)) return false;
      ev.jobId = dropJobId(ev.object.name, ev.object.generation);
      checkRequestSize(ev.object.size, policy);
      ev.request = await readDroppedJson(ev.object);
      return true;
    }
    const http = ev.http!;
    const q = http.query.jobId;
    ev.jobId = httpJobId(typeof q === 'string' ? q : undefined);
    ev.request = httpRequestBody(http, policy.maxRequestBytes, 'export');
    return true;
  },
  async run(ev, d) {
    const result = await submitJob(ev.request, ev.jobId!, ev.time ?? new Date(), d);
    return { body: { ...result }, message: `planned job ${result.jobId}: ${result.shards} shard(s)` };
  },
  async recordFailure(ev, e, d) {
    if (!ev.jobId || ev.request === undefined) return undefined;
    const fallback = ev.object ? await openBucket(`gs://${ev.object.bucket}`).catch(() => undefined) : undefined;
    const s = await recordRejected(ev.jobId, ev.request, e, d, fallback);
    return s && { destination: s.destination };
  },
  async recordRetry(ev, e, d) {
    // For the dead-letter reason if every redelivery fails the same way.
    const store = ev.jobId && (await statusStore(ev.request, d.config));
    if (store) await new JobStore(store, ev.jobId!).recordError('request', { code: e.code, message: e.message, at: new Date().toISOString() });
  },
};
