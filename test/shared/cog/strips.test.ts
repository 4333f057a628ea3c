/**
 * The distributed COG writer (shared/cog/strips.ts) against the single-process one: for odd sizes,
 * several strip heights, float and integer samples, nodata, and forced BigTIFF, the file assembled
 * from strip parts and the finalizer's head is byte-identical to `CogWriter`'s; GDAL reads it as a
 * valid COG (BigTIFF included).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { CogWriter, allocPixels, type CogOptions } from '../../../shared/cog/writer.js';
import { CoarseLevels, StripWriter, fileByteCounts, stripGeometry, type StripGeometry } from '../../../shared/cog/strips.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { needGdal, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir } from '../../support/rasters.js';
import { gdalStructure, rng, validateCog } from './cogcheck.js';

/** A Writable collecting everything into one Buffer. */
function collector(): { stream: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(Buffer.from(c));
      cb();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}

function image(type: SampleType, bands: number, width: number, height: number, seed: number, nodata?: number) {
  const rand = rng(seed);
  return Array.from({ length: bands }, (_, b) => {
    const a = allocPixels(type, width * height);
    for (let i = 0; i < a.length; i++) {
      const x = i % width;
      const y = Math.floor(i / width);
      const v = type.startsWith('float') ? Math.sin(x / 7 + b) * Math.cos(y / 5) * 100 + rand() : Math.floor(rand() * 200);
      a[i] = nodata !== undefined && rand() < 0.05 ? nodata : v;
    }
    return a;
  });
}

async function single(opts: CogOptions, bands: ArrayLike<number>[]): Promise<Buffer> {
  const w = await CogWriter.create(opts);
  try {
    for (let y = 0; y < opts.height; y += 13) {
      const n = Math.min(13, opts.height - y);
      await w.writeRows(
        bands.map((b) => (b as Float32Array).subarray(y * opts.width, (y + n) * opts.width)),
        n,
      );
    }
    const c = collector();
    await w.finish(c.stream);
    return c.bytes();
  } finally {
    await w.close();
  }
}

/** What the distributed pipeline does, in one process: strips (in reverse order, to prove independence), then the finalizer. */
async function distributed(opts: CogOptions, g: StripGeometry, bands: ArrayLike<number>[]): Promise<Buffer> {
  const parts: Buffer[][] = [];
  const raws: Buffer[] = [];
  const counts: number[][][] = [];
  for (let s = g.strips - 1; s >= 0; s--) {
    const levelChunks: Buffer[][] = Array.from({ length: g.m + 1 }, () => []);
    const rawChunks: Buffer[] = [];
    const sink = (into: Buffer[]) => ({ append: async (c: Uint8Array) => void into.push(Buffer.from(c)) });
    const w = StripWriter.create(opts, g, s, { level: (k) => sink(levelChunks[k]!), raw: sink(rawChunks) });
    for (let y = w.y0; y < w.y1; y += 7) {
      const n = Math.min(7, w.y1 - y);
      await w.writeRows(
        bands.map((b) => (b as Float32Array).subarray(y * opts.width, (y + n) * opts.width)),
        n,
      );
    }
    const r = await w.finish();
    counts[s] = r.byteCounts;
    parts[s] = [];
    for (let k = 0; k <= g.m; k++) {
      parts[s][k] = Buffer.concat(levelChunks[k]!);
      assert.equal(parts[s][k].length, r.partBytes[k], `strip ${s} level ${k} part size`);
    }
    raws[s] = Buffer.concat(rawChunks);
    assert.equal(raws[s].length, r.rawBytes);
  }
  const coarse = await CoarseLevels.create(opts, g);
  try {
    for (let s = 0; s < g.strips; s++) {
      if (g.m < g.levels - 1) assert.equal(raws[s].length, coarse.rawSize(s), `strip ${s} raw size`);
      // Odd chunking: rows must be reassembled across pushes.
      for (let i = 0; i < raws[s].length; i += 1000) await coarse.push(raws[s].subarray(i, i + 1000));
    }
    const coarseCounts = await coarse.finish();
    const all = fileByteCounts(g, counts, coarseCounts);
    const plan = coarse.layout.plan(all, opts.bigTiff ?? 'auto');
    const head = collector();
    head.stream.write(coarse.layout.header(plan, all));
    await coarse.pipeTiles(head.stream);
    const pieces = [head.bytes()];
    for (let k = g.m; k >= 0; k--) for (let s = 0; s < g.strips; s++) pieces.push(parts[s][k]);
    const file = Buffer.concat(pieces);
    assert.equal(file.length, plan.total);
    return file;
  } finally {
    await coarse.close();
  }
}

