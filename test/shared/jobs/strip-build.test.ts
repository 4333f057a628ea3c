/**
 * `buildStrip` (shared/jobs/strip-build.ts) on its worker thread against the same build on the
 * calling thread (`GEOTFR_STRIP_THREAD=0`), through the GCS JSON API server and the real
 * `@google-cloud/storage` client: random grids give the same parts byte for byte and the same tile
 * sizes, on one thread started ahead and reused; a corrupt record fails both with the same error
 * (code, file, offset) and publishes no part; an abort stops the thread's build without publishing,
 * and the next build still runs; a file gone after planning fails both alike, permanently.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openBucket } from '../../../shared/storage/open.js';
import type { BlobStore } from '../../../shared/storage/port.js';
import { encodeExample, floatFeature, type Feature } from '../../../shared/tfrecord/example.js';
import { frameRecords, gzipSync } from '../../../shared/tfrecord/record.js';
import { formatMixer, type Mixer } from '../../../shared/mixer.js';
import { InProcessQueue } from '../../../shared/queue/memory.js';
import { cloudConfigFromEnv } from '../../../shared/jobs/config.js';
import { submitIngest, type IngestJobPlan } from '../../../shared/jobs/ingest-strips.js';
import { buildStrip, prestartStripThread, stripThreadStats, type BuiltStrip, type StripBuild } from '../../../shared/jobs/strip-build.js';
import { GeotfrError } from '../../../shared/errors.js';
import { isRetryable } from '../../../shared/jobs/status.js';
import { startGcsServer, useGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { mulberry32 } from '../../support/random.js';

let server: GcsServer;
let store: BlobStore;
const BUCKET = 'strip-build-bkt';
/** The environment with the strip thread on and off (filled in once the server is up). */
const THREAD: NodeJS.ProcessEnv = {};
const HERE: NodeJS.ProcessEnv = {};

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  useGcsServer(server, { source: BUCKET, destination: BUCKET });
  Object.assign(THREAD, process.env, { GEOTFR_STRIP_THREAD: '1' });
  Object.assign(HERE, process.env, { GEOTFR_STRIP_THREAD: '0' });
  store = await openBucket(`gs://${BUCKET}`);
});
after(() => server.close());

/**
 * Plans an ingest of `total` random patches (one band, pw×ph, `ppr` per row) in two files, the first
 * gzipped, and returns its stored plan; `corrupt` then flips a byte of the plain file's payload.
 */
async function plan(name: string, seed: number, opts: { corrupt?: boolean } = {}): Promise<IngestJobPlan> {
  const rand = mulberry32(seed);
  const [pw, ph] = [16 * (1 + Math.floor(rand() * 3)), 16 * (1 + Math.floor(rand() * 3))];
  const ppr = 2 + Math.floor(rand() * 3);
  const total = ppr * (4 + Math.floor(rand() * 5));
  const recs = Array.from({ length: total }, () =>
    encodeExample(new Map<string, Feature>([['p', floatFeature(Float32Array.from({ length: pw * ph }, () => (rand() < 0.3 ? 0 : rand())))]])),
  );
  const mixer: Mixer = {
    projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, 500000, 0, -10, 4000000] } },
    patchDimensions: [pw, ph],
    patchesPerRow: ppr,
    totalPatches: total,
  };
  const cut = Math.floor(total / 3);
  const plain = frameRecords(recs.slice(cut));
  await store.write(`${name}/p-0.tfrecord.gz`, gzipSync(frameRecords(recs.slice(0, cut))));
  await store.write(`${name}/p-1.tfrecord`, plain);
  await store.write(`${name}/p-mixer.json`, formatMixer(mixer));
  const queue = new InProcessQueue(); // nobody subscribes: the strips are built by hand below
  const req = {
    files: [`gs://${BUCKET}/${name}/p-0.tfrecord.gz`, `gs://${BUCKET}/${name}/p-1.tfrecord`],
    mixer: `gs://${BUCKET}/${name}/p-mixer.json`,
    out: `gs://${BUCKET}/${name}/out.tif`,
    tileSize: 16,
    stripTileRows: 1,
  };
  await submitIngest(req, name, { queue, config: cloudConfigFromEnv() });
  // After planning (whose scan checks every record): the strips find it.
  if (opts.corrupt) {
    plain[Math.floor(plain.length / 2)] ^= 0x5a;
    await store.write(`${name}/p-1.tfrecord`, plain);
  }
  return JSON.parse((await store.read(`.geotfr/jobs/${name}/plan.json`)).toString()) as IngestJobPlan;
}

/** Strip `s` of `p` as a build writing its parts under `prefix`. */
function build(p: IngestJobPlan, s: number, prefix: string): StripBuild {
  const g = p.layout.geometry;
  const keys = Array.from({ length: g.m + 1 }, (_, k) => `${prefix}/s${s}-l${k}`);
  if (g.m < g.levels - 1) keys.push(`${prefix}/s${s}-raw`);
  return { bucket: BUCKET, layout: p.layout, out: p.out, strip: s, keys };
}

const sizes = ({ builtAt: _, ...rest }: BuiltStrip) => rest;

