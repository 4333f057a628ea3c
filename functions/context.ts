/**
 * What every function shares: the queue, the configuration (read per invocation, docs/semantics.md §10), and the
 * split between retryable errors (throw: Pub/Sub or Eventarc redelivers) and permanent ones (logged and
 * acknowledged), following the functions-framework samples (STYLE.md, "functions-framework-nodejs").
 */
import { asGeotfrError } from '../shared/errors.js';
import { type Queue } from '../shared/queue/port.js';
import { PubSubQueue } from '../shared/queue/pubsub.js';
import { cloudConfigFromEnv } from '../shared/jobs/config.js';
import type { JobDeps } from '../shared/jobs/planner.js';
import { isRetryable } from '../shared/jobs/status.js';

let queue: Queue | undefined;

/** Dependencies for one invocation. The Pub/Sub client is created once per instance and reused. */
export function deps(): JobDeps {
  queue ??= new PubSubQueue();
  return { queue, config: cloudConfigFromEnv() };
}

/** Replaces the queue (tests running the functions over an in-process queue). */
export function setQueue(q: Queue | undefined): void {
  queue = q;
}

const LEVELS = { INFO: 0, WARNING: 1, ERROR: 2, NONE: 3 } as const;

/**
 * One structured log line per event (Cloud Logging parses JSON lines on stdout/stderr).
 * `GEOTFR_LOG_LEVEL` (INFO, WARNING, ERROR, NONE; default INFO) silences the lower levels.
 */
export function log(severity: 'INFO' | 'WARNING' | 'ERROR', message: string, fields: Record<string, unknown> = {}): void {
  const min = LEVELS[(process.env.GEOTFR_LOG_LEVEL ?? 'INFO').toUpperCase() as keyof typeof LEVELS] ?? 0;
  if (LEVELS[severity] < min) return;
  const line = JSON.stringify({ severity, message, ...fields });
  (severity === 'INFO' ? process.stdout : process.stderr).write(line + '\n');
}

/**
 * Runs an event handler body: permanent errors are logged and swallowed (the event is acknowledged),
 * retryable ones are rethrown so the platform redelivers.
 */
export async function settle<T>(what: string, fields: Record<string, unknown>, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const e = asGeotfrError(err);
    if (isRetryable(e)) {
      log('WARNING', `${what}: retryable error, asking for redelivery: ${e.code}: ${e.message}`, { ...fields, code: e.code });
      throw e;
    }
    log('ERROR', `${what}: permanent error, acknowledged: ${e.code}: ${e.message}`, { ...fields, code: e.code });
    return undefined;
  }
}

/** An AbortSignal that fires a little before the function's time limit, so work stops cleanly. */
export function deadlineSignal(seconds: number): AbortSignal {
  return AbortSignal.timeout(Math.max(1000, seconds * 1000 - 5000));
}