const cases: { name: string; type: SampleType; bands: number; w: number; h: number; ts: number; stripTileRows: number[]; nodata?: number; bigTiff?: 'yes' }[] =
  [
    { name: 'float32, 2 bands, odd size', type: 'float32', bands: 2, w: 203, h: 181, ts: 16, stripTileRows: [1, 2, 4, 64], nodata: -9999 },
    { name: 'uint16, 3 bands', type: 'uint16', bands: 3, w: 100, h: 130, ts: 16, stripTileRows: [1, 2] },
    { name: 'float64, 1 band, forced BigTIFF', type: 'float64', bands: 1, w: 97, h: 150, ts: 32, stripTileRows: [1, 2], bigTiff: 'yes' },
  ];

for (const c of cases) {
  test(`strips assemble to CogWriter's bytes: ${c.name}`, async () => {
    const opts: CogOptions = {
      width: c.w,
      height: c.h,
      bands: c.bands,
      type: c.type,
      crs: 'EPSG:32633',
      affine: [10, 0, 500000, 0, -10, 4000000],
      tileSize: c.ts,
      nodata: c.nodata,
      bandNames: Array.from({ length: c.bands }, (_, i) => `b${i}`),
      bigTiff: c.bigTiff,
    };
    const bands = image(c.type, c.bands, c.w, c.h, 7, c.nodata);
    const want = await single(opts, bands);
    for (const rows of c.stripTileRows) {
      const g = stripGeometry(c.w, c.h, c.ts, rows);
      const got = await distributed(opts, g, bands);
      assert.ok(got.equals(want), `stripTileRows ${rows} (m ${g.m}, ${g.strips} strips): ${got.length} vs ${want.length} bytes`);
    }
  });
}

test('a distributed BigTIFF is a valid COG that GDAL reads value for value', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-strips-');
  try {
    const opts: CogOptions = {
      width: 150,
      height: 140,
      bands: 2,
      type: 'float32',
      crs: 'EPSG:32633',
      affine: [10, 0, 500000, 0, -10, 4000000],
      tileSize: 16,
      bigTiff: 'yes',
    };
    const bands = image('float32', 2, 150, 140, 3);
    const g = stripGeometry(150, 140, 16, 2);
    assert.ok(g.strips >= 4 && g.m === 1);
    const file = path.join(dir, 'big.tif');
    await fs.writeFile(file, await distributed(opts, g, bands));
    const head = await fs.readFile(file);
    assert.equal(head.readUInt16LE(2), 43, 'BigTIFF magic');
    const info = await run('gdalinfo', [file]);
    assert.match(info.stdout.toString(), /LAYOUT=COG/);
    await validateCog(file);
    const s = await gdalStructure(file);
    assert.equal(s.overviews.length, g.levels - 1);
    const r = await readRasterWithGdal(file);
    for (let b = 0; b < 2; b++) for (let i = 0; i < 150 * 140; i += 97) assert.equal(r.bands[b][i], bands[b][i], `band ${b} sample ${i}`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('strip heights must be powers of two', () => {
  assert.throws(() => stripGeometry(100, 100, 16, 3), /power of two/);
});
