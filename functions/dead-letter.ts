/**
 * `deadLetter` (docs/semantics.md §10): a message that exhausted its delivery attempts on any subscription arrives
 * here (the dead-letter topic's push subscription) → `handleDeadLetter` marks its job failed with the
 * last recorded error as the reason.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { decodePushMessage } from '../shared/queue/push.js';
import { handleDeadLetter } from '../shared/jobs/deadletter.js';
import { deps, log, settle } from './context.js';

export async function deadLetter(event: CloudEvent<unknown>): Promise<void> {
  await settle('deadLetter', { id: event.id }, async () => {
    const msg = decodePushMessage(event.data, 'dead-letter');
    const r = await handleDeadLetter(msg, deps());
    log(r.outcome === 'failed' ? 'ERROR' : 'INFO', `dead-lettered message ${msg.id}: ${r.outcome}`, { jobId: r.jobId, reason: r.status?.errors.at(-1)?.message });
  });
}
