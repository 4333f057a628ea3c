/**
 * The distributed ingest's core (shared/jobs/ingest-strips.ts) in one process: the GCS JSON API
 * server behind the real `@google-cloud/storage` client, an in-process queue delivering strip and
 * finalize messages to `runStrip` and `finalizeIngest`. The ingest options of docs/semantics.md §13
 * — `nodata` and `[D, h, w]` features — give the same bytes as `geotfr ingest-image --nodata
 * --depth`, and GDAL reads the bands `NAME_0…` with their values and the nodata value.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openBucket } from '../../../shared/storage/open.js';
import { encodeExample, floatFeature, int64Feature, type Feature } from '../../../shared/tfrecord/example.js';
import { frameRecords, gzipSync } from '../../../shared/tfrecord/record.js';
import { formatMixer, type Mixer } from '../../../shared/mixer.js';
import { InProcessQueue } from '../../../shared/queue/memory.js';
import { cloudConfigFromEnv } from '../../../shared/jobs/config.js';
import type { JobDeps } from '../../../shared/jobs/planner.js';
import {
  finalizeIngest,
  ingestConfigFromEnv,
  parseIngestFinalizeMessage,
  parseStripMessage,
  runStrip,
  submitIngest,
  type IngestStatus,
} from '../../../shared/jobs/ingest-strips.js';
import { startGcsServer, useGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { geotfr, needGdal } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

let server: GcsServer;
let dir: string;
const BUCKET = 'strips-bkt';
const NODATA = -9999;
const [PW, PH, PPR, TOTAL, D] = [20, 20, 3, 12, 3];

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  useGcsServer(server, { source: BUCKET, destination: BUCKET });
  dir = await tempDir('geotfr-strips-job-');
});
after(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** A queue delivering strips and finalize messages to the core functions, as the push subscriptions do. */
function pipeline(): { deps: JobDeps; queue: InProcessQueue } {
  const queue = new InProcessQueue();
  const deps: JobDeps = { queue, config: cloudConfigFromEnv() };
  const cfg = ingestConfigFromEnv();
  queue.subscribe(cfg.stripTopic, async (m) => void (await runStrip(parseStripMessage(m.json), m.deliveryAttempt, deps)), { concurrency: 2 });
  queue.subscribe(cfg.finalizeTopic, async (m) => void (await finalizeIngest(parseIngestFinalizeMessage(m.json), deps)));
  return { deps, queue };
}

test('nodata and [D, h, w] features: the distributed COG equals ingest-image --nodata --depth, GDAL reads NAME_0… and the nodata value', async (t) => {
  const rand = mulberry32(5);
  const layers: Float32Array[][] = [];
  const recs = Array.from({ length: TOTAL }, (_, i) => {
    const probs = Float32Array.from({ length: D * PW * PH }, () => (rand() < 0.05 ? NODATA : rand()));
    layers.push(Array.from({ length: D }, (_, d) => probs.subarray(d * PW * PH, (d + 1) * PW * PH)));
    const cls = Array.from({ length: PW * PH }, (_, j) => BigInt((i + j) % 7));
    return encodeExample(
      new Map<string, Feature>([
        ['probs', floatFeature(probs)],
        ['class', int64Feature(cls)],
      ]),
    );
  });
  const mixer: Mixer = {
    projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, 500000, 0, -10, 4000000] } },
    patchDimensions: [PW, PH],
    patchesPerRow: PPR,
    totalPatches: TOTAL,
  };
  const files = [gzipSync(frameRecords(recs.slice(0, 5))), frameRecords(recs.slice(5))];
  const store = await openBucket(`gs://${BUCKET}`);
  const local: string[] = [];
  for (const [i, data] of files.entries()) {
    const name = `p-${i}.tfrecord${i === 0 ? '.gz' : ''}`;
    await store.write(`preds/${name}`, data);
    local.push(path.join(dir, name));
    await fs.writeFile(local[i]!, data);
  }
  await store.write('preds/p-mixer.json', formatMixer(mixer));
  await fs.writeFile(path.join(dir, 'p-mixer.json'), formatMixer(mixer));

  const { deps, queue } = pipeline();
  const req = {
    files: files.map((_, i) => `gs://${BUCKET}/preds/p-${i}.tfrecord${i === 0 ? '.gz' : ''}`),
    mixer: `gs://${BUCKET}/preds/p-mixer.json`,
    out: `gs://${BUCKET}/out/opt.tif`,
    tileSize: 16,
    workers: 3,
    nodata: NODATA,
    depth: D,
  };
  const r = await submitIngest(req, 'opt-1', deps);
  assert.ok(r.strips >= 3, `${r.strips} strips for 3 workers`);
  await queue.idle();
  const s = JSON.parse((await store.read('.geotfr/jobs/opt-1/status.json')).toString()) as IngestStatus;
  assert.equal(s.state, 'done', JSON.stringify(s.errors));
  assert.equal(s.stripsDone, r.strips);
  const cog = await store.read('out/opt.tif');

  const ref = path.join(dir, 'ref.tif');
  const cli = await geotfr([
    'ingest-image',
    '--mixer',
    path.join(dir, 'p-mixer.json'),
    '--out',
    ref,
    '--tile-size',
    '16',
    '--nodata',
    String(NODATA),
    '--depth',
    String(D),
    ...local,
  ]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.ok(cog.equals(await fs.readFile(ref)), 'the distributed COG differs from geotfr ingest-image');

  if (!needGdal(t)) return;
  const file = path.join(dir, 'opt.tif');
  await fs.writeFile(file, cog);
  const g = await readRasterWithGdal(file);
  assert.deepEqual(g.bandNames, ['probs_0', 'probs_1', 'probs_2', 'class']);
  assert.deepEqual(g.nodata, [NODATA, NODATA, NODATA, NODATA]);
  const width = PPR * PW;
  for (let i = 0; i < TOTAL; i++) {
    const [r0, c0] = [Math.floor(i / PPR) * PH, (i % PPR) * PW];
    for (let d = 0; d < D; d++)
      for (let y = 0; y < PH; y += 3)
        for (let x = 0; x < PW; x += 3) assert.equal(g.bands[d]![(r0 + y) * width + c0 + x], layers[i]![d]![y * PW + x], `patch ${i} layer ${d} (${x}, ${y})`);
  }
});

test('bad options are refused before anything is planned', async () => {
  const { deps } = pipeline();
  const base = { files: [`gs://${BUCKET}/preds/p-1.tfrecord`], mixer: `gs://${BUCKET}/preds/p-mixer.json`, out: `gs://${BUCKET}/out/bad.tif` };
  await assert.rejects(submitIngest({ ...base, stripTileRows: 3 }, 'bad-1', deps), /stripTileRows must be a power of two/);
  await assert.rejects(submitIngest({ ...base, tileSize: 40 }, 'bad-2', deps), /tileSize must be a multiple of 16/);
  await assert.rejects(submitIngest({ ...base, nodata: 'none' }, 'bad-3', deps), /nodata must be a number or "nan"/);
  await assert.rejects(submitIngest({ ...base, depth: 0 }, 'bad-4', deps), /depth must be an integer/);
  await assert.rejects(submitIngest({ ...base, colour: 1 }, 'bad-5', deps), /unknown fields colour|Unknown ingest request fields: colour/);
  assert.equal(await (await openBucket(`gs://${BUCKET}`)).stat('out/bad.tif'), undefined);
});
