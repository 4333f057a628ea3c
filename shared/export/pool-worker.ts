/**
 * Worker-thread entry of the embedded runner's pool (run.ts): opens the plan's image once, then turns
 * chunk tasks into framed (and deflated) bytes, encoding one at a time while the next one's window
 * is read, transferring the result buffers.
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
import { ChunkProducer, type ReadChunk } from './chunk.js';
import { sharedBlockReceived } from './sabgc.js';
import type { ChunkTask, ExportPlan } from './plan.js';

export type ToWorker =
  | { type: 'init'; plan: ExportPlan }
  | { type: 'task'; id: number; task: ChunkTask }
  /** `decodedBytes`: the block server's count of bytes decoded so far when it answered (pool.ts). */
  | { type: 'block'; id: number; buffer?: SharedArrayBuffer; decodedBytes?: number; error?: WireError }
  | { type: 'cancel' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'result'; id: number; result: import('./chunk.js').ChunkResult }
  | { type: 'block'; id: number; uri: string; bx: number; by: number; plane: number }
  | { type: 'error'; id?: number; error: WireError };

/** Chunks whose window is read ahead of the one being encoded (each holds a window: bounded memory). */
const READ_AHEAD = 1;

interface Pending {
  id: number;
  task: ChunkTask;
  read?: Promise<ReadChunk>;
}

if (parentPort) {
  const port = parentPort;
  // What opening the plan's image needs (shared/grid, shared/raster, geotiff, proj4) loads now, while
  // the main thread still plans: the 'init' message then finds it loaded (opener.ts imports it).
  import('../grid/source.js').catch(() => {});
  const controller = new AbortController();
  let producer: Promise<ChunkProducer> | undefined;
  let opened: ChunkProducer | undefined;
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

  /**
   * Tasks received and not yet answered, in order. The first READ_AHEAD + 1 have their window read
   * started: the next chunk's blocks are asked for (and decoded by the main thread) while this
   * thread deflates the current one, which blocks its event loop; without that the thread sat idle
   * waiting for blocks at the start of every chunk.
   */
  const pending: Pending[] = [];
  const startReads = () => {
    for (const e of pending.slice(0, READ_AHEAD + 1)) {
      if (e.read) continue;
      // Once open, the read starts synchronously, so its block requests go out before this thread
      // turns to (synchronous) encoding; a `then` would defer them past it.
      e.read = opened ? opened.read(e.task, controller.signal) : producer!.then((p) => p.read(e.task, controller.signal));
      e.read.catch(() => {}); // awaited in finishNext
    }
  };
  const finishNext = async (e: Pending) => {
    try {
      const p = await producer!;
      const result = p.finish(await e.read!);
      const d = result.data;
      // Transfer the buffer when the result is its only user (no copy); otherwise it is cloned.
      // Producers return whole buffers or node:zlib's output buffer; a smaller one may be a slab of
      // Buffer's shared pool, which must never be detached.
      const own = d.byteOffset === 0 && d.buffer instanceof ArrayBuffer && d.buffer.byteLength > Buffer.poolSize;
      send({ type: 'result', id: e.id, result }, own ? [d.buffer as ArrayBuffer] : []);
    } catch (err) {
      fail(err, e.id);
    } finally {
      pending.splice(pending.indexOf(e), 1);
      startReads();
    }
  };

  port.on('message', (m: ToWorker) => {
    if (m.type === 'block') {
      const p = blocks.get(m.id);
      blocks.delete(m.id);
      if (m.buffer) {
        sharedBlockReceived(m.buffer.byteLength, m.decodedBytes);
        p?.resolve(m.buffer);
      } else p?.reject(fromWire(m.error ?? { code: 'INTERNAL', message: 'block request failed', context: {} }));
    } else if (m.type === 'init') {
      producer = ChunkProducer.open(m.plan, { signal: controller.signal, blockProvider });
      producer.then(
        (p) => {
          opened = p;
          send({ type: 'ready' });
        },
        (err) => fail(err),
      );
    } else if (m.type === 'cancel') {
      controller.abort();
    } else if (m.type === 'task') {
      const entry: Pending = { id: m.id, task: m.task };
      pending.push(entry);
      startReads();
      // One chunk encoded at a time, in the order posted: bounded memory, results in order.
      queue = queue.then(() => finishNext(entry));
    }
  });
}
