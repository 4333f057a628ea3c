/**
 * Resampling (shared/grid/resample.ts) against GDAL's warper (`gdal.Warp` with errorThreshold=0,
 * XSCALE=YSCALE=1, no overviews, into a dataset made with the exact target transform):
 *
 * - nearest, bilinear, bicubic over seeded random CRS pairs (and same-CRS pairs), resolutions,
 *   rotations, shears, nodata masks and partly covered targets: nearest exactly equal except where a
 *   centre lies within the transform's error bound of a source pixel edge; bilinear and bicubic
 *   within 1e-4 of the source's value range wherever ours is valid; wherever GDAL has no value ours
 *   is masked too;
 * - mean/mode/min/max = `-r average|mode|min|max` for same-CRS integer-factor downsampling (Debian's
 *   GDAL 3.6 handles partial pixels differently from 3.7+, so only whole footprints are compared);
 * - hand-derived kernels, the mask rule, fractional and rotated footprints, and strip splitting.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import type { Affine } from '../../../shared/mixer.js';
import { GridTransform } from '../../../shared/grid/transform.js';
import { interpolate, reduce, warpWindow, type Kernel, type SourceWindow, type WarpSource } from '../../../shared/grid/resample.js';
import { gdalWarp, needGdalPython, type GdalAlg, type WarpJob } from '../../support/gdalwarp.js';
import { randomGridPair, type GridPair } from '../../support/grids.js';
import { needGdal } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

const NODATA = -9999;

/** An in-memory single-band source: row-major values, NODATA where masked. */
function memSource(values: Float64Array, width: number, height: number, nodata?: number, bands = 1): WarpSource & { reads: number } {
  const s = {
    width,
    height,
    depths: Array.from({ length: bands }, () => 1),
    reads: 0,
    async read(x0: number, y0: number, w: number, h: number) {
      s.reads++;
      assert.ok(x0 >= 0 && y0 >= 0 && x0 + w <= width && y0 + h <= height, `read (${x0}, ${y0}, ${w}x${h}) outside ${width}x${height}`);
      const v = new Float64Array(w * h),
        ok = new Uint8Array(w * h);
      for (let j = 0; j < h; j++)
        for (let i = 0; i < w; i++) {
          const x = values[(y0 + j) * width + x0 + i]!;
          v[j * w + i] = x;
          ok[j * w + i] = x === nodata ? 0 : 1;
        }
      return { values: Array.from({ length: bands }, () => v), valid: Array.from({ length: bands }, () => ok) };
    },
  };
  return s;
}

/** Warps one band with one kernel. */
async function warp1(
  t: GridTransform,
  src: WarpSource,
  kernel: Kernel,
  win: { x0: number; y0: number; width: number; height: number },
  opts: { maxSourcePixels?: number } = {},
) {
  return (await warpWindow(t, src, [kernel], win, opts))[0]!;
}

/** A source grid around the target's footprint: covering it partly or with a margin, at most 700×700. */
function sourceAround(p: GridPair): { affine: Affine; width: number; height: number } | null {
  const g = new GridTransform(p.target, p.source);
  const c = g.map(0, 0, p.w + 1, p.h + 1, 0);
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  for (let k = 0; k < c.x.length; k++) {
    x0 = Math.min(x0, c.x[k]!);
    x1 = Math.max(x1, c.x[k]!);
    y0 = Math.min(y0, c.y[k]!);
    y1 = Math.max(y1, c.y[k]!);
  }
  const r = p.rng;
  const bw = x1 - x0,
    bh = y1 - y0;
  const ox = Math.floor(x0 + bw * (r() * 0.25 - 0.1)),
    oy = Math.floor(y0 + bh * (r() * 0.25 - 0.1));
  const width = Math.ceil(x1 - bw * (r() * 0.25 - 0.1)) - ox,
    height = Math.ceil(y1 - bh * (r() * 0.25 - 0.1)) - oy;
  if (width > 700 || height > 700 || width < 4 || height < 4) return null;
  const [a, b, cc, d, e, f] = p.source.affine;
  return { affine: [a, b, cc + ox * a + oy * b, d, e, f + ox * d + oy * e], width, height };
}

/** Smooth field plus noise, with ~2% NODATA pixels when `holes`. */
function randomValues(r: () => number, w: number, h: number, holes: boolean): Float64Array {
  const v = new Float64Array(w * h);
  const fx = 3 + r() * 10,
    fy = 3 + r() * 10;
  for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) v[j * w + i] = holes && r() < 0.02 ? NODATA : 1000 * Math.sin(i / fx) * Math.cos(j / fy) + 100 * r();
  return v;
}

