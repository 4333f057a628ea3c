/**
 * The queue port (shared/queue/): the in-process queue keeps Pub/Sub's delivery rules
 * (at-least-once, redelivery on a throwing handler, dead-lettering after N attempts, bounded
 * concurrency), push payloads decode in both shapes, and the Pub/Sub implementation round-trips
 * through the real emulator with the real client.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PubSub } from '@google-cloud/pubsub';
import { type QueueMessage } from '../../../shared/queue/port.js';
import { InProcessQueue } from '../../../shared/queue/memory.js';
import { PubSubQueue } from '../../../shared/queue/pubsub.js';
import { decodePushMessage } from '../../../shared/queue/push.js';
import { GeotfrError } from '../../../shared/errors.js';
import { needPubsubEmulator } from '../../stack/helpers.js';
import { startPubsubEmulator } from '../../stack/emulator.js';
import { mulberry32 } from '../../support/random.js';

const seeded = mulberry32;

test('in-process queue: a throwing handler gets the message again, with increasing deliveryAttempt', async () => {
  const q = new InProcessQueue();
  const seen: number[] = [];
  q.subscribe(
    't',
    async (m) => {
      seen.push(m.deliveryAttempt);
      if (m.deliveryAttempt < 3) throw new Error('transient');
    },
    { maxDeliveryAttempts: 5, retryDelayMs: 1 },
  );
  await q.publish('t', { a: 1 });
  await q.idle();
  assert.deepEqual(seen, [1, 2, 3]);
});

test('in-process queue: after maxDeliveryAttempts the message goes to the dead-letter topic with its attributes', async () => {
  const q = new InProcessQueue();
  let tries = 0;
  const dead: QueueMessage[] = [];
  q.subscribe(
    'work',
    async () => {
      tries++;
      throw new Error('always');
    },
    { maxDeliveryAttempts: 5, deadLetterTopic: 'dl', retryDelayMs: 1 },
  );
  q.subscribe('dl', async (m) => void dead.push(m));
  await q.publish('work', { jobId: 'j', shard: 3 }, { jobId: 'j' });
  await q.idle();
  assert.equal(tries, 5);
  assert.equal(dead.length, 1);
  assert.deepEqual(dead[0]!.json, { jobId: 'j', shard: 3 });
  assert.equal(dead[0]!.attributes.jobId, 'j');
  assert.equal(dead[0]!.attributes.CloudPubSubDeadLetterSourceDeliveryCount, '5');
  assert.match(dead[0]!.attributes.deadLetterReason!, /always/);
});

test('in-process queue: every message is handled at least once, never more than `concurrency` at a time', async () => {
  const rnd = seeded(42);
  for (const concurrency of [1, 2, 4]) {
    const q = new InProcessQueue();
    let running = 0;
    let peak = 0;
    const done = new Set<number>();
    q.subscribe(
      't',
      async (m) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 4)));
        running--;
        if (rnd() < 0.2) throw new Error('flaky');
        done.add((m.json as { i: number }).i);
      },
      { concurrency, maxDeliveryAttempts: 100, retryDelayMs: 1 },
    );
    for (let i = 0; i < 60; i++) await q.publish('t', { i });
    await q.idle();
    assert.equal(done.size, 60);
    assert.ok(peak <= concurrency, `peak ${peak} > ${concurrency}`);
    assert.equal(peak, concurrency);
  }
});

test('push payloads decode from the raw push body and from a CloudEvent; malformed ones are BAD_REQUEST', () => {
  const data = Buffer.from(JSON.stringify({ jobId: 'x', shard: 2 })).toString('base64');
  const raw = { subscription: 'projects/p/subscriptions/s', message: { data, attributes: { a: '1' }, messageId: '17' } };
  for (const shape of [raw, { message: raw.message }]) {
    const m = decodePushMessage(shape, 'shards');
    assert.deepEqual(m.json, { jobId: 'x', shard: 2 });
    assert.equal(m.id, '17');
    assert.deepEqual(m.attributes, { a: '1' });
  }
  for (const bad of [undefined, {}, { message: {} }, { message: { data: Buffer.from('{nope').toString('base64') } }]) {
    assert.throws(
      () => decodePushMessage(bad),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST',
    );
  }
});

test('PubSubQueue publishes JSON with attributes that the real client pulls back from the emulator', async (t) => {
  if (!needPubsubEmulator(t)) return;
  const emu = await startPubsubEmulator();
  const saved = process.env.PUBSUB_EMULATOR_HOST;
  process.env.PUBSUB_EMULATOR_HOST = emu.host;
  const client = new PubSub({ projectId: 'queue-test' });
  const q = new PubSubQueue({ projectId: 'queue-test' });
  try {
    const [topic] = await client.createTopic('queue-topic');
    const [sub] = await topic.createSubscription('queue-pull');
    const sent = Array.from({ length: 5 }, (_, i) => ({ jobId: `j${i}`, shard: i, nested: { v: [i, i / 3] } }));
    const ids = await Promise.all(sent.map((m, i) => q.publish('queue-topic', m, { shard: String(i) })));
    assert.equal(new Set(ids).size, 5);
    const got = new Map<string, { json: unknown; attrs: Record<string, string> }>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out pulling')), 20_000);
      sub.on('message', (m) => {
        m.ack();
        got.set(m.id, { json: JSON.parse(m.data.toString()), attrs: m.attributes });
        if (got.size === 5) {
          clearTimeout(timer);
          resolve();
        }
      });
      sub.on('error', reject);
    });
    await sub.close();
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(got.get(id)!.json, sent[i]);
      assert.equal(got.get(id)!.attrs.shard, String(i));
    }
  } finally {
    await q.close();
    await client.close();
    if (saved === undefined) delete process.env.PUBSUB_EMULATOR_HOST;
    else process.env.PUBSUB_EMULATOR_HOST = saved;
    await emu.stop();
  }
});
