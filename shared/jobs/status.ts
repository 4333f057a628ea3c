/**
 * The job status document users poll (issue 6, "Jobs"): `gs://<bucket>/.geotfr/jobs/<jobId>/status.json`
 * in the export's destination bucket (never beside the outputs, docs/semantics.md §5). docs/cloud.md documents it.
 *
 * State machine: `queued` (planned, shard messages published) → `running` (at least one shard written)
 * → `done` (every shard and the mixer exist) or `failed` (a permanent error, or a message dead-lettered
 * after its delivery attempts). `done` and `failed` are terminal; each is backed by a create-once marker
 * (`done.json` / `failed.json`) so concurrent writers converge on one outcome.
 */
import type { BlobStore } from '../storage/port.js';
import type { GeotfrError } from '../errors.js';

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobError {
  /** Stable GeotfrError code (BAD_REQUEST, BAD_INPUT, NOT_FOUND, IO, LIMIT, FORBIDDEN, INTERNAL…). */
  code: string;
  message: string;
  /** Shard index when the error belongs to one shard. */
  shard?: number;
  /** Pub/Sub delivery attempt that hit it. */
  attempt?: number;
  at: string;
}

export interface JobStatus {
  version: 1;
  jobId: string;
  kind: 'image' | 'table';
  state: JobState;
  /** Where the outputs go: `gs://bucket/PREFIX` (or a local directory in local runs). */
  destination: string;
  fileNamePrefix: string;
  shards: { total: number; done: number };
  patches: { total: number; done: number };
  /** Bytes of finished output objects (compressed size when gzip). */
  bytes: number;
  /** ISO-8601 times: job created (planned), first shard finished, last update, terminal. */
  createdAt: string;
  startedAt?: string;
  updatedAt: string;
  finishedAt?: string;
  /** Wall seconds from creation to the terminal state. */
  seconds?: number;
  /** Sum of worker seconds over finished shards, and the slowest shard (sizing function time limits). */
  workerSeconds: number;
  maxShardSeconds: number;
  /** Output object names (shards, then the mixer), filled in when done. */
  outputs?: string[];
  mixer?: string | null;
  /**
   * Shard split applied to fit the function time limit (null when none was needed): the request's
   * `formatOptions.maxFileSize` was lowered to this (see `request.json` beside the status).
   */
  split?: { maxFileSize: number; patchesPerShard: number } | null;
  errors: JobError[];
}

/** Seconds between two ISO times, rounded to milliseconds. */
export function secondsBetween(from: string, to: string): number {
  return Math.round(Date.parse(to) - Date.parse(from)) / 1000;
}

/** `base` moved to a terminal `state` at `at`, timed from its creation. */
export function finishedStatus(base: JobStatus, state: 'done' | 'failed', at: string): JobStatus & { finishedAt: string; seconds: number } {
  return { ...base, state, updatedAt: at, finishedAt: at, seconds: secondsBetween(base.createdAt, at) };
}

/**
 * Whether an error should make the platform redeliver the event (rethrow) rather than fail the job
 * (record and acknowledge): retryable I/O, bugs (a new instance may not hit them) and cancellations.
 */
export function isRetryable(e: GeotfrError): boolean {
  return e.retryable || e.code === 'INTERNAL' || e.code === 'CANCELLED';
}

/** A fresh `queued` status for a job writing under `prefix` of `store`. */
export function newStatus(jobId: string, kind: 'image' | 'table', store: BlobStore, prefix: string, now: Date): JobStatus {
  const at = now.toISOString();
  return {
    version: 1,
    jobId,
    kind,
    state: 'queued',
    destination: store.uri(prefix),
    fileNamePrefix: prefix,
    shards: { total: 0, done: 0 },
    patches: { total: 0, done: 0 },
    bytes: 0,
    createdAt: at,
    updatedAt: at,
    workerSeconds: 0,
    maxShardSeconds: 0,
    errors: [],
  };
}
