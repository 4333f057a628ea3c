/**
 * Job ids (issue 6, "Jobs"). An id is derived from the event that started the job, so a redelivered
 * event (Pub/Sub at-least-once, a repeated bucket notification) finds the job it already started instead
 * of starting a second one; docs/cloud.md tells users where each kind of id comes from.
 */
import { randomBytes } from 'node:crypto';
import { checkJobId } from './store.js';

const clean = (s: string) =>
  s
    .replace(/[^a-zA-Z0-9_.-]+/g, '_')
    .replace(/\.{2,}/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, 96);

/** A request published to the request topic: the `jobId` attribute if the publisher set one, else `ps-<messageId>`. */
export function pubsubJobId(messageId: string, attrs: Record<string, string> = {}): string {
  return checkJobId(attrs.jobId ?? `ps-${clean(messageId) || randomBytes(8).toString('hex')}`);
}

/** A request object dropped at `requests/NAME.json`: `NAME-<generation>` (the upload returns the generation). */
export function dropJobId(objectName: string, generation: string | number): string {
  const base = clean(objectName.replace(/^requests\//, '').replace(/\.json$/, '')) || 'request';
  return checkJobId(`${base}-${clean(String(generation)) || '0'}`);
}

/** An HTTP request: the caller's `jobId` (query or body wrapper) if given, else a fresh `http-<time>-<random>`. */
export function httpJobId(given?: string, now = new Date()): string {
  if (given) return checkJobId(given);
  const t = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'z')
    .toLowerCase();
  return checkJobId(`http-${t}-${randomBytes(4).toString('hex')}`);
}
