/**
 * The control-grid transformer (shared/grid/transform.ts): over seeded random CRS pairs (UTM zones
 * north and south, EPSG:4326, 3857, LAEA 3035, polar stereographic 3413/3031) and random target
 * grids (pixel sizes, rotations, shears), every target pixel centre of a window lands within the
 * bound (default 1e-4 px; docs/semantics.md §11 asks for 0.01, also tested) of the exact per-pixel
 * proj4 transform; the exact transform itself agrees with GDAL's
 * (PROJ via gdaltransform); a sub-window gets bit-identical coordinates to the same pixels of a larger
 * window (chunks agree in their margins); same-CRS maps are exact; unplaceable points are NaN.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { GridTransform, MAX_ERROR_PX, invertAffine, type Placement } from '../../../shared/grid/transform.js';
import { needGdal, run } from '../../support/oracles.js';
import { randomGridPair } from '../../support/grids.js';
import { mulberry32 } from '../../support/random.js';

/** A random pair of grids: target possibly rotated and sheared, source north-up (test/support/grids.ts). */
const randomCase = (seed: number) => randomGridPair(seed);

test('random CRS pairs and grids (rotations, shears): every pixel within the bound of the exact transform', () => {
  let worst = 0;
  let exactTotal = 0,
    pixelTotal = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const c = randomCase(seed);
    const bound = seed % 4 === 0 ? 0.01 : MAX_ERROR_PX;
    const g = new GridTransform(c.target, c.source, { maxErrorPx: bound });
    assert.equal(g.errorBoundPx, bound);
    const x0 = -37 + (seed % 11),
      y0 = 5 - (seed % 7);
    const coords = g.map(x0, y0, c.w, c.h);
    const exactBefore = g.exactPoints;
    let finite = 0;
    for (let j = 0; j < c.h; j++)
      for (let i = 0; i < c.w; i++) {
        const [ex, ey] = g.exact(x0 + i + 0.5, y0 + j + 0.5);
        const k = j * c.w + i;
        assert.ok(Number.isFinite(ex) && Number.isFinite(ey), `${c.desc}: exact transform of (${i}, ${j}) is not finite`);
        const err = Math.hypot(coords.x[k]! - ex, coords.y[k]! - ey);
        assert.ok(err <= bound, `${c.desc}: pixel (${i}, ${j}) is ${err} px off (bound ${bound})`);
        worst = Math.max(worst, err);
        finite++;
      }
    assert.equal(finite, c.w * c.h);
    exactTotal += exactBefore;
    pixelTotal += c.w * c.h;
  }
  assert.ok(worst > 0, 'the approximation should not be exact by accident');
  // The control grid must be far cheaper than exact per-pixel transforms (a grid near a pole,
  // onto degrees, needs small cells; most need a handful of points per 64×64 cell).
  assert.ok(exactTotal < pixelTotal / 10, `${exactTotal} exact transforms for ${pixelTotal} pixels`);
});

test('a sub-window gets bit-identical coordinates to the same pixels of a larger window', () => {
  for (let seed = 100; seed < 110; seed++) {
    const c = randomCase(seed);
    const g = new GridTransform(c.target, c.source);
    const big = g.map(0, 0, c.w, c.h);
    const sx = 13 + (seed % 50),
      sy = 7 + (seed % 30),
      sw = 61,
      sh = 45;
    const small = g.map(sx, sy, sw, sh);
    for (let j = 0; j < sh; j++)
      for (let i = 0; i < sw; i++) {
        assert.equal(small.x[j * sw + i], big.x[(sy + j) * c.w + sx + i], `${c.desc} (${i}, ${j})`);
        assert.equal(small.y[j * sw + i], big.y[(sy + j) * c.w + sx + i], `${c.desc} (${i}, ${j})`);
      }
    // Pixel corners (offset 0) lie on the same continuous map as the centres.
    const corners = g.map(sx, sy, 2, 2, 0);
    const [ex, ey] = g.exact(sx + 1, sy + 1);
    assert.ok(Math.hypot(corners.x[3]! - ex, corners.y[3]! - ey) <= MAX_ERROR_PX, c.desc);
  }
});

