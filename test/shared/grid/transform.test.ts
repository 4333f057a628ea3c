/**
 * The control-grid transformer (shared/grid/transform.ts): over seeded random CRS pairs (UTM zones
 * north and south, EPSG:4326, 3857, LAEA 3035, polar stereographic 3413/3031) and random target
 * grids (pixel sizes, rotations, shears), every target pixel centre of a window lands within 0.01
 * source pixel of the exact per-pixel proj4 transform; the exact transform itself agrees with GDAL's
 * (PROJ via gdaltransform); a sub-window gets bit-identical coordinates to the same pixels of a larger
 * window (chunks agree in their margins); same-CRS maps are exact; unplaceable points are NaN.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import type { Affine } from '../../../shared/mixer.js';
import { pointTransformer } from '../../../shared/grid/crs.js';
import { GridTransform, MAX_ERROR_PX, invertAffine, type Placement } from '../../../shared/grid/transform.js';
import { needGdal, run } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

/** Areas where every listed CRS is valid (lon/lat ranges in degrees). */
const AREAS: { name: string; lon: [number, number]; lat: [number, number]; crss: string[] }[] = [
  { name: 'central Europe', lon: [12.5, 17.5], lat: [44, 56], crss: ['EPSG:32633', 'EPSG:32634', 'EPSG:4326', 'EPSG:3857', 'EPSG:3035'] },
  { name: 'Greenland', lon: [-53, -47], lat: [64, 74], crss: ['EPSG:3413', 'EPSG:4326', 'EPSG:3857', 'EPSG:32622'] },
  { name: 'Antarctica', lon: [142, 148], lat: [-74, -66], crss: ['EPSG:3031', 'EPSG:4326', 'EPSG:32755'] },
  { name: 'California', lon: [-123.5, -117.5], lat: [34, 41], crss: ['EPSG:32610', 'EPSG:32611', 'EPSG:4326', 'EPSG:3857'] },
];

/** Typical pixel size (CRS units) for a resolution in metres at latitude `lat`. */
function pixelSize(crs: string, metres: number, lat: number): number {
  if (crs === 'EPSG:4326') return metres / 111320;
  if (crs === 'EPSG:3857') return metres / Math.cos((lat * Math.PI) / 180);
  return metres;
}

interface Case {
  desc: string;
  target: Placement;
  source: Placement;
  w: number;
  h: number;
}

/** A random pair of grids over one area: target possibly rotated and sheared, source north-up. */
function randomCase(seed: number): Case {
  const r = mulberry32(seed);
  const area = AREAS[Math.floor(r() * AREAS.length)]!;
  const pick = () => area.crss[Math.floor(r() * area.crss.length)]!;
  const tcrs = pick();
  let scrs = pick();
  while (scrs === tcrs) scrs = pick();
  const lon = area.lon[0] + (area.lon[1] - area.lon[0]) * r();
  const lat = area.lat[0] + (area.lat[1] - area.lat[0]) * r();
  const tm = [5, 10, 30, 100, 500][Math.floor(r() * 5)]!;
  const sm = tm * (0.3 + 3 * r());
  const [tx, ty] = pointTransformer('EPSG:4326', tcrs)(lon, lat);
  const [sx, sy] = pointTransformer('EPSG:4326', scrs)(lon, lat);
  const tp = pixelSize(tcrs, tm, lat);
  const sp = pixelSize(scrs, sm, lat);
  // Rotation θ and shear k on some grids: x = a*col + b*row + c, y = d*col + e*row + f.
  const theta = r() < 0.4 ? (r() - 0.5) * 1.2 : 0;
  const k = r() < 0.3 ? (r() - 0.5) * 0.6 : 0;
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const w = 120 + Math.floor(r() * 200), h = 90 + Math.floor(r() * 150);
  const ta: Affine = [tp * cos, tp * (k * cos + sin), tx - (w / 2) * tp, tp * sin, -tp * (cos - k * sin), ty + (h / 2) * tp];
  const sa: Affine = [sp, 0, sx - 2000 * sp, 0, -sp, sy + 2000 * sp];
  return { desc: `seed ${seed}: ${area.name}, ${tcrs} ${tm} m θ=${theta.toFixed(2)} k=${k.toFixed(2)} → ${scrs} ${sm.toFixed(1)} m`, target: { crs: tcrs, affine: ta }, source: { crs: scrs, affine: sa }, w, h };
}

test('random CRS pairs and grids (rotations, shears): every pixel within 0.01 px of the exact transform', () => {
  let worst = 0;
  let exactTotal = 0, pixelTotal = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const c = randomCase(seed);
    const g = new GridTransform(c.target, c.source);
    assert.equal(g.errorBoundPx, MAX_ERROR_PX);
    const x0 = -37 + (seed % 11), y0 = 5 - (seed % 7);
    const coords = g.map(x0, y0, c.w, c.h);
    const exactBefore = g.exactPoints;
    let finite = 0;
    for (let j = 0; j < c.h; j++)
      for (let i = 0; i < c.w; i++) {
        const [ex, ey] = g.exact(x0 + i + 0.5, y0 + j + 0.5);
        const k = j * c.w + i;
        assert.ok(Number.isFinite(ex) && Number.isFinite(ey), `${c.desc}: exact transform of (${i}, ${j}) is not finite`);
        const err = Math.hypot(coords.x[k]! - ex, coords.y[k]! - ey);
        assert.ok(err <= MAX_ERROR_PX, `${c.desc}: pixel (${i}, ${j}) is ${err} px off`);
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
    const sx = 13 + (seed % 50), sy = 7 + (seed % 30), sw = 61, sh = 45;
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
  assert.deepEqual(invertAffine([1, 1, 0, 0, -1, 0]).map((v) => v + 0), [1, 1, 0, 0, -1, 0]);
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
    const out = (await run('gdaltransform', ['-s_srs', c.target.crs, '-t_srs', c.source.crs, '-output_xy'], { input: world.map((p) => `${p[0]!.toPrecision(17)} ${p[1]!.toPrecision(17)}`).join('\n') + '\n' })).stdout.toString();
    const gdal = out.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
    const inv = invertAffine(c.source.affine);
    pts.forEach(([u, v], k) => {
      const [gx, gy] = gdal[k]! as [number, number];
      const px = inv[2] + gx * inv[0] + gy * inv[1], py = inv[5] + gx * inv[3] + gy * inv[4];
      const [ex, ey] = g.exact(u, v);
      assert.ok(Math.hypot(ex - px, ey - py) < 1e-4, `${c.desc}: (${u}, ${v}) → ours ${ex}, ${ey}; GDAL ${px}, ${py}`);
    });
  }
});