const GDAL_ALG: Record<string, GdalAlg> = { nearest: 'near', bilinear: 'bilinear', bicubic: 'cubic', mean: 'average', mode: 'mode', min: 'min', max: 'max' };

test('nearest, bilinear and bicubic equal gdalwarp -et 0 over random CRS pairs, grids and masks', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const cases: { p: GridPair; src: { affine: Affine; width: number; height: number }; values: Float64Array; holes: boolean }[] = [];
  for (let seed = 1; cases.length < 36; seed++) {
    const p = randomGridPair(seed, { sameCrs: seed % 4 === 0, w: [60, 160], h: [50, 130] });
    const src = sourceAround(p);
    if (!src) continue;
    const holes = seed % 3 !== 0;
    cases.push({ p, src, values: randomValues(p.rng, src.width, src.height, holes), holes });
  }
  const methods = ['nearest', 'bilinear', 'bicubic'] as const;
  const jobs: WarpJob[] = cases.flatMap((c) =>
    methods.map((m) => ({
      src: { width: c.src.width, height: c.src.height, affine: c.src.affine, crs: c.p.source.crs, nodata: c.holes ? NODATA : undefined, values: c.values },
      dst: { width: c.p.w, height: c.p.h, affine: c.p.target.affine, crs: c.p.target.crs },
      alg: GDAL_ALG[m]!,
    })),
  );
  const gdal = await gdalWarp(jobs);
  let job = 0;
  const totals = { nearest: 0, bilinear: 0, bicubic: 0 };
  for (const c of cases) {
    const placement = { crs: c.p.source.crs, affine: c.src.affine };
    const transform = new GridTransform(c.p.target, placement);
    let lo = Infinity,
      hi = -Infinity;
    for (const v of c.values) if (v !== NODATA) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const n = c.p.w * c.p.h;
    for (const m of methods) {
      const want = gdal[job++]!;
      const got = await warp1(
        transform,
        memSource(c.values, c.src.width, c.src.height, c.holes ? NODATA : undefined),
        { resample: m },
        { x0: 0, y0: 0, width: c.p.w, height: c.p.h },
      );
      let compared = 0,
        valid = 0;
      for (let k = 0; k < n; k++) {
        const i = k % c.p.w,
          j = Math.floor(k / c.p.w);
        const where = `${c.p.desc}, ${m}, target pixel (${i}, ${j})`;
        if (m === 'nearest') {
          // A centre within the error bound of a source pixel edge may land on either side.
          const [ex, ey] = transform.exact(i + 0.5, j + 0.5);
          const near = (v: number) => Math.abs(v - Math.round(v)) <= transform.errorBoundPx + 1e-9;
          if (near(ex) || near(ey)) continue;
          compared++;
          if (Number.isNaN(want[k]!)) assert.equal(got.valid[k], 0, `${where}: GDAL has no value, ours ${got.values[k]}`);
          else {
            assert.equal(got.valid[k], 1, `${where}: GDAL ${want[k]}, ours masked`);
            assert.equal(got.values[k], want[k], where);
            valid++;
          }
        } else {
          compared++;
          if (Number.isNaN(want[k]!)) assert.equal(got.valid[k], 0, `${where}: GDAL has no value, ours ${got.values[k]}`);
          else if (got.valid[k]) {
            assert.ok(Math.abs(got.values[k]! - want[k]!) <= 1e-4 * (hi - lo), `${where}: ours ${got.values[k]}, GDAL ${want[k]}`);
            valid++;
          }
        }
      }
      assert.ok(compared > 0.9 * n, `${c.p.desc}, ${m}: only ${compared} of ${n} pixels compared`);
      totals[m] += valid;
    }
  }
  // The comparison must not pass vacuously (every case partly covers its target).
  for (const m of methods) assert.ok(totals[m] > 0.4 * cases.reduce((s, c) => s + c.p.w * c.p.h, 0), `${m}: ${totals[m]} valid pixels compared`);
});

