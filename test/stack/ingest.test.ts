/**
 * Distributed ingest end to end (docs/semantics.md §13) on the local stack: the real Pub/Sub
 * emulator, the GCS JSON API server with its compose, the functions served by the
 * functions-framework, driven through the real `@google-cloud/storage` and `@google-cloud/pubsub`
 * clients. 64 prediction patches (tile-sized, kernel 4) in a gzip file and two plain ones, cut into
 * 24 strips (patch rows straddle strip boundaries; 49 compose sources need a tree): the COG equals
 * `geotfr ingest-image`'s byte for byte and GDAL validates it. Killed strip workers, duplicate strip
 * messages, a poison strip and bad inputs are handled as the section says.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { distRoot, geotfr, needGdal, run } from '../support/oracles.js';
import { tempDir } from '../support/rasters.js';
import { validateCog } from '../shared/cog/cogcheck.js';
import { mulberry32 } from '../support/random.js';
import { clients, needPubsubEmulator, quiesce, waitFor, waitTerminal, type Clients } from './helpers.js';
import { emulatorPath } from './emulator.js';
import { startStack, type Stack } from './stack.js';
import { encodeExample, floatFeature, type Feature } from '../../shared/tfrecord/example.js';
import { frameRecords, gzipSync } from '../../shared/tfrecord/record.js';
import { formatMixer, type Mixer } from '../../shared/mixer.js';
import { InProcessQueue } from '../../shared/queue/memory.js';
import { cloudConfigFromEnv } from '../../shared/jobs/config.js';
import type { JobDeps } from '../../shared/jobs/planner.js';
import { finalizeIngest, runStrip, submitIngest, type IngestStatus } from '../../shared/jobs/ingest-strips.js';

let stack: Stack | undefined;
/** Predictions, mixer, request drops and COGs live in the prediction bucket, as infra/ deploys them. */
const PRED = () => stack!.buckets.predictions;
let c: Clients;
let tmp: string;
let reference: Buffer;

const [PW, PH, PPR, TOTAL, K] = [48, 48, 4, 64, 4];
const TILE = 16;
const STRIP_TILE_ROWS = 2;
const STRIPS = Math.ceil(((TOTAL / PPR) * PH) / (TILE * STRIP_TILE_ROWS));

/** The predictions: two float features per record, tile-sized (48+4 square), seeded. */
function records(): Buffer[] {
  const rand = mulberry32(11);
  const tw = PW + K;
  const th = PH + K;
  return Array.from({ length: TOTAL }, (_, i) => {
    const a = Float32Array.from({ length: tw * th }, (_, j) => Math.sin(i + j / 50) + rand() / 10);
    const b = Float32Array.from({ length: tw * th }, () => (rand() < 0.02 ? NaN : rand()));
    return encodeExample(
      new Map<string, Feature>([
        ['score', floatFeature(a)],
        ['other', floatFeature(b)],
      ]),
    );
  });
}

const FILES = ['preds/p-00000.tfrecord.gz', 'preds/p-00001.tfrecord', 'preds/p-00002.tfrecord'];
const MIXER = 'preds/p-mixer.json';
const mixer: Mixer = {
  projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, 500000, 0, -10, 4000000] } },
  patchDimensions: [PW, PH],
  patchesPerRow: PPR,
  totalPatches: TOTAL,
};

function request(out: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    files: FILES.map((f) => `gs://${PRED()}/${f}`),
    mixer: `gs://${PRED()}/${MIXER}`,
    out: `gs://${PRED()}/${out}`,
    kernelSize: [K, K],
    tileSize: TILE,
    stripTileRows: STRIP_TILE_ROWS,
    ...extra,
  };
}

async function exists(key: string): Promise<boolean> {
  return (await c.storage.bucket(PRED()).file(key).exists())[0];
}

async function download(key: string): Promise<Buffer> {
  return (await c.storage.bucket(PRED()).file(key).download())[0];
}

async function put(key: string, data: Buffer | string): Promise<void> {
  await c.storage.bucket(PRED()).file(key).save(data, { resumable: false });
}

