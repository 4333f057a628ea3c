/**
 * Worker-thread entry of the patch pool (pool.ts): opens the plan's image on its grid (image.ts) with
 * its decoded blocks served by the main thread (the same block sharing as image export,
 * export/pool-worker.ts), then turns chunks into deflated record bytes, one at a time.
 *
 * Messages in: `{ type: 'init', plan }`, `{ type: 'task', id, chunk }`, `{ type: 'block', id, buffer | error }`, `{ type: 'cancel' }`.
 * Messages out: `{ type: 'ready' }`, `{ type: 'result', id, result }`, `{ type: 'block', id, uri, bx, by, plane }`, `{ type: 'error', id?, error }`.
 */
import { setMaxListeners } from 'node:events';
import { parentPort } from 'node:worker_threads';
import { fromWireError as fromWire, toWireError as toWire, type WireError } from '../errors.js';
import { sharedBlockReceived } from '../export/sabgc.js';
import { PatchChunkProducer, type PatchChunkResult } from './chunk.js';
import type { PatchChunk, PatchPlan } from './plan.js';

export type ToPatchWorker =
  | { type: 'init'; plan: PatchPlan }
  | { type: 'task'; id: number; chunk: PatchChunk }
  /** `decodedBytes`: the block server's SharedBlockServer.decodedBytes when it answered. */
  | { type: 'block'; id: number; buffer?: SharedArrayBuffer; decodedBytes?: number; error?: WireError }
  | { type: 'cancel' };
export type FromPatchWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: PatchChunkResult }
  | { type: 'block'; id: number; uri: string; bx: number; by: number; plane: number }
  | { type: 'error'; id?: number; error: WireError };

if (parentPort) {
  const port = parentPort;
  const controller = new AbortController();
  // Each window read in flight (chunk.ts: 8) waits on the signal once per file it touches (up to the 16 kept open).
  setMaxListeners(8 * 16 + 16, controller.signal);
  let producer: Promise<PatchChunkProducer> | undefined;
  let queue: Promise<void> = Promise.resolve();
  const send = (m: FromPatchWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
  const fail = (err: unknown, id?: number) => send({ type: 'error', id, error: toWire(err) });
  let nextBlock = 0;
  const blocks = new Map<number, { resolve: (b: SharedArrayBuffer) => void; reject: (e: unknown) => void }>();
  const blockProvider = (uri: string) => (bx: number, by: number, plane: number) =>
    new Promise<SharedArrayBuffer>((resolve, reject) => {
      const id = nextBlock++;
      blocks.set(id, { resolve, reject });
      send({ type: 'block', id, uri, bx, by, plane });
    });
  port.on('message', (m: ToPatchWorker) => {
    if (m.type === 'block') {
      const p = blocks.get(m.id);
      blocks.delete(m.id);
      if (m.buffer) {
        sharedBlockReceived(m.buffer.byteLength, m.decodedBytes);
        p?.resolve(m.buffer);
      } else p?.reject(fromWire(m.error ?? { code: 'INTERNAL', message: 'block request failed', context: {} }));
    } else if (m.type === 'init') {
      producer = (async () => {
        const { openPatchImage } = await import('./image.js');
        const src = await openPatchImage(m.plan, { signal: controller.signal, blockProvider });
        try {
          return new PatchChunkProducer(m.plan, src);
        } catch (err) {
          await src.close();
          throw err;
        }
      })();
      producer.then(
        () => send({ type: 'ready' }),
        (err) => fail(err),
      );
    } else if (m.type === 'cancel') {
      controller.abort();
    } else if (m.type === 'task') {
      queue = queue.then(async () => {
        try {
          const result = await (await producer!).produce(m.chunk, controller.signal);
          const d = result.data;
          // Transferred when the result is the buffer's only user, as export/pool-worker.ts does: node:zlib's
          // output buffer (offset 0, larger than Buffer's pool) goes without a copy, a pool slab is cloned.
          const own = d.byteOffset === 0 && d.buffer instanceof ArrayBuffer && d.buffer.byteLength > Buffer.poolSize;
          send({ type: 'result', id: m.id, result }, own ? [d.buffer as ArrayBuffer] : []);
        } catch (err) {
          fail(err, m.id);
        }
      });
    }
  });
}
