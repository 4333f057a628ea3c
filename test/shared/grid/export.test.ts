/**
 * Exports onto any grid, end to end through the real pipeline (planner, worker threads, block server,
 * shard writers) from GeoTIFFs GDAL writes, with GDAL's warper as the oracle for every band:
 *
 * - a Sentinel-2 L2A-shaped STAC item (10 m B02/B03/B04/B08, 20 m B11/SCL, 60 m B01, relative hrefs,
 *   eo:bands common names, proj:epsg/transform/shape) exported at `scale: 10`: the 10 m bands are
 *   copied (their pixels exactly), B11 bilinear and B01 bicubic equal gdalwarp within 1e-4 of the
 *   range, SCL nearest exactly; the manifest records the grid and each band's files; TensorFlow
 *   parses the patches with FixedLenFeature([96, 96]);
 * - a two-CRS stack with a mosaic (a list and a glob over files in two UTM zones, with nodata) onto
 *   `crs: EPSG:3035, scale: 20`: every band equals gdalwarp given the same files in the same order;
 * - a chunk of a wide mosaic opens only the files under it; `--dry-run` reads no pixel and writes nothing.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Affine } from '../../../shared/mixer.js';
import { parseMixer } from '../../../shared/mixer.js';
import { planImageExport, shardChunks } from '../../../shared/export/plan.js';
import { tilesWindow } from '../../../shared/export/grid.js';
import { dryRunImageExport, runImageExport } from '../../../shared/export/run.js';
import { defaultWorkers } from '../../../shared/export/spawn.js';
import { GridImageSource } from '../../../shared/grid/source.js';
import { GridTransform } from '../../../shared/grid/transform.js';
import { decodeExample } from '../../../shared/tfrecord/example.js';
import { fileSource, readRecords } from '../../../shared/tfrecord/record.js';
import { gdalWarp, needGdalPython, type GdalAlg } from '../../support/gdalwarp.js';
import { listFiles } from '../../support/files.js';
import { geotfr, needGdal, needTensorFlow, python } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

/** A smooth field with noise (reflectance-like, ≥ 1), with `holes` of the nodata value 0. */
function field(seed: number, w: number, h: number, holes = 0.01): Uint16Array {
  const r = mulberry32(seed);
  const fx = 5 + r() * 20,
    fy = 5 + r() * 20;
  return Uint16Array.from({ length: w * h }, (_, k) =>
    r() < holes ? 0 : Math.max(1, Math.round(3000 + 2000 * Math.sin((k % w) / fx) * Math.cos(Math.floor(k / w) / fy) + 300 * r())),
  );
}

/** Every band of an export reassembled on its grid (kernel [1, 1]: patches tile the grid). */
async function exported(
  dir: string,
  prefix: string,
): Promise<{ mixer: ReturnType<typeof parseMixer>; bands: Map<string, Float32Array>; width: number; height: number }> {
  const mixer = parseMixer(await fs.readFile(path.join(dir, `${prefix}-mixer.json`), 'utf8'));
  const [pw, ph] = mixer.patchDimensions;
  const width = mixer.patchesPerRow * pw,
    height = (mixer.totalPatches / mixer.patchesPerRow) * ph;
  const bands = new Map<string, Float32Array>();
  let patch = 0;
  const shards = (await listFiles(dir)).filter((f) => f.startsWith(`${prefix}-0`)).sort();
  for (const s of shards)
    for await (const rec of readRecords(fileSource(path.join(dir, s)), { file: s })) {
      const ex = decodeExample(rec.data);
      const px = (patch % mixer.patchesPerRow) * pw,
        py = Math.floor(patch / mixer.patchesPerRow) * ph;
      for (const [name, f] of ex) {
        let b = bands.get(name);
        if (!b) bands.set(name, (b = new Float32Array(width * height)));
        for (let y = 0; y < ph; y++) for (let x = 0; x < pw; x++) b[(py + y) * width + px + x] = f.value[y * pw + x] as number;
      }
      patch++;
    }
  assert.equal(patch, mixer.totalPatches);
  return { mixer, bands, width, height };
}

/**
 * Target pixels (k = row * width + col) whose centre lies within a transform's error bound of a pixel
 * edge of one of `files` (any side may be right there: docs/semantics.md §11 exempts them from exactness).
 */
