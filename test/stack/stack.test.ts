/**
 * End-to-end on the local stack (docs/semantics.md §10, issue 6 "Prove"): the real Pub/Sub emulator, the GCS JSON
 * API server, the functions served by the functions-framework, driven only through the real
 * `@google-cloud/storage` and `@google-cloud/pubsub` clients. Outputs are compared byte for byte with
 * `geotfr export-image` / `geotfr ingest-image` run on the same request.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { geotfr } from '../support/oracles.js';
import { tempDir, writeGeoTiff } from '../support/rasters.js';
import { clients, needPubsubEmulator, objects, quiesce, readStatus, waitFor, waitTerminal, type Clients } from './helpers.js';
import { emulatorPath } from './emulator.js';
import { startStack, type Stack } from './stack.js';
import { InProcessQueue } from '../../shared/queue/memory.js';
import { cloudConfigFromEnv } from '../../shared/jobs/config.js';
import { submitJob, type JobDeps, type ShardMessage } from '../../shared/jobs/planner.js';
import { runShard } from '../../shared/jobs/shard-worker.js';
import { finalizeJob } from '../../shared/jobs/finalizer.js';
import { distRoot } from '../support/oracles.js';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { mulberry32 } from '../support/random.js';

let stack: Stack | undefined;
let c: Clients;
let tmp: string;
const SRC = 'src/scene.tif';
const BIG = 'src/big.tif';

/** Seeded values so every run exports the same image (mulberry32). */
const seeded = mulberry32;

/** 96×80, two float32 bands with nodata holes; 16×16 patches with a 3×3 kernel; small files → several shards. */
function request(prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    image: `gs://${stack!.buckets.sources}/${SRC}`,
    bucket: stack!.bucket,
    fileNamePrefix: prefix,
    formatOptions: { patchDimensions: [16, 16], kernelSize: [3, 3], maxFileSize: 24_000 },
    ...extra,
  };
}

/** The reference: `geotfr export-image` on the same request, written to a local directory. */
const references = new Map<string, Map<string, Buffer>>();
async function reference(req: Record<string, unknown>, tag: string): Promise<Map<string, Buffer>> {
  const key = JSON.stringify({ ...req, fileNamePrefix: 'ref/p' });
  const have = references.get(key);
  if (have) return have;
  const dir = path.join(tmp, `ref-${tag}`);
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(tmp, `ref-${tag}.json`);
  await fs.writeFile(file, JSON.stringify({ ...req, bucket: dir, fileNamePrefix: 'ref/p' }));
  const r = await geotfr(['export-image', file]);
  assert.equal(r.code, 0, `geotfr export-image failed: ${r.stderr}`);
  const out = new Map<string, Buffer>();
  for (const name of (await fs.readdir(path.join(dir, 'ref'))).sort()) out.set(name.replace(/^p/, ''), await fs.readFile(path.join(dir, 'ref', name)));
  references.set(key, out);
  return out;
}

/** Asserts that exactly the reference's files exist under `prefix` (nothing else beside them), byte for byte. */
async function assertSameAsReference(prefix: string, ref: Map<string, Buffer>): Promise<Map<string, { bytes: Buffer; generation: string }>> {
  const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  const got = await objects(c, stack!.bucket, dir);
  const base = prefix.slice(dir.length);
  const names = [...got.keys()].map((k) => k.slice(dir.length));
  assert.deepEqual(
    names,
    [...ref.keys()].map((k) => base + k),
    `files under ${dir}`,
  );
  for (const [k, bytes] of ref) assert.ok(got.get(dir + base + k)!.bytes.equals(bytes), `${dir}${base}${k} differs from geotfr export-image`);
  return got;
}

