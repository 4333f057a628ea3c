/**
 * The functions (functions/index.ts) served by the real functions-framework, without emulators:
 * Pub/Sub push deliveries come from the in-process queue (same push body as the emulator sends,
 * at-least-once with redelivery and dead-lettering), outputs go to a local directory. Outputs are
 * compared byte for byte with the `geotfr` CLI on the same (effective) request.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { type QueueMessage } from '../../shared/queue/port.js';
import { InProcessQueue } from '../../shared/queue/memory.js';
import { geotfr, hasGdal, needGdal } from '../support/oracles.js';
import { tempDir, writeGeoTiff } from '../support/rasters.js';
import type { JobStatus } from '../../shared/jobs/status.js';

let tmp: string;
let out: string;
let scene: string;
let queue: InProcessQueue;
const urls: Record<string, string> = {};
const servers: Server[] = [];
/** Push deliveries per topic (every attempt), to check what was acknowledged. */
const deliveries: { topic: string; status: number }[] = [];

const TOPICS = { request: 'requests', shard: 'shards', finalize: 'finalize', deadLetter: 'dead-letter' };

/** Delivers a message to a function as a Pub/Sub push subscription does (raw push body). */
async function push(target: string, m: QueueMessage, publishTime = new Date().toISOString()): Promise<void> {
  const body = {
    subscription: `projects/test/subscriptions/${m.topic}-${target}`,
    message: { data: Buffer.from(JSON.stringify(m.json)).toString('base64'), attributes: m.attributes, messageId: m.id, publishTime },
  };
  const r = await fetch(`${urls[target]}/projects/test/topics/${m.topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  deliveries.push({ topic: m.topic, status: r.status });
  await r.arrayBuffer();
  if (r.status >= 300) throw new Error(`${target} answered ${r.status}`);
}

function readStatus(jobId: string): Promise<JobStatus> {
  return fs.readFile(path.join(out, '.geotfr', 'jobs', jobId, 'status.json'), 'utf8').then((t) => JSON.parse(t) as JobStatus);
}

async function listFiles(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).sort();
}

/** Runs `geotfr export-image` on a request into a fresh directory; returns file name → bytes. */
async function cliExport(req: Record<string, unknown>, tag: string): Promise<Map<string, Buffer>> {
  const dir = path.join(tmp, `cli-${tag}`);
  const file = path.join(tmp, `cli-${tag}.json`);
  // Fresh: an export refuses a prefix that already holds one (docs/semantics.md §5).
  await fs.rm(dir, { recursive: true, force: true });
  await fs.writeFile(file, JSON.stringify({ ...req, bucket: dir, fileNamePrefix: 'p' }));
  const r = await geotfr(['export-image', file]);
  assert.equal(r.code, 0, r.stderr);
  const m = new Map<string, Buffer>();
  for (const n of await listFiles(dir)) if (!n.startsWith('.')) m.set(n, await fs.readFile(path.join(dir, n)));
  return m;
}

async function assertSameFiles(dir: string, prefix: string, ref: Map<string, Buffer>): Promise<void> {
  const names = (await listFiles(dir)).filter((n) => !n.startsWith('.'));
  assert.deepEqual(
    names,
    [...ref.keys()].map((k) => prefix + k.slice(1)),
  );
  for (const [k, v] of ref) assert.ok((await fs.readFile(path.join(dir, prefix + k.slice(1)))).equals(v), `${k} differs from geotfr export-image`);
}

describe('functions over the functions-framework', { concurrency: false, timeout: 300_000 }, () => {
  before(async () => {
    tmp = await tempDir('geotfr-functions-');
    out = path.join(tmp, 'bucket');
    await fs.mkdir(out);
    Object.assign(process.env, {
      GEOTFR_ALLOW_LOCAL_PATHS: '1',
      GEOTFR_SOURCE_BUCKETS: '',
      GEOTFR_DESTINATION_BUCKETS: '',
      GEOTFR_REQUEST_TOPIC: TOPICS.request,
      GEOTFR_SHARD_TOPIC: TOPICS.shard,
      GEOTFR_FINALIZE_TOPIC: TOPICS.finalize,
      GEOTFR_LOG_LEVEL: process.env.GEOTFR_LOG_LEVEL ?? 'NONE',
      GEOTFR_PROGRESS: '0',
    });
    await import('../../functions/index.js');
    const { setQueue } = await import('../../functions/context.js');
    queue = new InProcessQueue();
    setQueue(queue);
    for (const name of ['planExport', 'exportShard', 'finalizeExport', 'deadLetter']) {
      const s = getTestServer(name) as Server;
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      urls[name] = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    }
    const dl = { deadLetterTopic: TOPICS.deadLetter, maxDeliveryAttempts: 5, retryDelayMs: 20 };
    queue.subscribe(TOPICS.request, (m) => push('planExport', m, m.attributes.publishTime), dl);
    queue.subscribe(TOPICS.shard, (m) => push('exportShard', m), { ...dl, concurrency: 2 });
    queue.subscribe(TOPICS.finalize, (m) => push('finalizeExport', m), dl);
    queue.subscribe(TOPICS.deadLetter, (m) => push('deadLetter', m), { maxDeliveryAttempts: 5 });

    const w = 72;
    const h = 40;
    const b = [0, 1, 2].map((k) => Int16Array.from({ length: w * h }, (_, i) => ((i * (k + 3)) % 509) - 200));
    scene = path.join(tmp, 'scene.tif');
    if (hasGdal())
      await writeGeoTiff(scene, {
        width: w,
        height: h,
        bands: b,
        type: 'int16',
        nodata: -200,
        affine: [0.01, 0, 10, 0, -0.01, 50],
        crs: 'EPSG:4326',
        layout: 'GTiff',
      });
  });
  after(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const request = (prefix: string, extra: Record<string, unknown> = {}) => ({
    image: scene,
    bucket: out,
    fileNamePrefix: prefix,
    formatOptions: { patchDimensions: [8, 8], kernelSize: [5, 5] },
    ...extra,
  });

  test('a shard that would outlast the time limit is split via maxFileSize; the stored request reproduces the files with the CLI', async (t) => {
    if (!needGdal(t)) return;
    // Budget = 1 s × 0.5 × 20 kB/s = 10 kB per shard; one 12×12×3-float patch record is ~1.8 kB.
    process.env.GEOTFR_FUNCTION_TIMEOUT_SECONDS = '1';
    process.env.GEOTFR_SHARD_BYTES_PER_SECOND = '20000';
    try {
      const r = await fetch(`${urls.planExport}/?jobId=split-1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request('split/p')),
      });
      assert.equal(r.status, 202, await r.text());
      await queue.idle();
    } finally {
      delete process.env.GEOTFR_FUNCTION_TIMEOUT_SECONDS;
      delete process.env.GEOTFR_SHARD_BYTES_PER_SECOND;
    }
    const s = await readStatus('split-1');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    assert.ok(s.split && s.split.patchesPerShard >= 1, 'the plan should have been split');
    assert.equal(s.shards.total, Math.ceil(s.patches.total / s.split!.patchesPerShard));
    const stored = JSON.parse(await fs.readFile(path.join(out, '.geotfr/jobs/split-1/request.json'), 'utf8'));
    assert.equal(stored.formatOptions.maxFileSize, s.split!.maxFileSize);
    // Without the split the same request is one shard; with the stored request the CLI writes the same files.
    assert.equal((await cliExport(request('x'), 'unsplit')).size, 2);
    await assertSameFiles(path.join(out, 'split'), 'p', await cliExport(stored, 'split'));
  });

  test('"dryRun": true is answered at once with the resolved grid, and nothing is stored or published', async (t) => {
    if (!needGdal(t)) return;
    const before = await listFiles(out);
    const r = await fetch(`${urls.planExport}/?jobId=dry-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('dry/p', { dryRun: true, crs: 'EPSG:3035', scale: 2000 })),
    });
    // Answered like a planned job (202 with the body), but in full at once.
    assert.equal(r.status, 202);
    const body = (await r.json()) as {
      state: string;
      dryRun: { grid: { crs: string; rule: string; affine: number[] }; bands: { files: { mode: string }[] }[]; totalPatches: number };
    };
    assert.equal(body.state, 'dry-run');
    assert.equal(body.dryRun.grid.crs, 'EPSG:3035');
    assert.equal(body.dryRun.grid.rule, 'scale');
    assert.deepEqual([body.dryRun.grid.affine[0], body.dryRun.grid.affine[4]], [2000, -2000]);
    assert.ok(body.dryRun.bands.every((b) => b.files.every((f) => f.mode === 'warp')));
    await queue.idle();
    assert.deepEqual(await listFiles(out), before, 'a dry run stores nothing');
  });

  test('a scheduled request published with {date} lands under the publish date; redelivery reuses the job', async (t) => {
    if (!needGdal(t)) return;
    const publishTime = '2026-01-02T03:04:05.000Z';
    // Months-old publish times: lift the age cutoff for this test (the next test checks it).
    process.env.GEOTFR_MAX_EVENT_AGE_SECONDS = String(100 * 365 * 86400);
    t.after(() => delete process.env.GEOTFR_MAX_EVENT_AGE_SECONDS);
    await queue.publish(TOPICS.request, request('sched/{date}/p'), { jobId: 'sched-1', publishTime });
    await queue.idle();
    const s = await readStatus('sched-1');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    assert.equal(s.fileNamePrefix, 'sched/2026-01-02/p');
    const before = await listFiles(path.join(out, 'sched', '2026-01-02'));
    // The scheduler's message delivered again, a day later: the job exists, nothing new is written.
    await queue.publish(TOPICS.request, request('sched/{date}/p'), { jobId: 'sched-1', publishTime: '2026-01-03T00:00:00.000Z' });
    await queue.idle();
    assert.deepEqual(await listFiles(path.join(out, 'sched', '2026-01-02')), before);
    assert.deepEqual(await listFiles(path.join(out, 'sched')), ['2026-01-02']);
    await assertSameFiles(path.join(out, 'sched', '2026-01-02'), 'p', await cliExport(request('x'), 'plain'));
  });

  test('a permanent error (missing source) fails the job once, with the reason, and is acknowledged', async (t) => {
    if (!needGdal(t)) return;
    const n = deliveries.length;
    await queue.publish(TOPICS.request, request('missing/p', { image: path.join(tmp, 'nope.tif') }), { jobId: 'missing-1' });
    await queue.idle();
    const s = await readStatus('missing-1');
    assert.equal(s.state, 'failed');
    assert.equal(s.errors[0]!.code, 'NOT_FOUND');
    assert.match(s.errors[0]!.message, /nope\.tif/);
    assert.deepEqual(
      deliveries.slice(n).map((d) => d.status),
      [200],
      'delivered once and acknowledged',
    );
    assert.deepEqual(await listFiles(path.join(out, 'missing')), []);
  });

  test('a table request runs in the planner and matches geotfr export-table', async () => {
    const fc = {
      type: 'FeatureCollection',
      features: Array.from({ length: 50 }, (_, i) => ({
        type: 'Feature',
        geometry: { type: 'Point', coordinates: [i / 10, -i / 7] },
        properties: { id: i, name: `p${i}`, v: [i, i * 2] },
      })),
    };
    const src = path.join(tmp, 'points.geojson');
    await fs.writeFile(src, JSON.stringify(fc));
    const req = { collection: src, bucket: out, fileNamePrefix: 'table/train', selectors: ['id', 'name', 'v'], geometry: 'lonlat' };
    const r = await fetch(`${urls.planExport}/?jobId=table-1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req) });
    assert.equal(r.status, 202, await r.text());
    await queue.idle();
    const s = await readStatus('table-1');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    assert.equal(s.kind, 'table');
    assert.deepEqual(s.outputs, ['table/train.tfrecord.gz']);
    const ref = path.join(tmp, 'table-ref');
    const file = path.join(tmp, 'table-ref.json');
    await fs.writeFile(file, JSON.stringify({ ...req, bucket: ref }));
    const cli = await geotfr(['export-table', file]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.ok((await fs.readFile(path.join(out, 'table/train.tfrecord.gz'))).equals(await fs.readFile(path.join(ref, 'table/train.tfrecord.gz'))));
  });

  test('a shard message that fails every delivery is dead-lettered and fails its job with the last error', async (t) => {
    if (!needGdal(t)) return;
    // The destination "directory" of the shards is a plain file: every write fails (ENOTDIR/EEXIST,
    // an I/O error, so retryable), every delivery is nacked, and the dead-letter handler ends the job.
    await fs.writeFile(path.join(out, 'poison2'), 'in the way');
    const n = deliveries.length;
    await queue.publish(TOPICS.request, request('poison2/p'), { jobId: 'poison-2' });
    await queue.idle();
    const s = await readStatus('poison-2');
    assert.equal(s.state, 'failed', JSON.stringify(s));
    assert.match(s.errors.at(-1)!.message, /shard \d+ failed after 5 delivery attempts: IO: .*poison2/);
    const shardAttempts = deliveries.slice(n).filter((d) => d.topic === TOPICS.shard);
    assert.equal(shardAttempts.length, 5 * s.shards.total);
    assert.ok(shardAttempts.every((d) => d.status >= 500));
    assert.equal(await fs.readFile(path.join(out, 'poison2'), 'utf8'), 'in the way');
    assert.deepEqual(
      (await listFiles(out)).filter((f) => f.startsWith('poison2')),
      ['poison2'],
    );
  });

  test('an event older than GEOTFR_MAX_EVENT_AGE_SECONDS is acknowledged once and fails its job with the reason', async (t) => {
    if (!needGdal(t)) return;
    const n = deliveries.length;
    const old = new Date(Date.now() - 2 * 3600_000).toISOString(); // default cutoff: 1 h
    await queue.publish(TOPICS.request, request('stale/p'), { jobId: 'stale-1', publishTime: old });
    await queue.idle();
    const s = await readStatus('stale-1');
    assert.equal(s.state, 'failed');
    assert.equal(s.errors[0]!.code, 'LIMIT');
    assert.match(s.errors[0]!.message, /is \d+ s old, older than GEOTFR_MAX_EVENT_AGE_SECONDS=3600/);
    assert.deepEqual(
      deliveries.slice(n).map((d) => `${d.topic}:${d.status}`),
      [`${TOPICS.request}:200`],
      'one delivery, acknowledged',
    );
    assert.deepEqual(await listFiles(path.join(out, 'stale')), []);

    // A stale shard message of a planned job: acknowledged, and the job ends failed instead of running forever.
    const { submitJob } = await import('../../shared/jobs/planner.js');
    const { cloudConfigFromEnv } = await import('../../shared/jobs/config.js');
    const held = new InProcessQueue();
    await submitJob(request('stale2/p'), 'stale-2', new Date(), { queue: held, config: cloudConfigFromEnv() });
    const shard = held.unrouted.find((m) => m.topic === TOPICS.shard)!;
    await push('exportShard', shard, old);
    const s2 = await readStatus('stale-2');
    assert.equal(s2.state, 'failed');
    assert.match(s2.errors.at(-1)!.message, /^shard 0: .*older than GEOTFR_MAX_EVENT_AGE_SECONDS/);
    // The same message, fresh, after that: the job stays failed and nothing is written.
    await push('exportShard', shard);
    assert.equal((await readStatus('stale-2')).state, 'failed');
    assert.deepEqual(await listFiles(path.join(out, 'stale2')), []);

    // A dead-lettered message is settled whatever its age: it arrives after all its attempts.
    const held3 = new InProcessQueue();
    await submitJob(request('stale3/p'), 'stale-3', new Date(), { queue: held3, config: cloudConfigFromEnv() });
    const m3 = held3.unrouted.find((m) => m.topic === TOPICS.shard)!;
    await push('deadLetter', { ...m3, topic: TOPICS.deadLetter, attributes: { ...m3.attributes, CloudPubSubDeadLetterSourceDeliveryCount: '5' } }, old);
    const s3 = await readStatus('stale-3');
    assert.equal(s3.state, 'failed');
    assert.match(s3.errors.at(-1)!.message, /^shard 0 failed after 5 delivery attempts/);
  });

  test('a job id names one request: the same request again is a retry, any other is 409 and changes nothing', async (t) => {
    if (!needGdal(t)) return;
    const { submitJob } = await import('../../shared/jobs/planner.js');
    const { cloudConfigFromEnv } = await import('../../shared/jobs/config.js');
    // A healthy job, planned, its shard messages held (so it stays queued while the others arrive).
    const held = new InProcessQueue();
    const victim = request('victim/p');
    await submitJob(victim, 'victim-1', new Date(), { queue: held, config: cloudConfigFromEnv() });
    const jobDir = path.join(out, '.geotfr', 'jobs', 'victim-1');
    const snapshot = async () => {
      const names = (await fs.readdir(jobDir, { recursive: true })).map(String).sort();
      return Promise.all(names.map(async (n) => [n, await fs.readFile(path.join(jobDir, n)).catch(() => 'dir')] as const)).then((e) => JSON.stringify(e));
    };
    const before = await snapshot();
    const post = (body: unknown) =>
      fetch(`${urls.planExport}/?jobId=victim-1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // A rejected request under the id (unknown format option), over HTTP and over Pub/Sub.
    const bad = await post(request('victim/p', { formatOptions: { patchDimensions: [8, 8], foo: 1 } }));
    assert.equal(bad.status, 409, await bad.text());
    const n = deliveries.length;
    await queue.publish(TOPICS.request, request('elsewhere/p', { image: path.join(tmp, 'nope.tif') }), { jobId: 'victim-1' });
    await queue.idle();
    assert.deepEqual(
      deliveries.slice(n).map((d) => d.status),
      [200],
      'acknowledged once',
    );
    // A different, valid request under the id.
    const other = await post(request('other/p'));
    assert.equal(other.status, 409);
    assert.match(((await other.json()) as { error: { message: string } }).error.message, /job id "victim-1" already names a different request/);
    assert.equal(await snapshot(), before, "the existing job's state changed");
    assert.deepEqual(await listFiles(path.join(out, 'other')), []);
    // The same request again is an idempotent retry (202); the held shards then finish the job.
    const same = await post(victim);
    assert.equal(same.status, 202, await same.text());
    for (const m of held.unrouted) await queue.publish(m.topic, m.json, m.attributes);
    await queue.idle();
    const s = await readStatus('victim-1');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    await assertSameFiles(path.join(out, 'victim'), 'p', await cliExport(request('x'), 'plain'));
  });

  test('description, when it becomes the prefix, passes the same prefix check as fileNamePrefix', async (t) => {
    if (!needGdal(t)) return;
    for (const field of ['fileNamePrefix', 'description']) {
      const { fileNamePrefix: _, ...rest } = request('x');
      const r = await fetch(`${urls.planExport}/?jobId=desc-${field}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...rest, [field]: '.geotfr/jobs/victim/x' }),
      });
      assert.equal(r.status, 403, `${field}: ${await r.text()}`);
    }
    await queue.idle();
    assert.deepEqual(await listFiles(path.join(out, '.geotfr', 'jobs', 'victim')), []);
    // A harmless description is still the prefix, as in Earth Engine.
    const { fileNamePrefix: _, ...rest } = request('x');
    const ok = await fetch(`${urls.planExport}/?jobId=desc-ok`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...rest, description: 'desc/p' }),
    });
    assert.equal(ok.status, 202, await ok.text());
    await queue.idle();
    assert.equal((await readStatus('desc-ok')).state, 'done');
    assert.ok((await listFiles(path.join(out, 'desc'))).includes('p-mixer.json'));
  });

  test("the cloud finalizer writes the embedded export's mixer and manifest, byte for byte", async (t) => {
    if (!needGdal(t)) return;
    const r = await fetch(`${urls.planExport}/?jobId=meta-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('meta/p')),
    });
    assert.equal(r.status, 202, await r.text());
    await queue.idle();
    assert.equal((await readStatus('meta-1')).state, 'done');
    // The CLI on the same request and prefix, in another directory.
    const dir = path.join(tmp, 'cli-meta');
    const file = path.join(tmp, 'cli-meta.json');
    await fs.writeFile(file, JSON.stringify({ ...request('meta/p'), bucket: dir }));
    const cli = await geotfr(['export-image', file]);
    assert.equal(cli.code, 0, cli.stderr);
    for (const rel of ['meta/p-mixer.json', '.geotfr/manifests/meta/p.json']) {
      const [cloudBytes, cliBytes] = await Promise.all([fs.readFile(path.join(out, rel)), fs.readFile(path.join(dir, rel))]);
      assert.ok(cloudBytes.equals(cliBytes), `${rel} differs between the cloud job and geotfr export-image`);
    }
  });
});