test('mean, mode, min and max equal gdalwarp -r average|mode|min|max on same-CRS integer-factor downsampling', async (t) => {
  if (!needGdal(t) || !needGdalPython(t)) return;
  const r = mulberry32(99);
  const cases: {
    src: { affine: Affine; width: number; height: number; crs: string };
    dst: { affine: Affine; width: number; height: number };
    values: Float64Array;
    nodata?: number;
    f: number;
  }[] = [];
  for (let k = 0; k < 24; k++) {
    const f = 2 + Math.floor(r() * 4);
    const width = 60 + Math.floor(r() * 100),
      height = 50 + Math.floor(r() * 100);
    const crs = ['EPSG:32633', 'EPSG:4326', 'EPSG:3035'][k % 3]!;
    const px = crs === 'EPSG:4326' ? 0.001 : 10;
    const affine: Affine = [px, 0, crs === 'EPSG:4326' ? 14 : 4500000, 0, -px, crs === 'EPSG:4326' ? 50 : 3000000];
    // Small integers make mode ties common (GDAL's rule: the first value to reach the top count wins).
    const small = k % 2 === 0;
    const holes = k % 3 !== 2;
    const values = new Float64Array(width * height);
    for (let i = 0; i < values.length; i++) values[i] = holes && r() < 0.03 ? NODATA : small ? Math.floor(r() * 4) : (r() - 0.5) * 1e4;
    // Target origin on a source pixel corner, possibly left of / above the source.
    const ox = Math.floor((r() - 0.3) * 10),
      oy = Math.floor((r() - 0.3) * 10);
    const dst = {
      affine: [f * px, 0, affine[2] + ox * px, 0, -f * px, affine[5] - oy * px] as Affine,
      width: Math.ceil(width / f) + 1,
      height: Math.ceil(height / f) + 1,
    };
    cases.push({ src: { affine, width, height, crs }, dst, values, nodata: holes ? NODATA : undefined, f });
  }
  const reducers = ['mean', 'mode', 'min', 'max'] as const;
  const gdal = await gdalWarp(
    cases.flatMap((c) =>
      reducers.map((m) => ({ src: { ...c.src, nodata: c.nodata, values: c.values }, dst: { ...c.dst, crs: c.src.crs }, alg: GDAL_ALG[m]! })),
    ),
  );
  let job = 0;
  for (const [ci, c] of cases.entries()) {
    const transform = new GridTransform({ crs: c.src.crs, affine: c.dst.affine }, { crs: c.src.crs, affine: c.src.affine });
    for (const m of reducers) {
      const want = gdal[job++]!;
      const got = await warp1(
        transform,
        memSource(c.values, c.src.width, c.src.height, c.nodata),
        { resample: 'nearest', reduce: m },
        { x0: 0, y0: 0, width: c.dst.width, height: c.dst.height },
      );
      let valid = 0;
      for (let k = 0; k < want.length; k++) {
        const where = `case ${ci} (${c.src.crs}, factor ${c.f}), ${m}, target pixel ${k % c.dst.width}, ${Math.floor(k / c.dst.width)}`;
        if (Number.isNaN(want[k]!)) {
          assert.equal(got.valid[k], 0, `${where}: GDAL has no value, ours ${got.values[k]}`);
          continue;
        }
        if (!got.valid[k]) continue; // partly masked or partly outside: masked here (docs/semantics.md §11), GDAL averages the rest
        valid++;
        // GDAL weighs each pixel by its coverage computed from transformed corners (1 up to rounding).
        if (m === 'mean') assert.ok(Math.abs(got.values[k]! - want[k]!) <= 1e-9 * 1e4, `${where}: ours ${got.values[k]}, GDAL ${want[k]}`);
        // GDAL 3.6's mode bins non-byte values as float32 (exact for the small integers).
        else if (m === 'mode') assert.equal(Math.fround(got.values[k]!), want[k], where);
        else assert.equal(got.values[k], want[k], where);
      }
      assert.ok(valid > 0.3 * want.length, `case ${ci} ${m}: ${valid} of ${want.length} compared`);
    }
  }
});

