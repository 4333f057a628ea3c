/**
 * `exportShard` (docs/semantics.md §10): a Pub/Sub push of one worker message → `runShard`
 * (shared/jobs/shard-worker.ts), which writes that shard create-once in row-major order, or a table
 * job's one output. Settled by functions/event.ts: throwing (retryable errors only) makes Pub/Sub
 * redeliver, and after the subscription's attempts dead-letter it.
 */
import { parseShardMessage, runShard } from '../shared/jobs/shard-worker.js';
import { failStaleShard } from '../shared/jobs/deadletter.js';
import { deadlineSignal } from './context.js';
import type { Handler } from './event.js';

export const exportShardHandler: Handler = {
  async prepare(ev) {
    ev.jobId = parseShardMessage(ev.message?.json).jobId;
    return true;
  },
  async run(ev, d) {
    const shard = parseShardMessage(ev.message!.json);
    const t0 = performance.now();
    const outcome = await runShard(shard, ev.message!.deliveryAttempt, d, deadlineSignal(d.config.functionTimeoutSeconds));
    return {
      body: { ...shard, outcome },
      message: `shard ${shard.shard} of job ${shard.jobId}: ${outcome} in ${((performance.now() - t0) / 1000).toFixed(2)}s`,
    };
  },
  // runShard records its own failures; what reaches here failed before it ran: a stale message is
  // acknowledged, so its job would never finish; a malformed one is only logged (it names no job we trust).
  recordFailure: (ev, e, d) => failStaleShard(ev.message, e, d),
};
