/**
 * How far V8 lets a function instance's heap grow between full collections (docs/cloud.md,
 * "Garbage collection in a function instance").
 *
 * An instance's JavaScript heap holds ~40 MB that stays alive (the functions framework, the storage
 * and Pub/Sub clients, their modules) while the data it moves lives in buffers outside the heap. V8
 * sets the old generation's limit a factor above the live heap, a factor it picks between 1.1 and 4
 * from how fast the program allocates on the heap, and counts buffer memory allocated since the last
 * full collection against that limit. A strip worker allocates little on the heap and hundreds of MB
 * of buffers (socket chunks, compressed tiles), so V8 picked small factors and marked the whole
 * 40 MB heap every ~20 MB of buffers: 73 full collections for four 201 MB strips, 34 with the factor
 * held at 4 (V8's own largest), and 12% less CPU per strip (bench/ingest-cloud.ts).
 *
 * The cost is memory: up to ~3× the live heap of garbage, heap objects or buffers, before a full
 * collection, +25–55 MB peak RSS for that strip worker (~550 MB, inside the 1 GiB budget).
 */
import { setFlagsFromString } from 'node:v8';
import { option } from '../shared/options.js';

/**
 * Sets V8's heap growing factor to 1 + GEOTFR_HEAP_GROWING_PERCENT/100 for this process (it applies
 * from the next collection on). Returns the V8 flag set, or undefined for `0` (V8's own choice).
 */
export function tuneHeapGrowth(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const percent = option('heapGrowingPercent', env);
  if (percent === 0) return undefined;
  const flag = `--heap-growing-percent=${percent}`;
  setFlagsFromString(flag);
  return flag;
}
