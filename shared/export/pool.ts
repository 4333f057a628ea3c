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
import { terminateSpawned, type Spawned } from './spawn.js';
import type { TiffFile } from '../raster/geotiff.js';
import { latticeShift } from '../grid/lattice.js';
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

export { dropPrestarted, prestartWorkers, spawnWorkers, terminateSpawned } from './spawn.js';

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
  const { openTiff } = await import('../raster/open.js');
  // Files open on a worker's first request for one of their blocks (only the files chunks touch);
  // beyond MAX_SERVED_FILES the least recently used idle one closes (a glob over many scenes).
  const known = new Set((plan.image?.files ?? []).map((f) => f.uri));
  const files = new Map<string, { file: Promise<TiffFile>; inflight: number; used: number }>();
  /** Open files (for the cache stats) and their decode counts at the last reply (shared memory accounting). */
  const opened = new Set<TiffFile>();
  const decoded = new Map<TiffFile, number>();
  let tick = 0;
  const closeIdle = () => {
    if (files.size <= MAX_SERVED_FILES) return;
    const idle = [...files].filter(([, e]) => e.inflight === 0).sort((a, b) => a[1].used - b[1].used);
    for (const [uri, e] of idle.slice(0, files.size - MAX_SERVED_FILES)) {
      files.delete(uri);
      void e.file.then(
        (t) => {
          opened.delete(t);
          decoded.delete(t);
          return t.close();
        },
        () => undefined,
      );
    }
  };
  const open = (uri: string) => {
    let e = files.get(uri);
    if (!e) {
      const file = openTiff(uri, 'image', { signal, sharedBlocks: true });
      file.then(
        (t) => opened.add(t),
        () => {},
      );
      const entry = (e = { file, inflight: 0, used: ++tick });
      file.catch(() => files.get(uri) === entry && files.delete(uri));
      files.set(uri, e);
    }
    return e;
  };
  return {
    serve(w, m) {
      const reply = (r: Omit<Extract<ToWorker, { type: 'block' }>, 'type' | 'id'>) => w.postMessage({ type: 'block', id: m.id, ...r } satisfies ToWorker);
      if (!known.has(m.uri)) return reply({ error: toWire(new GeotfrError('INTERNAL', `a worker asked for a block of ${m.uri}, which is not in the export`)) });
      const entry = open(m.uri);
      entry.inflight++;
      entry.used = ++tick;
      entry.file
        .then(async (f) => {
          const buffer = await f.sharedBlock(m.bx, m.by, m.plane);
          // Counted per decode, not per reply: only new blocks add shared memory here.
          if (f.decodes !== decoded.get(f)) {
            decoded.set(f, f.decodes);
            sharedBlockBytes(buffer.byteLength);
          }
          return buffer;
        })
        .then(
          (buffer) => reply({ buffer }),
          (err) => reply({ error: toWire(err) }),
        )
        .finally(() => {
          entry.inflight--;
          closeIdle();
        });
    },
    close: async () => {
      await Promise.all(
        [...files.values()].map((e) =>
          e.file.then(
            (t) => t.close(),
            () => undefined,
          ),
        ),
      );
    },
    cacheStats: () => blockCacheStats({ files: [...opened] }),
    warm(tasks) {
      // The blocks of the first chunks' windows decode (and stay cached for the workers) while the
      // workers are still starting: for files copied onto the grid, whose windows are a shift away.
      for (const t of tasks) {
        const win = tilesWindow(plan.grid, t.row, t.col0, t.count);
        for (const f of plan.image?.files ?? []) {
          const shift = latticeShift(f.grid, plan.source);
          if (!shift) continue;
          const x0 = win.x0 + shift[0],
            y0 = win.y0 + shift[1];
          if (x0 >= f.grid.width || y0 >= f.grid.height || x0 + win.width <= 0 || y0 + win.height <= 0) continue;
          void open(f.uri).file.then(
            (tf) => {
              const bx0 = Math.max(0, Math.floor(x0 / tf.blockWidth)),
                bx1 = Math.min(tf.blocksAcross - 1, Math.floor((x0 + win.width - 1) / tf.blockWidth));
              const by0 = Math.max(0, Math.floor(y0 / tf.blockHeight)),
                by1 = Math.min(tf.blocksDown - 1, Math.floor((y0 + win.height - 1) / tf.blockHeight));
              for (let by = by0; by <= by1; by++) for (let bx = bx0; bx <= bx1; bx++) tf.sharedBlock(bx, by, 0).catch(() => {});
            },
            () => {},
          );
        }
      }
    },
  };
}

/** Files the block server keeps open at once. */
const MAX_SERVED_FILES = 16;

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
      Promise.race([
        spawned[i].failed,
        new Promise<void>((resolve, reject) => {
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
        }),
      ]),
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
