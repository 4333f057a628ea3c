/**
 * Deployment settings of the serverless pipeline (docs/semantics.md §10), declared once as data: one env var and
 * one default each (STYLE.md §5). infra/ sets the same variables on every function.
 */
import { GeotfrError } from '../errors.js';
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
  policy: Policy;
}

const OPTIONS = {
  requestTopic: { env: 'GEOTFR_REQUEST_TOPIC', def: 'geotfr-requests' },
  shardTopic: { env: 'GEOTFR_SHARD_TOPIC', def: 'geotfr-shards' },
  finalizeTopic: { env: 'GEOTFR_FINALIZE_TOPIC', def: 'geotfr-finalize' },
  functionTimeoutSeconds: { env: 'GEOTFR_FUNCTION_TIMEOUT_SECONDS', def: '540' },
  shardBytesPerSecond: { env: 'GEOTFR_SHARD_BYTES_PER_SECOND', def: String(20e6) },
} as const;

/** Reads the configuration from the environment (read per invocation, so tests can vary it). */
export function cloudConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CloudConfig {
  const get = (k: keyof typeof OPTIONS) => env[OPTIONS[k].env] || OPTIONS[k].def;
  const num = (k: keyof typeof OPTIONS) => {
    const n = Number(get(k));
    if (!Number.isFinite(n) || n <= 0) throw new GeotfrError('INTERNAL', `${OPTIONS[k].env} must be a positive number, got ${JSON.stringify(get(k))}`);
    return n;
  };
  return {
    requestTopic: get('requestTopic'),
    shardTopic: get('shardTopic'),
    finalizeTopic: get('finalizeTopic'),
    functionTimeoutSeconds: num('functionTimeoutSeconds'),
    shardBytesPerSecond: num('shardBytesPerSecond'),
    policy: policyFromEnv(env),
  };
}
