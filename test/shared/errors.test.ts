/**
 * Errors posted between threads (shared/errors.ts `toWireError` / `fromWireError`): code, message
 * and retryability survive the structured clone, including an `IO` error that is permanent (a
 * Cloud Storage 403 or 404), which the code alone would call retryable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GeotfrError, fromWireError, toWireError } from '../../shared/errors.js';

test('a wire error keeps its code, message and retryability', () => {
  const cases = [
    new GeotfrError('IO', 'Cloud Storage answered 403 (denied)', { file: 'gs://b/o' }, { retryable: false }),
    new GeotfrError('IO', 'Cloud Storage answered 503 (busy)', { file: 'gs://b/o' }, { retryable: true }),
    new GeotfrError('BAD_INPUT', 'data CRC mismatch', { file: 'gs://b/p.tfrecord', record: 5, offset: 15530 }),
    new GeotfrError('INTERNAL', 'a bug'),
  ];
  for (const e of cases) {
    const back = fromWireError(structuredClone(toWireError(e)));
    assert.ok(back instanceof GeotfrError);
    assert.deepEqual([back.code, back.message, back.retryable], [e.code, e.message, e.retryable], e.message);
  }
  // Anything thrown becomes a GeotfrError first (a TypeError is a bug: INTERNAL).
  const t = fromWireError(toWireError(new TypeError('x is undefined')));
  assert.deepEqual([t.code, t.message, t.retryable], ['INTERNAL', 'x is undefined', false]);
  // A wire error from before `retryable` was posted: the code decides.
  assert.equal(fromWireError({ code: 'IO', message: 'm', context: {} }).retryable, true);
});
