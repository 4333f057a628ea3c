/**
 * `deadLetter` (docs/semantics.md §10): a message that exhausted its delivery attempts on any subscription arrives
 * here (the dead-letter topic's push subscription) → `handleDeadLetter` marks its job failed with the
 * last recorded error as the reason. Settled by functions/event.ts.
 */
import { handleDeadLetter } from '../shared/jobs/deadletter.js';
import type { Handler } from './event.js';

export const deadLetterHandler: Handler = {
  // A message reaches the dead-letter topic after all its attempts, possibly hours after it was first
  // published: dropping it for its age would leave its job running.
  anyAge: true,
  async run(ev, d) {
    const msg = ev.message!;
    const r = await handleDeadLetter(msg, d);
    ev.jobId = r.jobId;
    return {
      body: { jobId: r.jobId, outcome: r.outcome },
      message: `dead-lettered message ${msg.id}: ${r.outcome}${r.status ? ` (${r.status.errors.at(-1)?.message ?? ''})` : ''}`,
    };
  },
};
