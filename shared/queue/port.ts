/**
 * The queue port (STYLE.md §2): how the planner fans shards out to workers and how work reaches the
 * finalizer and the dead-letter handler (docs/semantics.md §10). Two implementations with one interface:
 *
 * - `InProcessQueue`: topics and subscribers inside one Node process, with Pub/Sub's delivery rules
 *   (at-least-once, a throwing handler gets the message again, after `maxDeliveryAttempts` it goes to
 *   the dead-letter topic). Used to run the functions without any emulator.
 * - `PubSubQueue`: `@google-cloud/pubsub` v5; honours `PUBSUB_EMULATOR_HOST` (the client does this itself).
 *
 * Messages are JSON; attributes are small strings used for routing and logs (`jobId`, `shard`).
 */
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
