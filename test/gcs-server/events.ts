/**
 * Object-finalize notifications as Eventarc delivers them to Cloud Functions (2nd gen): an HTTP POST
 * in CloudEvents binary mode (`ce-*` headers, which functions-framework's `cloudEvent` signature
 * decodes), with the object resource JSON as `data`.
 *
 * Delivery is asynchronous (after the upload has been answered, as in GCS) and retried with backoff
 * on connection errors and non-2xx answers, like an Eventarc trigger with retries enabled; `idle()`
 * lets tests wait until every notification has been delivered or given up.
 */
import { randomUUID } from 'node:crypto';

/** A function URL to notify, optionally only for some buckets and name prefixes. */
export interface NotifyTarget {
  url: string;
  /** Only objects in this bucket (or these buckets). */
  bucketFilter?: string | string[];
  /** Only object names starting with this prefix. */
  prefix?: string;
  /** Deliveries attempted per event (default 5); 1 disables retries. */
  maxAttempts?: number;
}

/** One delivery outcome, kept for tests and debugging. */
export interface DeliveryRecord {
  url: string;
  id: string;
  bucket: string;
  name: string;
  attempts: number;
  status: number | 'error';
  ok: boolean;
}

export const FINALIZED = 'google.cloud.storage.object.v1.finalized';

export class Notifier {
  private readonly inflight = new Set<Promise<void>>();
  readonly deliveries: DeliveryRecord[] = [];
  private closed = false;
  private readonly stop = new AbortController();

  constructor(readonly targets: NotifyTarget[] = []) {}

  /** Queues a finalize event for `resource` (the object JSON) to every matching target. */
  finalized(resource: { bucket: string; name: string; timeCreated?: string } & Record<string, unknown>): void {
    for (const t of this.targets) {
      const buckets = t.bucketFilter === undefined ? undefined : Array.isArray(t.bucketFilter) ? t.bucketFilter : [t.bucketFilter];
      if (buckets && !buckets.includes(resource.bucket)) continue;
      if (t.prefix !== undefined && !resource.name.startsWith(t.prefix)) continue;
      const p = this.deliver(t, resource).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async deliver(t: NotifyTarget, resource: { bucket: string; name: string; timeCreated?: string }): Promise<void> {
    const id = randomUUID();
    const headers = {
      'content-type': 'application/json',
      'ce-id': id,
      'ce-specversion': '1.0',
      'ce-type': FINALIZED,
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${resource.bucket}`,
      'ce-subject': `objects/${resource.name}`,
      'ce-time': resource.timeCreated ?? new Date().toISOString(),
      // Eventarc's extension attribute for Cloud Storage events.
      'ce-bucket': resource.bucket,
    };
    const body = JSON.stringify(resource);
    const max = Math.max(1, t.maxAttempts ?? 5);
    let status: number | 'error' = 'error';
    let attempts = 0;
    for (; attempts < max && !this.closed; ) {
      attempts++;
      try {
        const res = await fetch(t.url, { method: 'POST', headers, body, signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(600_000)]) });
        status = res.status;
        await res.arrayBuffer().catch(() => {});
        if (res.ok) break;
      } catch {
        status = 'error';
      }
      if (attempts < max) await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempts, 2000)));
    }
    this.deliveries.push({ url: t.url, id, bucket: resource.bucket, name: resource.name, attempts, status, ok: typeof status === 'number' && status < 300 });
  }

  /** Resolves when no delivery is in flight. */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }

  /** Stops retrying, aborts requests in flight and waits for them to settle. */
  async close(): Promise<void> {
    this.closed = true;
    this.stop.abort();
    await this.idle();
  }
}
