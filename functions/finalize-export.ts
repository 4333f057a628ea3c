/**
 * `finalizeExport` (docs/semantics.md §10): a Pub/Sub push after each finished shard → `finalizeJob`
 * (shared/jobs/finalizer.ts): status refresh while shards are missing; mixer, manifest and `done` once
 * all exist. Safe to run concurrently and repeatedly. Settled by functions/event.ts.
 */
import { finalizeJob, parseFinalizeMessage } from '../shared/jobs/finalizer.js';
import type { Handler } from './event.js';

export const finalizeExportHandler: Handler = {
  async prepare(ev) {
    ev.jobId = parseFinalizeMessage(ev.message?.json).jobId;
    return true;
  },
  async run(ev, d) {
    const msg = parseFinalizeMessage(ev.message!.json);
    const status = await finalizeJob(msg, d);
    return {
      body: { jobId: msg.jobId, state: status.state },
      message: `job ${msg.jobId} ${status.state}: ${status.shards.done}/${status.shards.total} shard(s), ${status.bytes} bytes`,
    };
  },
  // No recordFailure: a finalize message is only a nudge (each finished shard sends one); a stale or
  // malformed one is dropped with its log line and never fails a job.
};