function nearEdges(grid: { crs: string; affine: Affine }, width: number, files: { crs: string; affine: Affine }[]): (k: number) => boolean {
  const ts = files.map((f) => new GridTransform(grid, f));
  return (k) =>
    ts.some((t) => {
      const [x, y] = t.exact((k % width) + 0.5, Math.floor(k / width) + 0.5);
      const near = (v: number) => Math.abs(v - Math.round(v)) <= t.errorBoundPx + 1e-9;
      return near(x) || near(y);
    });
}

/** Compares an exported band with gdalwarp's: exactly (nearest) or within `tol` × range; GDAL's empty pixels must hold `fill`. */
function compare(
  name: string,
  ours: Float32Array,
  gdal: Float64Array,
  opts: { fill: number; tol: number; range: number; minValid: number; skip?: (k: number) => boolean },
): void {
  let valid = 0;
  for (let k = 0; k < ours.length; k++) {
    if (opts.skip?.(k)) continue;
    const g = gdal[k]!,
      o = ours[k]!;
    if (Number.isNaN(g)) {
      assert.equal(o, opts.fill, `${name} pixel ${k}: GDAL has no value, ours ${o}`);
      continue;
    }
    if (o === opts.fill) continue; // masked here (a kernel reaching a masked pixel or the edge), where GDAL renormalizes
    valid++;
    if (opts.tol === 0) assert.equal(o, Math.fround(g), `${name} pixel ${k}`);
    else assert.ok(Math.abs(o - g) <= opts.tol * opts.range, `${name} pixel ${k}: ours ${o}, GDAL ${g}`);
  }
  assert.ok(valid >= opts.minValid * ours.length, `${name}: only ${valid} of ${ours.length} pixels compared`);
}

