/** Pub/Sub push deliveries (how a function receives a message) decoded into the port's message shape. */
import { GeotfrError } from '../errors.js';
import type { Attributes, QueueMessage } from './port.js';

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
