/**
 * Deployment settings of the serverless pipeline (docs/semantics.md §10). Each is declared once in
 * shared/options.ts (env var, default, validator, doc); infra/ sets the same variables on every function.
 */
import { option } from '../options.js';
import { policyFromEnv, type Policy } from './policy.js';

export interface CloudConfig {
  /** Topic carrying export requests (scheduled exports publish here too). */
  requestTopic: string;
  /** Topic carrying one message per shard to the workers. */
  shardTopic: string;
  /** Topic the workers notify after each shard; the finalizer listens. */
  finalizeTopic: string;
  /** Function time limit in seconds (Cloud Functions 2nd gen event functions: up to 540). */
  functionTimeoutSeconds: number;
  /**
   * Uncompressed framed bytes one worker writes per second. With the time limit it bounds a shard's
   * size; see `shardSplit` in planner.ts. The default (20 MB/s) is an assumption for a Cloud Run vCPU:
   * bench/cloud.ts measured 10.5 MB/s per worker on one core of this loaded 2-core machine, at which a
   * default 1 GiB shard still takes ≈ 102 s, well inside half the 540 s limit. Set
   * GEOTFR_SHARD_BYTES_PER_SECOND from a measurement on the deployment.
   */
  shardBytesPerSecond: number;
  /** Events older than this are dropped with a log line (and their job failed), ending retry storms. */
  maxEventAgeSeconds: number;
  /** Deliveries of one bucket drop (Eventarc counts none for us) before its job is failed. */
  maxDeliveryAttempts: number;
  policy: Policy;
}

/** Reads the configuration (shared/options.ts: flag, then env, then default), per invocation so tests can vary it. */
export function cloudConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CloudConfig {
  return {
    requestTopic: option('requestTopic', env),
    shardTopic: option('shardTopic', env),
    finalizeTopic: option('finalizeTopic', env),
    functionTimeoutSeconds: option('functionTimeoutSeconds', env),
    shardBytesPerSecond: option('shardBytesPerSecond', env),
    maxEventAgeSeconds: option('maxEventAgeSeconds', env),
    maxDeliveryAttempts: option('maxDeliveryAttempts', env),
    policy: policyFromEnv(env),
  };
}
