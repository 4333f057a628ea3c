/**
 * The queue port (STYLE.md §2): how the planner fans shards out to workers and how work reaches the
 * finalizer and the dead-letter handler (SPEC §10). Two implementations with one interface:
 *
 * - `InProcessQueue`: topics and subscribers inside one Node process, with Pub/Sub's delivery rules
 *   (at-least-once, a throwing handler gets the message again, after `maxDeliveryAttempts` it goes to
 *   the dead-letter topic). Used to run the functions without any emulator.
 * - `PubSubQueue`: `@google-cloud/pubsub` v5; honours `PUBSUB_EMULATOR_HOST` (the client does this itself).
 *
 * Messages are JSON; attributes are small strings used for routing and logs (`jobId`, `shard`).
 */
import { PubSub } from '@google-cloud/pubsub';
import { GeotfrError } from './errors.js';

export type Attributes = Record<string, string>;

export interface Queue {
  /** Publishes one JSON message; resolves to the message id once the broker accepted it. */
  publish(topic: string, json: unknown, attrs?: Attributes): Promise<string>;
  /** Releases connections (no-op for the in-process queue). */
  close(): Promise<void>;
}

/** A message as handlers see it (the same shape for both implementations). */
export interface QueueMessage {
  id: string;
  topic: string;
  json: unknown;
  attributes: Attributes;
  /** 1 on first delivery, then 2, 3… (Pub/Sub's `deliveryAttempt`). */
  deliveryAttempt: number;
}

export type QueueHandler = (msg: QueueMessage) => Promise<void>;

export interface SubscribeOptions {
  /** After this many failed deliveries the message goes to `deadLetterTopic` (Pub/Sub allows 5–100). */
  maxDeliveryAttempts?: number;
  deadLetterTopic?: string;
  /** Handlers running at once for this subscription (function instances). */
  concurrency?: number;
  /** Delay before a redelivery (Pub/Sub's retry policy minimum backoff). */
  retryDelayMs?: number;
}

interface Subscription {
  handler: QueueHandler;
  opts: Required<Omit<SubscribeOptions, 'deadLetterTopic'>> & { deadLetterTopic?: string };
  running: number;
  backlog: QueueMessage[];
}

/**
 * Topics and subscribers in one process. Delivery is asynchronous (never inside `publish`), so a
 * handler that publishes does not re-enter itself; `idle()` resolves when nothing is queued or running.
 */
export class InProcessQueue implements Queue {
  private readonly subs = new Map<string, Subscription[]>();
  private seq = 0;
  private pending = 0;
  private waiters: (() => void)[] = [];
  /** Messages that reached a topic nobody subscribes to (kept for inspection in tests). */
  readonly unrouted: QueueMessage[] = [];

  subscribe(topic: string, handler: QueueHandler, opts: SubscribeOptions = {}): void {
    const list = this.subs.get(topic) ?? [];
    list.push({
      handler,
      opts: { maxDeliveryAttempts: opts.maxDeliveryAttempts ?? 5, concurrency: opts.concurrency ?? 1, retryDelayMs: opts.retryDelayMs ?? 10, deadLetterTopic: opts.deadLetterTopic },
      running: 0,
      backlog: [],
    });
    this.subs.set(topic, list);
  }

  async publish(topic: string, json: unknown, attrs: Attributes = {}): Promise<string> {
    // Round-trip through JSON like a real broker: handlers never share objects with the publisher.
    const body = JSON.stringify(json);
    if (body === undefined) throw new GeotfrError('BAD_REQUEST', `message for ${topic} is not JSON-serializable`);
    const id = String(++this.seq);
    const subs = this.subs.get(topic);
    const base = { id, topic, attributes: { ...attrs }, deliveryAttempt: 1 };
    if (!subs?.length) {
      this.unrouted.push({ ...base, json: JSON.parse(body) });
      return id;
    }
    for (const s of subs) this.enqueue(s, { ...base, json: JSON.parse(body) });
    return id;
  }

  private enqueue(s: Subscription, msg: QueueMessage): void {
    this.pending++;
    s.backlog.push(msg);
    setImmediate(() => this.pump(s));
  }

