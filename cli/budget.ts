/** The `--verbose` report of the source block cache (shared/budget.ts). */
import type { BlockCacheStats } from '../shared/export/chunk.js';

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** One line: what the decoded block cache did. */
export function describeCache(s: BlockCacheStats): string {
  return `source block cache: ${s.hits} hits, ${s.decodes} decodes (${s.rereads} re-decodes of blocks dropped for the budget), peak ${mib(s.peakBytes)} of ${mib(s.budgetBytes)}`;
}
