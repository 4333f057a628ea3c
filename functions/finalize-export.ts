/**
 * `finalizeExport` (docs/semantics.md §10): a Pub/Sub push after each finished shard → `finalizeJob`
 * (shared/jobs/finalizer.ts): status refresh while shards are missing; mixer, manifest and `done` once
 * all exist. Safe to run concurrently and repeatedly.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { decodePushMessage } from '../shared/queue/push.js';
import { finalizeJob, parseFinalizeMessage } from '../shared/jobs/finalizer.js';
import { deps, log, settle } from './context.js';

export async function finalizeExport(event: CloudEvent<unknown>): Promise<void> {
  await settle('finalizeExport', { id: event.id }, async () => {
    const msg = parseFinalizeMessage(decodePushMessage(event.data, 'finalize').json);
    const status = await finalizeJob(msg, deps());
    if (status.state === 'done') log('INFO', `job ${msg.jobId} done: ${status.shards.total} shard(s), ${status.bytes} bytes`, { jobId: msg.jobId });
  });
}
