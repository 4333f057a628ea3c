/**
 * The demo's ingest loop (cli/demo-ingest.ts): export a GeoTIFF → normalized-difference "model" →
 * ingest → quicklooks. The prediction GeoTIFF must hold (b1 - b2) / (b1 + b2) of the source over the
 * exported grid (as GDAL reads it), and GDAL must read both PNGs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { demoIngest } from '../../../cli/demo-ingest.js';
import { runImageExport } from '../../../shared/export/run.js';
import { needGdal, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff } from '../../support/rasters.js';
import { rng } from '../cog/cogcheck.js';

test('demoIngest: export → normalized difference model → COG and quicklook PNGs', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-demo-ingest-');
  try {
    const rand = rng(99);
    const W = 70;
    const H = 52;
    const bands = [0, 1].map(() => Float64Array.from({ length: W * H }, () => 1 + Math.floor(rand() * 1000)));
    const src = path.join(dir, 'scene.tif');
    await writeGeoTiff(src, { width: W, height: H, bands, type: 'uint16', affine: [10, 0, 400000, 0, -10, 5000000], crs: 'EPSG:32631', bandNames: ['nir', 'red'] });
    const bucket = path.join(dir, 'bucket');
    await fs.mkdir(bucket);
    await runImageExport({ image: src, bucket, fileNamePrefix: 'demo/patches', formatOptions: { patchDimensions: [16, 16], kernelSize: [5, 5] } });
    const r = await demoIngest({ exportDir: bucket, prefix: 'demo/patches', outDir: path.join(dir, 'out') });
    const g = await readRasterWithGdal(r.predictionTif);
    assert.equal(g.width, 64);
    assert.equal(g.height, 48);
    assert.deepEqual(g.bandNames, ['nd']);
    assert.equal(g.layout, 'COG');
    for (let y = 0; y < g.height; y++)
      for (let x = 0; x < g.width; x++) {
        const a = bands[0][y * W + x];
        const b = bands[1][y * W + x];
        assert.equal(g.bands[0][y * g.width + x], Math.fround((Math.fround(a) - Math.fround(b)) / (Math.fround(a) + Math.fround(b))), `pixel ${x},${y}`);
      }
    assert.equal(r.pngs.length, 2);
    for (const png of r.pngs) {
      const info = JSON.parse((await run('gdalinfo', ['-json', png])).stdout.toString());
      assert.equal(info.driverShortName, 'PNG');
      assert.deepEqual(info.size, [64, 48]);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
