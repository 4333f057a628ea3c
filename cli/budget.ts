/** The `--memory-budget` and `--verbose` cache report shared by the commands (shared/budget.ts). */
import { GeotfrError } from '../shared/errors.js';
import { memoryBudgetBytes } from '../shared/budget.js';
import type { BlockCacheStats } from '../shared/export/chunk.js';

/** Sets the process's budget from a `--memory-budget MiB` value (worker threads inherit it). */
export function setMemoryBudget(value: string): void {
  if (!/^\d+(\.\d+)?$/.test(value.trim())) throw new GeotfrError('BAD_REQUEST', `--memory-budget expects MiB, got ${JSON.stringify(value)}`, { field: '--memory-budget' });
  process.env.GEOTFR_MEMORY_BUDGET_MB = value.trim();
  memoryBudgetBytes(); // validates (≥ 64 MiB)
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** One line: what the decoded block cache did. */
export function describeCache(s: BlockCacheStats): string {
  return `source block cache: ${s.hits} hits, ${s.decodes} decodes (${s.rereads} re-decodes of blocks dropped for the budget), peak ${mib(s.peakBytes)} of ${mib(s.budgetBytes)}`;
}
