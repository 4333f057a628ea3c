/**
 * `finalizeIngest` (docs/semantics.md §13): the ingest finalizer, an HTTP function (a push
 * subscription on the ingest finalize topic posts to it) because assembling a large COG — reducing
 * the coarse levels, composing hundreds of parts — can outlast an event function's 9 minutes; HTTP
 * functions may run for up to 60. One message per finished strip; only the one that finds every strip
 * done assembles. 200 acknowledges (done, still waiting, or a permanent failure recorded in the job);
 * 503 asks Pub/Sub to redeliver.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { asGeotfrError } from '../shared/errors.js';
import { decodePushMessage } from '../shared/queue/push.js';
import { finalizeIngest as finalize, ingestConfigFromEnv, parseIngestFinalizeMessage } from '../shared/jobs/ingest-strips.js';
import { isRetryable } from '../shared/jobs/status.js';
import { deadlineSignal, deps, log } from './context.js';

export async function finalizeIngest(req: Request, res: Response): Promise<void> {
  const body = req.body as Record<string, unknown> | undefined;
  // A structured CloudEvent carries the push body in `data`; a plain push is the body itself.
  const data = body && typeof body.specversion === 'string' ? body.data : body;
  try {
    const msg = parseIngestFinalizeMessage(decodePushMessage(data, 'ingest-finalize').json);
    const status = await finalize(msg, deps(), deadlineSignal(ingestConfigFromEnv().timeoutSeconds));
    if (status.state === 'done' || status.state === 'failed') log(status.state === 'done' ? 'INFO' : 'ERROR', `ingest ${msg.jobId} ${status.state}`, { jobId: msg.jobId, errors: status.errors });
    res.status(200).json({ jobId: msg.jobId, state: status.state });
  } catch (err) {
    const e = asGeotfrError(err);
    if (isRetryable(e)) {
      log('WARNING', `finalizeIngest: retryable: ${e.code}: ${e.message}`);
      res.status(503).json({ error: e.toJSON() });
      return;
    }
    log('ERROR', `finalizeIngest: permanent error, acknowledged: ${e.code}: ${e.message}`);
    res.status(200).json({ error: e.toJSON() });
  }
}
