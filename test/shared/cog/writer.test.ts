/**
 * The COG writer against GDAL: every sample type, odd sizes, several overview levels, BigTIFF,
 * georeferencing (projected and geographic EPSG), band names and nodata; values read back by GDAL
 * must be identical, overviews must be the 2×2 reduction, and GDAL must call the layout COG.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { CogWriter, allocPixels } from '../../../shared/cog/writer.js';
import type { Affine } from '../../../shared/mixer.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { needGdal, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir } from '../../support/rasters.js';
import { SAMPLE_RANGES } from '../../support/random.js';
import { gdalStructure, rng, validateCog } from './cogcheck.js';

function randomBands(type: SampleType, bands: number, n: number, rand: () => number): ReturnType<typeof allocPixels>[] {
  const [lo, hi] = SAMPLE_RANGES[type];
  return Array.from({ length: bands }, () => {
    const a = allocPixels(type, n);
    for (let i = 0; i < n; i++) {
      // Smooth-ish ramps plus noise: exercises the predictors on realistic and on noisy data.
      const v = type.startsWith('float') ? lo + (hi - lo) * rand() : Math.floor(lo + (hi - lo + 1) * rand());
      a[i] = i % 7 === 0 ? v : type.startsWith('float') ? v / 1000 : Math.min(hi, Math.max(lo, v));
    }
    return a;
  });
}

async function writeCog(file: string, opts: Parameters<typeof CogWriter.create>[0], bands: ArrayLike<number>[], rowsPerCall: number) {
  const w = await CogWriter.create(opts);
  try {
    const { width, height } = opts;
    for (let y = 0; y < height; y += rowsPerCall) {
      const n = Math.min(rowsPerCall, height - y);
      await w.writeRows(
        bands.map((b) => (b as Float64Array).subarray(y * width, (y + n) * width)),
        n,
      );
    }
    const out = createWriteStream(file);
    const res = await w.finish(out);
    out.end();
    await once(out, 'finish');
    return res;
  } finally {
    await w.close();
  }
}

const UTM: Affine = [10, 0, 500000, 0, -10, 4000000];
const GEO: Affine = [0.05, 0, -105, 0, -0.05, 20];

for (const [i, type] of (['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'float64'] as SampleType[]).entries()) {
  test(`COG ${type}: GDAL reads identical values, georeferencing, names, overviews and LAYOUT=COG`, async (t) => {
    if (!needGdal(t)) return;
    const dir = await tempDir('geotfr-cog-');
    try {
      const rand = rng(1000 + i);
      const width = 37 + Math.floor(rand() * 40);
      const height = 23 + Math.floor(rand() * 40);
      const nb = 1 + (i % 3);
      const bands = randomBands(type, nb, width * height, rand);
      const file = path.join(dir, `${type}.tif`);
      const geographic = i % 2 === 0;
      const names = Array.from({ length: nb }, (_, b) => `band_${type}_${b}${b === 1 ? ' <&"é>' : ''}`);
      const nodata = type === 'float32' ? -9999 : type === 'uint8' ? 255 : undefined;
      const res = await writeCog(
        file,
        {
          width,
          height,
          bands: nb,
          type,
          crs: geographic ? 'EPSG:4326' : 'EPSG:32633',
          affine: geographic ? GEO : UTM,
          bandNames: names,
          nodata,
          tileSize: 16,
        },
        bands,
        1 + Math.floor(rand() * 9),
      );
      const g = await readRasterWithGdal(file);
      assert.equal(g.width, width);
      assert.equal(g.height, height);
      assert.equal(g.crs, geographic ? 'EPSG:4326' : 'EPSG:32633');
      assert.deepEqual(g.affine, geographic ? GEO : UTM);
      assert.deepEqual(g.bandNames, names);
      assert.equal(g.layout, 'COG');
      assert.deepEqual(g.blockSize, [16, 16]);
      if (nodata !== undefined)
        assert.deepEqual(
          g.nodata,
          bands.map(() => nodata),
        );
      for (let b = 0; b < nb; b++) assert.deepEqual(g.bands[b], Float64Array.from(bands[b]), `band ${b} values`);
      // Overviews: halved (rounding up) until one tile holds the level.
      const s = await gdalStructure(file);
      const expect: [number, number][] = [];
      for (let w = width, h = height; w > 16 || h > 16; ) expect.push([(w = Math.ceil(w / 2)), (h = Math.ceil(h / 2))]);
      assert.deepEqual(s.overviews, expect);
      assert.equal(res.overviews, expect.length);
      assert.equal(s.imageStructure.COMPRESSION, 'DEFLATE');
      assert.equal(s.imageStructure.PREDICTOR, type.startsWith('float') ? '3' : '2');
      await validateCog(file);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}

/** Reads overview `level` (0 = first) of band 1..n with GDAL, as Float64. */
async function readOverview(file: string, level: number, width: number, height: number, bands: number): Promise<Float64Array[]> {
  const out = `${file}.ovr${level}.envi`;
  await run('gdal_translate', ['-q', '-ovr', String(level), '-of', 'ENVI', '-ot', 'Float64', '-co', 'INTERLEAVE=BSQ', file, out]);
  const raw = await fs.readFile(out);
  return Array.from({ length: bands }, (_, b) => {
    const a = new Float64Array(width * height);
    for (let k = 0; k < a.length; k++) a[k] = raw.readDoubleLE((b * a.length + k) * 8);
    return a;
  });
}