test('kernels by hand: quarter-pixel bilinear, bicubic on a straight line and at zero fractions, mask rule', () => {
  // 4×3 source, value = 10*col + row; one masked pixel at (3, 2).
  const w = 4,
    h = 3;
  const values = new Float64Array(w * h).map((_, k) => 10 * (k % w) + Math.floor(k / w));
  const valid = new Uint8Array(w * h).fill(1);
  valid[2 * w + 3] = 0;
  const src: SourceWindow = { x0: 0, y0: 0, width: w, height: h, values, valid };
  const at = (method: Kernel['resample'], pts: [number, number][]) => {
    const coords = { x: new Float64Array(pts.map((p) => p[0])), y: new Float64Array(pts.map((p) => p[1])) };
    const out = { values: new Float64Array(pts.length), valid: new Uint8Array(pts.length) };
    interpolate(method, coords, 0, pts.length, src, { width: w, height: h }, 1, out, pts.length);
    return pts.map((_, k) => (out.valid[k] ? out.values[k] : null));
  };
  // Bilinear at (1.25, 1.75) → between centres (0.5..1.5, 1.5..2.5): 10*0.75 + 1.25 = 8.75 (the field is linear).
  assert.deepEqual(at('bilinear', [[1.25, 1.75]]), [8.75]);
  // On a pixel centre: exactly that pixel, even next to the masked one and at the source's edge
  // (the zero-weight neighbours are not read); a quarter pixel off toward the masked pixel: masked.
  assert.deepEqual(
    at('bilinear', [
      [2.5, 2.5],
      [0.5, 0.5],
      [2.75, 2.5],
      [3.75, 0.5],
    ]),
    [22, 0, null, null],
  );
  // Nearest: GDAL's bias puts an edge on the right/lower pixel; outside is masked; the masked pixel too.
  assert.deepEqual(
    at('nearest', [
      [1, 1],
      [0.999, 0.999],
      [-1e-12, 0.5],
      [3.5, 2.5],
      [4, 0.5],
    ]),
    [11, 0, null, null, null],
  );
  // Bicubic reproduces a linear field where its 4×4 support is inside; at zero fractions only the
  // centre tap counts, so pixel centres next to the edge keep their values.
  assert.deepEqual(
    at('bicubic', [
      [2, 1.5],
      [0.5, 0.5],
      [1.5, 1.25],
      [3.5, 0.5],
    ]),
    [16, 0, null, 30],
  );
});

test('reducers by hand: fractional footprints weigh covered area; a rotated footprint; the mask rule', () => {
  // Source 4×2: values 0, 10, 20, 30 per row. Footprint x ∈ [0.5, 3] (2.5 px): weights 0.5, 1, 1 → mean (0 + 10 + 20)/2.5 = 12.
  const src: SourceWindow = { x0: 0, y0: 0, width: 4, height: 2, values: new Float64Array([0, 10, 20, 30, 0, 10, 20, 30]), valid: new Uint8Array(8).fill(1) };
  const run1 = (reducer: 'mean' | 'mode' | 'min' | 'max', xs: number[], ys: number[], s = src) => {
    const out = { values: new Float64Array(1), valid: new Uint8Array(1) };
    reduce(reducer, { x: new Float64Array(xs), y: new Float64Array(ys) }, 1, 0, 1, 0, 1, s, { width: 4, height: 2 }, 1, out, 1);
    return out.valid[0] ? out.values[0] : null;
  };
  // Corners (0,0), (1,0), (0,1), (1,1) of one target pixel, as (x, y) lists.
  const rect = (x0: number, x1: number, y0: number, y1: number): [number[], number[]] => [
    [x0, x1, x0, x1],
    [y0, y0, y1, y1],
  ];
  assert.equal(run1('mean', ...rect(0.5, 3, 0, 1)), 12);
  assert.equal(run1('min', ...rect(0.5, 3, 0, 1)), 0);
  assert.equal(run1('max', ...rect(0.5, 3, 0, 1)), 20);
  // Mode by weight: 0.4 of pixel 0 vs 0.6 of pixel 1.
  assert.equal(run1('mode', ...rect(0.6, 1.6, 0, 1)), 10);
  // A sliver under 1e-6 px does not count: [1 - 1e-7, 2] is pixel 1 alone.
  assert.equal(run1('max', ...rect(1 - 1e-7, 2, 0, 1)), 10);
  // A footprint reaching outside the source is masked.
  assert.equal(run1('mean', ...rect(3.5, 4.5, 0, 1)), null);
  // A diamond (45° rotation) centred on the corner (2, 1) shared by four pixels covers each by a quarter.
  const diamond: [number[], number[]] = [
    [2, 3, 1, 2],
    [0, 1, 1, 2],
  ];
  assert.ok(Math.abs(run1('mean', ...diamond)! - (10 + 20 + 10 + 20) / 4) < 1e-12);
  // An off-centre rotated footprint: weights from polygon clipping equal a fine supersampling.
  const quad: [number[], number[]] = [
    [1.3, 2.9, 0.6, 2.2],
    [0.1, 0.5, 0.9, 1.3],
  ];
  let acc = 0,
    cnt = 0;
  const N = 600;
  const [xs, ys] = quad;
  for (let a = 0; a < N; a++)
    for (let b = 0; b < N; b++) {
      const u = (a + 0.5) / N,
        v = (b + 0.5) / N;
      // Bilinear map of the unit square onto the quad (a parallelogram here, so exact).
      const x = xs[0]! * (1 - u) * (1 - v) + xs[1]! * u * (1 - v) + xs[2]! * (1 - u) * v + xs[3]! * u * v;
      const y = ys[0]! * (1 - u) * (1 - v) + ys[1]! * u * (1 - v) + ys[2]! * (1 - u) * v + ys[3]! * u * v;
      acc += src.values[Math.floor(y) * 4 + Math.floor(x)]!;
      cnt++;
    }
  assert.ok(Math.abs(run1('mean', ...quad)! - acc / cnt) < 0.05, `${run1('mean', ...quad)} vs ${acc / cnt}`);
  // One masked pixel under the footprint masks the target pixel.
  const holed: SourceWindow = { ...src, valid: new Uint8Array([1, 1, 0, 1, 1, 1, 1, 1]) };
  assert.equal(run1('mean', ...rect(0.5, 3, 0, 1), holed), null);
  assert.equal(run1('mean', ...rect(0.5, 2, 0, 1), holed), 20 / 3);
});

