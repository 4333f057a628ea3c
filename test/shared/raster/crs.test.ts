/**
 * regionToPixelWindow (docs/semantics.md §1, §2): hand-derivable windows in a projected CRS, the 1e-6 px snapping
 * tolerance, outward snapping and minimality on seeded random regions, rotated grids, and GeoJSON
 * regions reprojected from EPSG:4326 checked against GDAL's `gdaltransform` (PROJ).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { GeotfrError } from '../../../shared/errors.js';
import type { Affine } from '../../../shared/mixer.js';
import { crsTransformer, regionToPixelWindow, reprojectBbox, SNAP_TOLERANCE_PX } from '../../../shared/raster/crs.js';
import type { PixelGrid } from '../../../shared/raster/types.js';
import { needGdal, run } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

const rng = mulberry32;

// A Sentinel-2-like UTM 33N grid: 30 m pixels, 100 x 80.
const utm: PixelGrid = { crs: 'EPSG:32633', affine: [30, 0, 399960, 0, -30, 5000040], width: 100, height: 80 };
const X = (col: number) => 399960 + 30 * col;
const Y = (row: number) => 5000040 - 30 * row;

const isBadRequest = (re: RegExp) => (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === 'region' && re.test(e.message);

test('grid-aligned bbox in the image CRS → exactly those pixels; default is the whole image', () => {
  assert.deepEqual(regionToPixelWindow([X(10), Y(20), X(25), Y(5)], utm), { x0: 10, y0: 5, width: 15, height: 15 });
  assert.deepEqual(regionToPixelWindow(undefined, utm), { x0: 0, y0: 0, width: 100, height: 80 });
  // Partly outside: the window extends beyond the image (margins read what exists, docs/semantics.md §3).
  assert.deepEqual(regionToPixelWindow([X(-5), Y(90), X(3), Y(70)], utm), { x0: -5, y0: 70, width: 8, height: 20 });
});

test('edges within 1e-6 px snap to the grid line; anything more snaps outward', () => {
  const px = 30; // metres per pixel
  const tiny = 0.5 * SNAP_TOLERANCE_PX * px;
  const more = 1e-3 * px;
  const base = { x0: 10, y0: 5, width: 15, height: 15 };
  // Each edge nudged outward or inward by less than the tolerance: unchanged.
  for (const s of [-1, 1]) assert.deepEqual(regionToPixelWindow([X(10) + s * tiny, Y(20) + s * tiny, X(25) + s * tiny, Y(5) + s * tiny], utm), base);
  // Outward by 1e-3 px: one more pixel on that side.
  assert.deepEqual(regionToPixelWindow([X(10) - more, Y(20), X(25), Y(5)], utm), { ...base, x0: 9, width: 16 });
  assert.deepEqual(regionToPixelWindow([X(10), Y(20), X(25) + more, Y(5)], utm), { ...base, width: 16 });
  assert.deepEqual(regionToPixelWindow([X(10), Y(20) - more, X(25), Y(5)], utm), { ...base, height: 16 });
  assert.deepEqual(regionToPixelWindow([X(10), Y(20), X(25), Y(5) + more], utm), { ...base, y0: 4, height: 16 });
  // Inward by 1e-3 px: the partly covered pixel is still included (outward snapping).
  assert.deepEqual(regionToPixelWindow([X(10) + more, Y(20) + more, X(25) - more, Y(5) - more], utm), base);
});

test('random regions: the window covers the region and is minimal (seeded)', () => {
  const r = rng(4242);
  for (let i = 0; i < 2000; i++) {
    const fx0 = -20 + r() * 130,
      fy0 = -20 + r() * 110;
    const fx1 = fx0 + 0.01 + r() * 40,
      fy1 = fy0 + 0.01 + r() * 40;
    if (fx1 <= 0 || fy1 <= 0 || fx0 >= 100 || fy0 >= 80) continue;
    const w = regionToPixelWindow([X(fx0), Y(fy1), X(fx1), Y(fy0)], utm);
    const tol = SNAP_TOLERANCE_PX + 1e-9;
    const msg = `region px [${fx0}, ${fy0}, ${fx1}, ${fy1}] → ${JSON.stringify(w)}`;
    assert.ok(w.x0 <= fx0 + tol && w.x0 + w.width >= fx1 - tol && w.y0 <= fy0 + tol && w.y0 + w.height >= fy1 - tol, `covers: ${msg}`);
    assert.ok(w.x0 + 1 > fx0 - tol && w.x0 + w.width - 1 < fx1 + tol && w.y0 + 1 > fy0 - tol && w.y0 + w.height - 1 < fy1 + tol, `minimal: ${msg}`);
    for (const v of Object.values(w)) assert.ok(Number.isInteger(v), msg);
  }
});

test('rotated grid: the bbox maps to a parallelogram whose pixel bbox is taken', () => {
  // 45° rotation, unit pixels: x = (col + row)/√2·s ... use an exact shear for hand derivation.
  const affine: Affine = [1, 1, 0, 0, -1, 0]; // x = col + row, y = -row
  const grid: PixelGrid = { crs: 'EPSG:3857', affine, width: 50, height: 50 };
  // bbox x ∈ [10, 20], y ∈ [-8, -2] → row ∈ [2, 8], col = x - row ∈ [10-8, 20-2] = [2, 18].
  assert.deepEqual(regionToPixelWindow([10, -8, 20, -2], grid), { x0: 2, y0: 2, width: 16, height: 6 });
});

test('GeoJSON in the image CRS (crs member) equals the bbox form; errors name the region and the image bounds', () => {
  const poly = {
    type: 'Polygon',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32633' } },
    coordinates: [
      [
        [X(10), Y(5)],
        [X(25), Y(12)],
        [X(18), Y(20)],
        [X(10), Y(5)],
      ],
    ],
  };
  assert.deepEqual(regionToPixelWindow(poly, utm), { x0: 10, y0: 5, width: 15, height: 15 });
  const feature = { type: 'Feature', properties: {}, geometry: { ...poly } };
  assert.deepEqual(regionToPixelWindow(feature, utm), { x0: 10, y0: 5, width: 15, height: 15 });

  assert.throws(
    () => regionToPixelWindow([X(200), Y(20), X(210), Y(5)], utm),
    isBadRequest(/does not intersect the image \(bounds \[399960,4997640,402960,5000040\] in EPSG:32633/),
  );
  assert.throws(() => regionToPixelWindow([X(10), Y(5), X(5), Y(20)], utm), isBadRequest(/xmin < xmax/));
  assert.throws(() => regionToPixelWindow({ type: 'Point', coordinates: [15, 45], crs: 'EPSG:999999' }, utm), isBadRequest(/unknown CRS EPSG:999999/));
  assert.throws(() => regionToPixelWindow({ type: 'Polygon', coordinates: [] }, utm), isBadRequest(/no coordinates/));
  assert.throws(() => regionToPixelWindow({ type: 'Polygon', coordinates: [[[1, 'a']]] }, utm), isBadRequest(/finite numbers/));
  assert.throws(() => regionToPixelWindow({ type: 'Point', coordinates: [X(10), Y(5)] }, utm), isBadRequest(/not longitude\/latitude/));
  assert.throws(() => regionToPixelWindow({ type: 'Circle', coordinates: [1, 2] }, utm), isBadRequest(/unsupported GeoJSON type/));
  // Far away in lon/lat: reprojected, then rejected with both bboxes in the message.
  assert.throws(() => regionToPixelWindow({ type: 'Point', coordinates: [12.9, 45.1] }, utm), isBadRequest(/EPSG:4326.*does not intersect/));
});

/** Transforms points with GDAL (PROJ) — the oracle for proj4. */
async function gdalTransform(from: string, to: string, pts: [number, number][]): Promise<[number, number][]> {
  const out = (
    await run('gdaltransform', ['-s_srs', from, '-t_srs', to, '-output_xy'], { input: pts.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n' })
  ).stdout.toString();
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
}

test('EPSG:4326 regions reprojected like GDAL (gdaltransform) into UTM north/south and Web Mercator', async (t) => {
  if (!needGdal(t)) return;
  const r = rng(777);
  const cases: { crs: string; lon: number; lat: number; res: number }[] = [
    { crs: 'EPSG:32633', lon: 15, lat: 45, res: 30 },
    { crs: 'EPSG:32719', lon: -69, lat: -33, res: 10 },
    { crs: 'EPSG:3857', lon: -105, lat: 20, res: 250 },
  ];
  for (const c of cases) {
    // Random points: proj4 vs PROJ within a millimetre.
    const pts: [number, number][] = Array.from({ length: 50 }, () => [c.lon - 2 + 4 * r(), c.lat - 2 + 4 * r()]);
    const ours = pts.map(([x, y]) => crsTransformer('EPSG:4326', c.crs)(x, y));
    const gdal = await gdalTransform('EPSG:4326', c.crs, pts);
    ours.forEach((p, i) =>
      assert.ok(Math.abs(p[0] - gdal[i]![0]) < 1e-3 && Math.abs(p[1] - gdal[i]![1]) < 1e-3, `${c.crs} point ${pts[i]}: proj4 ${p} vs GDAL ${gdal[i]}`),
    );

    // An image around the centre; random lon/lat boxes → windows from GDAL's reprojection of the
    // same densified edges (65 points per edge) must equal ours.
    const [cx, cy] = gdal[0]!;
    const affine: Affine = [c.res, 0, Math.round(cx / c.res) * c.res - 500 * c.res, 0, -c.res, Math.round(cy / c.res) * c.res + 500 * c.res];
    const grid: PixelGrid = { crs: c.crs, affine, width: 1000, height: 1000 };
    const span = (1000 * c.res) / 111000; // degrees roughly covering the image
    let compared = 0;
    for (let k = 0; k < 8; k++) {
      const lon0 = c.lon + (r() - 0.5) * span * 2,
        lat0 = c.lat + (r() - 0.5) * span * 1.2;
      const bbox = [lon0, lat0, lon0 + r() * span * 0.5 + 1e-4, lat0 + r() * span * 0.5 + 1e-4];
      const edge: [number, number][] = [];
      for (let i = 0; i <= 64; i++) {
        const u = i / 64;
        const x = bbox[0]! + (bbox[2]! - bbox[0]!) * u,
          y = bbox[1]! + (bbox[3]! - bbox[1]!) * u;
        edge.push([x, bbox[1]!], [x, bbox[3]!], [bbox[0]!, y], [bbox[2]!, y]);
      }
      const g = await gdalTransform('EPSG:4326', c.crs, edge);
      const gb = [Math.min(...g.map((p) => p[0])), Math.min(...g.map((p) => p[1])), Math.max(...g.map((p) => p[0])), Math.max(...g.map((p) => p[1]))];
      const ob = reprojectBbox(bbox, 'EPSG:4326', c.crs);
      ob.forEach((v, i) => assert.ok(Math.abs(v - gb[i]!) < 1e-3, `${c.crs} bbox ${bbox}: ours ${ob} vs GDAL ${gb}`));
      // Expected window from GDAL's bbox (north-up grid: columns from x, rows from y).
      const fx0 = (gb[0]! - affine[2]) / c.res,
        fx1 = (gb[2]! - affine[2]) / c.res;
      const fy0 = (affine[5] - gb[3]!) / c.res,
        fy1 = (affine[5] - gb[1]!) / c.res;
      // Skip the rare box whose edge lies within GDAL's print precision of a grid line.
      const frac = (v: number) => Math.abs(v - Math.round(v));
      if ([fx0, fx1, fy0, fy1].some((v) => frac(v) < 1e-4)) continue;
      const poly = {
        type: 'Polygon',
        coordinates: [
          [
            [bbox[0]!, bbox[1]!],
            [bbox[2]!, bbox[1]!],
            [bbox[2]!, bbox[3]!],
            [bbox[0]!, bbox[3]!],
            [bbox[0]!, bbox[1]!],
          ],
        ],
      };
      let want: object | undefined = {
        x0: Math.floor(fx0),
        y0: Math.floor(fy0),
        width: Math.ceil(fx1) - Math.floor(fx0),
        height: Math.ceil(fy1) - Math.floor(fy0),
      };
      const w = want as { x0: number; y0: number; width: number; height: number };
      if (w.x0 >= 1000 || w.y0 >= 1000 || w.x0 + w.width <= 0 || w.y0 + w.height <= 0) want = undefined;
      if (want) assert.deepEqual(regionToPixelWindow(poly, grid), want, `${c.crs} lon/lat box ${bbox}`);
      else assert.throws(() => regionToPixelWindow(poly, grid), isBadRequest(/does not intersect/));
      compared++;
    }
    assert.ok(compared >= 4, `${c.crs}: compared ${compared} boxes`);
  }
});
