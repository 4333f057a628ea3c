/**
 * Worker-thread entry of the embedded runner's pool (run.ts): opens the plan's image once, then turns
 * chunk tasks into framed (and deflated) bytes, one at a time, transferring the result buffers.
 *
 * Messages in: `{ type: 'init', plan }`, `{ type: 'task', id, task }`, `{ type: 'cancel' }`.
 * Messages out: `{ type: 'ready' }`, `{ type: 'result', id, result }`, `{ type: 'error', id?, error }`.
 */
import { parentPort } from 'node:worker_threads';
import { asGeotfrError } from '../errors.js';
import { ChunkProducer } from './chunk.js';
import type { ChunkTask, ExportPlan } from './plan.js';

export type ToWorker = { type: 'init'; plan: ExportPlan } | { type: 'task'; id: number; task: ChunkTask } | { type: 'cancel' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: import('./chunk.js').ChunkResult }
  | { type: 'error'; id?: number; error: { code: string; message: string; context: Record<string, unknown> } };

if (parentPort) {
  const port = parentPort;
  const controller = new AbortController();
  let producer: Promise<ChunkProducer> | undefined;
  let queue: Promise<void> = Promise.resolve();
  const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const fail = (err: unknown, id?: number) => {
    const e = asGeotfrError(err);
    send({ type: 'error', id, error: { code: e.code, message: e.message, context: { ...e.context } } });
  };

  port.on('message', (m: ToWorker) => {
    if (m.type === 'init') {
      producer = ChunkProducer.open(m.plan, { signal: controller.signal });
      producer.then(
        () => send({ type: 'ready' }),
        (err) => fail(err),
      );
    } else if (m.type === 'cancel') {
      controller.abort();
    } else if (m.type === 'task') {
      // One task at a time: bounded memory, and results come back in the order they were posted.
      queue = queue.then(async () => {
        try {
          const p = await producer!;
          const result = await p.produce(m.task, controller.signal);
          const d = result.data;
          // Transfer the buffer when the result owns it entirely (no copy); otherwise it is cloned.
          const own = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer;
          send({ type: 'result', id: m.id, result }, own ? [d.buffer as ArrayBuffer] : []);
        } catch (err) {
          fail(err, m.id);
        }
      });
    }
  });
}
