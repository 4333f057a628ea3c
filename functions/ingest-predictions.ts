/**
 * `ingestPredictions` (docs/semantics.md §7, §10): a Cloud Storage `object.finalized` event for an ingest request
 * dropped at `ingest/NAME.json` → `runIngestJob` (shared/jobs/ingest.ts) → one COG, job status under
 * `.geotfr/jobs/NAME-<generation>/` in the output bucket. Other objects are ignored. Settled by
 * functions/event.ts; bucket drops have no dead-letter topic, so `runIngestJob` bounds the deliveries.
 */
import { openBucket } from '../shared/storage/open.js';
import { checkRequestSize } from '../shared/jobs/policy.js';
import { dropJobId } from '../shared/jobs/id.js';
import { runIngestJob } from '../shared/jobs/ingest.js';
import { recordRejected } from '../shared/jobs/planner.js';
import { JobStore } from '../shared/jobs/store.js';
import type { BlobStore } from '../shared/storage/port.js';
import type { JobDeps } from '../shared/jobs/planner.js';
import type { FunctionEvent, Handler } from './event.js';
import { readDroppedJson } from './storage-event.js';

/** Where an ingest job's state goes: the output's bucket when the request names an allowed one, else the drop bucket. */
function statusPlace(ev: FunctionEvent): { bucket: string; fileNamePrefix: string } {
  const out = (ev.request as { out?: unknown } | undefined)?.out;
  const o = typeof out === 'string' ? out : '';
  const bucket = o.startsWith('gs://') ? `gs://${o.slice(5).split('/')[0]}` : `gs://${ev.object!.bucket}`;
  return { bucket, fileNamePrefix: o.slice(bucket.length + 1) || ev.object!.name };
}

async function jobStore(ev: FunctionEvent, d: JobDeps): Promise<BlobStore | undefined> {
  const { statusStore } = await import('../shared/jobs/planner.js');
  return (await statusStore(statusPlace(ev), d.config)) ?? (await openBucket(`gs://${ev.object!.bucket}`).catch(() => undefined));
}

export const ingestPredictionsHandler: Handler = {
  async prepare(ev, d) {
    if (!ev.object || !/^ingest\/[^/].*\.json$/.test(ev.object.name)) return false;
    ev.jobId = dropJobId(ev.object.name.replace(/^ingest\//, ''), ev.object.generation);
    checkRequestSize(ev.object.size, d.config.policy);
    ev.request = await readDroppedJson(ev.object);
    return true;
  },
  async run(ev, d) {
    const status = await runIngestJob(ev.request, ev.jobId!, d);
    return {
      body: { jobId: ev.jobId, state: status.state, outputs: status.outputs },
      message: `ingest job ${ev.jobId}: ${status.state}${status.state === 'failed' ? ` (${status.errors.at(-1)?.message})` : ''}`,
    };
  },
  async recordFailure(ev, e, d) {
    if (!ev.jobId) return undefined;
    const fallback = await openBucket(`gs://${ev.object!.bucket}`).catch(() => undefined);
    // The job id was claimed with the request as dropped (shared/jobs/ingest.ts), so claim with it here too.
    const s = await recordRejected(ev.jobId, statusPlace(ev), e, d, fallback, ev.request ?? null);
    return s && { destination: s.destination };
  },
  async recordRetry(ev, e, d) {
    const store = ev.jobId && (await jobStore(ev, d));
    if (store) await new JobStore(store, ev.jobId!).recordError('request', { code: e.code, message: e.message, at: new Date().toISOString() });
  },
};
