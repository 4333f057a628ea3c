/**
 * `ingestStrip` (docs/semantics.md §13): a Pub/Sub push of one strip message → `runStrip`
 * (shared/jobs/ingest-strips.ts), which writes that strip's COG parts create-once and records its own
 * failures. Settled by functions/event.ts: throwing (retryable errors only) makes Pub/Sub redeliver,
 * then dead-letter.
 */
import { parseStripMessage, runStrip } from '../shared/jobs/ingest-strips.js';
import { deadlineSignal } from './context.js';
import type { Handler } from './event.js';

export const ingestStripHandler: Handler = {
  async prepare(ev) {
    ev.jobId = parseStripMessage(ev.message?.json).jobId;
    return true;
  },
  async run(ev, d) {
    const strip = parseStripMessage(ev.message!.json);
    const t0 = performance.now();
    const outcome = await runStrip(strip, ev.message!.deliveryAttempt, d, deadlineSignal(d.config.functionTimeoutSeconds));
    return {
      body: { ...strip, outcome },
      message: `strip ${strip.strip} of ingest ${strip.jobId}: ${outcome} in ${((performance.now() - t0) / 1000).toFixed(2)}s`,
    };
  },
};
