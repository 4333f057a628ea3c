/**
 * The patch chunk pool: chunks produced on the calling thread, or on `worker_threads` that take their
 * decoded blocks from the main thread's block server (image.ts: each block decodes once for every
 * worker, as in image export's pool, export/pool.ts). Results come back per chunk; the runner writes
 * them in plan order.
 */
import { Worker } from 'node:worker_threads';
import { GeotfrError, asGeotfrError, fromWireError as fromWire, toWireError as toWire } from '../errors.js';
import type { ImageSource } from '../raster/types.js';
import type { SharedBlockServer } from './image.js';
import { PatchChunkProducer, type PatchChunkResult } from './chunk.js';
import type { PatchChunk, PatchPlan } from './plan.js';
import type { FromPatchWorker, ToPatchWorker } from './pool-worker.js';
import { workerEntry } from '../export/spawn.js';

export interface PatchPool {
  run(chunk: PatchChunk): Promise<PatchChunkResult>;
  /** Chunks to keep in flight. */
  readonly depth: number;
  close(): Promise<void>;
}

/** Produces chunks on this thread from `source` (left open: the caller owns it). */
export function inProcessPatchPool(plan: PatchPlan, source: ImageSource, signal?: AbortSignal): PatchPool {
  // Never closed here: closing the producer would close the caller's source.
  const producer = new PatchChunkProducer(plan, source);
  return { run: (c) => producer.produce(c, signal), depth: 1, close: async () => {} };
}

/**
 * `n` worker threads, each reading the plan's image (image.ts); `blocks` serves their block requests
 * and stays open after close (the caller owns it).
 */
export async function threadPatchPool(plan: PatchPlan, blocks: SharedBlockServer, n: number, signal?: AbortSignal): Promise<PatchPool> {
  const url = workerEntry('patches', new URL('./pool-worker.js', import.meta.url));
  type Pending = { resolve: (r: PatchChunkResult) => void; reject: (e: unknown) => void };
  const workers: { w: Worker; load: number; pending: Map<number, Pending> }[] = [];
  let fatal: unknown;
  let nextId = 0;
  const ready: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    // workerData must be an object: geotiff's `web-worker` dependency destructures it in any worker thread.
    const w = new Worker(url, { workerData: { role: 'geotfr-patches' } });
    const slot = { w, load: 0, pending: new Map<number, Pending>() };
    workers.push(slot);
    const failAll = (err: unknown) => {
      fatal ??= err;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    ready.push(
      new Promise<void>((resolve, reject) => {
        w.on('message', (m: FromPatchWorker) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'result') {
            const p = slot.pending.get(m.id);
            slot.pending.delete(m.id);
            slot.load--;
            const d = m.result.data as Uint8Array;
            p?.resolve({ ...m.result, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength) });
          } else if (m.type === 'block') {
            const reply = (r: { buffer?: SharedArrayBuffer; decodedBytes?: number; error?: ReturnType<typeof toWire> }) =>
              w.postMessage({ type: 'block', id: m.id, ...r } satisfies ToPatchWorker);
            blocks.block(m.uri, m.bx, m.by, m.plane).then(
              (buffer) => reply({ buffer, decodedBytes: blocks.decodedBytes }),
              (err) => reply({ error: toWire(err) }),
            );
          } else if (m.type === 'error') {
            const err = fromWire(m.error);
            if (m.id === undefined) {
              reject(err);
              failAll(err);
            } else {
              const p = slot.pending.get(m.id);
              slot.pending.delete(m.id);
              slot.load--;
              p?.reject(err);
            }
          }
        });
        w.on('error', (err) => {
          reject(err);
          failAll(asGeotfrError(err));
        });
        w.on('exit', (code) => {
          const err = new GeotfrError('INTERNAL', `patch worker exited with code ${code}`);
          reject(err);
          failAll(err);
        });
      }),
    );
    w.postMessage({ type: 'init', plan } satisfies ToPatchWorker);
  }
  const close = async () => {
    await Promise.all(
      workers.map(async ({ w }) => {
        w.removeAllListeners('exit');
        w.postMessage({ type: 'cancel' } satisfies ToPatchWorker);
        await w.terminate();
      }),
    );
  };
  const onAbort = () => void close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.all(ready);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    depth: 2 * n,
    run(chunk) {
      if (fatal) return Promise.reject(fatal);
      const slot = workers.reduce((a, b) => (b.load < a.load ? b : a));
      const id = nextId++;
      slot.load++;
      return new Promise<PatchChunkResult>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        slot.w.postMessage({ type: 'task', id, chunk } satisfies ToPatchWorker);
      });
    },
    close: async () => {
      signal?.removeEventListener('abort', onAbort);
      await close();
    },
  };
}
