/**
 * What every function shares: the queue (one Pub/Sub client per instance), the configuration (read per
 * invocation from shared/options.ts, docs/semantics.md §10) and the log line format. How an event is
 * decoded and settled is functions/event.ts.
 */
import type { Queue } from '../shared/queue/port.js';
import { PubSubQueue } from '../shared/queue/pubsub.js';
import { cloudConfigFromEnv } from '../shared/jobs/config.js';
import type { JobDeps } from '../shared/jobs/planner.js';
import { option } from '../shared/options.js';

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
  let min: number = LEVELS.INFO;
  try {
    min = LEVELS[option('logLevel')];
  } catch {} // a bad level must not hide the line
  if (LEVELS[severity] < min) return;
  const line = JSON.stringify({ severity, message, ...fields });
  (severity === 'INFO' ? process.stdout : process.stderr).write(line + '\n');
}

/** An AbortSignal that fires a little before the function's time limit, so work stops cleanly. */
export function deadlineSignal(seconds: number): AbortSignal {
  return AbortSignal.timeout(Math.max(1000, seconds * 1000 - 5000));
}
