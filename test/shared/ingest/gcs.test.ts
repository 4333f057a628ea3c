/**
 * Ingest through Cloud Storage: predictions, mixer and export manifest on `gs://`, output to `gs://`,
 * via the GCS store and the project's GCS JSON API server (the real `@google-cloud/storage` client
 * talks to it). GDAL reads the downloaded COG; a corrupt input publishes no object.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openBucket } from '../../../shared/storage/open.js';
import { encodeExample, floatFeature, type Feature } from '../../../shared/tfrecord/example.js';
import { ingestImage } from '../../../shared/ingest/image.js';
import { formatMixer, type Mixer } from '../../../shared/mixer.js';
import { frameRecords, gzipSync } from '../../../shared/tfrecord/record.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { needGdal } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir } from '../../support/rasters.js';
import { rng } from '../cog/cogcheck.js';

let server: GcsServer;
const BUCKET = 'ingest-bucket';

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  process.env.STORAGE_EMULATOR_HOST = server.host;
});
after(async () => {
  await server.close();
});

test('gs:// predictions + mixer + manifest → gs:// COG that GDAL reads; a corrupt input publishes nothing', async (t) => {
  if (!needGdal(t)) return;
  const store = await openBucket(`gs://${BUCKET}`);
  const rand = rng(3);
  const [pw, ph, ppr, total, k] = [12, 10, 4, 8, 4];
  const m = k / 2;
  const tw = pw + 2 * m;
  const th = ph + 2 * m;
  const mixer: Mixer = {
    projection: { crs: 'EPSG:32611', affine: { doubleMatrix: [20, 0, 300000, 0, -20, 4000000] } },
    patchDimensions: [pw, ph],
    patchesPerRow: ppr,
    totalPatches: total,
  };
  const expect = new Float32Array(ppr * pw * (total / ppr) * ph);
  const recs: Buffer[] = [];
  for (let i = 0; i < total; i++) {
    const tile = Float32Array.from({ length: tw * th }, () => rand());
    const r = Math.floor(i / ppr);
    const c = i % ppr;
    for (let y = 0; y < ph; y++) for (let x = 0; x < pw; x++) expect[(r * ph + y) * ppr * pw + c * pw + x] = tile[(y + m) * tw + x + m];
    recs.push(encodeExample(new Map<string, Feature>([['score', floatFeature(tile)]])));
  }
  await store.write('exports/p-mixer.json', formatMixer(mixer));
  await store.write('.geotfr/manifests/exports/p.json', JSON.stringify({ version: 1, patchDimensions: [pw, ph], kernelSize: [k, k], totalPatches: total }));
  await store.write('preds/a.tfrecord.gz', gzipSync(frameRecords(recs.slice(0, 5))));
  await store.write('preds/b.tfrecord', frameRecords(recs.slice(5)));
  const files = [`gs://${BUCKET}/preds/a.tfrecord.gz`, `gs://${BUCKET}/preds/b.tfrecord`];
  const s = await ingestImage({ files, mixer: `gs://${BUCKET}/exports/p-mixer.json`, out: `gs://${BUCKET}/out/pred.tif` });
  assert.equal(s.out, `gs://${BUCKET}/out/pred.tif`);
  assert.equal(s.kernelFrom, 'manifest');
  const dir = await tempDir('geotfr-ingest-gcs-');
  try {
    const local = path.join(dir, 'pred.tif');
    await fs.writeFile(local, await store.read('out/pred.tif'));
    const g = await readRasterWithGdal(local);
    assert.equal(g.crs, 'EPSG:32611');
    assert.deepEqual(g.affine, mixer.projection.affine.doubleMatrix);
    assert.equal(g.layout, 'COG');
    assert.deepEqual(g.bands[0], Float64Array.from(expect));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }

  const bad = frameRecords(recs.slice(5));
  bad[bad.length - 10] ^= 0x55;
  await store.write('preds/b.tfrecord', bad);
  await assert.rejects(
    ingestImage({ files, mixer: `gs://${BUCKET}/exports/p-mixer.json`, out: `gs://${BUCKET}/out/bad.tif` }),
    /gs:\/\/ingest-bucket\/preds\/b\.tfrecord, record 2, byte offset \d+: data CRC mismatch/,
  );
  assert.equal(await store.stat('out/bad.tif'), undefined);
});
