/**
 * The export's chunk pool: chunk tasks computed in-process, or on `worker_threads` that share one
 * decoder (the main thread decodes each source block once into shared memory and serves it).
 */
import { Worker } from 'node:worker_threads';
import { GeotfrError, abortable, asGeotfrError, fromWireError as fromWire, toWireError as toWire } from '../errors.js';
import { ChunkProducer, blockCacheStats, inProcessDepth, readFront, type BlockCacheStats, type ChunkResult } from './chunk.js';
import { tilesWindow } from './grid.js';
import type { ChunkTask, ExportPlan, ImageSpecOpener } from './plan.js';
import type { FromWorker, ToWorker } from './pool-worker.js';
import { terminateSpawned, type Spawned } from './spawn.js';
import type { TiffFile } from '../raster/geotiff.js';
import { latticeShift } from '../grid/lattice.js';
import { shiftFront, type PixelGrid, type ReadFront } from '../raster/types.js';
import type { GridTransform } from '../grid/transform.js';
import { sharedBlockBytes } from './sabgc.js';

/** Computes chunks: in-process, or on a pool of worker threads. */
export interface ChunkPool {
  /** Resolves with the chunk's result; rejects with the task's error. */
  run(task: ChunkTask): Promise<ChunkResult>;
  /** How many tasks to keep in flight. */
  readonly depth: number;
  /** The decoded block cache of the thread that decodes (undefined for non-GeoTIFF sources). */
  cacheStats(): BlockCacheStats | undefined;
  /** Every task before `next` (plan order) has its result: blocks only those tasks read may go. */
  passed(next: ChunkTask): void;
  /** A hint that `task` runs soon: its source blocks may start decoding (pools that decode elsewhere ignore it). */
  prefetch?(task: ChunkTask): void;
  close(): Promise<void>;
}

/**
 * Chunks computed on this thread, several in flight (`inProcessDepth`): while one is framed, the
 * next ones' blocks inflate and (compressed) earlier ones deflate on libuv's pool (`produceAsync`).
 */
export async function inProcessPool(plan: ExportPlan, open: ImageSpecOpener | undefined, signal?: AbortSignal): Promise<ChunkPool> {
  const producer = await ChunkProducer.open(plan, { open, signal });
  const running = new Set<Promise<unknown>>();
  return {
    run(t) {
      const p = producer.produceAsync(t, signal);
      const settled: Promise<unknown> = p.then(
        () => running.delete(settled),
        () => running.delete(settled),
      );
      running.add(settled);
      return p;
    },
    depth: inProcessDepth(plan),
    cacheStats: () => producer.cacheStats(),
    passed: (next) => producer.passed(next),
    prefetch: (t) => producer.prefetch(t),
    // Chunks still in flight (after a failure) settle before their files close.
    close: async () => {
      await Promise.all(running);
      await producer.close();
    },
  };
}

/** Tasks beyond those in flight whose source blocks `inOrder` has the pool prefetch. */
const PREFETCH_TASKS = 2;

/**
 * A pool's results in task order, `pool.depth` tasks in flight: the next tasks start before the
 * caller handles (writes) a result, and the blocks of the few after them start decoding
 * (`prefetch`). An abort stops the wait for the chunk in flight at once; the pool's close settles
 * what is still running. Used by the embedded runner and `writeShard`.
 */
export async function* inOrder(pool: ChunkPool, tasks: ChunkTask[], signal?: AbortSignal): AsyncGenerator<ChunkResult> {
  const inFlight: Promise<ChunkResult>[] = [];
  let next = 0;
  const fill = () => {
    while (next < tasks.length && inFlight.length < pool.depth) {
      const p = pool.run(tasks[next++]);
      p.catch(() => {}); // observed in order below
      inFlight.push(p);
    }
    // A task in flight waits for its blocks only if nothing decoded them sooner: the first chunk
    // of a new row of source blocks would otherwise read (and inflate) them only once the chunks
    // before it had finished deflating, leaving a core idle meanwhile.
    for (let k = next; k < Math.min(tasks.length, next + PREFETCH_TASKS); k++) pool.prefetch?.(tasks[k]);
  };
  fill();
  let done = 0;
  while (inFlight.length) {
    signal?.throwIfAborted();
    const result = await abortable(inFlight.shift()!, signal);
    // Tasks finish in order: once this one has, blocks only it and earlier ones read can go.
    if (++done < tasks.length) pool.passed(tasks[done]);
    fill();
    yield result;
  }
}

