/**
 * Worker-thread entry of the embedded runner's pool (run.ts): opens the plan's image once, then turns
 * chunk tasks into framed (and deflated) bytes, one at a time, transferring the result buffers.
 *
 * Decoded source blocks come from the main thread, which decodes each once for every worker and
 * hands it over in shared memory (`TiffFile.sharedBlock`): without that, each worker decoded most
 * blocks again, since neighbouring chunks share blocks through their margins.
 *
 * Messages in: `{ type: 'init', plan }`, `{ type: 'task', id, task }`, `{ type: 'block', id, buffer | error }`, `{ type: 'cancel' }`.
 * Messages out: `{ type: 'ready' }`, `{ type: 'result', id, result }`, `{ type: 'block', id, uri, bx, by, plane }`, `{ type: 'error', id?, error }`.
 */
import { parentPort } from 'node:worker_threads';
import { fromWireError as fromWire, toWireError as toWire, type WireError } from '../errors.js';
import { ChunkProducer } from './chunk.js';
import { sharedBlockBytes } from './sabgc.js';
import type { ImageSpecOpener } from './opener.js';
import type { ChunkTask, ExportPlan } from './plan.js';

export type ToWorker =
  | { type: 'init'; plan: ExportPlan }
  | { type: 'task'; id: number; task: ChunkTask }
  | { type: 'block'; id: number; buffer?: SharedArrayBuffer; error?: WireError }
  | { type: 'cancel' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: import('./chunk.js').ChunkResult }
  | { type: 'block'; id: number; uri: string; bx: number; by: number; plane: number }
  | { type: 'error'; id?: number; error: WireError };

if (parentPort) {
  const port = parentPort;
  const controller = new AbortController();
  let producer: Promise<ChunkProducer> | undefined;
  let queue: Promise<void> = Promise.resolve();
  const send = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const fail = (err: unknown, id?: number) => send({ type: 'error', id, error: toWire(err) });
  // Block requests to the main thread, by id.
  let nextBlock = 0;
  const blocks = new Map<number, { resolve: (b: SharedArrayBuffer) => void; reject: (e: unknown) => void }>();
  const blockProvider = (uri: string) => (bx: number, by: number, plane: number) =>
    new Promise<SharedArrayBuffer>((resolve, reject) => {
      const id = nextBlock++;
      blocks.set(id, { resolve, reject });
      send({ type: 'block', id, uri, bx, by, plane });
    });

  port.on('message', (m: ToWorker) => {
    if (m.type === 'block') {
      const p = blocks.get(m.id);
      blocks.delete(m.id);
      if (m.buffer) {
        sharedBlockBytes(m.buffer.byteLength);
        p?.resolve(m.buffer);
      }
      else p?.reject(fromWire(m.error ?? { code: 'INTERNAL', message: 'block request failed', context: {} }));
    } else if (m.type === 'init') {
      const open: ImageSpecOpener = async (image, o) => (await import('../raster/open.js')).openImage(image, { ...o, blockProvider });
      producer = ChunkProducer.open(m.plan, { signal: controller.signal, open });
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
