/**
 * Patches on the §11 grid (docs/semantics.md §11, §12; docs/patches.md): rasters GDAL writes, patches
 * cut by the real runner (worker threads, block server) on a grid named by `crs`/`scale`, a mosaic,
 * a multi-resolution stack and a STAC item, with GDAL's warper as the oracle: every K×K window
 * around each point's pixel equals `gdalwarp -et 0 -wo XSCALE=1 -wo YSCALE=1 -ovr NONE` onto the
 * same grid (nearest exactly, except centres within the transform's error bound of a source pixel
 * edge; bilinear within 1e-4 of the range away from masks), bands on the grid copied exactly.
 * Points are given in the grid's CRS (a FeatureCollection `crs` member), so the containing pixel is
 * known independently. Also: a sample on a resolved grid is the same on 0 and 2 workers, stratified
 * classes are counted on the grid with nearest, TensorFlow parses the records, the plan carries the
 * grid and the files, and bad grid fields fail as image export's do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Affine } from '../../../shared/mixer.js';
import { runPatchExport, openPatchExport } from '../../../shared/patches/run.js';
import { chunkPoints, type PatchPlan } from '../../../shared/patches/plan.js';
import { PatchChunkProducer } from '../../../shared/patches/chunk.js';
import { openPatchImage } from '../../../shared/patches/image.js';
import { GZIP_HEADER } from '../../../shared/export/gzipchunks.js';
import type { GridImageSource } from '../../../shared/grid/source.js';
import { resolveGrid } from '../../../shared/grid/resolve.js';
import { GridTransform } from '../../../shared/grid/transform.js';
import { pointTransformer } from '../../../shared/grid/crs.js';
import { readRecordFile } from '../../../shared/tfrecord/record.js';
import { decodeExample, type Feature } from '../../../shared/tfrecord/example.js';
import { GeotfrError } from '../../../shared/errors.js';
import type { PixelGrid } from '../../../shared/raster/types.js';
import { gdalWarp, needGdalPython, type GdalAlg } from '../../support/gdalwarp.js';
import { listFiles } from '../../support/files.js';
import { needGdal, needTensorFlow, python } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

const FILL = -1;

/** A smooth field in [1, 1000] with a fraction `holes` of the nodata value `nodata`. */
function field(seed: number, w: number, h: number, holes: number, nodata: number): Float64Array {
  const r = mulberry32(seed);
  const fx = 4 + r() * 12,
    fy = 4 + r() * 12;
  return Float64Array.from({ length: w * h }, (_, k) =>
    r() < holes ? nodata : Math.max(1, Math.round(500 + 400 * Math.sin((k % w) / fx) * Math.cos(Math.floor(k / w) / fy) + 50 * r())),
  );
}

async function tif(file: string, w: number, h: number, affine: Affine, values: ArrayLike<number>, type: 'float32' | 'uint16' | 'uint8', nodata: number) {
  await writeGeoTiff(file, {
    width: w,
    height: h,
    bands: [values],
    type,
    nodata,
    affine,
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 64,
    compress: 'DEFLATE',
  });
}

/** Points at random positions inside pixels of `grid` (never on a pixel line), as a FeatureCollection in the grid's CRS. */
function pointsOn(grid: PixelGrid, n: number, seed: number): { cells: [number, number][]; fc: object } {
  const r = mulberry32(seed);
  const [a, b, c, d, e, f] = grid.affine;
  const cells: [number, number][] = [];
  const features = Array.from({ length: n }, (_, i) => {
    const col = Math.floor(r() * grid.width),
      row = Math.floor(r() * grid.height);
    cells.push([col, row]);
    const u = col + 0.2 + 0.6 * r(),
      v = row + 0.2 + 0.6 * r();
    return { type: 'Feature', geometry: { type: 'Point', coordinates: [a * u + b * v + c, d * u + e * v + f] }, properties: { id: i } };
  });
  return { cells, fc: { type: 'FeatureCollection', crs: { type: 'name', properties: { name: grid.crs } }, features } };
}

async function recordsOf(dir: string): Promise<Map<string, Feature>[]> {
  const out: Map<string, Feature>[] = [];
  for (const f of (await listFiles(dir)).filter((x) => x.endsWith('.tfrecord.gz')).sort())
    for await (const r of readRecordFile(path.join(dir, f))) out.push(decodeExample(r.data));
  return out;
}