test('strips: a small source-window budget reads in pieces and gives the same pixels', async () => {
  const p = randomGridPair(5, { w: [200, 201], h: [150, 151] });
  const src = sourceAround(p)!;
  const values = randomValues(p.rng, src.width, src.height, true);
  const transform = new GridTransform(p.target, { crs: p.source.crs, affine: src.affine });
  for (const kernel of [{ resample: 'bilinear' }, { resample: 'nearest', reduce: 'mean' }] as Kernel[]) {
    const whole = memSource(values, src.width, src.height, NODATA);
    const a = await warp1(transform, whole, kernel, { x0: -5, y0: 3, width: p.w, height: p.h });
    const pieces = memSource(values, src.width, src.height, NODATA);
    const b = await warp1(transform, pieces, kernel, { x0: -5, y0: 3, width: p.w, height: p.h }, { maxSourcePixels: 2000 });
    assert.ok(pieces.reads > 10 * whole.reads, `${kernel.resample}/${kernel.reduce}: ${pieces.reads} reads vs ${whole.reads}`);
    assert.deepEqual(b.valid, a.valid);
    assert.deepEqual(b.values, a.values);
    assert.ok(a.valid.some((v) => v === 1));
  }
});

test('several bands with different kernels in one warp: one source read, the same pixels as one band at a time', async () => {
  const p = randomGridPair(8, { w: [150, 151], h: [120, 121] });
  const src = sourceAround(p)!;
  const values = randomValues(p.rng, src.width, src.height, true);
  const transform = new GridTransform(p.target, { crs: p.source.crs, affine: src.affine });
  // Three scalar nearest bands (read in one fused pass, in pairs and one left over), bicubic, a reducer.
  const kernels: Kernel[] = [
    { resample: 'nearest' },
    { resample: 'bicubic' },
    { resample: 'nearest' },
    { resample: 'nearest', reduce: 'max' },
    { resample: 'nearest' },
  ];
  const win = { x0: 3, y0: -4, width: p.w, height: p.h };
  // Each band its own values and holes, so a band mixed up with another shows.
  const bandValues = (b: number) => values.map((v, i) => (v === NODATA || (b > 0 && i % (97 + 13 * b) === 0) ? NODATA : v + 1000 * b));
  const bands = kernels.map((_, b) => bandValues(b));
  const together = {
    width: src.width,
    height: src.height,
    depths: kernels.map(() => 1),
    reads: 0,
    async read(x0: number, y0: number, w: number, h: number) {
      together.reads++;
      const parts = await Promise.all(bands.map((v) => memSource(v, src.width, src.height, NODATA).read(x0, y0, w, h)));
      return { values: parts.map((p) => p.values[0]!), valid: parts.map((p) => p.valid[0]!) };
    },
  };
  const all = await warpWindow(transform, together, kernels, win);
  assert.equal(together.reads, 1);
  for (const [b, k] of kernels.entries()) {
    const one = await warp1(transform, memSource(bands[b]!, src.width, src.height, NODATA), k, win);
    assert.deepEqual(all[b]!.valid, one.valid, JSON.stringify(k));
    // Masked pixels hold unspecified values: compare the valid ones.
    for (let i = 0; i < one.valid.length; i++) if (one.valid[i]) assert.equal(all[b]!.values[i], one.values[i], `${JSON.stringify(k)} band ${b} pixel ${i}`);
    assert.ok(
      one.valid.some((v) => v === 1),
      `band ${b} has valid pixels`,
    );
  }
});