test('COG overviews: float average of valid 2×2 pixels (nodata/NaN excluded), integer nearest', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-cog-');
  try {
    const rand = rng(77);
    const width = 75;
    const height = 41;
    const nodata = -1;
    const f = new Float32Array(width * height).map(() => (rand() < 0.1 ? nodata : Math.round(rand() * 1000) / 8));
    const fi = path.join(dir, 'f.tif');
    await writeCog(fi, { width, height, bands: 1, type: 'float32', crs: 'EPSG:3857', affine: [30, 0, 0, 0, -30, 0], nodata, tileSize: 32 }, [f], 5);
    const [ow, oh] = [38, 21];
    const [ovr] = await readOverview(fi, 0, ow, oh, 1);
    for (let y = 0; y < oh; y++)
      for (let x = 0; x < ow; x++) {
        const vals: number[] = [];
        for (const [dx, dy] of [
          [0, 0],
          [1, 0],
          [0, 1],
          [1, 1],
        ]) {
          const sx = 2 * x + dx;
          const sy = 2 * y + dy;
          if (sx < width && sy < height && f[sy * width + sx] !== nodata) vals.push(f[sy * width + sx]);
        }
        const want = vals.length ? Math.fround(vals.reduce((a, b) => a + b, 0) / vals.length) : nodata;
        assert.equal(ovr[y * ow + x], want, `overview pixel ${x},${y}`);
      }
    const c = new Uint8Array(width * height).map(() => Math.floor(rand() * 5));
    const ci = path.join(dir, 'c.tif');
    await writeCog(ci, { width, height, bands: 1, type: 'uint8', crs: 'EPSG:3857', affine: [30, 0, 0, 0, -30, 0], tileSize: 32 }, [c], 7);
    const [covr] = await readOverview(ci, 0, ow, oh, 1);
    for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) assert.equal(covr[y * ow + x], c[2 * y * width + 2 * x], `class overview pixel ${x},${y}`);
    await validateCog(fi);
    await validateCog(ci);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('COG: BigTIFF on request, sheared transform, tiles spilled to disk', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-cog-');
  try {
    const rand = rng(5);
    const width = 300;
    const height = 200;
    const bands = randomBands('float32', 2, width * height, rand);
    const file = path.join(dir, 'big.tif');
    const affine: Affine = [2, 0, 1000, 0, -2, 5000];
    // A tiny spill budget forces every level's tiles through its temporary file.
    const res = await writeCog(
      file,
      { width, height, bands: 2, type: 'float32', crs: 'EPSG:32610', affine, bigTiff: 'yes', tileSize: 64, spillBytes: 1000 },
      bands,
      13,
    );
    assert.equal(res.bigTiff, true);
    const head = await fs.readFile(file);
    assert.equal(head.readUInt16LE(2), 43, 'BigTIFF magic');
    const g = await readRasterWithGdal(file);
    assert.deepEqual(g.affine, affine);
    assert.equal(g.crs, 'EPSG:32610');
    assert.equal(g.layout, 'COG');
    for (let b = 0; b < 2; b++) assert.deepEqual(g.bands[b], Float64Array.from(bands[b]));
    await validateCog(file);
    // A sheared grid needs ModelTransformation; GDAL must report the same six numbers.
    const sheared = path.join(dir, 'sheared.tif');
    const shear: Affine = [2, 0.5, 1000, 0.25, -2, 5000];
    await writeCog(
      sheared,
      { width: 40, height: 30, bands: 1, type: 'uint16', crs: 'EPSG:32610', affine: shear, tileSize: 16 },
      [new Uint16Array(1200).fill(7)],
      30,
    );
    const info = JSON.parse((await run('gdalinfo', ['-json', sheared])).stdout.toString());
    assert.deepEqual(info.geoTransform, [shear[2], shear[0], shear[1], shear[5], shear[3], shear[4]]);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('COG: refuses a CRS without an EPSG code and cleans its temporary directory on close', async () => {
  await assert.rejects(CogWriter.create({ width: 4, height: 4, bands: 1, type: 'uint8', crs: 'PROJCS["custom"]', affine: UTM }), /unsupported CRS/);
  const w = await CogWriter.create({ width: 4, height: 4, bands: 1, type: 'uint8', crs: 'EPSG:4326', affine: GEO, spillBytes: 0 });
  await w.writeRows([new Uint8Array(8)], 2);
  const tmp = (w as unknown as { tmpDir: string }).tmpDir;
  assert.ok((await fs.stat(tmp)).isDirectory());
  await w.close();
  await assert.rejects(fs.stat(tmp), /ENOENT/);
});

test('COG: the project raster reader (openImage: geotiff.js + node:zlib) reads every type back, with names and georeferencing', async () => {
  const { openImage } = await import('../../../shared/raster/open.js');
  const dir = await tempDir('geotfr-cog-');
  try {
    for (const [i, type] of (['uint8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'float64'] as SampleType[]).entries()) {
      const rand = rng(300 + i);
      const width = 70 + Math.floor(rand() * 60);
      const height = 50 + Math.floor(rand() * 60);
      const bands = randomBands(type, 2, width * height, rand);
      const file = path.join(dir, `${type}.tif`);
      await writeCog(file, { width, height, bands: 2, type, crs: 'EPSG:32633', affine: UTM, bandNames: ['first', 'second'], tileSize: 32 }, bands, 11);
      const src = await openImage(file);
      try {
        assert.deepEqual(
          src.bands.map((b) => [b.name, b.type]),
          [
            ['first', type],
            ['second', type],
          ],
        );
        assert.deepEqual(src.grid.affine, UTM);
        assert.equal(src.grid.crs, 'EPSG:32633');
        const win = await src.readWindow(0, 0, width, height);
        for (let b = 0; b < 2; b++) assert.deepEqual(win.values[b], Float64Array.from(bands[b]), `${type} band ${b}`);
      } finally {
        await src.close();
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
