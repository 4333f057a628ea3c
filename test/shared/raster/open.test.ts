/**
 * openImage against GDAL: seeded random rasters of every sample type, striped/tiled/COG, NONE/DEFLATE/
 * LZW/PackBits/ZSTD, predictors 2 and 3, pixel/band interleave, little and big endian, BigTIFF,
 * nodata/NaN; random windows partly outside the image. Values must equal what GDAL reads, and masks must follow docs/semantics.md §1 applied
 * to GDAL's values and nodata.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { openImage, type GeoTiffImageSource } from '../../../shared/raster/open.js';
import { isFloatType as isFloat, type SampleType } from '../../../shared/raster/types.js';
import { GeotfrError } from '../../../shared/errors.js';
import { needGdal, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff, type GdalRaster, type GeoTiffSpec } from '../../support/rasters.js';
import { SAMPLE_RANGES, mulberry32 } from '../../support/random.js';

/** Seeded PRNG (mulberry32): a failure reproduces from the seed printed in the test name. */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const TYPES: SampleType[] = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'float64'];
const RANGE = SAMPLE_RANGES;

function randomSample(r: Rng, type: SampleType): number {
  const [lo, hi] = RANGE[type];
  if (type === 'float32') return Math.fround((r.next() - 0.5) * 2 * hi * r.next() ** 3);
  if (type === 'float64') return (r.next() - 0.5) * 2 * hi * r.next() ** 5;
  // Mostly small values so horizontal-differencing predictors see realistic data, sometimes extremes.
  return r.next() < 0.1 ? r.pick([lo, hi]) : Math.min(hi, Math.max(lo, Math.round(lo < 0 ? (r.next() - 0.5) * 200 : r.next() * 200)));
}

/** A random raster spec: values, nodata (present in the data), layout, compression, predictor. */
function randomSpec(r: Rng, type: SampleType): GeoTiffSpec & { desc: string } {
  const width = r.int(3, 70),
    height = r.int(3, 60);
  const nb = r.int(1, 4);
  const nodataMode = isFloat(type) ? r.pick(['value', 'nan', 'none'] as const) : r.pick(['value', 'none'] as const);
  const nodata = nodataMode === 'value' ? randomSample(r, type) : nodataMode === 'nan' ? NaN : undefined;
  const bands = Array.from({ length: nb }, () => {
    const a = new Float64Array(width * height);
    for (let i = 0; i < a.length; i++) {
      const u = r.next();
      a[i] = u < 0.15 && nodata !== undefined ? nodata : u < 0.2 && isFloat(type) ? NaN : randomSample(r, type);
    }
    return a;
  });
  const layout = r.pick(['strip', 'tiled', 'COG'] as const);
  const compress = r.next() < 0.75 ? r.pick(['NONE', 'DEFLATE', 'LZW'] as const) : r.pick(['PACKBITS', 'ZSTD'] as const);
  const predictor = compress === 'DEFLATE' || compress === 'LZW' || compress === 'ZSTD' ? r.pick([1, isFloat(type) ? 3 : 2] as const) : undefined;
  const spec: GeoTiffSpec = {
    width,
    height,
    bands,
    type,
    nodata,
    affine: [r.pick([0.5, 10, 30, 0.000269494585236]), 0, r.int(-1e5, 1e5) * 10, 0, -r.pick([0.5, 10, 30, 0.000269494585236]), r.int(-1e5, 1e5) * 10],
    crs: r.pick(['EPSG:32633', 'EPSG:3857', 'EPSG:32719']),
    layout: layout === 'COG' ? 'COG' : 'GTiff',
    blockSize: layout === 'strip' ? undefined : r.pick([16, 32]),
    rowsPerStrip: layout === 'strip' ? r.int(1, height) : undefined,
    compress,
    predictor,
    interleave: layout !== 'COG' && nb > 1 ? r.pick(['PIXEL', 'BAND'] as const) : undefined,
    extraArgs: [...(layout !== 'COG' && r.next() < 0.25 ? ['-co', 'ENDIANNESS=BIG'] : []), ...(r.next() < 0.2 ? ['-co', 'BIGTIFF=YES'] : [])],
  };
  const desc = `${type} ${width}x${height}x${nb} ${layout}${spec.blockSize ? spec.blockSize : ''}${spec.rowsPerStrip ? ` rps${spec.rowsPerStrip}` : ''} ${compress}${predictor ? ` pred${predictor}` : ''}${spec.interleave ? ` ${spec.interleave}` : ''}${spec.extraArgs!.includes('ENDIANNESS=BIG') ? ' BE' : ''}${spec.extraArgs!.includes('BIGTIFF=YES') ? ' BigTIFF' : ''} nodata=${nodata}`;
  return { ...spec, desc };
}

