/**
 * The export's chunk pool: chunk tasks computed in-process, or on `worker_threads` that share one
 * decoder (the main thread decodes each source block once into shared memory and serves it).
 */
import { Worker } from 'node:worker_threads';
import { GeotfrError, asGeotfrError, fromWireError as fromWire, toWireError as toWire } from '../errors.js';
import { ChunkProducer, blockCacheStats, type BlockCacheStats, type ChunkResult } from './chunk.js';
import { tilesWindow } from './grid.js';
import type { ChunkTask, ExportPlan, ImageSpecOpener } from './plan.js';
import type { FromWorker, ToWorker } from './pool-worker.js';
import { sharedBlockBytes } from './sabgc.js';

/** Computes chunks: in-process, or on a pool of worker threads. */
export interface ChunkPool {
  /** Resolves with the chunk's result; rejects with the task's error. */
  run(task: ChunkTask): Promise<ChunkResult>;
  /** How many tasks to keep in flight. */
  readonly depth: number;
  /** The decoded block cache of the thread that decodes (undefined for non-GeoTIFF sources). */
  cacheStats(): BlockCacheStats | undefined;
  close(): Promise<void>;
}

export async function inProcessPool(plan: ExportPlan, open: ImageSpecOpener | undefined, signal?: AbortSignal): Promise<ChunkPool> {
  const producer = await ChunkProducer.open(plan, { open, signal });
  return { run: (t) => producer.produce(t, signal), depth: 1, cacheStats: () => producer.cacheStats(), close: () => producer.close() };
}

/** A worker thread started ahead of the plan (it loads its modules while the main thread plans). */
interface Spawned {
  w: Worker;
  /** Rejects if the worker errors or exits before the pool attaches its own listeners. */
  failed: Promise<never>;
}

export function spawnWorkers(n: number): Spawned[] {
  const url = new URL('./pool-worker.js', import.meta.url);
  return Array.from({ length: n }, () => {
    // workerData must be an object: geotiff's `web-worker` dependency destructures it in any worker thread.
    const w = new Worker(url, { workerData: { role: 'geotfr-export' } });
    const failed = new Promise<never>((_, reject) => {
      w.once('error', reject);
      w.once('exit', (code) => reject(new GeotfrError('INTERNAL', `export worker exited with code ${code}`)));
    });
    failed.catch(() => {});
    return { w, failed };
  });
}

export async function terminateSpawned(spawned: Spawned[]): Promise<void> {
  await Promise.all(
    spawned.map(async ({ w }) => {
      w.removeAllListeners('exit');
      await w.terminate().catch(() => {});
    }),
  );
}

/**
 * The image opened once more on this thread with its decoded blocks in shared memory: workers ask
 * for blocks by file and position (worker.ts) and every block decodes once for all of them.
 */
interface BlockServer {
  /** Answers a worker's block request (the block, or the error decoding it). */
  serve(w: Worker, m: Extract<FromWorker, { type: 'block' }>): void;
  cacheStats(): BlockCacheStats | undefined;
  /** Starts decoding the blocks of these chunks' windows, before any worker asks for them. */
  warm(tasks: ChunkTask[]): void;
  close(): Promise<void>;
}

async function blockServer(plan: ExportPlan, signal?: AbortSignal): Promise<BlockServer> {
  const { openImage } = await import('../raster/open.js');
  const src = await openImage(plan.request.image, { signal, sharedBlocks: true });
  const files = new Map(src.files.map((f) => [f.uri, f]));
  const decoded = new Map<unknown, number>();
  return {
    serve(w, m) {
      const reply = (r: Omit<Extract<ToWorker, { type: 'block' }>, 'type' | 'id'>) => w.postMessage({ type: 'block', id: m.id, ...r } satisfies ToWorker);
      const file = files.get(m.uri);
      if (!file) return reply({ error: toWire(new GeotfrError('INTERNAL', `a worker asked for a block of ${m.uri}, which is not in the export`)) });
      file.sharedBlock(m.bx, m.by, m.plane).then(
        (buffer) => {
          // Counted per decode, not per reply: only new blocks add shared memory here.
          if (file.decodes !== decoded.get(file)) {
            decoded.set(file, file.decodes);
            sharedBlockBytes(buffer.byteLength);
          }
          reply({ buffer });
        },
        (err) => reply({ error: toWire(err) }),
      );
    },
    cacheStats: () => blockCacheStats(src),
    warm(tasks) {
      // A read of the window through this thread's cache: the blocks decode (and stay cached for the
      // workers) while the workers are still starting; the window itself is dropped.
      for (const t of tasks) {
        const win = tilesWindow(plan.grid, t.row, t.col0, t.count);
        src.readWindow(win.x0, win.y0, win.width, win.height, { signal, float32: true }).catch(() => {});
      }
    },
    close: () => src.close(),
  };
}

/** `first`: the chunks the workers will start with, whose blocks decode while they start up. */
export async function threadPool(plan: ExportPlan, spawned: Spawned[], signal?: AbortSignal, first: ChunkTask[] = []): Promise<ChunkPool> {
  const n = spawned.length;
  const workers: { w: Worker; load: number; pending: Map<number, { resolve: (r: ChunkResult) => void; reject: (e: unknown) => void }> }[] = [];
  let nextId = 0;
  let fatal: unknown;
  const ready: Promise<void>[] = [];
  let blocks: BlockServer;
  try {
    blocks = await blockServer(plan, signal);
    blocks.warm(first);
  } catch (err) {
    await terminateSpawned(spawned);
    throw err;
  }
  for (let i = 0; i < n; i++) {
    const w = spawned[i].w;
    const slot = { w, load: 0, pending: new Map<number, { resolve: (r: ChunkResult) => void; reject: (e: unknown) => void }>() };
    workers.push(slot);
    const failAll = (err: unknown) => {
      fatal ??= err;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    ready.push(
      Promise.race([spawned[i].failed, new Promise<void>((resolve, reject) => {
        w.on('message', (m: FromWorker) => {
          if (m.type === 'ready') resolve();
          else if (m.type === 'result') {
            const p = slot.pending.get(m.id);
            slot.pending.delete(m.id);
            slot.load--;
            const d = m.result.data as Uint8Array;
            p?.resolve({ ...m.result, data: Buffer.from(d.buffer, d.byteOffset, d.byteLength) });
          } else if (m.type === 'block') {
            blocks.serve(w, m);
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
          const err = new GeotfrError('INTERNAL', `export worker exited with code ${code}`);
          reject(err);
          failAll(err);
        });
      })]),
    );
    w.postMessage({ type: 'init', plan } satisfies ToWorker);
  }
  const close = async () => {
    await Promise.all(
      workers.map(async ({ w }) => {
        w.removeAllListeners('exit');
        w.postMessage({ type: 'cancel' } satisfies ToWorker);
        await w.terminate();
      }),
    );
    await blocks.close();
  };
  try {
    await Promise.all(ready);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    // Three per worker: the one it encodes, the one it reads ahead (pool-worker.ts) and one queued,
    // so the read-ahead never waits for this thread to hand out the next task.
    depth: 3 * n,
    cacheStats: () => blocks.cacheStats(),
    run(task) {
      if (fatal) return Promise.reject(fatal);
      const slot = workers.reduce((a, b) => (b.load < a.load ? b : a));
      const id = nextId++;
      slot.load++;
      return new Promise<ChunkResult>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        slot.w.postMessage({ type: 'task', id, task } satisfies ToWorker);
      });
    },
    close,
  };
}