test('random grids: the thread writes the same parts and tile sizes as the calling thread', async () => {
  // As the strip worker's entry point does at start-up; with GEOTFR_STRIP_THREAD=0 nothing starts.
  prestartStripThread(HERE);
  assert.deepEqual(stripThreadStats(), { started: 0, idle: 0 });
  prestartStripThread(THREAD);
  prestartStripThread(THREAD);
  assert.deepEqual(stripThreadStats(), { started: 1, idle: 1 });
  for (let seed = 1; seed <= 4; seed++) {
    const p = await plan(`same-${seed}`, seed);
    assert.ok(p.layout.strips.length >= 2, `seed ${seed}: ${p.layout.strips.length} strips`);
    for (let s = 0; s < p.layout.strips.length; s++) {
      const [a, b] = [build(p, s, `same-${seed}/thread`), build(p, s, `same-${seed}/here`)];
      const [ta, tb] = await Promise.all([buildStrip(a, undefined, THREAD), buildStrip(b, undefined, HERE)]);
      assert.deepEqual(sizes(ta), sizes(tb), `seed ${seed} strip ${s}`);
      assert.equal(ta.wrote, a.keys.length);
      for (let k = 0; k < a.keys.length; k++) {
        const [x, y] = await Promise.all([store.read(a.keys[k]!), store.read(b.keys[k]!)]);
        assert.ok(x.equals(y), `seed ${seed} strip ${s}: ${a.keys[k]} differs from ${b.keys[k]}`);
        assert.equal(x.length, ta.partBytes[k] ?? ta.rawBytes, `seed ${seed} strip ${s} part ${k}: its size`);
      }
      // A redelivery: every part exists, none is written again, the sizes are the same.
      const again = await buildStrip(a, undefined, THREAD);
      assert.equal(again.wrote, 0);
      assert.deepEqual(sizes(again), { ...sizes(ta), wrote: 0 });
    }
  }
  // One build at a time: the prestarted thread, reused for every strip (the calling-thread builds start none).
  assert.deepEqual(stripThreadStats(), { started: 1, idle: 1 });
});

test('a corrupt record fails the thread with the error the calling thread gives, and no part is published', async () => {
  const p = await plan('corrupt', 9, { corrupt: true });
  let failed = 0;
  for (let s = 0; s < p.layout.strips.length; s++) {
    const [a, b] = [build(p, s, 'corrupt/thread'), build(p, s, 'corrupt/here')];
    const [ra, rb] = await Promise.allSettled([buildStrip(a, undefined, THREAD), buildStrip(b, undefined, HERE)]);
    assert.equal(ra.status, rb.status, `strip ${s}`);
    if (ra.status === 'fulfilled' || rb.status === 'fulfilled') continue;
    failed++;
    const [ea, eb] = [ra.reason as GeotfrError, rb.reason as GeotfrError];
    assert.ok(ea instanceof GeotfrError, `strip ${s}: ${ea}`);
    assert.equal(ea.code, eb.code);
    assert.equal(ea.message, eb.message);
    assert.equal(ea.retryable, eb.retryable);
    assert.equal(ea.code, 'BAD_INPUT');
    assert.match(ea.message, /p-1\.tfrecord.*byte offset \d+/);
    for (const key of [...a.keys, ...b.keys]) assert.equal(await store.stat(key), undefined, `${key} was published`);
  }
  assert.ok(failed >= 1, 'no strip read the corrupt record');
});

test('an abort stops the thread without publishing a part, and the next build runs', async () => {
  const p = await plan('abort', 3);
  const a = build(p, 0, 'abort/thread');
  const ac = new AbortController();
  const reason = new GeotfrError('CANCELLED', 'stopped by the test');
  const running = buildStrip(a, ac.signal, THREAD);
  ac.abort(reason);
  await assert.rejects(running, (err) => err === reason);
  await assert.rejects(buildStrip(a, ac.signal, THREAD), (err) => err === reason, 'an aborted signal starts nothing');
  // Its uploads settle on the thread; the parts are create-once, so a late one would show here.
  const next = await buildStrip(build(p, 0, 'abort/next'), undefined, THREAD);
  assert.equal(next.wrote, a.keys.length);
  for (const key of a.keys) assert.equal(await store.stat(key), undefined, `${key} was published after the abort`);
});

test('a prediction file deleted after planning: the same permanent error on both threads', async () => {
  const p = await plan('gone', 11);
  await store.delete('gone/p-1.tfrecord');
  const s = p.layout.strips.length - 1; // the last strip reads the plain file
  const [ra, rb] = await Promise.allSettled([buildStrip(build(p, s, 'gone/thread'), undefined, THREAD), buildStrip(build(p, s, 'gone/here'), undefined, HERE)]);
  assert.equal(ra.status, 'rejected');
  assert.equal(rb.status, 'rejected');
  const [ea, eb] = [(ra as PromiseRejectedResult).reason as GeotfrError, (rb as PromiseRejectedResult).reason as GeotfrError];
  assert.deepEqual([ea.code, ea.message, ea.retryable], [eb.code, eb.message, eb.retryable]);
  assert.match(ea.message, /gone\/p-1\.tfrecord/);
  assert.equal(isRetryable(ea), false, `${ea.code} ${ea.message}: retryable`);
});
