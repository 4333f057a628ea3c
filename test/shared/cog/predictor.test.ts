/**
 * The COG writer's fast paths against their plain definitions, over random tiles: the fused float32
 * interleave + predictor 3 (word-wise differences, byte transpose) must give the bytes of
 * interleaving then `floatingPointDiff` (libtiff's fpDiff, which GDAL undoes in writer.test.ts), also
 * at the right and bottom edges and into a reused, dirty buffer, and so must the WebAssembly SIMD
 * version (predictor.wat), which this runtime must run; the 2× average's fast path the
 * values of the per-pixel mean with NaN, ±0 and ±Infinity in the blocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { float32PredictedTile, floatingPointDiff } from '../../../shared/cog/predictor.js';
import { predictFloat32Tile, simdPredictorAvailable } from '../../../shared/cog/predictor-simd.js';
import { reduceRow } from '../../../shared/cog/overview.js';
import { encodeTile, tileParams } from '../../../shared/cog/tiles.js';
import { mulberry32 } from '../../support/random.js';

const SPECIALS = [Number.NaN, 0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-45, -3.4e38];

function randomFloats(n: number, rand: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() < 0.05 ? SPECIALS[Math.floor(rand() * SPECIALS.length)] : (rand() - 0.3) * 10 ** Math.floor(rand() * 8 - 4);
  return a;
}

/** Interleave (zero padding) then predictor 3 over the whole tile: the definition. */
function reference(bands: Float32Array[], width: number, x0: number, rows: number, ts: number): Uint8Array {
  const nb = bands.length;
  const tile = new Float32Array(ts * ts * nb);
  const w = Math.min(ts, width - x0);
  for (let y = 0; y < rows; y++) for (let x = 0; x < w; x++) for (let b = 0; b < nb; b++) tile[(y * ts + x) * nb + b] = bands[b][y * width + x0 + x];
  const out = new Uint8Array(tile.byteLength);
  floatingPointDiff(new Uint8Array(tile.buffer), ts, ts * nb, nb, 4, out);
  return out;
}

test('float32 predictor 3, fused and word-wise: the bytes of interleave + floatingPointDiff, at every edge, into a dirty buffer', () => {
  const rand = mulberry32(14);
  for (let trial = 0; trial < 40; trial++) {
    const ts = 16 * (1 + Math.floor(rand() * 4));
    const nb = 1 + Math.floor(rand() * 4);
    const width = 1 + Math.floor(rand() * 3 * ts);
    const x0 = ts * Math.floor((rand() * width) / ts);
    const rows = 1 + Math.floor(rand() * ts);
    const bands = Array.from({ length: nb }, () => randomFloats(width * rows, rand));
    const want = reference(bands, width, x0, rows, ts);
    const out = new Uint32Array(ts * ts * nb).fill(0xdeadbeef);
    const lanes = bands.map((b) => new Uint32Array(b.buffer));
    float32PredictedTile(lanes, width, x0, Math.min(ts, width - x0), rows, ts, out, new Uint32Array(ts * nb).fill(7));
    assert.deepEqual(new Uint8Array(out.buffer), want, `tile ${ts} px, ${nb} bands, width ${width}, x0 ${x0}, ${rows} rows`);
    // encodeTile takes the same path, reusing a buffer of the right size.
    const p = tileParams({ tileSize: ts, bands: nb, type: 'float32' });
    const reused = encodeTile(p, bands, width, x0, rows, new Uint8Array(out.buffer));
    assert.equal(reused.buffer, out.buffer);
    assert.deepEqual(reused, want);
  }
});

test('float32 predictor 3 in WebAssembly SIMD: the same bytes, any band count, edge and layout, after larger tiles', () => {
  // Node 20 and later run WebAssembly SIMD: a fallback to JavaScript here would be a silent slowdown.
  assert.ok(simdPredictorAvailable(), 'the WebAssembly predictor does not instantiate on this runtime');
  const rand = mulberry32(2026);
  for (let trial = 0; trial < 120; trial++) {
    // Large layouts first and then smaller ones, in random order: the zeros before each row's planes
    // must be there whatever an earlier, larger tile left in the instance's memory.
    const ts = 16 * (1 + Math.floor(rand() * (trial < 10 ? 16 : 5)));
    const nb = 1 + Math.floor(rand() * (trial < 10 ? 17 : 9));
    const width = 1 + Math.floor(rand() * 3 * ts);
    const x0 = Math.min(width - 1, Math.floor(rand() * width));
    const rows = 1 + Math.floor(rand() * ts);
    const bands = Array.from({ length: nb }, () => randomFloats(width * rows, rand));
    const want = reference(bands, width, x0, rows, ts);
    const out = new Uint8Array(ts * ts * nb * 4).fill(0xa5);
    const lanes = bands.map((b) => new Uint32Array(b.buffer));
    assert.ok(predictFloat32Tile(lanes, width, x0, Math.min(ts, width - x0), rows, ts, out));
    assert.deepEqual(out, want, `tile ${ts} px, ${nb} bands, width ${width}, x0 ${x0}, ${rows} rows`);
  }
});