async function dropRequest(name: string, req: unknown): Promise<string> {
  const f = c.storage.bucket(stack!.bucket).file(`requests/${name}.json`);
  // Create-once makes the upload idempotent, so the client retries it on a dropped connection.
  await f.save(JSON.stringify(req), { contentType: 'application/json', resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
  return `${name}-${f.metadata.generation}`;
}

describe('cloud stack end to end', { concurrency: false, timeout: 1_200_000 }, () => {
  before(async () => {
    if (!emulatorPath()) return;
    tmp = await tempDir('geotfr-stack-');
    stack = await startStack({ maxDeliveryAttempts: 5, env: { GEOTFR_LOG_LEVEL: process.env.GEOTFR_LOG_LEVEL ?? 'NONE' } });
    c = clients(stack);
    const rnd = seeded(6);
    const w = 96;
    const h = 80;
    const b1 = Float32Array.from({ length: w * h }, (_, i) => (rnd() < 0.05 ? -9999 : Math.round(rnd() * 1e4) / 100 + (i % w)));
    const b2 = Float32Array.from({ length: w * h }, () => (rnd() < 0.05 ? -9999 : rnd() * 2 - 1));
    const local = path.join(tmp, 'scene.tif');
    await writeGeoTiff(local, {
      width: w,
      height: h,
      bands: [b1, b2],
      type: 'float32',
      nodata: -9999,
      affine: [30, 0, 500000, 0, -30, 4200000],
      crs: 'EPSG:32633',
      bandNames: ['red', 'ndvi'],
      layout: 'COG',
      blockSize: 32,
      compress: 'DEFLATE',
    });
    await c.storage.bucket(stack.buckets.sources).upload(local, { destination: SRC });
    // 1024×1024×2 float32: one uncompressed 8 MiB shard, uploaded in many resumable chunks.
    const bw = 1024;
    const big = [0, 1].map((k) => Float32Array.from({ length: bw * bw }, (_, i) => ((i * 7 + k * 13) % 1000) / 10));
    const bigLocal = path.join(tmp, 'big.tif');
    await writeGeoTiff(bigLocal, {
      width: bw,
      height: bw,
      bands: big,
      type: 'float32',
      affine: [10, 0, 300000, 0, -10, 5000000],
      crs: 'EPSG:32633',
      layout: 'COG',
      blockSize: 256,
      compress: 'DEFLATE',
    });
    await c.storage.bucket(stack.buckets.sources).upload(bigLocal, { destination: BIG });
  });
  after(async () => {
    await c?.pubsub.close();
    await stack?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  test('a request dropped into requests/ exports the same shards and mixer as geotfr export-image', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const req = request('out/drop/p');
    const [ref, jobId] = await Promise.all([reference(request('x'), 'base'), dropRequest('drop', req)]);
    assert.ok(ref.size >= 4, `expected several shards and a mixer, got ${[...ref.keys()]}`);
    const s = await waitTerminal(c, stack!.bucket, jobId);
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    assert.equal(s.shards.done, s.shards.total);
    assert.equal(s.shards.total, ref.size - 1);
    assert.deepEqual(
      s.outputs,
      [...ref.keys()].map((k) => 'out/drop/p' + k),
    );
    const got = await assertSameAsReference('out/drop/p', ref);
    assert.equal(
      s.bytes,
      [...got.values()].filter((_, i) => i < s.shards.total).reduce((a, o) => a + o.bytes.length, 0),
    );
  });

  test('the same request published to the request topic, with duplicate shard messages racing the originals', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const req = request('out/pub/p');
    const ref = await reference(request('x'), 'base');
    const topic = c.pubsub.topic(stack!.requestTopic);
    await topic.publishMessage({ json: req, attributes: { jobId: 'pub-1' } });
    // As soon as the plan exists, publish every shard message twice more (duplicates and "redeliveries").
    const plan = await waitFor('the plan', async () => {
      const [buf] = await c.storage.bucket(stack!.bucket).file('.geotfr/jobs/pub-1/plan.json').download();
      return JSON.parse(buf.toString()) as { shards: { index: number }[] };
    });
    const shards = c.pubsub.topic(stack!.shardTopic);
    for (let k = 0; k < 2; k++)
      for (const s of plan.shards)
        await shards.publishMessage({
          json: { jobId: 'pub-1', bucket: stack!.bucket, shard: s.index },
          attributes: { jobId: 'pub-1', bucket: stack!.bucket, shard: String(s.index) },
        });
    const s = await waitTerminal(c, stack!.bucket, 'pub-1');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    await quiesce(stack!);
    const before = await assertSameAsReference('out/pub/p', ref);
    // Redeliver everything once more after completion: nothing is rewritten (same generations).
    for (const sh of plan.shards)
      await shards.publishMessage({
        json: { jobId: 'pub-1', bucket: stack!.bucket, shard: sh.index },
        attributes: { jobId: 'pub-1', bucket: stack!.bucket, shard: String(sh.index) },
      });
    await c.pubsub.topic(stack!.finalizeTopic).publishMessage({ json: { jobId: 'pub-1', bucket: stack!.bucket } });
    await quiesce(stack!);
    const afterAll = await assertSameAsReference('out/pub/p', ref);
    for (const [k, v] of before) assert.equal(afterAll.get(k)!.generation, v.generation, `${k} was rewritten`);
    assert.equal((await readStatus(c, stack!.bucket, 'pub-1'))!.state, 'done');
  });

  test('an HTTP POST to planExport runs the export; a bad request gets 400 naming the field', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const ref = await reference(request('x'), 'base');
    const res = await fetch(`${stack!.functions.planExport}/?jobId=http-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('out/http/p')),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const body = (await res.json()) as { jobId: string; statusUri: string };
    assert.equal(body.jobId, 'http-1');
    assert.match(body.statusUri, /\.geotfr\/jobs\/http-1\/status\.json$/);
    assert.equal((await waitTerminal(c, stack!.bucket, 'http-1')).state, 'done');
    await assertSameAsReference('out/http/p', ref);

    const bad = await fetch(`${stack!.functions.planExport}/?jobId=http-bad`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('out/bad/p', { formatOptions: { patchDimensions: [16, 16], foo: 1 } })),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /Unknown format options: foo/);
    const s = await readStatus(c, stack!.bucket, 'http-bad');
    assert.equal(s?.state, 'failed');
    assert.match(s!.errors[0]!.message, /Unknown format options: foo/);
    const traversal = await fetch(`${stack!.functions.planExport}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('../../etc/p')),
    });
    assert.equal(traversal.status, 403);
    const foreign = await fetch(`${stack!.functions.planExport}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...request('out/f/p'), image: 'gs://someone-else/x.tif' }),
    });
    assert.equal(foreign.status, 403);
    assert.match(await foreign.text(), /not in the allow-list/);
  });

  /** Core dependencies over an in-process queue nobody listens to: messages are kept, not delivered. */
  function heldDeps(): { deps: JobDeps; queue: InProcessQueue } {
    const queue = new InProcessQueue();
    return { deps: { queue, config: cloudConfigFromEnv() }, queue };
  }

  test('a worker killed mid-upload leaves nothing; the redelivered message writes the shard once', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const req = {
      image: `gs://${stack!.buckets.sources}/${BIG}`,
      bucket: stack!.bucket,
      fileNamePrefix: 'out/kill/p',
      formatOptions: { patchDimensions: [128, 128], compressed: false },
    };
    const ref = await reference({ ...req, fileNamePrefix: 'x' }, 'big');
    const { deps, queue } = heldDeps();
    await submitJob(req, 'kill-1', new Date(), deps);
    const msgs = queue.unrouted.filter((m) => m.topic === stack!.shardTopic);
    assert.equal(msgs.length, 1);
    // A worker process writing shard 0 in 256 KiB resumable chunks, SIGKILLed after its second chunk.
    const script = path.join(tmp, 'kill-worker.mjs');
    const mod = (p: string) => JSON.stringify(pathToFileURL(path.join(distRoot, p)).href);
    await fs.writeFile(
      script,
      `const { JobStore } = await import(${mod('shared/jobs/store.js')});
       const { openBucket } = await import(${mod('shared/storage/open.js')});
       const { writeShard } = await import(${mod('shared/export/shard.js')});
       const plan = await new JobStore(await openBucket(${JSON.stringify(stack!.bucket)}), 'kill-1').loadPlan();
       await writeShard(plan, 0, { createOnly: true });
       process.stdout.write('FINISHED');`,
    );
    const puts = () => stack!.gcs.counts['upload:resumable-put'] ?? 0;
    const before = puts();
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, GEOTFR_GCS_RESUMABLE_THRESHOLD: '1', GEOTFR_GCS_CHUNK_BYTES: String(256 * 1024) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, sig) => r(sig)));
    await waitFor('the worker to upload two chunks', async () => (puts() >= before + 2 ? true : undefined), 240_000, 5);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', `the worker finished before it could be killed: ${out}`);
    const [exists] = await c.storage.bucket(stack!.bucket).file('out/kill/p-00000.tfrecord').exists();
    assert.equal(exists, false, 'a killed upload must leave no object');
    // Pub/Sub redelivers the message (here: published for the first time to the real topic).
    const shards = c.pubsub.topic(stack!.shardTopic);
    for (const m of msgs) await shards.publishMessage({ json: m.json as ShardMessage, attributes: m.attributes });
    const s = await waitTerminal(c, stack!.bucket, 'kill-1');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    await assertSameAsReference('out/kill/p', ref);
  });

  test('concurrent finalizers write one mixer and finish the job once', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const ref = await reference(request('x'), 'base');
    const { deps, queue } = heldDeps();
    await submitJob(request('out/fin/p'), 'fin-1', new Date(), deps);
    const msgs = queue.unrouted.filter((m) => m.topic === stack!.shardTopic);
    assert.ok(msgs.length >= 2);
    // Every shard written (in parallel), none finalized: the finalize messages are held.
    await Promise.all(msgs.map((m) => runShard(m.json as ShardMessage, 1, deps)));
    const [mixerThere] = await c.storage.bucket(stack!.bucket).file('out/fin/p-mixer.json').exists();
    assert.equal(mixerThere, false);
    const push = (i: number) =>
      fetch(`${stack!.functions.finalizeExport}/projects/${stack!.projectId}/topics/${stack!.finalizeTopic}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          subscription: 'projects/x/subscriptions/y',
          message: { messageId: `f${i}`, data: Buffer.from(JSON.stringify({ jobId: 'fin-1', bucket: stack!.bucket })).toString('base64'), attributes: {} },
        }),
      }).then((r) => r.status);
    const msg = { jobId: 'fin-1', bucket: stack!.bucket };
    const results = await Promise.all([...Array.from({ length: 6 }, () => finalizeJob(msg, deps)), ...Array.from({ length: 4 }, (_, i) => push(i))]);
    for (const r of results.slice(0, 6)) assert.equal((r as { state: string }).state, 'done');
    for (const r of results.slice(6)) assert.ok((r as number) < 300, `finalizeExport answered ${r}`);
    const first = await assertSameAsReference('out/fin/p', ref);
    const again = await Promise.all(Array.from({ length: 4 }, () => finalizeJob(msg, deps)));
    for (const r of again) assert.equal(r.state, 'done');
    const second = await assertSameAsReference('out/fin/p', ref);
    assert.equal(second.get('out/fin/p-mixer.json')!.generation, first.get('out/fin/p-mixer.json')!.generation, 'the mixer was written twice');
    const terminal = await objects(c, stack!.bucket, '.geotfr/jobs/fin-1/');
    assert.ok(terminal.has('.geotfr/jobs/fin-1/done.json'));
    assert.ok(!terminal.has('.geotfr/jobs/fin-1/failed.json'));
    assert.equal((await readStatus(c, stack!.bucket, 'fin-1'))!.state, 'done');
  });

  test('a poison request is dead-lettered after its delivery attempts and its job marked failed with the reason', async (t) => {
    if (!needPubsubEmulator(t)) return;
    // Every delivery fails with a retryable error: Cloud Storage answers 503 to the job's status write
    // five times (the subscription's maxDeliveryAttempts), so each attempt throws and Pub/Sub redelivers.
    for (const enc of ['poison-1%2Fstatus.json', 'poison-1/status.json']) stack!.gcs.injectFault({ method: 'POST', pathIncludes: enc, status: 503, times: 5 });
    await c.pubsub.topic(stack!.requestTopic).publishMessage({ json: request('out/poison/p'), attributes: { jobId: 'poison-1' } });
    const s = await waitTerminal(c, stack!.bucket, 'poison-1', 120_000);
    assert.equal(s.state, 'failed');
    const reason = s.errors.at(-1)!.message;
    assert.match(reason, /request failed after \d+ delivery attempts/);
    assert.match(reason, /503/);
    const [files] = await c.storage.bucket(stack!.bucket).getFiles({ prefix: 'out/poison/' });
    assert.deepEqual(
      files.map((f) => f.name),
      [],
      'a failed request must not leave outputs',
    );
  });

  test('20 export jobs at once each end with exactly the expected files', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const ref = await reference(request('x'), 'base');
    const n = 20;
    const ids = await Promise.all(Array.from({ length: n }, (_, i) => dropRequest(`many-${i}`, request(`out/many/j${i}/p`))));
    const statuses = await Promise.all(ids.map((id) => waitTerminal(c, stack!.bucket, id, 200_000)));
    for (const [i, s] of statuses.entries()) {
      assert.equal(s.state, 'done', `job ${ids[i]}: ${JSON.stringify(s.errors)}`);
      await assertSameAsReference(`out/many/j${i}/p`, ref);
    }
    // Nothing stray anywhere under the outputs (no temporaries, no job state beside the shards).
    const [all] = await c.storage.bucket(stack!.bucket).getFiles({ prefix: 'out/many/' });
    assert.equal(all.length, n * ref.size);
  });

  test('a prediction drop produces the same COG as geotfr ingest-image (mixer in exports, COG in predictions, as infra/ deploys)', async (t) => {
    if (!needPubsubEmulator(t)) return;
    // Predictions: the shards exported by the drop test (tile-sized features, kernel from the manifest).
    const [done] = await c.storage.bucket(stack!.bucket).getFiles({ prefix: 'out/drop/' });
    assert.ok(done.length >= 2, 'the drop test must run first');
    const { exports, predictions } = stack!.buckets;
    const f = c.storage.bucket(predictions).file('ingest/pred.json');
    await f.save(
      JSON.stringify({ prefix: `gs://${exports}/out/drop/p-`, mixer: `gs://${exports}/out/drop/p-mixer.json`, out: `gs://${predictions}/pred/drop.tif` }),
      { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } },
    );
    const s = await waitTerminal(c, predictions, `pred-${f.metadata.generation}`, 120_000);
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    const [cog] = await c.storage.bucket(predictions).file('pred/drop.tif').download();
    // The same with the CLI, on the CLI's own export of the same request.
    const dir = path.join(tmp, 'ref-base', 'ref');
    const files = (await fs.readdir(dir))
      .filter((n) => n.endsWith('.tfrecord.gz'))
      .sort()
      .map((n) => path.join(dir, n));
    const out = path.join(tmp, 'pred.tif');
    const r = await geotfr(['ingest-image', '--mixer', path.join(dir, 'p-mixer.json'), '--out', out, ...files]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(cog.equals(await fs.readFile(out)), 'the COG differs from geotfr ingest-image');
  });

  /** Drops an ingest request into the predictions bucket; returns its job id. */
  async function dropIngest(name: string, req: unknown): Promise<string> {
    const f = c.storage.bucket(stack!.buckets.predictions).file(`ingest/${name}.json`);
    await f.save(JSON.stringify(req), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    return `${name}-${f.metadata.generation}`;
  }
  const deliveriesOf = (name: string) => stack!.gcs.deliveries.filter((d) => d.name === `ingest/${name}.json`);

  test('a poison ingest (absurd mixer grid) is validated first: failed with the reason and acknowledged once', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const { exports, predictions } = stack!.buckets;
    // A valid 16×16 prediction and a mixer claiming 1e9 such patches in one row: before the check, the COG
    // writer's first allocation failed with INTERNAL "Invalid typed array length", retried for a day.
    const { encodeExample, floatFeature } = await import('../../shared/tfrecord/example.js');
    const { frameRecords } = await import('../../shared/tfrecord/record.js');
    const mixer = {
      projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [30, 0, 500000, 0, -30, 4200000] } },
      patchDimensions: [16, 16],
      patchesPerRow: 1e9,
      totalPatches: 1e9,
    };
    await c.storage.bucket(exports).file('poison/p-mixer.json').save(JSON.stringify(mixer), { resumable: false });
    await c.storage
      .bucket(exports)
      .file('poison/p-00000.tfrecord')
      .save(frameRecords([encodeExample(new Map([['p', floatFeature(new Float32Array(256))]]))]), { resumable: false });
    const jobId = await dropIngest('poison', {
      files: [`gs://${exports}/poison/p-00000.tfrecord`],
      mixer: `gs://${exports}/poison/p-mixer.json`,
      out: `gs://${predictions}/poison/p.tif`,
      kernelSize: [1, 1],
    });
    const s = await waitTerminal(c, predictions, jobId, 120_000);
    assert.equal(s.state, 'failed');
    assert.equal(s.errors.at(-1)!.code, 'LIMIT');
    assert.match(s.errors.at(-1)!.message, /mixer's grid is 16000000000×16 = /);
    await waitFor('the delivery record', async () => (deliveriesOf('poison').length ? true : undefined));
    assert.deepEqual(
      deliveriesOf('poison').map((d) => [d.attempts, d.ok]),
      [[1, true]],
      'one delivery, acknowledged',
    );
    const [left] = await c.storage.bucket(predictions).getFiles({ prefix: 'poison/' });
    assert.deepEqual(
      left.map((x) => x.name),
      [],
    );
  });

  test('an ingest drop failing retryably on every delivery ends failed after GEOTFR_MAX_DELIVERY_ATTEMPTS, not running', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const { exports, predictions } = stack!.buckets;
    await c.storage.bucket(exports).file('flaky/p-mixer.json').save('{}', { resumable: false });
    // Every read of this mixer answers 503 (the client's own retries included): each delivery fails retryably.
    for (const enc of ['flaky%2Fp-mixer.json', 'flaky/p-mixer.json']) stack!.gcs.injectFault({ method: 'GET', pathIncludes: enc, status: 503, times: 10_000 });
    const jobId = await dropIngest('flaky', {
      files: [`gs://${exports}/flaky/p-00000.tfrecord`],
      mixer: `gs://${exports}/flaky/p-mixer.json`,
      out: `gs://${predictions}/flaky/p.tif`,
    });
    const s = await waitTerminal(c, predictions, jobId, 180_000);
    assert.equal(s.state, 'failed');
    assert.match(s.errors.at(-1)!.message, /^ingest failed after 5 delivery attempts: IO: .*503/);
    await waitFor('the delivery record', async () => (deliveriesOf('flaky').length ? true : undefined), 120_000);
    assert.deepEqual(
      deliveriesOf('flaky').map((d) => [d.attempts, d.ok]),
      [[5, true]],
      'the fifth delivery is acknowledged',
    );
  });

  test('an ingest job whose worker was killed moves on when the event comes again: rerun, or failed after the last attempt', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const { exports, predictions } = stack!.buckets;
    const { runIngestJob } = await import('../../shared/jobs/ingest.js');
    const { JobStore } = await import('../../shared/jobs/store.js');
    const { openBucket } = await import('../../shared/storage/open.js');
    const { newStatus } = await import('../../shared/jobs/status.js');
    // The ingest function's own configuration (its allow-lists), as the stack gives it.
    const deps: JobDeps = {
      queue: new InProcessQueue(),
      config: cloudConfigFromEnv({ ...process.env, GEOTFR_SOURCE_BUCKETS: `${exports},${predictions}`, GEOTFR_DESTINATION_BUCKETS: predictions }),
    };
    const req = (name: string) => ({
      prefix: `gs://${exports}/out/drop/p-`,
      mixer: `gs://${exports}/out/drop/p-mixer.json`,
      out: `gs://${predictions}/killed/${name}.tif`,
    });
    /** The state a killed worker leaves: its delivery counted, status running, no output. */
    const killedAfter = async (jobId: string, request: unknown, attempts: number) => {
      const job = new JobStore(await openBucket(`gs://${predictions}`), jobId);
      await job.claim(request, new Date());
      for (let i = 0; i < attempts; i++) await job.countAttempt(new Date());
      await job.writeStatus({ ...newStatus(jobId, 'image', job.store, `killed/${jobId}.tif`, new Date()), state: 'running' });
    };
    await killedAfter('killed-once', req('a'), 1);
    const rerun = await runIngestJob(req('a'), 'killed-once', deps);
    assert.equal(rerun.state, 'done', JSON.stringify(rerun.errors));
    await killedAfter('killed-last', req('b'), 5);
    const failed = await runIngestJob(req('b'), 'killed-last', deps);
    assert.equal(failed.state, 'failed');
    assert.match(failed.errors.at(-1)!.message, /after 5 delivery attempts \(the worker never finished: killed or out of time\)/);
    assert.equal((await readStatus(c, predictions, 'killed-last'))!.state, 'failed');
    const [outs] = await c.storage.bucket(predictions).getFiles({ prefix: 'killed/' });
    assert.deepEqual(
      outs.map((o) => o.name),
      ['killed/a.tif'],
    );
  });
});
