/**
 * `tuneHeapGrowth` (functions/heap.ts): the V8 flag it sets from GEOTFR_HEAP_GROWING_PERCENT, `0`
 * leaving V8's choice, and a bad value refused naming the variable. Its effect on collections is a
 * benchmark's to measure (bench/ingest-cloud.ts, docs/cloud.md): it depends on V8's timing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tuneHeapGrowth } from '../../functions/heap.js';
import { GeotfrError } from '../../shared/errors.js';

test("the default holds the growing factor at 4, V8's largest", () => {
  assert.equal(tuneHeapGrowth({}), '--heap-growing-percent=300');
});

test('a percentage sets its own factor; 0 leaves V8 to choose', () => {
  assert.equal(tuneHeapGrowth({ GEOTFR_HEAP_GROWING_PERCENT: '150' }), '--heap-growing-percent=150');
  assert.equal(tuneHeapGrowth({ GEOTFR_HEAP_GROWING_PERCENT: '0' }), undefined);
});

test('a bad value is refused naming the variable', () => {
  for (const raw of ['abc', '-5', '2.5', '5000'])
    assert.throws(
      () => tuneHeapGrowth({ GEOTFR_HEAP_GROWING_PERCENT: raw }),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.message.includes('GEOTFR_HEAP_GROWING_PERCENT'),
      raw,
    );
});
