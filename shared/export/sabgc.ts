/**
 * Collects garbage after enough shared block memory changed hands (shared/budget.ts). The export's
 * worker threads receive decoded source blocks as SharedArrayBuffers (pool.ts); a buffer's memory is
 * freed only once every thread holding a handle to it has collected that handle, and V8 does not
 * count shared memory towards a thread's allocation pressure, so a worker with a small heap may never
 * collect: its dropped blocks then pile up, and peak memory grows with the number of blocks in the
 * region (measured: 316 → 502 MB for 4× the region with two workers, 166 → 207 MB without threads;
 * bench/memory.ts). So each thread runs a collection every time an eighth of the block cache share
 * has been allocated (main thread) or received (workers) since the last one: with a quarter, an
 * image's blocks (64 MB for 4 float32 bands of 2048²) were all still held at the end of its export,
 * so peak memory grew with the region (bench/grid.ts: 1.32× for a 2048² region over a 1024² one).
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { blockCacheShare } from '../budget.js';

let gc: (() => void) | null | undefined;
let pending = 0;

/** Counts `bytes` of shared blocks allocated or received; collects when they reach the threshold. */
export function sharedBlockBytes(bytes: number): void {
  pending += bytes;
  if (pending < blockCacheShare() / 8) return;
  pending = 0;
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch {
      gc = null; // no way to collect on demand: rely on V8's own schedule
    }
  }
  gc?.();
}

/** The block server's decoded-bytes count at the last block this thread received. */
let decodedSeen = 0;

/**
 * A worker thread's accounting for a block it received (export/pool-worker.ts, patches/pool-worker.ts):
 * `decodedBytes` is the serving thread's count of bytes decoded so far, sent with the block. Only its
 * growth counts: a block decoded there can end up held by nothing but this thread's stale handle,
 * while a re-sent block is no new memory. Without the count, the block's own size counts.
 */
export function sharedBlockReceived(bytes: number, decodedBytes?: number): void {
  const decoded = decodedBytes ?? decodedSeen + bytes;
  if (decoded > decodedSeen) sharedBlockBytes(decoded - decodedSeen);
  decodedSeen = Math.max(decodedSeen, decoded);
}
