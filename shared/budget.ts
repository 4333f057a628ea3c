/**
 * The memory budget of a geotfr process (docs/semantics.md §13: "memory per worker and per process
 * stays within a budget, default 1 GiB"), declared once in shared/options.ts: `GEOTFR_MEMORY_BUDGET_MB`
 * (or the CLI's `--memory-budget`), default 1024. The large consumers take fixed shares of it, so no buffer grows
 * with the region or the mosaic:
 *
 * | consumer                                   | share   | what happens at the limit              |
 * |--------------------------------------------|---------|----------------------------------------|
 * | decoded source blocks (raster/geotiff.ts)  | 1/4     | least recently used blocks are dropped and decoded again when needed (counted as re-reads) |
 * | ingest's row of patches (ingest/image.ts, ingest/strips.ts) | 1/2 | refused before anything is read (LIMIT) |
 * | CogWriter's compressed tiles (cog/writer.ts) | 3/16    | the oldest, of the level holding the most, spilled to a temporary file (only what exceeds the share) |
 *
 * The rest is headroom for V8, chunks in flight and compression buffers (an export's block cache
 * and an ingest's tiles are not held by the same job).
 */
import { GeotfrError } from './errors.js';
import { option } from './options.js';

/** The process's budget in bytes (`GEOTFR_MEMORY_BUDGET_MB` / `--memory-budget`, default 1 GiB; shared/options.ts). */
export function memoryBudgetBytes(env: NodeJS.ProcessEnv = process.env): number {
  return Math.floor(option('memoryBudgetMb', env) * 1024 * 1024);
}

/** Bytes the decoded source block caches of this process may hold together. */
export const blockCacheShare = (env: NodeJS.ProcessEnv = process.env): number => Math.floor(memoryBudgetBytes(env) / 4);

/** Refuses a buffer of `bytes` that would not fit half the budget, naming what needs it. */
export function checkBuffer(bytes: number, what: string, env: NodeJS.ProcessEnv = process.env): void {
  const budget = memoryBudgetBytes(env);
  if (bytes > budget / 2)
    throw new GeotfrError(
      'LIMIT',
      `${what} needs ${Math.ceil(bytes / 2 ** 20)} MiB, more than half the memory budget of ${Math.floor(budget / 2 ** 20)} MiB (GEOTFR_MEMORY_BUDGET_MB / --memory-budget)`,
    );
}