/** gdalwarp of `files` (mosaic order) onto `grid` padded by `pad` pixels on every side. */
async function warped(files: string[], grid: PixelGrid, pad: number, alg: GdalAlg): Promise<{ values: Float64Array; width: number }> {
  const [a, b, c, d, e, f] = grid.affine;
  const affine: Affine = [a, b, c - a * pad - b * pad, d, e, f - d * pad - e * pad];
  const width = grid.width + 2 * pad;
  const [values] = await gdalWarp([{ src: { files }, dst: { width, height: grid.height + 2 * pad, affine, crs: grid.crs }, alg }]);
  return { values: values!, width };
}

/**
 * Each record's band `name` (K×K, y outer) against the oracle around its point's pixel: GDAL's empty
 * pixels must be masked here; masked pixels here are skipped (kernels touching a mask, which GDAL
 * renormalizes; at least `minValid` of GDAL's valid pixels must be compared); the rest equal exactly (tol 0) or within tol × range. `skip(col, row)`: exempt pixels.
 */
function checkWindows(
  name: string,
  recs: Map<string, Feature>[],
  cells: [number, number][],
  k: number,
  oracle: { values: Float64Array; width: number },
  pad: number,
  opts: { tol: number; range: number; fill?: number; skip?: (col: number, row: number) => boolean; minValid?: number },
): void {
  const h = Math.floor(k / 2);
  const fill = opts.fill ?? FILL;
  let compared = 0,
    total = 0;
  recs.forEach((rec, i) => {
    const [col, row] = cells[i]!;
    const got = rec.get(name)!.value as Float32Array;
    assert.equal(got.length, k * k);
    for (let y = 0; y < k; y++)
      for (let x = 0; x < k; x++) {
        const c = col - h + x,
          r = row - h + y;
        if (opts.skip?.(c, r)) continue;
        const g = oracle.values[(r + pad) * oracle.width + c + pad]!;
        const o = got[y * k + x]!;
        if (Number.isNaN(g)) {
          assert.equal(o, fill, `${name}, point ${i}, pixel (${c}, ${r}): GDAL has none, ours ${o}`);
          continue;
        }
        total++;
        if (o === fill) continue;
        compared++;
        if (opts.tol === 0) assert.equal(o, Math.fround(g), `${name}, point ${i}, pixel (${c}, ${r})`);
        else assert.ok(Math.abs(o - g) <= opts.tol * opts.range, `${name}, point ${i}, pixel (${c}, ${r}): ours ${o}, GDAL ${g}`);
      }
  });
  // Of the pixels GDAL has, those masked here are kernels touching a mask or an edge (few; none for nearest).
  assert.ok(total > 0 && compared >= (opts.minValid ?? 0.5) * total, `${name}: only ${compared} of ${total} pixels compared`);
}

/** Grid pixels whose centre lies within the transform's error bound of a pixel edge of `file` (exempt from exactness, docs/semantics.md §11). */
function nearEdge(grid: PixelGrid, file: { crs: string; affine: Affine }): (col: number, row: number) => boolean {
  const t = new GridTransform(grid, file);
  const near = (v: number) => Math.abs(v - Math.round(v)) <= t.errorBoundPx + 1e-9;
  return (col, row) => {
    const [x, y] = t.exact(col + 0.5, row + 0.5);
    return near(x) || near(y);
  };
}

const ids = (recs: Map<string, Feature>[]) => recs.map((r) => (r.get('id')!.value as Float32Array)[0]);

