/** The queue port on Cloud Pub/Sub (`@google-cloud/pubsub` v5). */
import { PubSub } from '@google-cloud/pubsub';
import { GeotfrError } from '../errors.js';
import type { Attributes, Queue } from './port.js';

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
