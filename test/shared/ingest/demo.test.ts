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
import { inflateSync } from 'node:zlib';
import { PRED_NODATA } from '../../../cli/demo-ingest.js';
import { quicklook } from '../../../cli/quicklook.js';

/** Decodes the PNGs our writer makes (8-bit RGB, filter 0 on every row) into RGB bytes. */
function readPng(buf: Buffer): { width: number; height: number; rgb: Uint8Array } {
  let o = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (o < buf.length) {
    const len = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    const data = buf.subarray(o + 8, o + 8 + len);
    if (type === 'IHDR') {
      [width, height] = [data.readUInt32BE(0), data.readUInt32BE(4)];
      assert.deepEqual([data[8], data[9]], [8, 2], '8-bit RGB');
    }
    if (type === 'IDAT') idat.push(data);
    o += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * (width * 3 + 1)], 0, 'filter 0');
    rgb.set(raw.subarray(y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1)), y * width * 3);
  }
  return { width, height, rgb };
}

test('demoIngest: export → normalized difference model → COG and quicklook PNGs', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-demo-ingest-');
  try {
    const rand = rng(99);
    const W = 70;
    const H = 52;
    const bands = [0, 1].map(() => Float64Array.from({ length: W * H }, () => 1 + Math.floor(rand() * 1000)));
    const src = path.join(dir, 'scene.tif');
    await writeGeoTiff(src, {
      width: W,
      height: H,
      bands,
      type: 'uint16',
      affine: [10, 0, 400000, 0, -10, 5000000],
      crs: 'EPSG:32631',
      bandNames: ['nir', 'red'],
    });
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
      assert.deepEqual(info.size, [512, 384], 'a 64×48 raster is enlarged ×8 to be visible');
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('demo pictures: holes are magenta and outside the stretch, prediction.tif declares nodata, quicklooks ≥ 512 px (issue 11 item 21)', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-demo-holes-');
  try {
    const rand = rng(7);
    const W = 64;
    const H = 48;
    // Reflectance-like values in 0.05..0.3 with a nodata hole: exported with defaultValue -1, a value
    // far below every valid one, which used to sit inside the 2–98% stretch and wash the picture white.
    const hole = (x: number, y: number) => (x - 20) ** 2 + (y - 20) ** 2 < 64;
    const bands = [0, 1].map(() => Float32Array.from({ length: W * H }, (_, i) => (hole(i % W, Math.floor(i / W)) ? -9999 : 0.05 + 0.25 * rand())));
    const src = path.join(dir, 'scene.tif');
    await writeGeoTiff(src, { width: W, height: H, bands, type: 'float32', nodata: -9999, affine: [10, 0, 400000, 0, -10, 5000000], crs: 'EPSG:32631' });
    const bucket = path.join(dir, 'bucket');
    await runImageExport({ image: src, bucket, fileNamePrefix: 'p', formatOptions: { patchDimensions: [16, 16], kernelSize: [3, 3], defaultValue: -1 } });
    const r = await demoIngest({ exportDir: bucket, prefix: 'p', outDir: path.join(dir, 'out') });

    const g = await readRasterWithGdal(r.predictionTif);
    assert.deepEqual(g.nodata, [PRED_NODATA]);
    let holes = 0;
    for (let y = 0; y < g.height; y++)
      for (let x = 0; x < g.width; x++) {
        const v = g.bands[0][y * g.width + x];
        if (hole(x, y)) holes++, assert.equal(v, PRED_NODATA, `hole pixel ${x},${y}`);
        else assert.ok(Math.abs(v) < 1, `valid pixel ${x},${y}: ${v}`);
      }
    assert.ok(holes > 100);

    for (const file of r.pngs) {
      const png = readPng(await fs.readFile(file));
      assert.ok(Math.max(png.width, png.height) >= 512, `${file} is ${png.width}×${png.height}`);
      const zoom = png.width / g.width;
      const grays: number[] = [];
      for (let y = 0; y < g.height; y++)
        for (let x = 0; x < g.width; x++) {
          const o = (Math.floor((y + 0.5) * zoom) * png.width + Math.floor((x + 0.5) * zoom)) * 3;
          const [R, G, B] = png.rgb.subarray(o, o + 3);
          if (hole(x, y)) assert.deepEqual([R, G, B], [255, 0, 255], `${path.basename(file)}: hole ${x},${y} is magenta`);
          else {
            assert.ok(R === G && G === B, `${path.basename(file)}: valid ${x},${y} is gray`);
            grays.push(R);
          }
        }
      // Stretched over valid pixels: the full range is used and the picture is not washed out.
      grays.sort((a, b) => a - b);
      const mean = grays.reduce((a, b) => a + b, 0) / grays.length;
      assert.ok(grays[0] <= 5 && grays[grays.length - 1] >= 250, `${path.basename(file)}: gray range ${grays[0]}..${grays[grays.length - 1]}`);
      assert.ok(mean > 60 && mean < 195, `${path.basename(file)}: mean gray ${mean}`);
    }

    // The export quicklook of four 18-px tiles is enlarged to be visible too.
    const tile = { channels: [0, 1, 2].map(() => Float32Array.from({ length: 18 * 18 }, () => rand())) as [Float32Array, Float32Array, Float32Array] };
    const q = readPng(quicklook([tile, tile, tile, tile], 18, 18, [1, 1], -1));
    assert.ok(Math.max(q.width, q.height) >= 512, `export quicklook ${q.width}×${q.height}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
