/**
 * `ingestPredictions` (docs/semantics.md §7, §10): a Cloud Storage `object.finalized` event for an ingest request
 * dropped at `ingest/NAME.json` → `runIngestJob` (shared/jobs/ingest.ts) → one COG, job status under
 * `.geotfr/jobs/NAME-<generation>/` in the output bucket. Other objects are ignored.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { asGeotfrError } from '../shared/errors.js';
import { checkRequestSize } from '../shared/jobs/policy.js';
import { dropJobId } from '../shared/jobs/id.js';
import { runIngestJob } from '../shared/jobs/ingest.js';
import { recordRejected } from '../shared/jobs/planner.js';
import { isRetryable } from '../shared/jobs/status.js';
import { deps, log, settle } from './context.js';
import { decodeStorageEvent, readDroppedJson } from './storage-event.js';

export async function ingestPredictions(event: CloudEvent<unknown>): Promise<void> {
  await settle('ingestPredictions', { id: event.id }, async () => {
    const obj = decodeStorageEvent(event.data);
    if (!/^ingest\/[^/].*\.json$/.test(obj.name)) return;
    const d = deps();
    const jobId = dropJobId(obj.name.replace(/^ingest\//, ''), obj.generation);
    let raw: unknown;
    try {
      checkRequestSize(obj.size, d.config.policy);
      raw = await readDroppedJson(obj);
      const status = await runIngestJob(raw, jobId, d);
      log('INFO', `ingest job ${jobId}: ${status.state}`, { jobId, outputs: status.outputs });
    } catch (err) {
      const e = asGeotfrError(err);
      if (!isRetryable(e)) {
        // Record the rejection where the user looks: the output's bucket, else the drop bucket.
        const out = typeof (raw as { out?: unknown })?.out === 'string' ? (raw as { out: string }).out : '';
        const bucket = out.startsWith('gs://') ? `gs://${out.slice(5).split('/')[0]}` : `gs://${obj.bucket}`;
        await recordRejected(jobId, { bucket, fileNamePrefix: out.slice(bucket.length + 1) || obj.name }, e, d).catch(() => undefined);
      }
      throw e;
    }
  });
}
