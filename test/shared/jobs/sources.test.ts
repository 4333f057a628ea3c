/**
 * The cloud planner's source allow-list (docs/cloud.md, GEOTFR_SOURCE_BUCKETS) covers every file an
 * image resolves to, not only the URIs written in the request: a STAC item in an allowed bucket whose
 * asset points into another bucket is FORBIDDEN before that file is opened, for image and patch
 * exports and for dry runs, through the real Cloud Storage client against our GCS server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { InProcessQueue } from '../../../shared/queue/memory.js';
import { cloudConfigFromEnv } from '../../../shared/jobs/config.js';
import { submitJob, type JobDeps } from '../../../shared/jobs/planner.js';
import { GeotfrError } from '../../../shared/errors.js';
import { startGcsServer, useGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { needGdal } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';

let server: GcsServer;
let dir: string;
const saved = { ...process.env };

before(async () => {
  server = await startGcsServer({ buckets: ['allowed-src', 'foreign', 'out'] });
  useGcsServer(server, { source: 'allowed-src', destination: 'out' });
  dir = await tempDir('geotfr-sources-');
});
after(async () => {
  process.env = saved;
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function item(href: string) {
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    id: 'scene',
    geometry: null,
    properties: { datetime: '2026-01-01T00:00:00Z' },
    assets: { red: { href, type: 'image/tiff; application=geotiff' } },
  };
}

test('a STAC asset outside the source allow-list is FORBIDDEN before it is read (export, patches, dry run)', async (t) => {
  if (!needGdal(t)) return;
  const storage = new Storage({ apiEndpoint: server.host, projectId: 'test' });
  const tif = path.join(dir, 'red.tif');
  await writeGeoTiff(tif, {
    width: 32,
    height: 32,
    bands: [Float64Array.from({ length: 1024 }, (_, i) => i)],
    type: 'float32',
    affine: [10, 0, 500000, 0, -10, 4000000],
    crs: 'EPSG:32633',
    layout: 'GTiff',
  });
  await storage.bucket('allowed-src').upload(tif, { destination: 'scene/red.tif' });
  // Not a TIFF: if the planner opened it, the error would be BAD_INPUT, not FORBIDDEN.
  await storage.bucket('foreign').file('secret/red.tif').save('not yours');
  await storage
    .bucket('allowed-src')
    .file('scene/ok.json')
    .save(JSON.stringify(item('./red.tif')));
  await storage
    .bucket('allowed-src')
    .file('scene/evil.json')
    .save(JSON.stringify(item('gs://foreign/secret/red.tif')));
  const deps: JobDeps = { queue: new InProcessQueue(), config: cloudConfigFromEnv() };
  const image = (name: string) => ({ stac: `gs://allowed-src/scene/${name}.json`, bands: ['red'] });
  const exportReq = (name: string, extra: object = {}) => ({
    image: image(name),
    bucket: 'out',
    fileNamePrefix: `e/${name}`,
    formatOptions: { patchDimensions: [16, 16] },
    ...extra,
  });

  // The same item with an asset in the allowed bucket plans (the control).
  const ok = await submitJob(exportReq('ok', { dryRun: true }), 'dry-ok', new Date(), deps);
  assert.equal(ok.state, 'dry-run');

  const forbidden = (e: unknown) => {
    assert.ok(e instanceof GeotfrError, String(e));
    assert.equal(e.code, 'FORBIDDEN', e.message);
    assert.match(e.message, /source bucket "foreign" is not in the allow-list/);
    assert.match(String(e.context.field), /^image\.bands\[0\]/);
    return true;
  };
  await assert.rejects(submitJob(exportReq('evil', { dryRun: true }), 'dry-evil', new Date(), deps), forbidden);
  await assert.rejects(submitJob(exportReq('evil'), 'job-evil', new Date(), deps), forbidden);
  await assert.rejects(
    submitJob(
      { image: image('evil'), points: { sample: { numPixels: 10, seed: 1 } }, kernelSize: 4, bucket: 'out', fileNamePrefix: 'p/evil' },
      'patch-evil',
      new Date(),
      deps,
    ),
    forbidden,
  );
  // Nothing was written under the output names.
  const [files] = await storage.bucket('out').getFiles({ prefix: 'e/' });
  assert.deepEqual(
    files.map((f) => f.name),
    [],
  );
});
