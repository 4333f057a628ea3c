/**
 * `npm run stack` (docs/semantics.md §10): the whole serverless pipeline on 127.0.0.1 — the real Pub/Sub emulator,
 * team gcs's GCS JSON API server (test/gcs-server/), and every function served by the
 * functions-framework — wired like infra/: three buckets (sources, exports, predictions), topics,
 * push subscriptions with dead-letter policies, and bucket notifications for `requests/` drops (exports
 * bucket) and `ingest/` drops (predictions bucket). Prints one line `STACK READY {json}` and runs until
 * SIGTERM/SIGINT, then stops everything (the emulator's whole process group too).
 *
 *   node dist/test/stack/stack.js [--workers N] [--strip-workers N] [--bucket BASE] [--project ID] [--pubsub-port P] [--storage-port P] [--dir DIR]
 *
 * `startStack()` is the same thing for tests and benches. Every function runs in its own child process
 * ("function instance") with its own environment, the allow-lists infra/ gives it (`FUNCTION_ROLES`),
 * so the stack refuses what the deployment refuses. With `workers: N`, `exportShard` runs as N
 * instances (one shard at a time each) behind a small dispatcher, as Cloud Run does with concurrency 1
 * and N max instances. `startStack` also sets `process.env` to the planner's configuration, so a test
 * may call the core (submitJob, runShard…) in its own process: one stack per process at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import { PubSub } from '@google-cloud/pubsub';
import { startGcsServer, type GcsServer } from '../gcs-server/server.js';
import { freePort, startPubsubEmulator, type Emulator } from './emulator.js';

/** The bucket roles of a deployment (infra/buckets.tf). */
export type BucketRole = 'sources' | 'exports' | 'predictions';

/**
 * What each function may read and write, and which drops trigger it: the rows of infra/'s
 * `local.functions` (infra/functions.tf). `reads` become GEOTFR_SOURCE_BUCKETS and `writes`
 * GEOTFR_DESTINATION_BUCKETS, exactly as infra/ derives them.
 */
export const FUNCTION_ROLES: Record<string, { reads: BucketRole[]; writes: BucketRole[]; drops?: { bucket: BucketRole; prefix: string } }> = {
  planExport: { reads: ['sources'], writes: ['exports'], drops: { bucket: 'exports', prefix: 'requests/' } },
  exportShard: { reads: ['sources'], writes: ['exports'] },
  finalizeExport: { reads: [], writes: ['exports'] },
  // Ingest drops go to the distributed ingest's planner (docs/semantics.md §13).
  ingestPredictions: { reads: ['exports', 'predictions'], writes: ['predictions'] },
  planIngest: { reads: ['exports', 'predictions'], writes: ['predictions'], drops: { bucket: 'predictions', prefix: 'ingest/' } },
  ingestStrip: { reads: ['exports', 'predictions'], writes: ['predictions'] },
  finalizeIngest: { reads: [], writes: ['predictions'] },
  deadLetter: { reads: [], writes: ['exports', 'predictions'] },
};

export interface StackOptions {
  projectId?: string;
  /** Base name of the buckets: BASE-sources, BASE-exports, BASE-predictions (default geotfr-local). */
  bucket?: string;
  pubsubPort?: number;
  storagePort?: number;
  /** Shard workers as separate processes (default 0: exportShard runs in this process). */
  workers?: number;
  /** ingestStrip instances behind a dispatcher (docs/semantics.md §13; default 1). */
  stripWorkers?: number;
  /** Delivery attempts before a message is dead-lettered (Pub/Sub allows 5–100). */
  maxDeliveryAttempts?: number;
  /** Keep GCS object bodies on disk here (large benches) instead of memory. */
  dir?: string;
  /** Extra environment for the functions (e.g. GEOTFR_FUNCTION_TIMEOUT_SECONDS). */
  env?: Record<string, string>;
  /** Echo emulator and function logs to stderr. */
  verbose?: boolean;
}