test('the WebAssembly predictor declines what it cannot do, leaving the buffer alone', () => {
  const lanes = [new Uint32Array(40 * 20)];
  const out = new Uint8Array(20 * 20 * 4).fill(3);
  assert.equal(predictFloat32Tile(lanes, 40, 0, 20, 20, 20, out), false, 'a tile size that is not a multiple of 16');
  assert.equal(predictFloat32Tile(lanes, 40, 0, 16, 16, 16, out), false, 'an output buffer of the wrong size');
  assert.equal(predictFloat32Tile([], 40, 0, 16, 16, 16, new Uint8Array(0)), false, 'no bands');
  assert.ok(out.every((v) => v === 3));
});

test('integer tiles encoded into a reused buffer equal fresh ones (zero padding restored)', () => {
  const rand = mulberry32(41);
  for (const type of ['uint8', 'int16', 'uint32'] as const) {
    const p = tileParams({ tileSize: 32, bands: 2, type });
    const width = 45;
    const rows = 20;
    const bands = Array.from({ length: 2 }, () => {
      const a = type === 'uint8' ? new Uint8Array(width * rows) : type === 'int16' ? new Int16Array(width * rows) : new Uint32Array(width * rows);
      for (let i = 0; i < a.length; i++) a[i] = Math.floor(rand() * 60000);
      return a;
    });
    const fresh = encodeTile(p, bands, width, 32, rows);
    const dirty = new Uint8Array(fresh.length).fill(0xa5);
    assert.deepEqual(encodeTile(p, bands, width, 32, rows, dirty), fresh, type);
  }
});

/** The 2×2 average as defined (docs/ingest.md): the mean of the valid pixels, summed in order from 0. */
function meanOf(values: number[], nodata: number | undefined): number {
  let sum = 0;
  let n = 0;
  for (const v of values)
    if (!Number.isNaN(v) && v !== nodata) {
      sum += v;
      n++;
    }
  return n ? sum / n : (nodata ?? Number.NaN);
}

test('2× average: the fast path gives the per-pixel mean bit for bit (NaN, ±0, ±Infinity, nodata, odd widths)', () => {
  const rand = mulberry32(7);
  for (let trial = 0; trial < 200; trial++) {
    const width = trial < 2 ? 4 : 1 + Math.floor(rand() * 40);
    const nodata = trial >= 2 && rand() < 0.3 ? 0.5 : undefined;
    const pick = () =>
      rand() < 0.3 ? SPECIALS[Math.floor(rand() * SPECIALS.length)] : rand() < 0.1 && nodata !== undefined ? nodata : Math.fround(rand() * 4 - 2);
    // The first trials: blocks of all -0 (the mean is +0: sums start from 0) and -0 with a NaN.
    const r0 = trial < 2 ? Float32Array.of(-0, -0, -0, Number.NaN) : Float32Array.from({ length: width }, pick);
    const r1 = trial < 2 ? Float32Array.of(-0, -0, -0, -0) : rand() < 0.9 ? Float32Array.from({ length: width }, pick) : undefined;
    const ow = Math.ceil(width / 2);
    const out = new Float32Array(ow + 3);
    reduceRow(r0, r1, width, out, 3, 'average', nodata);
    for (let x = 0; x < ow; x++) {
      const block = [r0[2 * x], ...(2 * x + 1 < width ? [r0[2 * x + 1]] : [])];
      if (r1) block.push(r1[2 * x], ...(2 * x + 1 < width ? [r1[2 * x + 1]] : []));
      const want = Math.fround(meanOf(block, nodata));
      assert.ok(Object.is(out[3 + x], want), `width ${width} x ${x}: [${block}] gave ${out[3 + x]}, want ${want}`);
    }
  }
});

test("deflateTile gives zlib.deflateSync's bytes whatever its output buffer, and the estimate stays near the tile", async () => {
  const { deflateTile, outputEstimate } = await import('../../../shared/cog/tiles.js');
  const zlib = await import('node:zlib');
  const rand = mulberry32(77);
  for (let t = 0; t < 24; t++) {
    const n = [64, 4096, 65536, 3 * 256 * 256 * 4][t % 4]!;
    const raw = new Uint8Array(n);
    // From runs of one byte (RLE-friendly) to noise (incompressible: stored blocks).
    const noise = t % 3;
    for (let i = 0; i < n; i++) raw[i] = noise === 0 ? (i >> 9) & 0xff : noise === 1 ? (Math.sin(i / 50) * 60 + rand() * 8) & 0xff : (rand() * 256) | 0;
    const p = tileParams({ tileSize: 256, bands: 3, type: t % 2 ? 'float32' : 'uint8', compressionLevel: 1 + (t % 9) });
    const want = zlib.deflateSync(raw, { level: p.compressionLevel, strategy: p.zlibStrategy, memLevel: 9 });
    // Far too small (a second buffer, joined), about right, the worst case (the default).
    for (const out of [64, outputEstimate(n, want.length / n), undefined]) {
      const got = await deflateTile(raw, p, out);
      assert.ok(got.equals(want), `tile ${t} (${n} bytes, output buffer ${out ?? 'worst case'}): bytes differ`);
    }
    const est = outputEstimate(n, want.length / n);
    assert.ok(est >= want.length && est <= want.length * 1.06 + 16385, `estimate ${est} for ${want.length}`);
  }
});
