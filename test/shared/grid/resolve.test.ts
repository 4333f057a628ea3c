/**
 * The grid resolver (shared/grid/resolve.ts, docs/semantics.md §11): a golden table of request grid
 * fields → (crs, affine, W, H), each row derived by hand in its comment; the errors EE users hit
 * (scale with dimensions, a CRS without a pixel size, crsTransform without crs, unknown codes, …),
 * each a BAD_REQUEST naming the field and value; rule 5 (no grid fields) equal bit for bit to the
 * pre-existing region → window → affine path; GeoJSON outlines reprojected like GDAL.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { GeotfrError } from '../../../shared/errors.js';
import type { Affine } from '../../../shared/mixer.js';
import { regionToPixelWindow } from '../../../shared/raster/crs.js';
import type { PixelGrid } from '../../../shared/raster/types.js';
import { METRES_PER_DEGREE } from '../../../shared/grid/crs.js';
import { parseDimensions, resolveGrid, shiftAffine, type GridParams } from '../../../shared/grid/resolve.js';
import { needGdal, run } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

// The first band: UTM 33N, 30 m pixels, 100 × 80, so x ∈ [399960, 402960], y ∈ [4997640, 5000040].
const utm: PixelGrid = { crs: 'EPSG:32633', affine: [30, 0, 399960, 0, -30, 5000040], width: 100, height: 80 };
const X = (col: number) => 399960 + 30 * col;
const Y = (row: number) => 5000040 - 30 * row;
// A degree of EE's nominal metre.
const deg = (metres: number) => metres / METRES_PER_DEGREE;

interface Row {
  why: string;
  p: GridParams;
  want: { crs: string; affine: Affine; width: number; height: number; rule: string };
}

const s1000 = deg(1000);

const TABLE: Row[] = [
  {
    why: 'rule 5: nothing given → the native grid',
    p: {},
    want: { crs: 'EPSG:32633', affine: [30, 0, 399960, 0, -30, 5000040], width: 100, height: 80, rule: 'native' },
  },
  {
    why: 'rule 5 + bbox: columns 10..25, rows 5..20 → origin (X(10), Y(5)) = (400260, 4999890), 15×15',
    p: { region: [X(10), Y(20), X(25), Y(5)] },
    want: { crs: 'EPSG:32633', affine: [30, 0, 400260, 0, -30, 4999890], width: 15, height: 15, rule: 'native' },
  },
  {
    why: 'rule 5 + GeoJSON in the image CRS (crs member): the same pixels as its bbox',
    p: {
      region: {
        type: 'Polygon',
        crs: { type: 'name', properties: { name: 'EPSG:32633' } },
        coordinates: [
          [
            [X(10), Y(5)],
            [X(25), Y(12)],
            [X(18), Y(20)],
            [X(10), Y(5)],
          ],
        ],
      },
    },
    want: { crs: 'EPSG:32633', affine: [30, 0, 400260, 0, -30, 4999890], width: 15, height: 15, rule: 'native' },
  },
  {
    why: 'rule 2: scale = the native pixel size → the native grid, nothing resampled',
    p: { scale: 30 },
    want: { crs: 'EPSG:32633', affine: [30, 0, 399960, 0, -30, 5000040], width: 100, height: 80, rule: 'scale' },
  },
  {
    why: 'rule 2: scale within 1e-9 of the native pixel size (a float printed short) → still the native grid, 30 exactly',
    p: { scale: 30 * (1 + 1e-12) },
    want: { crs: 'EPSG:32633', affine: [30, 0, 399960, 0, -30, 5000040], width: 100, height: 80, rule: 'scale' },
  },
  {
    why: "rule 2: scale 60 in the band's own CRS → lines through its corners; 3000 × 2400 m → 50 × 40",
    p: { scale: 60 },
    want: { crs: 'EPSG:32633', affine: [60, 0, 399960, 0, -60, 5000040], width: 50, height: 40, rule: 'scale' },
  },
  {
    why: 'rule 2: scale 45 → 3000/45 = 66.7 → 67 columns, 2400/45 = 53.3 → 54 rows (snapped outward)',
    p: { scale: 45, crs: 'EPSG:32633' },
    want: { crs: 'EPSG:32633', affine: [45, 0, 399960, 0, -45, 5000040], width: 67, height: 54, rule: 'scale' },
  },
  {
    why: 'rule 2: scale 60 + bbox [400000, 4999000, 400500, 5000000]: columns (40/60 = 0.67 → 0) .. (540/60 = 9), rows (40/60 → 0) .. (1040/60 = 17.3 → 18)',
    p: { scale: 60, region: [400000, 4999000, 400500, 5000000] },
    want: { crs: 'EPSG:32633', affine: [60, 0, 399960, 0, -60, 5000040], width: 9, height: 18, rule: 'scale' },
  },
  {
    // (The band's footprint in EPSG:3035 is x ≈ 4614646..4617493, y ≈ 2453252..2455841.)
    why: 'rule 2: another CRS → lines through its origin: x 4615050..4616000 → columns 46150..46160; y 2454020..2454950 → rows -24550..-24540',
    p: { crs: 'EPSG:3035', scale: 100, region: [4615050, 2454020, 4616000, 2454950] },
    want: { crs: 'EPSG:3035', affine: [100, 0, 4615000, 0, -100, 2455000], width: 10, height: 10, rule: 'scale' },
  },
  {
    // (The footprint in lon/lat: 13.728..13.766, 45.125..45.147.)
    why: 'rule 2 in degrees: s = 1000/111319.49…; lon 13.73..13.76 = columns 1528.4..1531.8 → 1528..1532 (4), lat 45.13..45.145 = rows -5025.5..-5023.8 → -5026..-5023 (3)',
    p: { crs: 'EPSG:4326', scale: 1000, region: [13.73, 45.13, 13.76, 45.145] },
    want: { crs: 'EPSG:4326', affine: [s1000, 0, 1528 * s1000, 0, -s1000, 5026 * s1000], width: 4, height: 3, rule: 'scale' },
  },
  {
    why: 'rule 3: dimensions [50, 40] over the footprint 3000 × 2400 m → 60 m pixels',
    p: { dimensions: [50, 40] },
    want: { crs: 'EPSG:32633', affine: [60, 0, 399960, 0, -60, 5000040], width: 50, height: 40, rule: 'dimensions' },
  },
  {
    why: 'rule 3: dimensions 25 = the larger side: 3000 m → 25 columns of 120 m, 2400 m → round(20) rows of 120 m',
    p: { dimensions: 25 },
    want: { crs: 'EPSG:32633', affine: [120, 0, 399960, 0, -120, 5000040], width: 25, height: 20, rule: 'dimensions' },
  },
  {
    why: 'rule 3: "20x10" over bbox 1000 × 2000 m → 50 × 200 m pixels from its top-left',
    p: { dimensions: '20x10', region: [400000, 4998000, 401000, 5000000] },
    want: { crs: 'EPSG:32633', affine: [50, 0, 400000, 0, -200, 5000000], width: 20, height: 10, rule: 'dimensions' },
  },
  {
    why: 'rule 1: crsTransform + dimensions [7, 5] and no region → exactly that transform, 7 × 5 from its origin',
    p: { crs: 'EPSG:32633', crsTransform: [10, 0, 400000, 0, -10, 5000000], dimensions: [7, 5] },
    want: { crs: 'EPSG:32633', affine: [10, 0, 400000, 0, -10, 5000000], width: 7, height: 5, rule: 'crsTransform' },
  },
  {
    why: 'rule 1 with shear x = 10c + 5r + 400000, y = -10r + 5e6: bbox corners → r ∈ [0, 10], c ∈ [-5, 10] → origin 10·(-5) + 400000 = 399950, 15 × 10',
    p: { crs: 'EPSG:32633', crsTransform: [10, 5, 400000, 0, -10, 5000000], region: [400000, 4999900, 400100, 5000000] },
    want: { crs: 'EPSG:32633', affine: [10, 5, 399950, 0, -10, 5000000], width: 15, height: 10, rule: 'crsTransform' },
  },
  {
    why: "rule 1 without region: the band's footprint: x 399960..402960 → c -2..148, y 5000040..4997640 → r -2..118",
    p: { crs: 'EPSG:32633', crsTransform: [20, 0, 400000, 0, -20, 5000000] },
    want: { crs: 'EPSG:32633', affine: [20, 0, 399960, 0, -20, 5000040], width: 150, height: 120, rule: 'crsTransform' },
  },
  {
    why: 'rule 1 with the CRS as a URN and dimensions as "WxH"',
    p: { crs: 'urn:ogc:def:crs:EPSG::32633', crsTransform: [10, 0, 400000, 0, -10, 5000000], dimensions: '3x2' },
    want: { crs: 'EPSG:32633', affine: [10, 0, 400000, 0, -10, 5000000], width: 3, height: 2, rule: 'crsTransform' },
  },
];

test('golden table: grid fields → (crs, affine, W, H)', () => {
  for (const row of TABLE) assert.deepEqual(resolveGrid(row.p, utm), row.want, row.why);
});

test('a rotated first band with scale: lines through the CRS origin (its corners are not on a north-up lattice)', () => {
  // x = 10c + 10r, y = 10c - 10r (45° rotation, √200 m pixels) from (400000, 5000000); 10 × 10 pixels →
  // footprint x ∈ [400000, 400200], y ∈ [4999900, 5000100] → with 50 m lines at multiples of 50: 4 × 4.
  const rot: PixelGrid = { crs: 'EPSG:32633', affine: [10, 10, 400000, 10, -10, 5000000], width: 10, height: 10 };
  assert.deepEqual(resolveGrid({ scale: 50 }, rot), { crs: 'EPSG:32633', affine: [50, 0, 400000, 0, -50, 5000100], width: 4, height: 4, rule: 'scale' });
});

test('mosaic footprints: the default region is the union of the first band’s files, lines through its first file', () => {
  const second: PixelGrid = { crs: 'EPSG:32633', affine: [30, 0, 402960, 0, -30, 5000040], width: 50, height: 80 };
  // Union x ∈ [399960, 404460] → 150 columns at 30 m on the first file's lattice.
  assert.deepEqual(resolveGrid({}, utm, [utm, second]), {
    crs: 'EPSG:32633',
    affine: [30, 0, 399960, 0, -30, 5000040],
    width: 150,
    height: 80,
    rule: 'native',
  });
  assert.deepEqual(resolveGrid({ scale: 60 }, utm, [utm, second]), {
    crs: 'EPSG:32633',
    affine: [60, 0, 399960, 0, -60, 5000040],
    width: 75,
    height: 40,
    rule: 'scale',
  });
});

const isBad = (field: string, re: RegExp) => (e: unknown) =>
  e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === field && re.test(e.message);

test('errors: each a BAD_REQUEST naming the field and the value', () => {
  assert.throws(() => resolveGrid({ scale: 10, dimensions: [5, 5] }, utm), isBad('dimensions', /either scale \(10\) or dimensions \(\[5,5\]\)/));
  assert.throws(
    () => resolveGrid({ crs: 'EPSG:3035' }, utm),
    isBad('crs', /EPSG:3035 differs from the first band's CRS EPSG:32633.*crsTransform, scale or dimensions/),
  );
  assert.throws(() => resolveGrid({ crsTransform: [10, 0, 0, 0, -10, 0] }, utm), isBad('crsTransform', /needs "crs"/));
  assert.throws(() => resolveGrid({ crs: 'EPSG:999999', scale: 10 }, utm), isBad('crs', /unknown CRS EPSG:999999/));
  assert.throws(() => resolveGrid({ crs: 'EPSG:32633', crsTransform: [10, 0, 0, 0, -10] }, utm), isBad('crsTransform', /6 finite numbers.*\[10,0,0,0,-10\]/));
  assert.throws(() => resolveGrid({ crs: 'EPSG:32633', crsTransform: [10, 20, 0, 5, 10, 0] }, utm), isBad('crsTransform', /degenerate/));
  assert.throws(() => resolveGrid({ crs: 'EPSG:32633', crsTransform: [10, 0, 0, 0, -10, 0], scale: 5 }, utm), isBad('scale', /conflicts with crsTransform/));
  assert.throws(
    () => resolveGrid({ crs: 'EPSG:32633', crsTransform: [10, 0, 0, 0, -10, 0], dimensions: [5, 5], region: [0, 0, 10, 10] }, utm),
    isBad('dimensions', /either region or dimensions/),
  );
  assert.throws(() => resolveGrid({ crs: 'EPSG:32633', crsTransform: [10, 0, 0, 0, -10, 0], dimensions: 5 }, utm), isBad('dimensions', /must be \[W, H\]/));
  assert.throws(() => resolveGrid({ scale: -3 }, utm), isBad('scale', /positive number.*-3/));
  assert.throws(() => resolveGrid({ dimensions: 'big' }, utm), isBad('dimensions', /"big"/));
  assert.throws(() => resolveGrid({ dimensions: [10, 0] }, utm), isBad('dimensions', /\[10,0\]/));
  assert.throws(
    () => resolveGrid({ region: [X(200), Y(20), X(210), Y(5)] }, utm),
    isBad('region', /does not intersect the image \(bounds \[399960,4997640,402960,5000040\] in EPSG:32633/),
  );
  assert.throws(() => resolveGrid({ scale: 60, region: [X(200), Y(20), X(210), Y(5)] }, utm), isBad('region', /does not intersect/));
  assert.throws(() => resolveGrid({ dimensions: [5, 5], region: { type: 'Point', coordinates: [15, 45] } }, utm), isBad('region', /no area/));
  assert.deepEqual(parseDimensions('640x480'), [640, 480]);
  assert.deepEqual(parseDimensions(' 300 '), [300]);
});

test('rule 5 equals the existing region → window → affine path bit for bit (random bboxes)', () => {
  const r = mulberry32(12);
  for (let k = 0; k < 500; k++) {
    const fx0 = -20 + r() * 110,
      fy0 = -20 + r() * 90;
    const fx1 = fx0 + 0.01 + r() * 40,
      fy1 = fy0 + 0.01 + r() * 40;
    const region = [X(fx0), Y(fy1), X(fx1), Y(fy0)];
    let win;
    try {
      win = regionToPixelWindow(region, utm);
    } catch {
      assert.throws(() => resolveGrid({ region }, utm));
      continue;
    }
    const g = resolveGrid({ region }, utm);
    assert.deepEqual([g.affine, g.width, g.height], [shiftAffine(utm.affine, win.x0, win.y0), win.width, win.height], JSON.stringify(region));
  }
});

test('a GeoJSON outline in EPSG:4326 is densified and reprojected like GDAL, not bounded by its corners', async (t) => {
  if (!needGdal(t)) return;
  // A lon/lat quadrilateral over central Europe onto a 1 km LAEA grid: its edges curve in 3035.
  const ring: [number, number][] = [
    [5, 47],
    [25, 46],
    [24, 55],
    [6, 55],
    [5, 47],
  ];
  const europe: PixelGrid = { crs: 'EPSG:4326', affine: [0.01, 0, 0, 0, -0.01, 60], width: 3000, height: 2000 };
  const g = resolveGrid({ crs: 'EPSG:3035', scale: 1000, region: { type: 'Polygon', coordinates: [ring] } }, europe);
  const pts: [number, number][] = [];
  for (let i = 0; i + 1 < ring.length; i++)
    for (let k = 0; k < 64; k++) pts.push([ring[i]![0] + ((ring[i + 1]![0] - ring[i]![0]) * k) / 64, ring[i]![1] + ((ring[i + 1]![1] - ring[i]![1]) * k) / 64]);
  const out = (
    await run('gdaltransform', ['-s_srs', 'EPSG:4326', '-t_srs', 'EPSG:3035', '-output_xy'], { input: pts.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n' })
  ).stdout.toString();
  const xy = out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const xmin = Math.min(...xy.map((p) => p[0])),
    xmax = Math.max(...xy.map((p) => p[0]));
  const ymin = Math.min(...xy.map((p) => p[1])),
    ymax = Math.max(...xy.map((p) => p[1]));
  // Snapped outward to 1 km lines through the CRS origin.
  const want = { x0: Math.floor(xmin / 1000) * 1000, x1: Math.ceil(xmax / 1000) * 1000, y0: Math.floor(ymin / 1000) * 1000, y1: Math.ceil(ymax / 1000) * 1000 };
  assert.deepEqual(
    { crs: g.crs, affine: g.affine, width: g.width, height: g.height },
    { crs: 'EPSG:3035', affine: [1000, 0, want.x0, 0, -1000, want.y1], width: (want.x1 - want.x0) / 1000, height: (want.y1 - want.y0) / 1000 },
  );
  // The densified edge bulges beyond the corners' bbox (the reason corners are not enough).
  const corners = ring.map((p) => xy[pts.findIndex((q) => q[0] === p[0] && q[1] === p[1])]!);
  const bulge = Math.max(
    ymax - Math.max(...corners.map((p) => p[1])),
    Math.min(...corners.map((p) => p[1])) - ymin,
    xmax - Math.max(...corners.map((p) => p[0])),
    Math.min(...corners.map((p) => p[0])) - xmin,
  );
  assert.ok(bulge > 1000, `an edge should bulge beyond the corners by more than a pixel (${bulge} m)`);
});