/** docs/semantics.md §1 mask applied to GDAL's view of the raster. */
function expectedValid(g: GdalRaster, b: number, i: number, type: SampleType, nodataOverride?: number): boolean {
  const v = g.bands[b]![i]!;
  const nd = nodataOverride ?? g.nodata[b];
  if (nd === undefined) return !(isFloat(type) && Number.isNaN(v));
  if (Number.isNaN(nd)) return !Number.isNaN(v);
  return v !== (type === 'float32' ? Math.fround(nd) : nd);
}

const FLOAT32_EXACT: SampleType[] = ['float32', 'uint8', 'int8', 'uint16', 'int16'];

/** Checks a window read against GDAL pixel by pixel. `float32` reads must give Float32Array exactly for float32-exact types. */
async function checkWindow(
  src: GeoTiffImageSource,
  g: GdalRaster,
  types: SampleType[],
  x0: number,
  y0: number,
  w: number,
  h: number,
  label: string,
  float32 = false,
) {
  const win = await src.readWindow(x0, y0, w, h, { float32 });
  assert.equal(win.values.length, g.bands.length);
  for (let b = 0; b < g.bands.length; b++) {
    assert.equal(win.values[b]!.length, w * h);
    const narrow = float32 && FLOAT32_EXACT.includes(types[b]!);
    assert.ok(
      win.values[b] instanceof (narrow ? Float32Array : Float64Array),
      `${label}: band ${b + 1} of a ${float32 ? 'float32' : 'default'} read is a ${win.values[b]!.constructor.name}`,
    );
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const X = x0 + x,
          Y = y0 + y;
        const k = y * w + x;
        const inside = X >= 0 && Y >= 0 && X < g.width && Y < g.height;
        const where = `${label}: band ${b + 1} pixel (${X}, ${Y}) of window (${x0}, ${y0}, ${w}x${h})`;
        if (!inside) {
          assert.equal(win.valid[b]![k], 0, `${where}: outside the image must be masked`);
          continue;
        }
        const i = Y * g.width + X;
        const ok = expectedValid(g, b, i, types[b]!);
        assert.equal(win.valid[b]![k], ok ? 1 : 0, `${where}: mask (GDAL value ${g.bands[b]![i]})`);
        if (ok || !Number.isNaN(g.bands[b]![i]!))
          assert.ok(
            Object.is(win.values[b]![k], g.bands[b]![i]) || win.values[b]![k] === g.bands[b]![i],
            `${where}: value ${win.values[b]![k]} vs GDAL ${g.bands[b]![i]}`,
          );
      }
    }
  }
}

