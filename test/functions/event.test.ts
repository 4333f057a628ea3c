/**
 * The one event rule of functions/ (functions/event.ts): HTTP status per error code, event decoding
 * from every shape a function receives, and the age cutoff.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GeotfrError, type ErrorCode } from '../../shared/errors.js';
import { checkEventAge, fromCloudEvent, httpStatus, PUBSUB_TYPE, STORAGE_FINALIZED } from '../../functions/event.js';

test('HTTP status per code: client errors 4xx, conflicts 409, retryable 503', () => {
  const status = (code: ErrorCode, retryable?: boolean) => httpStatus(new GeotfrError(code, 'x', {}, { retryable }));
  assert.deepEqual(
    (['BAD_REQUEST', 'BAD_INPUT', 'LIMIT', 'FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'IO', 'INTERNAL', 'CANCELLED'] as ErrorCode[]).map((c) => status(c)),
    [400, 400, 400, 403, 404, 409, 503, 503, 503],
  );
  assert.equal(status('IO', false), 500, 'a permanent I/O failure is not worth a retry');
});

test('Pub/Sub and Cloud Storage CloudEvents decode with their event time; oversized messages are a LIMIT', () => {
  const data = Buffer.from(JSON.stringify({ jobId: 'j', bucket: 'b', shard: 1 })).toString('base64');
  const ev = fromCloudEvent(
    {
      type: PUBSUB_TYPE,
      id: 'e1',
      specversion: '1.0',
      source: 's',
      data: { message: { data, messageId: 'm1', publishTime: '2026-01-01T00:00:00Z', attributes: { jobId: 'j' } }, subscription: 'x' },
    },
    1000,
  );
  assert.equal(ev.via, 'pubsub');
  assert.equal(ev.id, 'm1');
  assert.deepEqual(ev.message?.json, { jobId: 'j', bucket: 'b', shard: 1 });
  assert.equal(ev.time?.toISOString(), '2026-01-01T00:00:00.000Z');
  assert.throws(
    () => fromCloudEvent({ type: PUBSUB_TYPE, id: 'e', specversion: '1.0', source: 's', data: { message: { data } } }, 10),
    (e: unknown) => e instanceof GeotfrError && e.code === 'LIMIT',
  );
  const obj = fromCloudEvent(
    {
      type: STORAGE_FINALIZED,
      id: 'e2',
      specversion: '1.0',
      source: 's',
      time: '2026-01-02T00:00:00Z',
      data: { bucket: 'b', name: 'ingest/x.json', generation: '7', size: '12' },
    },
    1000,
  );
  assert.equal(obj.via, 'bucket');
  assert.equal(obj.object?.generation, '7');
  assert.equal(obj.time?.toISOString(), '2026-01-02T00:00:00.000Z');
  assert.throws(
    () => fromCloudEvent({ type: 'something.else', id: 'e3', specversion: '1.0', source: 's' }, 1000),
    (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST',
  );
});

test('the age cutoff drops events older than the limit (a permanent LIMIT), and nothing without a time', () => {
  const now = new Date('2026-01-01T02:00:00Z');
  checkEventAge({ via: 'pubsub', id: 'a', time: new Date('2026-01-01T01:30:00Z') }, 3600, now);
  checkEventAge({ via: 'http', id: 'b' }, 1, now);
  assert.throws(
    () => checkEventAge({ via: 'bucket', id: 'c', time: new Date('2026-01-01T00:00:00Z') }, 3600, now),
    (e: unknown) => e instanceof GeotfrError && e.code === 'LIMIT' && !e.retryable && /7200 s old/.test(e.message),
  );
});