test('a Sentinel-2 L2A-shaped STAC item at scale 10: copies, bilinear/bicubic/nearest like gdalwarp, TensorFlow parses it', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const dir = await tempDir('geotfr-s2-');
  try {
    const x0 = 399960,
      y0 = 5000040;
    const bands: { key: string; common?: string; res: number; type: 'uint16' | 'uint8' }[] = [
      { key: 'B02', common: 'blue', res: 10, type: 'uint16' },
      { key: 'B03', common: 'green', res: 10, type: 'uint16' },
      { key: 'B04', common: 'red', res: 10, type: 'uint16' },
      { key: 'B08', common: 'nir', res: 10, type: 'uint16' },
      { key: 'B11', common: 'swir16', res: 20, type: 'uint16' },
      { key: 'SCL', res: 20, type: 'uint8' },
      { key: 'B01', common: 'coastal', res: 60, type: 'uint16' },
    ];
    const size = 480 * 10; // 4.8 km square
    await fs.mkdir(path.join(dir, 'item', 'R10m'), { recursive: true });
    const assets: Record<string, object> = {};
    for (const [i, b] of bands.entries()) {
      const n = size / b.res;
      const values = b.type === 'uint8' ? Uint8Array.from(field(i, n, n, 0.02), (v) => (v === 0 ? 0 : 1 + (v % 11))) : field(i + 10, n, n);
      const affine: Affine = [b.res, 0, x0, 0, -b.res, y0];
      const rel = `R10m/${b.key}_${b.res}m.tif`;
      await writeGeoTiff(path.join(dir, 'item', rel), {
        width: n,
        height: n,
        bands: [values],
        type: b.type,
        nodata: 0,
        affine,
        crs: 'EPSG:32633',
        layout: 'COG',
        blockSize: 128,
        compress: 'DEFLATE',
      });
      assets[b.key] = {
        href: `./${rel}`,
        type: 'image/tiff; application=geotiff; profile=cloud-optimized',
        'proj:epsg': 32633,
        'proj:shape': [n, n],
        'proj:transform': [...affine, 0, 0, 1],
        ...(b.common ? { 'eo:bands': [{ name: b.key, common_name: b.common }] } : {}),
      };
    }
    const item = path.join(dir, 'item', 'S2B_33TUL_20240601_0_L2A.json');
    await fs.writeFile(
      item,
      JSON.stringify({
        type: 'Feature',
        stac_version: '1.0.0',
        id: 'S2B_33TUL_20240601_0_L2A',
        geometry: null,
        properties: { datetime: '2024-06-01T10:00:00Z' },
        assets,
      }),
    );
    const out = path.join(dir, 'out');
    const request = {
      image: { stac: item, bands: ['blue', 'B03', 'red', 'nir', { name: 'B11', resample: 'bilinear' }, 'SCL', { name: 'B01', resample: 'bicubic' }] },
      scale: 10,
      bucket: out,
      fileNamePrefix: 's2/p',
      formatOptions: { patchDimensions: [96, 96], defaultValue: -1 },
    };
    const summary = await runImageExport(request, { workers: 2 });
    assert.equal(summary.patches, 25);
    const { mixer, bands: got, width, height } = await exported(out, 's2/p');
    // scale 10 = B02's own pixel size: the export grid is B02's native grid.
    assert.deepEqual(mixer.projection, { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, x0, 0, -10, y0] } });
    const dst = { width, height, affine: [10, 0, x0, 0, -10, y0] as Affine, crs: 'EPSG:32633' };
    const algs: [string, string, GdalAlg][] = [
      ['blue', 'B02', 'near'],
      ['B03', 'B03', 'near'],
      ['red', 'B04', 'near'],
      ['nir', 'B08', 'near'],
      ['B11', 'B11', 'bilinear'],
      ['SCL', 'SCL', 'near'],
      ['B01', 'B01', 'cubic'],
    ];
    const file = (key: string) => path.join(dir, 'item', 'R10m', `${key}_${bands.find((b) => b.key === key)!.res}m.tif`);
    const gdal = await gdalWarp(algs.map(([, key, alg]) => ({ src: { files: [file(key)] }, dst, alg })));
    algs.forEach(([name, , alg], i) => {
      // uint16/uint8 bands copied or picked keep their type: masked pixels hold defaultValue -1 clamped to 0.
      const blended = alg !== 'near';
      compare(name, got.get(name)!, gdal[i]!, { fill: blended ? -1 : 0, tol: blended ? 1e-4 : 0, range: 6000, minValid: blended ? 0.6 : 0.9 });
    });
    const manifest = JSON.parse(await fs.readFile(path.join(out, '.geotfr/manifests/s2/p.json'), 'utf8'));
    assert.deepEqual(manifest.grid, {
      crs: 'EPSG:32633',
      affine: [10, 0, x0, 0, -10, y0],
      width: 480,
      height: 480,
      rule: 'scale',
      native: { crs: 'EPSG:32633', affine: [10, 0, x0, 0, -10, y0], width: 480, height: 480 },
    });
    assert.deepEqual(
      manifest.bandSources.map((b: { name: string; resample: string; sources: { mode: string }[] }) => [
        b.name,
        b.resample,
        b.sources.map((s) => s.mode).join(),
      ]),
      [
        ['blue', 'nearest', 'copy'],
        ['B03', 'nearest', 'copy'],
        ['red', 'nearest', 'copy'],
        ['nir', 'nearest', 'copy'],
        ['B11', 'bilinear', 'warp'],
        ['SCL', 'nearest', 'warp'],
        ['B01', 'bicubic', 'warp'],
      ],
    );
    assert.deepEqual(
      manifest.bands.map((b: { type: string }) => b.type),
      ['float32', 'float32', 'float32', 'float32', 'float32', 'float32', 'float32'],
    );

    if (needTensorFlow(t)) {
      const shard = path.join(out, summary.shards[0]!.replace(/^.*\/s2\//, 's2/'));
      const sums = JSON.parse(
        await python(
          String.raw`
import json, sys, tensorflow as tf
names = json.loads(sys.argv[2])
spec = {n: tf.io.FixedLenFeature([96, 96], tf.float32) for n in names}
out = {n: 0.0 for n in names}; count = 0
for rec in tf.data.TFRecordDataset(sys.argv[1], compression_type='GZIP'):
    ex = tf.io.parse_single_example(rec, spec); count += 1
    for n in names: out[n] += float(tf.reduce_sum(tf.cast(ex[n], tf.float64)))
print(json.dumps({'count': count, 'sums': out}))`,
          [shard, JSON.stringify(algs.map((a) => a[0]))],
        ),
      );
      assert.equal(sums.count, 25);
      for (const [name] of algs) {
        const ours = got.get(name)!.reduce((s, v) => s + v, 0);
        assert.ok(Math.abs(sums.sums[name] - ours) <= 1e-6 * Math.abs(ours) + 1, `${name}: TensorFlow sum ${sums.sums[name]}, ours ${ours}`);
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('two CRSs and a mosaic (a list and a glob across UTM zones, with nodata) onto EPSG:3035 at scale 20 equal gdalwarp', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const dir = await tempDir('geotfr-mosaic-');
  try {
    // Around 15°E 48°N: UTM 33 scenes overlapping, one scene in UTM 34 further east, and a lon/lat DEM.
    const scenes = [
      { name: 'a', crs: 'EPSG:32633', affine: [10, 0, 500000, 0, -10, 5320000] as Affine, w: 600, h: 500 },
      { name: 'b', crs: 'EPSG:32633', affine: [15, 0, 504000, 0, -15, 5318000] as Affine, w: 400, h: 300 },
      { name: 'c', crs: 'EPSG:32634', affine: [10, 0, 54000, 0, -10, 5330000] as Affine, w: 300, h: 500 },
    ];
    await fs.mkdir(path.join(dir, 'scenes'));
    for (const [i, s] of scenes.entries())
      await writeGeoTiff(path.join(dir, 'scenes', `${s.name}.tif`), {
        width: s.w,
        height: s.h,
        bands: [field(40 + i, s.w, s.h, 0.05)],
        type: 'uint16',
        nodata: 0,
        affine: s.affine,
        crs: s.crs,
        layout: 'COG',
        blockSize: 128,
        compress: 'DEFLATE',
      });
    const dem = path.join(dir, 'dem.tif');
    const demW = 500,
      demH = 400;
    await writeGeoTiff(dem, {
      width: demW,
      height: demH,
      bands: [Float32Array.from(field(50, demW, demH, 0), (v) => v / 7)],
      type: 'float32',
      affine: [0.0002, 0, 14.99, 0, -0.0002, 48.04],
      crs: 'EPSG:4326',
      layout: 'COG',
      blockSize: 128,
      compress: 'DEFLATE',
    });
    const out = path.join(dir, 'out');
    const files = [path.join(dir, 'scenes', 'a.tif'), path.join(dir, 'scenes', 'b.tif'), path.join(dir, 'scenes', 'c.tif')];
    const request = {
      image: {
        bands: [
          { name: 'mosaic', uri: [files[0]!, path.join(dir, 'scenes', '[bc].tif')] },
          { name: 'dem', uri: dem, resample: 'bilinear' },
        ],
      },
      crs: 'EPSG:3035',
      scale: 20,
      region: {
        type: 'Polygon',
        coordinates: [
          [
            [15.0, 47.97],
            [15.1, 47.97],
            [15.1, 48.03],
            [15.0, 48.03],
            [15.0, 47.97],
          ],
        ],
      },
      bucket: out,
      fileNamePrefix: 'stack/p',
      formatOptions: { patchDimensions: [32, 32], defaultValue: -1 },
    };
    const plan = await planImageExport(request);
    assert.equal(plan.gridRule, 'scale');
    assert.deepEqual(
      plan.image!.bands[0]!.files.map((f) => path.basename(plan.image!.files[f]!.uri)),
      ['a.tif', 'b.tif', 'c.tif'],
    );
    await runImageExport(request, { workers: 2 });
    const { mixer, bands: got, width, height } = await exported(out, 'stack/p');
    const a = mixer.projection.affine.doubleMatrix;
    assert.equal(mixer.projection.crs, 'EPSG:3035');
    assert.deepEqual([a[0], a[1], a[3], a[4]], [20, 0, 0, -20]);
    // Lines through the CRS origin: whole multiples of 20 m.
    assert.ok(Number.isInteger(a[2] / 20) && Number.isInteger(a[5] / 20), `origin ${a[2]}, ${a[5]}`);
    const dst = { width, height, affine: [a[0], a[1], a[2], a[3], a[4], a[5]] as Affine, crs: 'EPSG:3035' };
    const [mosaic, demWant] = await gdalWarp([
      { src: { files }, dst, alg: 'near' },
      { src: { files: [dem] }, dst, alg: 'bilinear' },
    ]);
    compare('mosaic', got.get('mosaic')!, mosaic!, { fill: 0, tol: 0, range: 6000, minValid: 0.5, skip: nearEdges(dst, width, scenes) });
    compare('dem', got.get('dem')!, demWant!, { fill: -1, tol: 1e-4, range: 900, minValid: 0.8 });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a wide mosaic: each chunk opens only the files under it; --dry-run reads and writes nothing', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-wide-');
  try {
    // Ten scenes side by side (no overlap), 100 × 100 px each, on one 30 m lattice.
    await fs.mkdir(path.join(dir, 'tiles'));
    for (let i = 0; i < 10; i++)
      await writeGeoTiff(path.join(dir, 'tiles', `t${i}.tif`), {
        width: 100,
        height: 100,
        bands: [field(60 + i, 100, 100, 0)],
        type: 'uint16',
        affine: [30, 0, 300000 + 3000 * i, 0, -30, 5000000],
        crs: 'EPSG:32633',
      });
    const out = path.join(dir, 'out');
    const request = {
      image: { bands: [{ name: 'b', uri: path.join(dir, 'tiles', 't*.tif') }] },
      bucket: out,
      fileNamePrefix: 'w/p',
      formatOptions: { patchDimensions: [50, 50], kernelSize: [3, 3] },
    };
    const plan = await planImageExport(request);
    assert.deepEqual([plan.source.width, plan.source.height], [1000, 100]);
    // A region over tiles 3..4 keeps only the files under it in the plan, plus the neighbours its
    // 1-px tile margins read (docs/semantics.md §3) …
    const edge = await planImageExport({ ...request, region: [309000 + 15, 4997000, 315000 - 15, 5000000] });
    assert.deepEqual(
      edge.image!.files.map((f) => path.basename(f.uri)),
      ['t2.tif', 't3.tif', 't4.tif', 't5.tif'],
    );
    // … and without them when the region keeps 5 px (more than margin and kernel support) away.
    const inner = await planImageExport({ ...request, region: [309000 + 150 + 15, 4997000, 315000 - 150 - 15, 5000000] });
    assert.deepEqual(
      inner.image!.files.map((f) => path.basename(f.uri)),
      ['t3.tif', 't4.tif'],
    );
    const src = new GridImageSource(plan.image!, plan.source);
    try {
      const chunk = shardChunks(plan, 0)[0]!;
      const win = tilesWindow(plan.grid, chunk.row, chunk.col0, 1);
      await src.readWindow(win.x0, win.y0, win.width, win.height);
      // The first patch's tile (columns -1..50) touches t0 only.
      assert.deepEqual(
        src.openedFiles.map((f) => path.basename(f)),
        ['t0.tif'],
      );
      await src.readWindow(149, 0, 3, 3);
      assert.deepEqual(src.openedFiles.map((f) => path.basename(f)).sort(), ['t0.tif', 't1.tif']);
    } finally {
      await src.close();
    }
    const dry = await dryRunImageExport(request, { workers: 2 });
    assert.equal(dry.totalPatches, 40);
    assert.equal(dry.bands[0]!.files.length, 10);
    assert.ok(dry.bands[0]!.files.every((f) => f.mode === 'copy'));
    assert.ok(dry.bytesFramed > 0 && dry.secondsEstimated >= 0);
    assert.equal(dry.threads, 2, 'the threads asked for');
    assert.equal((await dryRunImageExport(request)).threads, defaultWorkers(), 'by default the threads the run would start');
    const req = path.join(dir, 'req.json');
    await fs.writeFile(req, JSON.stringify({ ...request, crs: 'EPSG:4326', scale: 50 }));
    const r = await geotfr(['export-image', req, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    const cli = JSON.parse(r.stdout.toString());
    assert.equal(cli.dryRun, true);
    assert.equal(cli.grid.crs, 'EPSG:4326');
    assert.equal(cli.grid.rule, 'scale');
    assert.ok(cli.bands[0].files.every((f: { mode: string }) => f.mode === 'warp'));
    assert.deepEqual(await listFiles(out, { dirs: true }), [], 'a dry run writes nothing');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
