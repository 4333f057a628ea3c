/**
 * The one event rule of functions/ (functions/event.ts): HTTP status per error code, event decoding
 * from every shape a function receives, the age cutoff, and handlers running outside the
 * framework's per-request domain.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GeotfrError, type ErrorCode } from '../../shared/errors.js';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import {
  checkEventAge,
  cloudEventFunction,
  fromCloudEvent,
  httpFunction,
  httpStatus,
  PUBSUB_TYPE,
  STORAGE_FINALIZED,
  type Handler,
} from '../../functions/event.js';
import { setQueue } from '../../functions/context.js';
import { InProcessQueue } from '../../shared/queue/memory.js';

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

test('handlers run outside the functions-framework request domain, through the real framework', async (t) => {
  setQueue(new InProcessQueue());
  t.after(() => setQueue(undefined));
  const domainOf = () => (process as NodeJS.Process & { domain?: object | null }).domain ?? null;
  const seen: Record<string, (object | null)[]> = { http: [], cloudEvent: [] };
  const probe = (kind: string): Handler => ({
    async run() {
      seen[kind]!.push(domainOf());
      await new Promise((r) => setImmediate(r)); // a macrotask: the domain hook would re-enter here
      seen[kind]!.push(domainOf());
      await Promise.all([1, 2].map(async (x) => x));
      seen[kind]!.push(domainOf());
      return { body: {}, message: 'probed' };
    },
  });
  let framework: object | null = null;
  functions.http('geotfrDomainControl', (_req, res) => {
    framework = domainOf();
    res.status(200).send('');
  });
  functions.http('geotfrDomainProbe', httpFunction('geotfrDomainProbe', probe('http')));
  functions.cloudEvent('geotfrDomainProbeEvent', cloudEventFunction('geotfrDomainProbeEvent', probe('cloudEvent')));
  const pushed = JSON.stringify({ message: { data: Buffer.from('{"jobId":"j"}').toString('base64'), messageId: 'm1' }, subscription: 's' });
  const calls: [string, Record<string, string>, string][] = [
    ['geotfrDomainControl', {}, '{}'],
    ['geotfrDomainProbe', {}, '{}'],
    // A Pub/Sub push as a binary-mode CloudEvent, as Eventarc delivers it.
    ['geotfrDomainProbeEvent', { 'ce-specversion': '1.0', 'ce-type': PUBSUB_TYPE, 'ce-source': '//pubsub.googleapis.com/t', 'ce-id': 'm1' }, pushed],
  ];
  for (const [name, headers, body] of calls) {
    const server = getTestServer(name) as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
      assert.ok(res.status < 300, `${name}: HTTP ${res.status}`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }
  assert.ok(framework, 'the framework runs a plain function inside a domain (else this test shows nothing)');
  assert.deepEqual(
    seen,
    { http: [null, null, null], cloudEvent: [null, null, null] },
    'both wrappers run the handler with no domain current, before and after awaits',
  );
});
