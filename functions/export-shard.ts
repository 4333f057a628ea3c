/**
 * `exportShard` (docs/semantics.md §10): a Pub/Sub push of one shard message → `runShard` (shared/jobs/shard-worker.ts),
 * which writes that shard create-once in row-major order. Returning acknowledges; throwing (retryable
 * errors only) makes Pub/Sub redeliver, and after the subscription's attempts dead-letter it.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { decodePushMessage } from '../shared/queue/push.js';
import { parseShardMessage, runShard } from '../shared/jobs/shard-worker.js';
import { deadlineSignal, deps, log, settle } from './context.js';

export async function exportShard(event: CloudEvent<unknown>): Promise<void> {
  await settle('exportShard', { id: event.id }, async () => {
    const msg = decodePushMessage(event.data, 'shards');
    const shard = parseShardMessage(msg.json);
    const d = deps();
    const t0 = performance.now();
    const outcome = await runShard(shard, msg.deliveryAttempt, d, deadlineSignal(d.config.functionTimeoutSeconds));
    log('INFO', `shard ${shard.shard} of job ${shard.jobId}: ${outcome} in ${((performance.now() - t0) / 1000).toFixed(2)}s`, { ...shard, outcome });
  });
}
