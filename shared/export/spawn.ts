/**
 * Starting the export pool's worker threads (pool.ts), in a module of its own that loads nothing
 * else, so a caller can start them before the exporter's modules load (`prestartWorkers`).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { GeotfrError } from '../errors.js';

/**
 * Worker threads an export uses when the caller does not say (docs/export.md "Threads"): none on a
 * machine of two cores or fewer, one per core on larger ones. Without threads the export runs on
 * this thread with several chunks in flight while blocks inflate and chunks deflate on libuv's
 * pool; on two cores that measured faster than two worker threads for every format (three isolates
 * starting and the shared block copies cost more than they return). With more cores the threads
 * spread the warping and framing, which one thread would have to do alone, and compress on every
 * core where libuv's pool has four threads.
 */
export function defaultWorkers(cores = availableParallelism()): number {
  return cores <= 2 ? 0 : cores;
}

/**
 * A worker thread's entry point: `beside` (the module next to the pool's, in `dist/shared/`), or the
 * bundled one the bundled CLI names (cli/bundled.ts), whose pool code sits in a shared chunk where
 * a URL relative to the module would point nowhere.
 */
export function workerEntry(name: 'export' | 'patches' | 'strip', beside: URL): URL {
  return (globalThis as { geotfrWorkerEntries?: Record<string, URL> }).geotfrWorkerEntries?.[name] ?? beside;
}

/** A worker thread started ahead of the plan (it loads its modules while the main thread plans). */
export interface Spawned {
  w: Worker;
  /** Rejects if the worker errors or exits before the pool attaches its own listeners. */
  failed: Promise<never>;
}

/** Workers started ahead of an export (`prestartWorkers`), waiting unreferenced for `spawnWorkers`. */
const early: Spawned[] = [];

/**
 * Starts `n` worker threads now, before the export's own modules (the request schema, the planner)
 * load: the CLI calls this first, so the threads' start-up overlaps that loading as well as the
 * planning. The next `spawnWorkers` takes them; until then they never keep the process alive.
 */
export function prestartWorkers(n: number): void {
  for (const s of startWorkers(n)) {
    s.w.unref();
    early.push(s);
  }
}

/** Stops the prestarted workers no export took (a dry run). */
export function dropPrestarted(): Promise<void> {
  return terminateSpawned(early.splice(0));
}

/** `n` worker threads loading pool-worker.ts: prestarted ones first, then new ones. */
export function spawnWorkers(n: number): Spawned[] {
  const taken = early.splice(0, n);
  for (const s of taken) s.w.ref();
  if (early.length) void dropPrestarted();
  return [...taken, ...startWorkers(n - taken.length)];
}

function startWorkers(n: number): Spawned[] {
  const url = workerEntry('export', new URL('./pool-worker.js', import.meta.url));
  return Array.from({ length: Math.max(0, n) }, () => {
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