export interface Stack {
  projectId: string;
  /** The exports bucket (export requests are dropped and written here). */
  bucket: string;
  buckets: Record<BucketRole, string>;
  /** Process id of every function instance (exportShard may have several). */
  instances: { target: string; pid: number; url: string }[];
  pubsubHost: string;
  storageHost: string;
  requestTopic: string;
  shardTopic: string;
  finalizeTopic: string;
  deadLetterTopic: string;
  /** The distributed ingest's topics (docs/semantics.md §13). */
  ingestRequestTopic: string;
  stripTopic: string;
  ingestFinalizeTopic: string;
  /** URL of each function (planExport takes HTTP POSTs of requests). */
  functions: Record<string, string>;
  workers: number;
  gcs: GcsServer;
  /** What `STACK READY` prints. */
  describe(): Record<string, unknown>;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

function listen(server: http.Server, port = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

interface Instance {
  target: string;
  url: string;
  child: ChildProcess;
  /** Stops the instance; resolves at once if it already exited (it may have died or been killed). */
  stop(): Promise<void>;
}

/** A function instance in a child process (test/stack/instance.ts). */
async function startInstance(target: string, env: NodeJS.ProcessEnv, verbose: boolean): Promise<Instance> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(here, 'instance.js'), target, String(port)], {
    // FUNCTION_TARGET: as Cloud Run sets it for a function's instances.
    env: { ...env, FUNCTION_TARGET: target },
    stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'ignore'],
  });
  // Kept from the start: an instance that dies later has already fired 'exit' when the stack stops,
  // and waiting for that event again would hang (issue 11 item 16).
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let ready = false;
    void exited.then(() => reject(new Error(`${target} instance exited (${child.exitCode ?? child.signalCode}) before it was ready`)));
    // Read for as long as the instance runs (a full pipe would block its log writes), keep only until ready.
    child.stdout!.on('data', (d: Buffer) => {
      if (verbose) process.stderr.write(d);
      if (ready) return;
      out += d.toString();
      if (out.includes('INSTANCE READY')) {
        ready = true;
        resolve();
      }
    });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return { target, url: `http://127.0.0.1:${port}`, child, stop };
}

/**
 * Forwards each request to a free instance and holds it while all are busy, so at most `urls.length`
 * shards are written at once, like `max_instance_count` with one request per instance.
 */
