/**
 * `ingestStrip` (docs/semantics.md §13): a Pub/Sub push of one strip message → `runStrip`
 * (shared/jobs/ingest-strips.ts), which writes that strip's COG parts create-once. Returning
 * acknowledges; throwing (retryable errors only) makes Pub/Sub redeliver, then dead-letter.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { decodePushMessage } from '../shared/queue/push.js';
import { parseStripMessage, runStrip } from '../shared/jobs/ingest-strips.js';
import { deadlineSignal, deps, log, settle } from './context.js';

export async function ingestStrip(event: CloudEvent<unknown>): Promise<void> {
  await settle('ingestStrip', { id: event.id }, async () => {
    const msg = decodePushMessage(event.data, 'strips');
    const strip = parseStripMessage(msg.json);
    const d = deps();
    const t0 = performance.now();
    const outcome = await runStrip(strip, msg.deliveryAttempt, d, deadlineSignal(d.config.functionTimeoutSeconds));
    log('INFO', `strip ${strip.strip} of ingest ${strip.jobId}: ${outcome} in ${((performance.now() - t0) / 1000).toFixed(2)}s`, { ...strip, outcome });
  });
}