  private pump(s: Subscription): void {
    while (s.running < s.opts.concurrency && s.backlog.length) {
      const msg = s.backlog.shift()!;
      s.running++;
      s.handler(msg).then(
        () => this.settle(s),
        (err) => {
          if (msg.deliveryAttempt >= s.opts.maxDeliveryAttempts) {
            if (s.opts.deadLetterTopic) {
              const attrs = { ...msg.attributes, deadLetterReason: String((err as Error)?.message ?? err), CloudPubSubDeadLetterSourceDeliveryCount: String(msg.deliveryAttempt) };
              void this.publish(s.opts.deadLetterTopic, msg.json, attrs);
            }
          } else {
            const again = { ...msg, deliveryAttempt: msg.deliveryAttempt + 1 };
            this.pending++;
            setTimeout(() => {
              s.backlog.push(again);
              this.pump(s);
            }, s.opts.retryDelayMs);
          }
          this.settle(s);
        },
      );
    }
  }

  private settle(s: Subscription): void {
    s.running--;
    this.pending--;
    this.pump(s);
    if (this.pending === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once every published message has been handled, retried to exhaustion or dead-lettered. */
  idle(): Promise<void> {
    // Deliveries are scheduled with setImmediate: let them register before checking.
    return new Promise((resolve) => setImmediate(() => (this.pending === 0 ? resolve() : this.waiters.push(resolve))));
  }

  async close(): Promise<void> {}
}

/**
 * Cloud Pub/Sub (or its emulator when `PUBSUB_EMULATOR_HOST` is set). Topic names may be short
 * (`geotfr-shards`) or full (`projects/p/topics/geotfr-shards`).
 */
export class PubSubQueue implements Queue {
  readonly client: PubSub;
  private readonly topics = new Map<string, ReturnType<PubSub['topic']>>();

  constructor(opts: { projectId?: string } = {}) {
    this.client = new PubSub({ projectId: opts.projectId ?? (process.env.GOOGLE_CLOUD_PROJECT || process.env.GCLOUD_PROJECT || undefined) });
  }

  async publish(topic: string, json: unknown, attrs: Attributes = {}): Promise<string> {
    let t = this.topics.get(topic);
    if (!t) {
      // Batching off: each message is one shard's work; latency matters more than RPC count.
      t = this.client.topic(topic, { batching: { maxMessages: 1, maxMilliseconds: 0 } });
      this.topics.set(topic, t);
    }
    try {
      return await t.publishMessage({ data: Buffer.from(JSON.stringify(json)), attributes: attrs });
    } catch (err) {
      throw new GeotfrError('IO', `publishing to ${topic} failed: ${(err as Error).message}`, {}, { cause: err });
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.topics.values()].map((t) => t.flush().catch(() => {})));
    await this.client.close();
  }
}

/**
 * Decodes a Pub/Sub push delivery as a function receives it: a CloudEvent
 * `google.cloud.pubsub.topic.v1.messagePublished` (`data.message.data` base64), or the raw push body
 * `{message, subscription}`. Malformed payloads are a permanent BAD_REQUEST (acknowledged, not retried).
 */
export function decodePushMessage(data: unknown, topic = ''): QueueMessage {
  const d = data as { message?: Record<string, unknown>; data?: unknown; attributes?: unknown } | undefined;
  const m = (d?.message ?? d) as { data?: unknown; attributes?: unknown; messageId?: unknown; message_id?: unknown; deliveryAttempt?: unknown } | undefined;
  if (!m || typeof m !== 'object' || typeof m.data !== 'string')
    throw new GeotfrError('BAD_REQUEST', 'not a Pub/Sub message: expected data.message.data (base64)', { field: 'message.data' });
  let json: unknown;
  const text = Buffer.from(m.data, 'base64').toString('utf8');
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new GeotfrError('BAD_REQUEST', `message data is not JSON (${(err as Error).message})`, { field: 'message.data' });
  }
  const attributes: Attributes = {};
  if (m.attributes && typeof m.attributes === 'object') for (const [k, v] of Object.entries(m.attributes)) attributes[k] = String(v);
  const attempt = Number((d as { deliveryAttempt?: unknown })?.deliveryAttempt ?? m.deliveryAttempt ?? 1);
  return { id: String(m.messageId ?? m.message_id ?? ''), topic, json, attributes, deliveryAttempt: Number.isFinite(attempt) && attempt > 0 ? attempt : 1 };
}