test('same CRS: the affine map is exact, with GDAL inverse-geotransform arithmetic', () => {
  const target: Placement = { crs: 'EPSG:32633', affine: [20, 0, 400010, 0, -20, 5000000] };
  const source: Placement = { crs: 'EPSG:32633', affine: [10, 0, 400000, 0, -10, 5000040] };
  const g = new GridTransform(target, source);
  assert.equal(g.errorBoundPx, 0);
  const c = g.map(0, 0, 3, 2);
  // Target centre (0.5, 0.5) = (400020, 4999990) → source ((400020 - 400000) / 10, (5000040 - 4999990) / 10) = (2, 5).
  assert.deepEqual([c.x[0], c.y[0], c.x[4], c.y[4]], [2, 5, 4, 7]);
  assert.equal(g.exactPoints, 0);
  assert.deepEqual(invertAffine([10, 0, 400000, 0, -10, 5000040]), [0.1, 0, -40000, 0, -0.1, 500004]);
  // A sheared grid inverts exactly: x = col + row, y = -row.
  assert.deepEqual(
    invertAffine([1, 1, 0, 0, -1, 0]).map((v) => v + 0),
    [1, 1, 0, 0, -1, 0],
  );
});

test('points proj4 cannot place come out NaN, not garbage', () => {
  // A world lon/lat grid onto a north polar stereographic source: the far hemisphere has no image
  // there, and its points must not fold onto valid-looking coordinates.
  const g = new GridTransform({ crs: 'EPSG:4326', affine: [1, 0, -180, 0, -1, 90] }, { crs: 'EPSG:3413', affine: [25000, 0, -4000000, 0, -25000, 4000000] });
  const c = g.map(0, 0, 360, 180);
  for (let j = 0; j < 180; j++)
    for (let i = 0; i < 360; i++) {
      const [ex, ey] = g.exact(i + 0.5, j + 0.5);
      const k = j * 360 + i;
      if (Number.isNaN(ex)) assert.ok(Number.isNaN(c.x[k]!) || Math.abs(c.x[k]!) > 1e3, `(${i}, ${j})`);
      else assert.ok(Math.hypot(c.x[k]! - ex, c.y[k]! - ey) <= MAX_ERROR_PX, `(${i}, ${j}): ${c.x[k]}, ${c.y[k]} vs ${ex}, ${ey}`);
    }
});

test('the exact transform agrees with GDAL (gdaltransform, PROJ) to 1e-6 source pixels per metre of pixel', async (t) => {
  if (!needGdal(t)) return;
  for (let seed = 200; seed < 212; seed++) {
    const c = randomCase(seed);
    const g = new GridTransform(c.target, c.source);
    const r = mulberry32(seed);
    const pts = Array.from({ length: 10 }, () => [r() * c.w, r() * c.h] as [number, number]);
    const [a, b, cc, d, e, f] = c.target.affine;
    const world = pts.map(([u, v]) => [cc + u * a + v * b, f + u * d + v * e]);
    const out = (
      await run('gdaltransform', ['-s_srs', c.target.crs, '-t_srs', c.source.crs, '-output_xy'], {
        input: world.map((p) => `${p[0]!.toPrecision(17)} ${p[1]!.toPrecision(17)}`).join('\n') + '\n',
      })
    ).stdout.toString();
    const gdal = out
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).map(Number));
    const inv = invertAffine(c.source.affine);
    pts.forEach(([u, v], k) => {
      const [gx, gy] = gdal[k]! as [number, number];
      const px = inv[2] + gx * inv[0] + gy * inv[1],
        py = inv[5] + gx * inv[3] + gy * inv[4];
      const [ex, ey] = g.exact(u, v);
      assert.ok(Math.hypot(ex - px, ey - py) < 1e-4, `${c.desc}: (${u}, ${v}) → ours ${ex}, ${ey}; GDAL ${px}, ${py}`);
    });
  }
});
