/**
 * Helpers for the end-to-end stack tests: everything goes through the real `@google-cloud/storage` and
 * `@google-cloud/pubsub` clients against the stack (test/stack/stack.ts).
 */
import type { TestContext } from 'node:test';
import { Storage } from '@google-cloud/storage';
import { PubSub } from '@google-cloud/pubsub';
import { inCI } from '../support/oracles.js';
import { emulatorPath } from './emulator.js';
import type { Stack } from './stack.js';
import type { JobStatus } from '../../shared/jobs/status.js';

/** Skips loudly without the Pub/Sub emulator; fails under CI (like the helpers in oracles.ts). */
export function needPubsubEmulator(t: TestContext): boolean {
  if (emulatorPath()) return true;
  const msg = 'the Pub/Sub emulator is not available (google-cloud-cli with the pubsub emulator component)';
  if (inCI) throw new Error(`CI requires ${msg}`);
  process.stderr.write(`\n*** SKIPPING "${t.name}": ${msg} ***\n`);
  t.skip(msg);
  return false;
}

export interface Clients {
  storage: Storage;
  pubsub: PubSub;
}

/** Clients pointed at the stack (the env vars startStack sets). */
export function clients(stack: Stack): Clients {
  return {
    storage: new Storage({ projectId: stack.projectId, apiEndpoint: stack.storageHost }),
    pubsub: new PubSub({ projectId: stack.projectId }),
  };
}

// Deadlines here only bound a hang: they are generous so that a loaded machine (2 cores shared by
// several test runs) is slow, not failing (issue 11 item 20).
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 240_000, everyMs = 150): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

export async function readStatus(c: Clients, bucket: string, jobId: string): Promise<JobStatus | undefined> {
  const f = c.storage.bucket(bucket).file(`.geotfr/jobs/${jobId}/status.json`);
  const [exists] = await f.exists();
  if (!exists) return undefined;
  const [buf] = await f.download();
  return JSON.parse(buf.toString('utf8')) as JobStatus;
}

/** Waits until the job is terminal and returns its status. */
export function waitTerminal(c: Clients, bucket: string, jobId: string, timeoutMs = 300_000): Promise<JobStatus> {
  return waitFor(
    `job ${jobId} to finish`,
    async () => {
      const s = await readStatus(c, bucket, jobId);
      return s && (s.state === 'done' || s.state === 'failed') ? s : undefined;
    },
    timeoutMs,
  );
}

/** Objects under a prefix: name → { bytes, generation }. */
export async function objects(c: Clients, bucket: string, prefix: string): Promise<Map<string, { bytes: Buffer; generation: string }>> {
  const [files] = await c.storage.bucket(bucket).getFiles({ prefix });
  const out = new Map<string, { bytes: Buffer; generation: string }>();
  for (const f of files.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const [buf] = await f.download();
    out.set(f.name, { bytes: buf, generation: String(f.metadata.generation) });
  }
  return out;
}

/** Resolves once the GCS server has seen no request for `quietMs` (the pipeline has gone idle). */
export async function quiesce(stack: Stack, quietMs = 3000, timeoutMs = 240_000): Promise<void> {
  const total = () => Object.values(stack.gcs.counts).reduce((a, b) => a + b, 0);
  const deadline = Date.now() + timeoutMs;
  let last = total();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = total();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
  throw new Error('the stack did not go quiet');
}
