/** The queue port inside one process, with Pub/Sub's delivery rules (see port.ts). */
import { GeotfrError } from '../errors.js';
import type { Attributes, Queue, QueueHandler, QueueMessage, SubscribeOptions } from './port.js';

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
      opts: {
        maxDeliveryAttempts: opts.maxDeliveryAttempts ?? 5,
        concurrency: opts.concurrency ?? 1,
        retryDelayMs: opts.retryDelayMs ?? 10,
        deadLetterTopic: opts.deadLetterTopic,
      },
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
              const attrs = {
                ...msg.attributes,
                deadLetterReason: String((err as Error)?.message ?? err),
                CloudPubSubDeadLetterSourceDeliveryCount: String(msg.deliveryAttempt),
              };
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