export { defaultWorkers, dropPrestarted, prestartWorkers, spawnWorkers, terminateSpawned } from './spawn.js';

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
  /** Drops the blocks of files on the export's lattice that no read within `front` touches. */
  retire(front: ReadFront): void;
  close(): Promise<void>;
}

async function blockServer(plan: ExportPlan, signal?: AbortSignal): Promise<BlockServer> {
  const { openTiff } = await import('../raster/open.js');
  const { GridTransform: Transform } = await import('../grid/transform.js');
  // Per warped file: export grid → file pixels, for the warm-up's windows.
  const transforms = new Map<string, GridTransform>();
  // Files open on a worker's first request for one of their blocks (only the files chunks touch);
  // beyond MAX_SERVED_FILES the least recently used idle one closes (a glob over many scenes).
  const known = new Set((plan.image?.files ?? []).map((f) => f.uri));
  const files = new Map<string, { file: Promise<TiffFile>; inflight: number; used: number }>();
  /** Open files (for the cache stats) and their decode counts at the last reply (shared memory accounting). */
  const opened = new Set<TiffFile>();
  const decoded = new Map<TiffFile, number>();
  /**
   * Bytes of blocks decoded so far, sent with every block: a worker collects its dropped handles when
   * this has grown by the threshold since it last did (pool-worker.ts). Only a block decoded here can
   * end up held by nothing but a worker's stale handle; counting every block a worker receives would
   * collect again on each re-sent block.
   */
  let decodedBytes = 0;
  let tick = 0;
  /** Per file on the export's lattice: its pixel offset from the export grid's (warped files: none). */
  const shifts = new Map<string, [number, number]>();
  for (const f of plan.image?.files ?? []) {
    const s = latticeShift(f.grid, plan.source);
    if (s) shifts.set(f.uri, s);
  }
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
            decodedBytes += buffer.byteLength;
            sharedBlockBytes(buffer.byteLength);
          }
          return buffer;
        })
        .then(
          (buffer) => reply({ buffer, decodedBytes }),
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
    retire(front) {
      for (const t of opened) {
        const shift = shifts.get(t.uri);
        if (shift) t.retire(shiftFront(front, shift[0], shift[1]));
      }
    },
    warm(tasks) {
      // The blocks of the first chunks' windows decode (and stay cached for the workers) while the
      // workers are still starting: a copied file's window is a shift away; a warped one's is where
      // the window's outline lands (sourceWindow), which bounds where its inside lands too.
      for (const t of tasks) {
        const win = tilesWindow(plan.grid, t.row, t.col0, t.count);
        for (const f of plan.image?.files ?? []) {
          let b: [number, number, number, number] | null;
          try {
            b = sourceWindow(f.grid, plan.source, win, () => {
              let t = transforms.get(f.uri);
              if (!t) transforms.set(f.uri, (t = new Transform(plan.source, f.grid)));
              return t;
            });
          } catch {
            continue; // a hint only: the workers' own reads report any problem
          }
          if (!b) continue;
          const [x0, y0, x1, y1] = b;
          void open(f.uri).file.then(
            (tf) => {
              const bx0 = Math.max(0, Math.floor(x0 / tf.blockWidth)),
                bx1 = Math.min(tf.blocksAcross - 1, Math.floor((x1 - 1) / tf.blockWidth));
              const by0 = Math.max(0, Math.floor(y0 / tf.blockHeight)),
                by1 = Math.min(tf.blocksDown - 1, Math.floor((y1 - 1) / tf.blockHeight));
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

/** Source pixels beyond a warped window's outline a kernel may read (bicubic reaches 2 px). */
const WARM_MARGIN_PX = 2;

/**
 * The source pixels [x0, y0, x1, y1) of file grid `file` an export window reads, clipped to the
 * file (null when it reads none): the window shifted, or for a warped file the bounding box of the
 * window's outline mapped to source pixels (a continuous one-to-one map takes a rectangle's inside
 * within its outline's bounds), plus the widest kernel's reach.
 */
function sourceWindow(
  file: PixelGrid,
  grid: PixelGrid,
  win: { x0: number; y0: number; width: number; height: number },
  transform: () => GridTransform,
): [number, number, number, number] | null {
  const shift = latticeShift(file, grid);
  let x0: number, y0: number, x1: number, y1: number;
  if (shift) {
    x0 = win.x0 + shift[0];
    y0 = win.y0 + shift[1];
    x1 = x0 + win.width;
    y1 = y0 + win.height;
  } else {
    const t = transform();
    let xmin = Infinity,
      ymin = Infinity,
      xmax = -Infinity,
      ymax = -Infinity;
    const edges: [number, number, number, number][] = [
      [win.x0, win.y0, win.width, 1],
      [win.x0, win.y0 + win.height - 1, win.width, 1],
      [win.x0, win.y0, 1, win.height],
      [win.x0 + win.width - 1, win.y0, 1, win.height],
    ];
    for (const [ex, ey, ew, eh] of edges) {
      const c = t.map(ex, ey, ew, eh, 0.5);
      for (let k = 0; k < c.x.length; k++) {
        const x = c.x[k]!,
          y = c.y[k]!;
        if (Number.isNaN(x) || Number.isNaN(y)) continue;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
        if (y < ymin) ymin = y;
        if (y > ymax) ymax = y;
      }
    }
    if (!(xmin <= xmax)) return null;
    x0 = Math.floor(xmin) - WARM_MARGIN_PX;
    y0 = Math.floor(ymin) - WARM_MARGIN_PX;
    x1 = Math.floor(xmax) + WARM_MARGIN_PX + 1;
    y1 = Math.floor(ymax) + WARM_MARGIN_PX + 1;
  }
  x0 = Math.max(0, x0);
  y0 = Math.max(0, y0);
  x1 = Math.min(file.width, x1);
  y1 = Math.min(file.height, y1);
  return x1 > x0 && y1 > y0 ? [x0, y0, x1, y1] : null;
}

/** `first`: the chunks the workers will start with, whose blocks decode while they start up. */
export async function threadPool(plan: ExportPlan, spawned: Spawned[], signal?: AbortSignal, first: ChunkTask[] = []): Promise<ChunkPool> {
  const n = spawned.length;
  const workers: { w: Worker; load: number; pending: Map<number, { resolve: (r: ChunkResult) => void; reject: (e: unknown) => void }> }[] = [];
  let nextId = 0;
  let fatal: unknown;
  const ready: Promise<void>[] = [];
  let blocks: BlockServer;
  // Few files, some warped (a wide mosaic would map every file's outline for every chunk).
  const files = plan.image?.files ?? [];
  const warpedFew = files.length <= MAX_SERVED_FILES && files.some((f) => !latticeShift(f.grid, plan.source));
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
    passed: (next) => blocks.retire(readFront(plan, next)),
    run(task) {
      if (fatal) return Promise.reject(fatal);
      const slot = workers.reduce((a, b) => (b.load < a.load ? b : a));
      const id = nextId++;
      slot.load++;
      const p = new Promise<ChunkResult>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        slot.w.postMessage({ type: 'task', id, task } satisfies ToWorker);
      });
      // A warped chunk takes less time to resample than its new blocks take to decode, so its
      // blocks start decoding when it is handed out (a few chunks ahead), not when it is read.
      if (warpedFew) blocks.warm([task]);
      return p;
    },
    close,
  };
}