function dispatcher(urls: string[]): http.Server {
  const free = [...urls];
  const waiting: ((url: string) => void)[] = [];
  const acquire = () => new Promise<string>((resolve) => (free.length ? resolve(free.shift()!) : waiting.push(resolve)));
  const release = (u: string) => (waiting.length ? waiting.shift()!(u) : free.push(u));
  return http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = await acquire();
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      const r = await fetch(url + (req.url ?? '/'), { method: req.method, headers, body: Buffer.concat(chunks), signal: AbortSignal.timeout(700_000) });
      const body = Buffer.from(await r.arrayBuffer());
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' }).end(body);
    } catch (err) {
      res.writeHead(503).end(String(err));
    } finally {
      release(url);
    }
  });
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const projectId = opts.projectId ?? 'geotfr-local';
  const base = opts.bucket ?? 'geotfr-local';
  const buckets: Record<BucketRole, string> = { sources: `${base}-sources`, exports: `${base}-exports`, predictions: `${base}-predictions` };
  const topics = {
    request: 'geotfr-requests',
    shard: 'geotfr-shards',
    finalize: 'geotfr-finalize',
    deadLetter: 'geotfr-dead-letter',
    ingestRequest: 'geotfr-ingest-requests',
    strip: 'geotfr-strips',
    ingestFinalize: 'geotfr-ingest-finalize',
  };
  const verbose = Boolean(opts.verbose);
  const cleanups: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  };
  try {
    const emulator: Emulator = await startPubsubEmulator(opts.pubsubPort, { log: verbose ? (l) => process.stderr.write(l) : undefined });
    cleanups.push(emulator.stop);
    const gcs = await startGcsServer({ port: opts.storagePort ?? 0, buckets: Object.values(buckets), dir: opts.dir });
    cleanups.push(() => gcs.close());

    const common = {
      PUBSUB_EMULATOR_HOST: emulator.host,
      STORAGE_EMULATOR_HOST: gcs.host,
      GOOGLE_CLOUD_PROJECT: projectId,
      METADATA_SERVER_DETECTION: 'none',
      GEOTFR_REQUEST_TOPIC: topics.request,
      GEOTFR_SHARD_TOPIC: topics.shard,
      GEOTFR_FINALIZE_TOPIC: topics.finalize,
      GEOTFR_INGEST_REQUEST_TOPIC: topics.ingestRequest,
      GEOTFR_STRIP_TOPIC: topics.strip,
      GEOTFR_INGEST_FINALIZE_TOPIC: topics.ingestFinalize,
      GEOTFR_ALLOW_LOCAL_PATHS: '0',
      GEOTFR_PROGRESS: '0',
    };
    /** A function's environment: the common settings plus its allow-lists, derived from its roles as infra/ does. */
    const envOf = (target: string): NodeJS.ProcessEnv => {
      const r = FUNCTION_ROLES[target]!;
      return {
        ...process.env,
        ...common,
        GEOTFR_SOURCE_BUCKETS: r.reads.map((x) => buckets[x]).join(','),
        GEOTFR_DESTINATION_BUCKETS: r.writes.map((x) => buckets[x]).join(','),
        ...opts.env,
      };
    };
    // This process acts as the planner when a test calls the core directly.
    Object.assign(process.env, envOf('planExport'));

    const { TARGETS } = await import('../../functions/index.js');
    const functions: Record<string, string> = {};
    const instances: Instance[] = [];
    const workers = Math.max(0, Math.floor(opts.workers ?? 0));
    const stripWorkers = Math.max(0, Math.floor(opts.stripWorkers ?? 0));
    const pooled: Record<string, number> = { exportShard: workers, ingestStrip: stripWorkers };
    for (const target of TARGETS) {
      const n = Math.max(1, pooled[target] ?? 1);
      const started = await Promise.all(Array.from({ length: n }, () => startInstance(target, envOf(target), verbose)));
      for (const i of started) cleanups.push(i.stop);
      instances.push(...started);
      if ((pooled[target] ?? 0) > 0) {
        const d = dispatcher(started.map((i) => i.url));
        functions[target] = await listen(d);
        cleanups.push(() => closeServer(d));
      } else functions[target] = started[0]!.url;
    }

    for (const [target, r] of Object.entries(FUNCTION_ROLES))
      if (r.drops) gcs.addNotify({ url: functions[target]!, bucketFilter: buckets[r.drops.bucket], prefix: r.drops.prefix });

    const pubsub = new PubSub({ projectId });
    cleanups.push(() => pubsub.close());
    const [dl] = await pubsub.createTopic(topics.deadLetter);
    const attempts = opts.maxDeliveryAttempts ?? 5;
    const push = (target: string, topic: string) => `${functions[target]}/projects/${projectId}/topics/${topic}`;
    const subscribe = async (topic: string, target: string, withDeadLetter: boolean, ackDeadlineSeconds: number) => {
      const [t] = topic === topics.deadLetter ? [dl] : await pubsub.createTopic(topic);
      await t.createSubscription(`${topic}-${target}`, {
        pushConfig: { pushEndpoint: push(target, topic) },
        ackDeadlineSeconds,
        retryPolicy: { minimumBackoff: { seconds: 0, nanos: 200_000_000 }, maximumBackoff: { seconds: 2 } },
        ...(withDeadLetter ? { deadLetterPolicy: { deadLetterTopic: dl.name, maxDeliveryAttempts: attempts } } : {}),
      });
    };
    await subscribe(topics.request, 'planExport', true, 600);
    await subscribe(topics.shard, 'exportShard', true, 600);
    await subscribe(topics.finalize, 'finalizeExport', true, 120);
    await subscribe(topics.ingestRequest, 'planIngest', true, 600);
    await subscribe(topics.strip, 'ingestStrip', true, 600);
    await subscribe(topics.ingestFinalize, 'finalizeIngest', true, 600);
    await subscribe(topics.deadLetter, 'deadLetter', false, 60);

    const instanceInfo = instances.map((i) => ({ target: i.target, pid: i.child.pid!, url: i.url }));
    const stack: Stack = {
      projectId,
      bucket: buckets.exports,
      buckets,
      instances: instanceInfo,
      pubsubHost: emulator.host,
      storageHost: gcs.host,
      requestTopic: topics.request,
      shardTopic: topics.shard,
      finalizeTopic: topics.finalize,
      deadLetterTopic: topics.deadLetter,
      ingestRequestTopic: topics.ingestRequest,
      stripTopic: topics.strip,
      ingestFinalizeTopic: topics.ingestFinalize,
      functions,
      workers,
      gcs,
      describe: () => ({
        pubsubHost: emulator.host,
        storageHost: gcs.host,
        projectId,
        requestTopic: topics.request,
        bucket: buckets.exports,
        buckets,
        shardTopic: topics.shard,
        finalizeTopic: topics.finalize,
        deadLetterTopic: topics.deadLetter,
        ingestRequestTopic: topics.ingestRequest,
        stripTopic: topics.strip,
        ingestFinalizeTopic: topics.ingestFinalize,
        functions,
        workers: workers || 1,
        instances: instanceInfo,
        env: { PUBSUB_EMULATOR_HOST: emulator.host, STORAGE_EMULATOR_HOST: gcs.host, GOOGLE_CLOUD_PROJECT: projectId },
      }),
      stop,
    };
    return stack;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opts: StackOptions = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const val = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--workers') opts.workers = Number(val());
    else if (a === '--strip-workers') opts.stripWorkers = Number(val());
    else if (a === '--bucket') opts.bucket = val();
    else if (a === '--project') opts.projectId = val();
    else if (a === '--pubsub-port') opts.pubsubPort = Number(val());
    else if (a === '--storage-port') opts.storagePort = Number(val());
    else if (a === '--dir') opts.dir = val();
    else if (a === '--verbose') opts.verbose = true;
    else {
      process.stderr.write(`unknown argument: ${a}\n`);
      process.exit(2);
    }
  }
  const stack = await startStack(opts);
  process.stdout.write(`STACK READY ${JSON.stringify(stack.describe())}\n`);
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    stack.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stderr.write(`stack: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