/** Core dependencies over an in-process queue nobody listens to, with planIngest's allow-lists. */
function heldDeps(): { deps: JobDeps; queue: InProcessQueue } {
  const queue = new InProcessQueue();
  const b = stack!.buckets;
  const env = { ...process.env, GEOTFR_SOURCE_BUCKETS: `${b.exports},${b.predictions}`, GEOTFR_DESTINATION_BUCKETS: b.predictions };
  return { deps: { queue, config: cloudConfigFromEnv(env) }, queue };
}

async function readIngestStatus(jobId: string): Promise<IngestStatus> {
  return JSON.parse((await download(`.geotfr/jobs/${jobId}/status.json`)).toString()) as IngestStatus;
}

describe('distributed ingest on the local stack', { skip: !emulatorPath() && !process.env.CI ? 'no Pub/Sub emulator' : false }, () => {
  before(async () => {
    if (!emulatorPath()) return;
    tmp = await tempDir('geotfr-dingest-');
    stack = await startStack({ env: { GEOTFR_LOG_LEVEL: 'NONE' } });
    c = clients(stack);
    const recs = records();
    // A gzip file spanning several strips, and plain files read by byte ranges.
    const parts = [gzipSync(frameRecords(recs.slice(0, 20))), frameRecords(recs.slice(20, 50)), frameRecords(recs.slice(50))];
    await fs.mkdir(path.join(tmp, 'preds'));
    for (let i = 0; i < FILES.length; i++) {
      await put(FILES[i]!, parts[i]!);
      await fs.writeFile(path.join(tmp, FILES[i]!), parts[i]!);
    }
    await put(MIXER, formatMixer(mixer));
    await fs.writeFile(path.join(tmp, MIXER), formatMixer(mixer));
    const out = path.join(tmp, 'ref.tif');
    const r = await geotfr([
      'ingest-image',
      '--mixer',
      path.join(tmp, MIXER),
      '--out',
      out,
      '--kernel-size',
      `${K},${K}`,
      '--tile-size',
      String(TILE),
      ...FILES.map((f) => path.join(tmp, f)),
    ]);
    assert.equal(r.code, 0, r.stderr);
    reference = await fs.readFile(out);
  });
  after(async () => {
    await stack?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  test('an ingest/*.json drop runs 24 strips through Pub/Sub and compose: the same bytes as geotfr ingest-image, a valid COG', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const composesBefore = stack!.gcs.counts.compose ?? 0;
    const f = c.storage.bucket(PRED()).file('ingest/dist.json');
    await f.save(JSON.stringify(request('pred/dist.tif')), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    const jobId = `dist-${f.metadata.generation}`;
    const s = (await waitTerminal(c, PRED(), jobId, 180_000)) as IngestStatus;
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    assert.equal(s.strips, STRIPS);
    assert.equal(s.stripsDone, STRIPS);
    assert.ok(STRIPS >= 4);
    const cog = await download('pred/dist.tif');
    assert.equal(s.bytes, cog.length);
    assert.ok(cog.equals(reference), `the distributed COG (${cog.length} bytes) differs from geotfr ingest-image's (${reference.length})`);
    // 1 + 24×2 sources: a tree of composes (two nodes of ≤ 32, then the root).
    assert.ok((stack!.gcs.counts.compose ?? 0) - composesBefore >= 3, 'a compose tree');
    await quiesce(stack!);
    // The finalizer marks the job done once the COG is composed, then deletes the parts: wait for that
    // clean-up (the deadline only bounds a hang), then check nothing is left.
    const leftUnder = async (what: string) => (await c.storage.bucket(PRED()).getFiles({ prefix: `.geotfr/jobs/${jobId}/${what}/` }))[0].map((x) => x.name);
    await waitFor('the parts and compose intermediates to be deleted', async () =>
      (await leftUnder('parts')).length + (await leftUnder('compose')).length === 0 ? true : undefined,
    );
    assert.deepEqual(await leftUnder('parts'), [], 'parts are deleted');
    assert.deepEqual(await leftUnder('compose'), [], 'compose intermediates are deleted');
    if (!needGdal(t)) return;
    const file = path.join(tmp, 'dist.tif');
    await fs.writeFile(file, cog);
    assert.match((await run('gdalinfo', [file])).stdout.toString(), /LAYOUT=COG/);
    await validateCog(file);
  });

  test('a killed strip worker and duplicate strip messages change nothing', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const { deps } = heldDeps();
    await submitIngest(request('pred/kill.tif'), 'kill-1', deps);
    // Strip 3's raw part cannot be uploaded while this fault holds, so the worker is stuck after
    // writing its level parts: kill it there.
    stack!.gcs.injectFault({ method: 'POST', pathIncludes: 's00003-raw', status: 503, times: 1_000_000 });
    const script = path.join(tmp, 'kill-strip.mjs');
    await fs.writeFile(
      script,
      `import { runStrip } from ${JSON.stringify(pathToFileURL(path.join(distRoot, 'shared/jobs/ingest-strips.js')).href)};
       import { InProcessQueue } from ${JSON.stringify(pathToFileURL(path.join(distRoot, 'shared/queue/memory.js')).href)};
       import { cloudConfigFromEnv } from ${JSON.stringify(pathToFileURL(path.join(distRoot, 'shared/jobs/config.js')).href)};
       await runStrip({ jobId: 'kill-1', bucket: ${JSON.stringify(PRED())}, strip: 3 }, 1, { queue: new InProcessQueue(), config: cloudConfigFromEnv() });`,
    );
    // Any temporaries of the killed worker land in the test's own folder, removed in after(): a
    // SIGKILL leaves them behind by definition (test/run.mjs checks TMPDIR). A strip streams its
    // parts, so it should make none; the folder keeps the check honest if that changes.
    const childTmp = path.join(tmp, 'child-tmp');
    await fs.mkdir(childTmp, { recursive: true });
    const child = spawn(process.execPath, [script], { env: { ...process.env, TMPDIR: childTmp }, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, sig) => r(sig)));
    await waitFor('strip 3 level parts', async () => ((await exists('.geotfr/jobs/kill-1/parts/s00003-l01')) ? true : undefined), 60_000, 50);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    stack!.gcs.clearFaults();
    assert.equal(await exists('.geotfr/jobs/kill-1/shards/00003.json'), false, 'the killed strip has no marker');
    assert.equal(await exists('pred/kill.tif'), false);
    // Every strip message twice (originals and duplicates), then once more after the job is done.
    const topic = c.pubsub.topic(stack!.stripTopic);
    const publishAll = async () => {
      for (let s = 0; s < STRIPS; s++)
        await topic.publishMessage({ json: { jobId: 'kill-1', bucket: PRED(), strip: s }, attributes: { jobId: 'kill-1', bucket: PRED(), shard: String(s) } });
    };
    await publishAll();
    await publishAll();
    const s = await waitTerminal(c, PRED(), 'kill-1', 180_000);
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    await quiesce(stack!);
    const [meta] = await c.storage.bucket(PRED()).file('pred/kill.tif').getMetadata();
    assert.ok((await download('pred/kill.tif')).equals(reference), 'differs from geotfr ingest-image');
    await publishAll();
    await c.pubsub.topic(stack!.ingestFinalizeTopic).publishMessage({ json: { jobId: 'kill-1', bucket: PRED() } });
    await quiesce(stack!);
    const [again] = await c.storage.bucket(PRED()).file('pred/kill.tif').getMetadata();
    assert.equal(String(again.generation), String(meta.generation), 'the COG was rewritten');
    assert.equal((await readIngestStatus('kill-1')).state, 'done');
  });

  test('a poison strip is dead-lettered after its delivery attempts and fails the job with the reason; nothing is written', async (t) => {
    if (!needPubsubEmulator(t)) return;
    stack!.gcs.injectFault({ method: 'POST', pathIncludes: 'poison-1%2Fparts%2Fs00001-l00', status: 503, times: 1_000_000 });
    stack!.gcs.injectFault({ method: 'POST', pathIncludes: 'poison-1/parts/s00001-l00', status: 503, times: 1_000_000 });
    try {
      const res = await fetch(`${stack!.functions.planIngest}/?jobId=poison-1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request('pred/poison.tif')),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const s = (await waitTerminal(c, PRED(), 'poison-1', 300_000)) as IngestStatus;
      assert.equal(s.state, 'failed');
      assert.match(s.errors.at(-1)!.message, /shard 1 failed after \d+ delivery attempts: IO: .*503/);
      assert.equal(s.strips, STRIPS);
    } finally {
      stack!.gcs.clearFaults();
    }
    await quiesce(stack!);
    assert.equal(await exists('pred/poison.tif'), false);
  });

  test('bad input fails the job with a clear reason and writes nothing under the output name', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const post = async (jobId: string, body: unknown) => {
      const res = await fetch(`${stack!.functions.planIngest}/?jobId=${jobId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { error?: { message: string } } };
    };
    // Wrong record count: one file left out.
    const short = await post('bad-count', { ...request('pred/bad-count.tif'), files: FILES.slice(0, 2).map((f) => `gs://${PRED()}/${f}`) });
    assert.equal(short.status, 400);
    assert.match(short.body.error!.message, /wrong record count: 50 records in 2 file\(s\), but the mixer's totalPatches is 64/);
    assert.match((await readIngestStatus('bad-count')).errors[0]!.message, /wrong record count/);
    assert.equal(await exists('pred/bad-count.tif'), false);

    // A mixer whose grid is beyond the deployment's pixel cap.
    await put('preds/huge-mixer.json', formatMixer({ ...mixer, patchesPerRow: 1_000_000, totalPatches: 1_000_000_000_000 }));
    const huge = await post('bad-grid', { ...request('pred/bad-grid.tif'), mixer: `gs://${PRED()}/preds/huge-mixer.json` });
    assert.equal(huge.status, 400);
    assert.match(huge.body.error!.message, /huge-mixer\.json.*grid is 48000000×48000000 = 2304000000000000 pixels, more than the limit/);
    assert.equal((await readIngestStatus('bad-grid')).state, 'failed');

    // A record of the wrong length inside strip 10's rows: found by that strip's worker.
    const recs = records();
    const bad = [...recs];
    bad[41] = encodeExample(
      new Map<string, Feature>([
        ['score', floatFeature(new Float32Array(10))],
        ['other', floatFeature(new Float32Array(10))],
      ]),
    );
    await put('preds/bad-00001.tfrecord', frameRecords(bad.slice(20, 50)));
    const files = [FILES[0], 'preds/bad-00001.tfrecord', FILES[2]].map((f) => `gs://${PRED()}/${f}`);
    assert.equal((await post('bad-length', { ...request('pred/bad-length.tif'), files })).status, 202);
    const s = await waitTerminal(c, PRED(), 'bad-length', 120_000);
    assert.equal(s.state, 'failed');
    assert.match(
      s.errors.map((e) => e.message).join('\n'),
      /bad-00001\.tfrecord, record 21, byte offset \d+, field score: has 10 values; expected a 48×48 patch \(2304\) or a 52×52 tile \(2704\)/,
    );
    await quiesce(stack!);
    assert.equal(await exists('pred/bad-length.tif'), false);

    // A strip message naming a job that does not exist.
    await c.pubsub
      .topic(stack!.stripTopic)
      .publishMessage({ json: { jobId: 'ghost-1', bucket: PRED(), strip: 0 }, attributes: { jobId: 'ghost-1', bucket: PRED(), shard: '0' } });
    const ghost = await waitTerminal(c, PRED(), 'ghost-1', 60_000);
    assert.equal(ghost.state, 'failed');
    assert.match(ghost.errors[0]!.message, /job ghost-1 does not exist/);

    // Parts missing at finalize: every strip written, one part deleted, then the finalizer.
    const { deps } = heldDeps();
    await submitIngest(request('pred/missing.tif'), 'missing-1', deps);
    for (let i = 0; i < STRIPS; i++) assert.equal(await runStrip({ jobId: 'missing-1', bucket: PRED(), strip: i }, 1, deps), 'written');
    await c.storage.bucket(PRED()).file('.geotfr/jobs/missing-1/parts/s00005-l01').delete();
    const m = await finalizeIngest({ jobId: 'missing-1', bucket: PRED() }, deps);
    assert.equal(m.state, 'failed');
    assert.match(m.errors[0]!.message, /1 part\(s\) missing at finalize, e\.g\. gs:\/\/.*\/parts\/s00005-l01/);
    assert.equal(await exists('pred/missing.tif'), false);
  });
});