test('crs + scale: UTM 33N at 10 m cut on EPSG:3035 at 30 m, nearest and bilinear equal gdalwarp; the plan carries the grid; TensorFlow parses it', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const dir = await tempDir('geotfr-pgrid-');
  try {
    const W = 240,
      H = 200;
    const affine: Affine = [10, 0, 500000, 0, -10, 5300000];
    const src = path.join(dir, 'utm.tif');
    await tif(src, W, H, affine, field(1, W, H, 0.01, -9999), 'float32', -9999);
    const native: PixelGrid = { crs: 'EPSG:32633', affine, width: W, height: H };
    const grid = resolveGrid({ crs: 'EPSG:3035', scale: 30 }, native);
    // docs/grid.md rule 2: another CRS → lines through the CRS origin, 30 m pixels, the footprint covered.
    assert.deepEqual([grid.affine[0], grid.affine[1], grid.affine[3], grid.affine[4]], [30, 0, 0, -30]);
    assert.ok(Number.isInteger(grid.affine[2] / 30) && Number.isInteger(grid.affine[5] / 30));
    const K = 7;
    const { cells, fc } = pointsOn(grid, 80, 2);
    await fs.writeFile(path.join(dir, 'pts.geojson'), JSON.stringify(fc));
    const request = {
      image: {
        bands: [
          { name: 'near', uri: src },
          { name: 'bil', uri: src, resample: 'bilinear' },
        ],
      },
      points: path.join(dir, 'pts.geojson'),
      properties: ['id'],
      kernelSize: K,
      defaultValue: FILL,
      dropNulls: false,
      crs: 'EPSG:3035',
      scale: 30,
      bucket: path.join(dir, 'out'),
      fileNamePrefix: 'p',
    };
    const opened = await openPatchExport(request);
    try {
      assert.deepEqual(opened.plan.source, { crs: grid.crs, affine: grid.affine, width: grid.width, height: grid.height });
      assert.equal(opened.plan.gridRule, 'scale');
      assert.deepEqual(opened.plan.nativeGrid, native);
      assert.deepEqual(
        opened.plan.image!.files.map((f) => f.uri),
        [src],
      );
      assert.deepEqual(
        opened.plan.image!.bands.map((b) => b.resample),
        ['nearest', 'bilinear'],
      );
      // The plan is plain JSON (cloud workers read it back).
      assert.deepEqual(JSON.parse(JSON.stringify(opened.plan)), opened.plan);
    } finally {
      await opened.points.close();
      await opened.close();
    }
    const summary = await runPatchExport(request, { workers: 2 });
    assert.equal(summary.records, 80);
    const recs = await recordsOf(path.join(dir, 'out'));
    assert.deepEqual(
      ids(recs),
      cells.map((_, i) => i),
    );
    const pad = K;
    const [near, bil] = await Promise.all([warped([src], grid, pad, 'near'), warped([src], grid, pad, 'bilinear')]);
    checkWindows('near', recs, cells, K, near, pad, { tol: 0, range: 1000, skip: nearEdge(grid, native), minValid: 0.8 });
    checkWindows('bil', recs, cells, K, bil, pad, { tol: 1e-4, range: 1000, minValid: 0.7 });

    if (needTensorFlow(t)) {
      const sums = JSON.parse(
        await python(
          `
import json, sys, tensorflow as tf
spec = {n: tf.io.FixedLenFeature([7, 7], tf.float32) for n in ['near', 'bil']}
spec['id'] = tf.io.FixedLenFeature([1], tf.float32)
out = {'near': 0.0, 'bil': 0.0}; count = 0
for rec in tf.data.TFRecordDataset(sys.argv[1], compression_type='GZIP'):
    ex = tf.io.parse_single_example(rec, spec); count += 1
    for n in out: out[n] += float(tf.reduce_sum(tf.cast(ex[n], tf.float64)))
print(json.dumps({'count': count, 'sums': out}))`,
          [path.join(dir, 'out', 'p.tfrecord.gz')],
        ),
      );
      assert.equal(sums.count, 80);
      for (const n of ['near', 'bil']) {
        const ours = recs.reduce((s, r) => s + (r.get(n)!.value as Float32Array).reduce((a, v) => a + v, 0), 0);
        assert.ok(Math.abs(sums.sums[n] - ours) <= 1e-6 * Math.abs(ours) + 1e-3, `${n}: TensorFlow ${sums.sums[n]}, ours ${ours}`);
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a two-file mosaic (a list, and the same files as a glob) onto EPSG:3035 at 25 m equals gdalwarp given the files in order', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const dir = await tempDir('geotfr-pmosaic-');
  try {
    await fs.mkdir(path.join(dir, 'm'));
    const a = path.join(dir, 'm', 'a.tif'),
      b = path.join(dir, 'm', 'b.tif');
    const ga: Affine = [10, 0, 500000, 0, -10, 5300000],
      gb: Affine = [20, 0, 501200, 0, -20, 5299200];
    await tif(a, 200, 150, ga, field(3, 200, 150, 0.03, 0), 'uint16', 0);
    await tif(b, 110, 90, gb, field(4, 110, 90, 0.03, 0), 'uint16', 0);
    const native: PixelGrid = { crs: 'EPSG:32633', affine: ga, width: 200, height: 150 };
    const grid = resolveGrid({ crs: 'EPSG:3035', scale: 25 }, native, [native, { crs: 'EPSG:32633', affine: gb, width: 110, height: 90 }]);
    const K = 6;
    const { cells, fc } = pointsOn(grid, 60, 5);
    await fs.writeFile(path.join(dir, 'pts.geojson'), JSON.stringify(fc));
    const summary = await runPatchExport(
      {
        image: {
          bands: [
            { name: 'list', uri: [a, b] },
            { name: 'glob', uri: path.join(dir, 'm', '*.tif') },
          ],
        },
        points: path.join(dir, 'pts.geojson'),
        kernelSize: K,
        defaultValue: FILL,
        dropNulls: false,
        crs: 'EPSG:3035',
        scale: 25,
        bucket: path.join(dir, 'out'),
        fileNamePrefix: 'p',
      },
      { workers: 2 },
    );
    assert.equal(summary.records, 60);
    const recs = await recordsOf(path.join(dir, 'out'));
    const pad = K;
    const oracle = await warped([a, b], grid, pad, 'near');
    const ea = nearEdge(grid, { crs: 'EPSG:32633', affine: ga }),
      eb = nearEdge(grid, { crs: 'EPSG:32633', affine: gb });
    const skip = (c: number, r: number) => ea(c, r) || eb(c, r);
    // uint16 picked by nearest stays uint16: masked pixels hold defaultValue -1 clamped to 0.
    checkWindows('list', recs, cells, K, oracle, pad, { tol: 0, range: 1000, fill: 0, skip, minValid: 0.6 });
    checkWindows('glob', recs, cells, K, oracle, pad, { tol: 0, range: 1000, fill: 0, skip, minValid: 0.6 });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("a 10 m + 20 m stack at scale 20, and a STAC item on its first band's grid: copied bands exact, the others like gdalwarp", async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const dir = await tempDir('geotfr-pstack-');
  try {
    await fs.mkdir(path.join(dir, 'item', 'R'), { recursive: true });
    const x0 = 500000,
      y0 = 5300000;
    const files = {
      red: { res: 10, n: 240, type: 'uint16' as const, values: field(6, 240, 240, 0.02, 0) },
      B11: { res: 20, n: 120, type: 'uint16' as const, values: field(7, 120, 120, 0.02, 0) },
      SCL: { res: 20, n: 120, type: 'uint8' as const, values: Float64Array.from(field(8, 120, 120, 0.02, 0), (v) => (v === 0 ? 0 : 1 + (v % 9))) },
    };
    const assets: Record<string, object> = {};
    const file = (k: keyof typeof files) => path.join(dir, 'item', 'R', `${k}.tif`);
    const gridOf = (k: keyof typeof files): PixelGrid => {
      const f = files[k];
      return { crs: 'EPSG:32633', affine: [f.res, 0, x0, 0, -f.res, y0], width: f.n, height: f.n };
    };
    for (const k of Object.keys(files) as (keyof typeof files)[]) {
      const f = files[k];
      await tif(file(k), f.n, f.n, gridOf(k).affine, f.values, f.type, 0);
      assets[k] = {
        href: `./R/${k}.tif`,
        'proj:epsg': 32633,
        'proj:shape': [f.n, f.n],
        'proj:transform': [...gridOf(k).affine, 0, 0, 1],
        ...(k === 'red' ? { 'eo:bands': [{ name: 'B04', common_name: 'red' }] } : {}),
      };
    }
    const item = path.join(dir, 'item', 'item.json');
    await fs.writeFile(item, JSON.stringify({ type: 'Feature', stac_version: '1.0.0', id: 'x', geometry: null, properties: {}, assets }));
    const K = 5;
    const pad = K;

    // Bands on their own grids, at scale 20: lines through red's corners, so B11 and SCL are copied and red is warped.
    const g20 = resolveGrid({ scale: 20 }, gridOf('red'));
    assert.deepEqual(g20, { ...gridOf('B11'), rule: 'scale' });
    const p20 = pointsOn(g20, 50, 9);
    await fs.writeFile(path.join(dir, 'p20.geojson'), JSON.stringify(p20.fc));
    await runPatchExport(
      {
        image: {
          bands: [
            { name: 'red', uri: file('red') },
            { name: 'B11', uri: file('B11'), resample: 'bilinear' },
            { name: 'SCL', uri: file('SCL') },
          ],
        },
        points: path.join(dir, 'p20.geojson'),
        kernelSize: K,
        defaultValue: FILL,
        dropNulls: false,
        scale: 20,
        bucket: path.join(dir, 'out20'),
        fileNamePrefix: 'p',
      },
      { workers: 2 },
    );
    const r20 = await recordsOf(path.join(dir, 'out20'));
    assert.equal(r20.length, 50);
    const [redNear, b11Copy, sclCopy] = await Promise.all([
      warped([file('red')], g20, pad, 'near'),
      warped([file('B11')], g20, pad, 'near'),
      warped([file('SCL')], g20, pad, 'near'),
    ]);
    checkWindows('red', r20, p20.cells, K, redNear, pad, { tol: 0, range: 1000, fill: 0, minValid: 0.8 });
    checkWindows('B11', r20, p20.cells, K, b11Copy, pad, { tol: 0, range: 1000, fill: 0, minValid: 0.8 });
    checkWindows('SCL', r20, p20.cells, K, sclCopy, pad, { tol: 0, range: 10, fill: 0, minValid: 0.8 });

    // The STAC item with no grid fields: red's native 10 m grid; red copied, B11 bilinear, SCL nearest.
    const g10 = gridOf('red');
    const p10 = pointsOn(g10, 50, 10);
    await fs.writeFile(path.join(dir, 'p10.geojson'), JSON.stringify(p10.fc));
    await runPatchExport(
      {
        image: { stac: item, bands: ['red', { name: 'B11', resample: 'bilinear' }, 'SCL'] },
        points: path.join(dir, 'p10.geojson'),
        kernelSize: K,
        defaultValue: FILL,
        dropNulls: false,
        bucket: path.join(dir, 'out10'),
        fileNamePrefix: 'p',
      },
      { workers: 0 },
    );
    const r10 = await recordsOf(path.join(dir, 'out10'));
    const [redCopy, b11Bil, sclNear] = await Promise.all([
      warped([file('red')], g10, pad, 'near'),
      warped([file('B11')], g10, pad, 'bilinear'),
      warped([file('SCL')], g10, pad, 'near'),
    ]);
    checkWindows('red', r10, p10.cells, K, redCopy, pad, { tol: 0, range: 1000, fill: 0, minValid: 0.8 });
    checkWindows('B11', r10, p10.cells, K, b11Bil, pad, { tol: 1e-4, range: 1000, minValid: 0.7 });
    checkWindows('SCL', r10, p10.cells, K, sclNear, pad, { tol: 0, range: 10, fill: 0, minValid: 0.8 });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('sample and stratified on a resolved grid: same bytes on 0 and 2 workers, pixels in the region, classes counted with nearest on the grid', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const dir = await tempDir('geotfr-psample-');
  try {
    const v = path.join(dir, 'v.tif'),
      lc = path.join(dir, 'lc.tif');
    const va: Affine = [10, 0, 500000, 0, -10, 5300000],
      la: Affine = [20, 0, 500000, 0, -20, 5300000];
    await tif(v, 240, 200, va, field(11, 240, 200, 0.01, -9999), 'float32', -9999);
    await tif(
      lc,
      120,
      100,
      la,
      Float64Array.from(field(12, 120, 100, 0.03, 0), (x) => (x === 0 ? 0 : 1 + (x % 4))),
      'uint8',
      0,
    );
    const image = {
      bands: [
        { name: 'v', uri: v },
        { name: 'lc', uri: lc },
      ],
    };
    const region = {
      type: 'Polygon',
      coordinates: [
        [
          [15.005, 47.838],
          [15.025, 47.838],
          [15.025, 47.85],
          [15.005, 47.85],
          [15.005, 47.838],
        ],
      ],
    };
    const to3035 = pointTransformer('EPSG:4326', 'EPSG:3035');
    const rb = [Infinity, Infinity, -Infinity, -Infinity];
    for (let i = 0; i <= 100; i++)
      for (const [lo, la] of [
        [15.005 + 0.0002 * i, 47.838],
        [15.005 + 0.0002 * i, 47.85],
        [15.005, 47.838 + 0.00012 * i],
        [15.025, 47.838 + 0.00012 * i],
      ] as const) {
        const [x, y] = to3035(lo, la);
        rb[0] = Math.min(rb[0]!, x);
        rb[1] = Math.min(rb[1]!, y);
        rb[2] = Math.max(rb[2]!, x);
        rb[3] = Math.max(rb[3]!, y);
      }
    const base = { image, kernelSize: 4, geometries: true, crs: 'EPSG:3035', scale: 30, resample: 'bilinear', fileNamePrefix: 'p' };
    const bytes: Buffer[] = [];
    for (const workers of [0, 2]) {
      const out = path.join(dir, `s${workers}`);
      const s = await runPatchExport({ ...base, points: { sample: { region, numPixels: 150, seed: 3 } }, bucket: out }, { workers });
      assert.equal(s.records + s.dropped.masked, 150);
      bytes.push(await fs.readFile(path.join(out, 'p.tfrecord.gz')));
      // Pixel centres inside the region's bounds in the grid CRS (its outline reprojected), snapped outward by under a pixel.
      for (const r of await recordsOf(out)) {
        const lon = (r.get('longitude')!.value as Float32Array)[0]!,
          lat = (r.get('latitude')!.value as Float32Array)[0]!;
        const [x, y] = to3035(lon, lat);
        assert.ok(x > rb[0] - 31 && x < rb[2] + 31 && y > rb[1] - 31 && y < rb[3] + 31, `${lon}, ${lat} → ${x}, ${y} outside ${rb}`);
      }
    }
    assert.ok(bytes[0]!.equals(bytes[1]!), 'the same bytes on 0 and 2 workers');

    // Stratified: the class band read with nearest on the grid although the request says bilinear.
    const out = path.join(dir, 'strat');
    const s = await runPatchExport(
      { ...base, dropNulls: false, points: { stratified: { classBand: 'lc', numPoints: 20, seed: 1 } }, bucket: out },
      { workers: 2 },
    );
    const grid = resolveGrid({ crs: 'EPSG:3035', scale: 30 }, { crs: 'EPSG:32633', affine: va, width: 240, height: 200 });
    const near = (await warped([lc], grid, 0, 'near')).values;
    // Per class GDAL's count; pixels whose centre is on a source pixel edge may take either side's class (docs/semantics.md §11).
    const edge = nearEdge(grid, { crs: 'EPSG:32633', affine: la });
    const counts = new Map<number, number>();
    let onEdge = 0;
    near.forEach((x, k) => {
      if (edge(k % grid.width, Math.floor(k / grid.width))) onEdge++;
      if (!Number.isNaN(x)) counts.set(x, (counts.get(x) ?? 0) + 1);
    });
    assert.ok(onEdge < 10, `${onEdge} pixels on source pixel edges`);
    const values = [...counts.keys()].sort((a, b) => a - b);
    assert.deepEqual(
      s.classes!.map((c) => c.value),
      values,
    );
    for (const c of s.classes!) {
      const n = counts.get(c.value)!;
      assert.ok(Math.abs(c.available - n) <= onEdge, `class ${c.value}: ${c.available} available, GDAL ${n} (${onEdge} pixels on edges)`);
      assert.equal(c.requested, 20);
      assert.equal(c.selected, Math.min(20, c.available));
    }
    const recs = await recordsOf(out);
    assert.equal(
      recs.length,
      s.classes!.reduce((n, c) => n + c.selected, 0),
    );
    for (const r of recs) {
      const centre = (r.get('lc')!.value as Float32Array)[2 * 4 + 2]!;
      assert.ok(counts.has(centre), `the centre ${centre} is a class value`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a worker given the stored plan opens only the files its points touch and writes the CLI bytes (glob of 4 tiles onto EPSG:3035)', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-pworker-');
  try {
    await fs.mkdir(path.join(dir, 't'));
    const tiles = [0, 1, 2, 3].map((i) => path.join(dir, 't', `tile${i}.tif`));
    for (const [i, f] of tiles.entries()) await tif(f, 100, 100, [10, 0, 500000 + 1000 * i, 0, -10, 5300000], field(20 + i, 100, 100, 0.01, 0), 'uint16', 0);
    // Points in the first tile only (EPSG:32633, the table's crs member).
    const r = mulberry32(4);
    const features = Array.from({ length: 40 }, (_, i) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [500100 + 600 * r(), 5299200 + 600 * r()] },
      properties: { id: i },
    }));
    await fs.writeFile(
      path.join(dir, 'pts.geojson'),
      JSON.stringify({ type: 'FeatureCollection', crs: { type: 'name', properties: { name: 'EPSG:32633' } }, features }),
    );
    const request = {
      image: path.join(dir, 't', '*.tif'),
      points: path.join(dir, 'pts.geojson'),
      kernelSize: 8,
      crs: 'EPSG:3035',
      scale: 20,
      resample: 'bilinear',
      bucket: path.join(dir, 'out'),
      fileNamePrefix: 'p',
    };
    const opened = await openPatchExport(request);
    const plan = JSON.parse(JSON.stringify(opened.plan)) as PatchPlan;
    const chunks = [];
    try {
      for await (const c of chunkPoints(opened.points.batches, (n) => opened.encoder.framedBytes(n), { geometries: false })) chunks.push(c);
      opened.points.finish();
    } finally {
      await opened.close();
    }
    assert.equal(plan.image!.files.length, 4);
    const source = await openPatchImage(plan);
    const producer = new PatchChunkProducer(plan, source);
    const pieces: Buffer[] = [GZIP_HEADER];
    for (const c of chunks) pieces.push((await producer.produce(c)).data);
    assert.deepEqual(
      (source as GridImageSource).openedFiles.map((u) => path.basename(u)),
      ['tile0.tif'],
    );
    await producer.close();
    await runPatchExport(request, { workers: 2 });
    const file = await fs.readFile(path.join(dir, 'out', 'p.tfrecord.gz'));
    const body = Buffer.concat(pieces);
    assert.equal(file.length, body.length + 10, 'the CLI file is the chunks plus the 10-byte end');
    assert.ok(file.subarray(0, body.length).equals(body), "the worker's chunks are the CLI's bytes");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('bad grid fields fail as in image export: BAD_REQUEST naming the field, nothing written', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-pgridbad-');
  try {
    const img = path.join(dir, 'img.tif'),
      lc = path.join(dir, 'lc.tif');
    await tif(img, 40, 30, [10, 0, 500000, 0, -10, 5300000], field(1, 40, 30, 0, -9999), 'float32', -9999);
    await tif(
      lc,
      40,
      30,
      [10, 0, 500000, 0, -10, 5300000],
      Float64Array.from({ length: 1200 }, (_, i) => 1 + (i % 3)),
      'uint8',
      0,
    );
    const out = path.join(dir, 'out');
    const base = { image: img, points: { sample: { numPixels: 5 } }, kernelSize: 4, bucket: out, fileNamePrefix: 'p' };
    const cases: [object, RegExp, string][] = [
      [{ ...base, scale: 30, dimensions: [5, 5] }, /not both/, 'dimensions'],
      [{ ...base, crs: 'EPSG:999999', scale: 30 }, /999999/, 'crs'],
      [{ ...base, crs: 'EPSG:3035' }, /say the pixel size/, 'crs'],
      [{ ...base, crsTransform: [10, 0, 500000, 0, -10, 5300000] }, /needs "crs"/, 'crsTransform'],
      [{ ...base, crs: 'EPSG:32633', crsTransform: [10, 0, 500000, 0, -10, 5300000], scale: 10 }, /conflicts with crsTransform/, 'scale'],
      [{ ...base, resample: 'cubic' }, /bilinear/, 'resample'],
      [{ ...base, dimensions: '0x5' }, /positive integer/, 'dimensions'],
      [{ ...base, image: { bands: [{ name: 'a', uri: img, resample: 'lanczos' }] } }, /bicubic/, 'image.bands.0.resample'],
      [{ ...base, image: { bands: [{ name: 'a', uri: path.join(dir, 'none-*.tif') }] } }, /match/, 'image.bands[0].uri'],
      [
        {
          ...base,
          image: {
            bands: [
              { name: 'a', uri: img },
              { name: 'lc', uri: lc, resample: 'bilinear' },
            ],
          },
          points: { stratified: { classBand: 'lc', numPoints: 2 } },
        },
        /must not be blended/,
        'image.bands.1.resample',
      ],
    ];
    for (const [request, message, field] of cases)
      await assert.rejects(runPatchExport(request, { workers: 0 }), (e: unknown) => {
        assert.ok(e instanceof GeotfrError, String(e));
        assert.equal(e.code, 'BAD_REQUEST', `${JSON.stringify(request)}: ${e.message}`);
        assert.match(e.message, message);
        assert.equal(e.context.field, field, e.message);
        return true;
      });
    assert.deepEqual(await listFiles(out).catch(() => []), [], 'nothing written');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