test('openImage equals GDAL on seeded random rasters of every type, layout, compression and predictor', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const seed = Number(process.env.GEOTFR_SEED ?? 20261125);
    const r = rng(seed);
    let n = 0;
    for (let round = 0; round < Number(process.env.GEOTFR_RASTER_ROUNDS ?? 3); round++) {
      for (const type of TYPES) {
        const spec = randomSpec(r, type);
        const file = path.join(dir, `r${n++}.tif`);
        await writeGeoTiff(file, spec);
        const g = await readRasterWithGdal(file);
        const label = `seed ${seed} case ${n - 1} (${spec.desc})`;
        const src = (await openImage(file)) as GeoTiffImageSource;
        // The export's worker threads: one reader decodes blocks into shared memory, another only reads them.
        const shared = await openImage(file, { sharedBlocks: true });
        const remote = await openImage(file, { blockProvider: () => (bx, by, plane) => shared.files[0]!.sharedBlock(bx, by, plane) });
        try {
          assert.deepEqual(src.grid, { crs: spec.crs, affine: g.affine, width: g.width, height: g.height }, label);
          assert.deepEqual(
            src.bands.map((b) => [b.name, b.type, b.depth]),
            g.bands.map((_, i) => [`b${i + 1}`, type, 1]),
            label,
          );
          const f32 = (v: number | undefined) => (v === undefined || type !== 'float32' ? v : Math.fround(v));
          for (const b of src.bands) assert.ok(Object.is(f32(b.nodata), g.nodata[0]), `${label}: nodata ${b.nodata} vs GDAL ${g.nodata[0]}`);
          const types = g.bands.map(() => type);
          // The whole image plus a ring outside it, then random windows (some partly or wholly outside).
          await checkWindow(src, g, types, -2, -3, g.width + 5, g.height + 4, label);
          await checkWindow(src, g, types, -2, -3, g.width + 5, g.height + 4, `${label} float32`, true);
          await checkWindow(remote, g, types, -1, -1, g.width + 2, g.height + 2, `${label} shared blocks`, r.next() < 0.5);
          for (let k = 0; k < 4; k++) {
            const w = r.int(1, g.width + 6),
              h = r.int(1, g.height + 6);
            const x0 = r.int(-w, g.width),
              y0 = r.int(-h, g.height);
            await checkWindow(src, g, types, x0, y0, w, h, label);
            await checkWindow(remote, g, types, x0, y0, w, h, `${label} shared blocks float32`, true);
          }
          assert.equal(remote.files[0]!.decodes, 0, `${label}: the shared-blocks reader decoded blocks itself`);
          assert.ok(shared.files[0]!.decodes > 0, label);
        } finally {
          await Promise.all([src.close(), shared.close(), remote.close()]);
        }
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('band descriptions name bands; selection, renaming, array bands, nodata override, several files', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const r = rng(7);
    const W = 41,
      H = 29;
    const mk = (type: SampleType, nb: number, nodata?: number) =>
      Array.from({ length: nb }, () => Float64Array.from({ length: W * H }, () => (r.next() < 0.1 && nodata !== undefined ? nodata : randomSample(r, type))));
    const affine: GeoTiffSpec['affine'] = [30, 0, 399960, 0, -30, 5000040];
    const a = path.join(dir, 'a.tif');
    const b = path.join(dir, 'b.tif');
    await writeGeoTiff(a, {
      width: W,
      height: H,
      bands: mk('int16', 4, -9999),
      type: 'int16',
      nodata: -9999,
      affine,
      crs: 'EPSG:32633',
      bandNames: ['t0', 't1', 't2', 't3'],
      layout: 'COG',
      blockSize: 16,
      compress: 'DEFLATE',
    });
    await writeGeoTiff(b, {
      width: W,
      height: H,
      bands: mk('float32', 2),
      type: 'float32',
      affine,
      crs: 'EPSG:32633',
      bandNames: ['red', 'nir'],
      blockSize: 16,
      compress: 'LZW',
      predictor: 3,
    });
    const ga = await readRasterWithGdal(a);
    const gb = await readRasterWithGdal(b);
    assert.deepEqual(ga.bandNames, ['t0', 't1', 't2', 't3']);

    // A URI alone: names from GeoTIFF band descriptions (docs/semantics.md §2).
    const whole = await openImage(pathToFileURL(a).href);
    assert.deepEqual(
      whole.bands.map((x) => x.name),
      ['t0', 't1', 't2', 't3'],
    );
    await whole.close();

    const src = await openImage({
      bands: [
        { name: 'NIR', uri: b, band: 2 },
        { name: 'ts', uri: a, bands: [4, 2, 3] },
        { name: 'first', uri: `file://${a}`, band: 1, nodata: ga.bands[0]![5]! },
        { name: 'red_again', uri: b, band: 1 },
      ],
    });
    try {
      assert.deepEqual(
        src.bands.map((x) => [x.name, x.type, x.depth, x.nodata]),
        [
          ['NIR', 'float32', 1, undefined],
          ['ts', 'int16', 3, -9999],
          ['first', 'int16', 1, ga.bands[0]![5]],
          ['red_again', 'float32', 1, undefined],
        ],
      );
      const x0 = -4,
        y0 = 3,
        w = 30,
        h = 30;
      const win = await src.readWindow(x0, y0, w, h);
      const n = w * h;
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const X = x0 + x,
            Y = y0 + y,
            k = y * w + x;
          const inside = X >= 0 && Y >= 0 && X < W && Y < H;
          const i = Y * W + X;
          // Scalar selections.
          for (const [band, g, sb, nd] of [
            [0, gb, 1, undefined],
            [2, ga, 0, ga.bands[0]![5]],
            [3, gb, 0, undefined],
          ] as const) {
            const ok = inside && expectedValid(g, sb, i, band === 2 ? 'int16' : 'float32', nd);
            assert.equal(win.valid[band]![k], ok ? 1 : 0, `band ${band} (${X},${Y})`);
            if (ok) assert.equal(win.values[band]![k], g.bands[sb]![i]);
          }
          // The array band: depth-major [D, H, W]; masked where any of its source bands is.
          const srcBands = [3, 1, 2];
          const ok = inside && srcBands.every((sb) => expectedValid(ga, sb, i, 'int16'));
          assert.equal(win.valid[1]![k], ok ? 1 : 0, `array band (${X},${Y})`);
          if (inside) srcBands.forEach((sb, d) => assert.equal(win.values[1]![d * n + k], ga.bands[sb]![i], `array band depth ${d} (${X},${Y})`));
        }
    } finally {
      await src.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('partial band descriptions fall back to b1, b2…; a 4326 raster reports EPSG:4326', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const f = path.join(dir, 'p.tif');
    await writeGeoTiff(f, {
      width: 4,
      height: 3,
      bands: [new Array(12).fill(1), new Array(12).fill(2)],
      type: 'uint8',
      affine: [0.25, 0, -10, 0, -0.25, 5],
      crs: 'EPSG:4326',
      bandNames: ['only'],
    });
    const src = await openImage(f);
    assert.deepEqual(
      src.bands.map((b) => b.name),
      ['b1', 'b2'],
    );
    assert.equal(src.grid.crs, 'EPSG:4326');
    await src.close();
    // Descriptions with XML-special characters come back as GDAL reads them.
    const esc = path.join(dir, 'esc.tif');
    const names = ['NDVI & "q" <1>', "it's ü"];
    await writeGeoTiff(esc, {
      width: 4,
      height: 3,
      bands: [new Array(12).fill(1), new Array(12).fill(2)],
      type: 'uint8',
      affine: [1, 0, 0, 0, -1, 0],
      crs: 'EPSG:3857',
      bandNames: names,
    });
    assert.deepEqual((await readRasterWithGdal(esc)).bandNames, names);
    const se = await openImage(esc);
    assert.deepEqual(
      se.bands.map((b) => b.name),
      names,
    );
    await se.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('PixelIsPoint rasters get GDAL’s half-pixel shift; ModelTransformation (rotated) grids too', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const f = path.join(dir, 'point.tif');
    await writeGeoTiff(f, {
      width: 5,
      height: 4,
      bands: [new Array(20).fill(3)],
      type: 'int16',
      affine: [10, 0, 500000, 0, -10, 4000000],
      crs: 'EPSG:32633',
      pixelIsPoint: true,
    });
    const g = await readRasterWithGdal(f);
    const src = await openImage(f);
    assert.deepEqual(src.grid.affine, g.affine);
    assert.deepEqual(src.grid.affine, [10, 0, 500000, 0, -10, 4000000]);
    await src.close();

    const rot = path.join(dir, 'rot.tif');
    await writeGeoTiff(rot, {
      width: 6,
      height: 5,
      bands: [new Array(30).fill(1)],
      type: 'uint8',
      affine: [8, 2, 300000, 1.5, -9, 4100000],
      crs: 'EPSG:32633',
    });
    const gr = await readRasterWithGdal(rot);
    const sr = await openImage(rot);
    assert.deepEqual(sr.grid.affine, gr.affine);
    await sr.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('overlapping windows decode each tile once (tile-aligned reads, decoded-tile cache)', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const r = rng(99);
    const W = 128,
      H = 96;
    const f = path.join(dir, 'cog.tif');
    await writeGeoTiff(f, {
      width: W,
      height: H,
      bands: [0, 1, 2].map(() => Float64Array.from({ length: W * H }, () => randomSample(r, 'float32'))),
      type: 'float32',
      affine: [1, 0, 0, 0, -1, 0],
      crs: 'EPSG:3857',
      layout: 'COG',
      blockSize: 32,
      compress: 'DEFLATE',
    });
    const src = (await openImage(f)) as GeoTiffImageSource;
    // Patch tiles of 24 + 2*4 margins walking row-major, as the exporter reads them (docs/semantics.md §3).
    for (let y = -4; y < H; y += 24) for (let x = -4; x < W; x += 24) await src.readWindow(x, y, 32, 32);
    const file = src.files[0]!;
    assert.equal(file.decodes, (W / 32) * (H / 32), 'every 32x32 tile decoded exactly once');
    await src.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a window handed back for reuse serves any window that fits in it: same values and masks as fresh reads', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const r = rng(4242);
    const [W, H] = [90, 70];
    const f = path.join(dir, 'reuse.tif');
    const nodata = -7;
    await writeGeoTiff(f, {
      width: W,
      height: H,
      bands: [0, 1].map(() => Float64Array.from({ length: W * H }, () => (r.next() < 0.15 ? nodata : randomSample(r, 'float32')))),
      type: 'float32',
      nodata,
      affine: [1, 0, 0, 0, -1, 0],
      crs: 'EPSG:3857',
      blockSize: 32,
      compress: 'DEFLATE',
    });
    // An array band (depth 2) and a plain one.
    const spec = {
      bands: [
        { name: 'a', uri: f, bands: [1, 2] },
        { name: 'b', uri: f, band: 2 },
      ],
    };
    const fresh = await openImage(spec);
    const reusing = await openImage(spec);
    try {
      let spare: Awaited<ReturnType<GeoTiffImageSource['readWindow']>> | undefined;
      let lent = 0;
      for (let k = 0; k < 40; k++) {
        // Windows of random sizes, partly outside the image, for float32 and float64 arrays alike.
        const [w, h] = [r.int(1, 60), r.int(1, 50)];
        const [x0, y0] = [r.int(-10, W - 5), r.int(-10, H - 5)];
        const float32 = r.next() < 0.5;
        const want = await fresh.readWindow(x0, y0, w, h, { float32 });
        const bigEnough = spare?.values.every((v, b) => v.buffer.byteLength >= want.values[b]!.byteLength);
        const sameType = spare?.values.every((v, b) => v.constructor === want.values[b]!.constructor);
        const got = await reusing.readWindow(x0, y0, w, h, { float32, reuse: spare });
        if (bigEnough && sameType) {
          lent++;
          got.values.forEach((v, b) => assert.equal(v.buffer, spare!.values[b]!.buffer, `window ${k}: band ${b} reuses the spare's buffer`));
        }
        assert.deepEqual(got.valid, want.valid, `window ${k} masks`);
        for (let b = 0; b < want.values.length; b++) {
          assert.equal(got.values[b]!.length, want.values[b]!.length, `window ${k} band ${b} length`);
          // Masked pixels hold unspecified values (shared/raster/types.ts): compare the valid ones.
          const n = w * h;
          for (let i = 0; i < want.values[b]!.length; i++)
            if (want.valid[b]![i % n]) assert.equal(got.values[b]![i], want.values[b]![i], `window ${k} band ${b} value ${i}`);
        }
        // Hand back the larger of the two windows seen last, as a shard's narrow end chunks do.
        if (!spare || got.values[0]!.buffer.byteLength >= spare.values[0]!.buffer.byteLength || r.next() < 0.3) spare = got;
      }
      assert.ok(lent >= 5, `the spare served ${lent} windows`);
    } finally {
      await fresh.close();
      await reusing.close();
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('sparse files (tiles never written) read as GDAL reads them: nodata, hence masked', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const W = 64,
      H = 48;
    // The left half is nodata, so GDAL (SPARSE_OK) omits those tiles from the file entirely.
    const band = Float64Array.from({ length: W * H }, (_, i) => (i % W < 32 ? -5 : 1 + (i % 97)));
    const f = path.join(dir, 'sparse.tif');
    await writeGeoTiff(f, {
      width: W,
      height: H,
      bands: [band],
      type: 'int16',
      nodata: -5,
      affine: [1, 0, 0, 0, -1, 0],
      crs: 'EPSG:3857',
      blockSize: 16,
      compress: 'DEFLATE',
      extraArgs: ['-co', 'SPARSE_OK=TRUE'],
    });
    const g = await readRasterWithGdal(f);
    const src = (await openImage(f)) as GeoTiffImageSource;
    await checkWindow(src, g, ['int16'], -3, -3, W + 6, H + 6, 'sparse');
    assert.equal(src.files[0]!.decodes, 6, 'only the 6 written tiles are decoded');
    await src.close();
    // NaN nodata: sparse tiles are NaN (masked) in GDAL, not 0.
    const fn = path.join(dir, 'sparse-nan.tif');
    await writeGeoTiff(fn, {
      width: W,
      height: H,
      bands: [band.map((v) => (v === -5 ? NaN : v))],
      type: 'float32',
      nodata: NaN,
      affine: [1, 0, 0, 0, -1, 0],
      crs: 'EPSG:3857',
      blockSize: 16,
      compress: 'DEFLATE',
      extraArgs: ['-co', 'SPARSE_OK=TRUE'],
    });
    const gn = await readRasterWithGdal(fn);
    assert.ok(Number.isNaN(gn.bands[0]![0]!));
    const sn = (await openImage(fn)) as GeoTiffImageSource;
    await checkWindow(sn, gn, ['float32'], 0, 0, W, H, 'sparse NaN');
    assert.equal(sn.files[0]!.decodes, 6);
    await sn.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('an aborted signal stops reads with CANCELLED', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const f = path.join(dir, 'c.tif');
    await writeGeoTiff(f, {
      width: 64,
      height: 64,
      bands: [new Array(4096).fill(5)],
      type: 'uint8',
      affine: [1, 0, 0, 0, -1, 0],
      crs: 'EPSG:3857',
      blockSize: 16,
      compress: 'DEFLATE',
    });
    const src = await openImage(f);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(src.readWindow(0, 0, 64, 64, { signal: ac.signal }), (e: unknown) => e instanceof GeotfrError && e.code === 'CANCELLED');
    // Aborting while tiles are in flight also ends in CANCELLED, and the source stays usable.
    const ac2 = new AbortController();
    const p = src.readWindow(0, 0, 64, 64, { signal: ac2.signal });
    ac2.abort();
    await assert.rejects(p, (e: unknown) => e instanceof GeotfrError && e.code === 'CANCELLED');
    const ok = await src.readWindow(0, 0, 64, 64);
    assert.ok(ok.values[0]!.every((v) => v === 5));
    // Two readers of the same (uncached) tiles: one aborting does not fail the other.
    const fresh = await openImage(f);
    const ac3 = new AbortController();
    const a = fresh.readWindow(0, 0, 64, 64, { signal: ac3.signal });
    const b = fresh.readWindow(0, 0, 64, 64);
    ac3.abort();
    await assert.rejects(a, (e: unknown) => e instanceof GeotfrError && e.code === 'CANCELLED');
    assert.ok((await b).values[0]!.every((v) => v === 5));
    await fresh.close();
    await src.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('errors: missing file, not a TIFF, band out of range, mixed grids, duplicate names; a user-defined CRS reads', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir();
  try {
    const missing = path.join(dir, 'nope.tif');
    await assert.rejects(openImage(missing), (e: unknown) => e instanceof GeotfrError && e.code === 'NOT_FOUND' && e.message.includes(missing));

    const junk = path.join(dir, 'junk.tif');
    await fs.writeFile(junk, 'this is not a tiff at all, just some text');
    await assert.rejects(openImage(junk), (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && e.message.includes(junk));

    const a = path.join(dir, 'a.tif');
    const b = path.join(dir, 'b.tif');
    await writeGeoTiff(a, {
      width: 8,
      height: 6,
      bands: [new Array(48).fill(1), new Array(48).fill(2)],
      type: 'uint8',
      affine: [10, 0, 0, 0, -10, 0],
      crs: 'EPSG:32633',
    });
    await writeGeoTiff(b, { width: 8, height: 6, bands: [new Array(48).fill(1)], type: 'uint8', affine: [10, 0, 5, 0, -10, 0], crs: 'EPSG:32633' });

    // A truncated copy of a real TIFF: the header parses, the data does not exist.
    const trunc = path.join(dir, 'trunc.tif');
    await fs.writeFile(trunc, (await fs.readFile(a)).subarray(0, 200));
    await assert.rejects(
      (async () => {
        const s = await openImage(trunc);
        try {
          await s.readWindow(0, 0, 8, 6);
        } finally {
          await s.close();
        }
      })(),
      (e: unknown) => e instanceof GeotfrError && (e.code === 'BAD_INPUT' || e.code === 'IO') && e.message.includes(trunc),
    );

    await assert.rejects(
      openImage({ bands: [{ name: 'x', uri: a, band: 3 }] }),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === 'image.bands[0].band' && /2 bands/.test(e.message),
    );
    await assert.rejects(
      openImage({ bands: [{ name: 'x', uri: a, bands: [1, 0] }] }),
      (e: unknown) => e instanceof GeotfrError && e.context.field === 'image.bands[0].bands',
    );
    await assert.rejects(
      openImage({ bands: [{ name: 'x', uri: a }] }),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST' && /say which/.test(e.message),
    );
    await assert.rejects(
      openImage({
        bands: [
          { name: 'x', uri: a, band: 1 },
          { name: 'y', uri: b, band: 1 },
        ],
      }),
      (e: unknown) =>
        e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.message.includes(a) && e.message.includes(b) && /different pixel grids/.test(e.message),
    );
    await assert.rejects(
      openImage({
        bands: [
          { name: 'x', uri: a, band: 1 },
          { name: 'x', uri: a, band: 2 },
        ],
      }),
      (e: unknown) => e instanceof GeotfrError && /duplicate band name/.test(e.message),
    );

    const custom = path.join(dir, 'custom.tif');
    await writeGeoTiff(custom, {
      width: 4,
      height: 4,
      bands: [new Array(16).fill(0)],
      type: 'uint8',
      affine: [1, 0, 0, 0, -1, 0],
      crs: '+proj=tmerc +lat_0=0 +lon_0=13.3 +k=0.9999 +x_0=100 +y_0=0 +ellps=bessel +units=m',
    });
    // A projection the GeoKeys spell out without an EPSG code reads as a proj string (shared/grid/crs.ts).
    const opened = await openImage(custom);
    assert.match(opened.grid.crs, /^\+proj=tmerc \+lat_0=0 \+lon_0=13\.3 \+k_0=0\.9999 \+x_0=100 \+y_0=0 \+a=6377397\.155 \+rf=299\.1528128 /);
    await opened.close();

    const nocrs = path.join(dir, 'nocrs.tif');
    await run('gdal_create', ['-q', '-outsize', '4', '4', '-bands', '1', '-ot', 'Byte', nocrs]);
    await assert.rejects(openImage(nocrs), (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && e.message.includes(nocrs));

    await assert.rejects(openImage('https://example.com/x.tif'), (e: unknown) => e instanceof GeotfrError && e.code === 'FORBIDDEN');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
