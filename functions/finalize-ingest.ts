/**
 * `finalizeIngest` (docs/semantics.md §13): the ingest finalizer, an HTTP function (a push
 * subscription on the ingest finalize topic posts to it) because assembling a large COG — reducing
 * the coarse levels, composing hundreds of parts — can outlast an event function's 9 minutes; HTTP
 * functions may run for up to 60. One message per finished strip; only the one that finds every strip
 * done assembles. `finalizeIngest` (shared/jobs/ingest-strips.ts) records permanent failures in the
 * job; functions/event.ts answers 200 (acknowledged) or 503 (redeliver).
 */
import { finalizeIngest, ingestConfigFromEnv, parseIngestFinalizeMessage } from '../shared/jobs/ingest-strips.js';
import { deadlineSignal } from './context.js';
import type { Handler } from './event.js';

export const finalizeIngestHandler: Handler = {
  async prepare(ev) {
    ev.jobId = parseIngestFinalizeMessage(ev.message?.json).jobId;
    return true;
  },
  async run(ev, d) {
    const msg = parseIngestFinalizeMessage(ev.message!.json);
    const status = await finalizeIngest(msg, d, deadlineSignal(ingestConfigFromEnv().timeoutSeconds));
    return { body: { jobId: msg.jobId, state: status.state }, message: `ingest ${msg.jobId} ${status.state}` };
  },
};
