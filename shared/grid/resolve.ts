/**
 * The export grid resolver (docs/semantics.md §11, docs/grid.md): Earth Engine's `crs`, `crsTransform`,
 * `scale`, `dimensions` and `region` folded into one pixel grid — a CRS, an affine whose translation is
 * the top-left corner of output pixel (0, 0), and a width and height — the way EE's client folds them
 * into the image (`ee/image.py` `_apply_crs_and_affine`, then `_apply_selection_and_scale`):
 *
 * 1. `crsTransform` (needs `crs`): exactly that transform; `region` picks the pixels, or `dimensions`
 *    [W, H] counts them from the transform's origin; else the first band's footprint.
 * 2. `scale`: square north-up pixels in `crs` (default: the first band's). Grid lines run through the
 *    first band's pixel corners when the CRS is its own and it is north-up, else through the CRS origin.
 * 3. `dimensions` (without `scale`): the region's bounds split into that many pixels.
 * 4. `crs` unlike the first band's and none of the three: an error (EE would use 1-unit pixels).
 * 5. none: the first band's native grid, as before any of this existed (byte for byte the same).
 *
 * Regions snap outward to whole pixels (an edge within 1e-6 px of a grid line snaps to it). A GeoJSON
 * region's outline, densified, is reprojected into the grid CRS, so curved edges are covered. Pure:
 * no I/O beyond the CRS registry.
 */
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import {
  geoJsonBbox,
  imageBounds,
  snapOutward,
  swappedHint,
  worldToPixel,
  type GeoJsonRegion,
  type PixelWindow,
  type RegionInput as Region,
} from '../raster/crs.js';
import type { PixelGrid } from '../raster/types.js';
import { crsDefinition, metresPerUnit, normalizeCrs, pointTransformer, sameCrs } from './crs.js';

/** The grid fields of an export request (docs/semantics.md §2, §11), as the request carries them. */
export interface GridParams {
  crs?: string;
  /** [xScale, xShear, xTranslation, yShear, yScale, yTranslation] (the mixer's order). */
  crsTransform?: readonly number[];
  /** Metres per pixel (degrees = scale / 111319.49079327357 in a geographic CRS). */
  scale?: number;
  /** A number (the larger side), "WxH", or [W, H]. */
  dimensions?: number | string | readonly number[];
  /** [xmin, ymin, xmax, ymax] in the grid CRS, or a GeoJSON geometry (EPSG:4326 unless it has a `crs` member). */
  region?: readonly number[] | GeoJsonRegion;
}

/** Which of the rules above made the grid (recorded in the plan and the manifest). */
export type GridRule = 'crsTransform' | 'scale' | 'dimensions' | 'native';

export interface ResolvedGrid extends PixelGrid {
  rule: GridRule;
}

/** Points per edge when an outline is densified before reprojection (curved edges stay covered). */
const DENSIFY_POINTS = 64;
/** At most this many outline points per region, however many vertices it has. */
const MAX_OUTLINE_POINTS = 1 << 20;
/** Relative difference under which `scale` equals the first band's pixel size (its native grid, nothing resampled). */
const SCALE_RTOL = 1e-9;

const bad = (field: string, message: string) => new GeotfrError('BAD_REQUEST', message, { field });
const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 100 ? `${s.slice(0, 97)}...` : s;
};

/** An affine moved to start at pixel (x0, y0): x = a*x0 + b*y0 + c (bit-exact c, f when x0 = y0 = 0, as the mixer is compared byte for byte). */
export function shiftAffine(m: Affine, x0: number, y0: number): Affine {
  const [a, b, c, d, e, f] = m;
  if (x0 === 0 && y0 === 0) return [a, b, c, d, e, f];
  return [a, b, a * x0 + b * y0 + c, d, e, d * x0 + e * y0 + f];
}

/** Whether an affine is north-up (no rotation, x to the east, y to the south). */
export const isNorthUp = (m: Affine): boolean => m[1] === 0 && m[3] === 0 && m[0] > 0 && m[4] < 0;

/** `dimensions` as [W, H], or [N] for "the larger side is N" (EE's `_parse_dimensions`). */
export function parseDimensions(v: unknown): [number] | [number, number] {
  const posInt = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n > 0;
  let parts: unknown[];
  if (typeof v === 'number') parts = [v];
  else if (typeof v === 'string' && /^\s*\d+\s*(x\s*\d+\s*)?$/i.test(v)) parts = v.split(/x/i).map((s) => Number(s.trim()));
  else if (Array.isArray(v)) parts = v;
  else throw bad('dimensions', `expected a positive integer, "WxH" or [W, H]; got ${show(v)}`);
  if (!(parts.length === 1 || parts.length === 2) || !parts.every(posInt))
    throw bad('dimensions', `expected a positive integer, "WxH" or [W, H] of positive integers; got ${show(v)}`);
  return parts as [number] | [number, number];
}

/** Points along the outline of a pixel grid's footprint, in its own CRS (edges densified). */
function footprintOutline(g: PixelGrid): [number, number][] {
  const [a, b, c, d, e, f] = g.affine;
  const pts: [number, number][] = [];
  for (let i = 0; i <= DENSIFY_POINTS; i++) {
    const u = (i / DENSIFY_POINTS) * g.width,
      v = (i / DENSIFY_POINTS) * g.height;
    for (const [col, row] of [
      [u, 0],
      [u, g.height],
      [0, v],
      [g.width, v],
    ] as const)
      pts.push([a * col + b * row + c, d * col + e * row + f]);
  }
  return pts;
}

/** The parts (lines of positions, or single points) of a GeoJSON object, already validated by geoJsonBbox. */
function geoJsonParts(g: unknown, out: number[][][] = []): number[][][] {
  const o = g as GeoJsonRegion;
  const lines = (c: unknown, depth: number): void => {
    // depth: how many array levels sit above a line of positions.
    if (depth === 0) out.push(c as number[][]);
    else for (const x of c as unknown[]) lines(x, depth - 1);
  };
  switch (o.type) {
    case 'Feature':
      geoJsonParts(o.geometry, out);
      break;
    case 'FeatureCollection':
      for (const f of o.features ?? []) geoJsonParts(f, out);
      break;
    case 'GeometryCollection':
      for (const f of o.geometries ?? []) geoJsonParts(f, out);
      break;
    case 'Point':
      out.push([o.coordinates as number[]]);
      break;
    case 'MultiPoint':
    case 'LineString':
      out.push(o.coordinates as number[][]);
      break;
    case 'MultiLineString':
    case 'Polygon':
      lines(o.coordinates, 1);
      break;
    case 'MultiPolygon':
      lines(o.coordinates, 2);
      break;
  }
  return out;
}

/** The outline of a GeoJSON region in its own CRS, each segment densified when it will be reprojected. */
function geoJsonOutline(parts: number[][][], densify: boolean): [number, number][] {
  const segments = parts.reduce((n, p) => n + Math.max(0, p.length - 1), 0);
  const per = densify ? Math.max(1, Math.min(DENSIFY_POINTS, Math.floor(MAX_OUTLINE_POINTS / Math.max(1, segments)))) : 1;
  const pts: [number, number][] = [];
  for (const line of parts) {
    if (line.length === 0) continue;
    pts.push([line[0]![0]!, line[0]![1]!]);
    for (let i = 1; i < line.length; i++) {
      const [x0, y0] = line[i - 1]! as [number, number];
      const [x1, y1] = line[i]! as [number, number];
      for (let k = 1; k < per; k++) pts.push([x0 + ((x1 - x0) * k) / per, y0 + ((y1 - y0) * k) / per]);
      pts.push([x1, y1]);
    }
  }
  return pts;
}

/** Fractional pixel bounds [x0, y0, x1, y1] on a lattice (crs + affine) of points given in `from`. */
function pixelBounds(points: [number, number][], from: string, lattice: { crs: string; affine: Affine }, what: string): [number, number, number, number] {
  const t = sameCrs(from, lattice.crs) ? undefined : pointTransformer(from, lattice.crs, 'region');
  let x0 = Infinity,
    y0 = Infinity,
    x1 = -Infinity,
    y1 = -Infinity;
  for (const [px, py] of points) {
    const [x, y] = t ? t(px, py) : [px, py];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const [col, row] = worldToPixel(lattice.affine, x, y);
    if (col < x0) x0 = col;
    if (col > x1) x1 = col;
    if (row < y0) y0 = row;
    if (row > y1) y1 = row;
  }
  if (!(x0 <= x1 && y0 <= y1)) throw bad('region', `${what} cannot be projected to ${lattice.crs}`);
  return [x0, y0, x1, y1];
}

/** The fractional pixel bounds [x0, y0, x1, y1] of a grid's footprint on a lattice (its outline densified and reprojected). */
export function footprintBounds(g: PixelGrid, lattice: { crs: string; affine: Affine }): [number, number, number, number] {
  return pixelBounds(footprintOutline(g), g.crs, lattice, `the footprint of a ${g.crs} image`);
}

/** Bounds [xmin, ymin, xmax, ymax] in `crs` of points given in `from`. */
function worldBounds(points: [number, number][], from: string, crs: string, what: string): [number, number, number, number] {
  // The identity lattice turns pixel bounds into world bounds, with y up.
  const [x0, y0, x1, y1] = pixelBounds(points, from, { crs, affine: [1, 0, 0, 0, 1, 0] }, what);
  return [x0, y0, x1, y1];
}

/** A request's region, parsed once: where its points are and how to describe it in messages. */
interface RegionShape {
  points: [number, number][];
  crs: string;
  /** A bbox in the grid CRS: corners suffice (affines keep straight lines straight). */
  isBbox: boolean;
  what: string;
}

function parseRegion(region: GridParams['region'], gridCrs: string): RegionShape | undefined {
  if (region === undefined || region === null) return undefined;
  if (Array.isArray(region)) {
    if (region.length !== 4 || !region.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw bad('region', `expected [xmin, ymin, xmax, ymax] finite numbers, got ${show(region)}`);
    const [x0, y0, x1, y1] = region as [number, number, number, number];
    if (!(x0 < x1 && y0 < y1)) throw bad('region', `expected xmin < xmax and ymin < ymax, got ${show(region)}`);
    const points: [number, number][] = [
      [x0, y0],
      [x1, y0],
      [x0, y1],
      [x1, y1],
    ];
    return { points, crs: gridCrs, isBbox: true, what: `region bbox ${show(region)} (${gridCrs})` };
  }
  if (typeof region !== 'object') throw bad('region', `expected a bbox array or a GeoJSON geometry, got ${show(region)}`);
  const g = geoJsonBbox(region as GeoJsonRegion);
  crsDefinition(g.crs, 'region');
  const points = geoJsonOutline(geoJsonParts(region), !sameCrs(g.crs, gridCrs));
  return { points, crs: g.crs, isBbox: false, what: `region GeoJSON ${(region as GeoJsonRegion).type} with bbox ${show(g.bbox)} (${g.crs})` };
}

/**
 * Resolves the export grid (rules 1–5 above). `first` is the first band's native grid (for a mosaic
 * band, its first file's); `footprint` the grids whose union is the first band's footprint (default
 * `[first]`), the region when none is given. Throws BAD_REQUEST naming the field and value.
 */
export function resolveGrid(p: GridParams, first: PixelGrid, footprint: readonly PixelGrid[] = [first]): ResolvedGrid {
  const has = (k: keyof GridParams) => p[k] !== undefined && p[k] !== null;
  if (has('crs') && (typeof p.crs !== 'string' || !p.crs.trim())) throw bad('crs', `expected a CRS name such as "EPSG:32633", got ${show(p.crs)}`);
  const crs = has('crs') ? crsDefinition(p.crs!, 'crs') : normalizeCrs(first.crs);
  if (has('scale') && !(typeof p.scale === 'number' && Number.isFinite(p.scale) && p.scale > 0))
    throw bad('scale', `expected a positive number of metres per pixel, got ${show(p.scale)}`);
  const dims = has('dimensions') ? parseDimensions(p.dimensions) : undefined;
  if (has('scale') && dims)
    throw bad('dimensions', `give either scale (${show(p.scale)}) or dimensions (${show(p.dimensions)}), not both (Earth Engine rejects both too)`);
  const region = parseRegion(p.region, crs);

  // The region's fractional pixel bounds on a lattice, or the first band's footprint when there is none.
  const boundsOn = (lattice: { crs: string; affine: Affine }): [number, number, number, number] => {
    if (region) return pixelBounds(region.points, region.crs, lattice, region.what);
    return union(footprint.map((g) => pixelBounds(footprintOutline(g), g.crs, lattice, `the footprint of the image (${g.crs})`)));
  };
  // Snaps bounds outward on a lattice and moves the lattice's origin to the window's top-left pixel.
  const onLattice = (affine: Affine, rule: GridRule): ResolvedGrid => {
    const lattice = { crs, affine };
    const win = snapOutward(...boundsOn(lattice));
    if (win.width <= 0 || win.height <= 0)
      throw bad('region', `${region?.what ?? 'the image'} covers no whole pixel of the ${rule === 'native' ? 'image' : 'export'} grid`);
    checkIntersects(win, lattice, footprint, region?.what, p.region);
    return { crs, affine: shiftAffine(affine, win.x0, win.y0), width: win.width, height: win.height, rule };
  };

  if (has('crsTransform')) {
    const m = p.crsTransform as unknown;
    if (!Array.isArray(m) || m.length !== 6 || !m.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw bad('crsTransform', `expected 6 finite numbers [xScale, xShear, xTranslation, yShear, yScale, yTranslation], got ${show(m)}`);
    const affine = [...m] as Affine;
    if (affine[0] * affine[4] - affine[1] * affine[3] === 0) throw bad('crsTransform', `is degenerate (zero determinant): ${show(m)}`);
    if (!has('crs')) throw bad('crsTransform', 'needs "crs" (the CRS the transform is in), as in Earth Engine');
    if (has('scale')) throw bad('scale', `conflicts with crsTransform, which already fixes the pixel size; drop one (scale ${show(p.scale)})`);
    if (dims) {
      if (region)
        throw bad('dimensions', `with crsTransform, give either region or dimensions ${show(p.dimensions)} (W×H pixels from the transform's origin), not both`);
      if (dims.length !== 2)
        throw bad('dimensions', `with crsTransform, dimensions must be [W, H] or "WxH" (pixels from the transform's origin), got ${show(p.dimensions)}`);
      return { crs, affine, width: dims[0], height: dims[1], rule: 'crsTransform' };
    }
    return onLattice(affine, 'crsTransform');
  }

  const firstCrs = normalizeCrs(first.crs);
  const ownCrs = sameCrs(crs, firstCrs);
  if (has('scale')) {
    // EE's scale is metres; in a geographic CRS one degree counts its nominal 111319.49 m.
    const s = p.scale! / metresPerUnit(crs, 'crs');
    const [a, , c, , e, f] = first.affine;
    let affine: Affine;
    if (ownCrs && isNorthUp(first.affine)) {
      const native = Math.abs(s - a) <= SCALE_RTOL * a && Math.abs(s + e) <= SCALE_RTOL * -e;
      affine = native ? [...first.affine] : [s, 0, c, 0, -s, f];
    } else {
      affine = [s, 0, 0, 0, -s, 0];
    }
    return onLattice(affine, 'scale');
  }

  if (dims) {
    const [xmin, ymin, xmax, ymax] = region
      ? region.isBbox
        ? ((p.region as number[]).slice() as [number, number, number, number])
        : worldBounds(region.points, region.crs, crs, region.what)
      : union(footprint.map((g) => worldBounds(footprintOutline(g), g.crs, crs, `the footprint of the image (${g.crs})`)));
    const w = xmax - xmin,
      h = ymax - ymin;
    if (!(w > 0 && h > 0)) throw bad('region', `${region?.what ?? 'the image'} has no area in ${crs}, so dimensions ${show(p.dimensions)} cannot split it`);
    let W: number, H: number;
    if (dims.length === 2) [W, H] = dims;
    else if (w >= h) [W, H] = [dims[0], Math.max(1, Math.round((dims[0] * h) / w))];
    else [W, H] = [Math.max(1, Math.round((dims[0] * w) / h)), dims[0]];
    const grid: ResolvedGrid = { crs, affine: [w / W, 0, xmin, 0, -h / H, ymax], width: W, height: H, rule: 'dimensions' };
    checkIntersects({ x0: 0, y0: 0, width: W, height: H }, grid, footprint, region?.what, p.region);
    return grid;
  }

  if (!ownCrs)
    throw bad(
      'crs',
      `${crs} differs from the first band's CRS ${firstCrs}: say the pixel size with crsTransform, scale or dimensions (Earth Engine would silently use 1-unit pixels)`,
    );
  return onLattice([...first.affine], 'native');
}

function union(bounds: [number, number, number, number][]): [number, number, number, number] {
  return bounds.reduce((u, b) => [Math.min(u[0], b[0]), Math.min(u[1], b[1]), Math.max(u[2], b[2]), Math.max(u[3], b[3])]);
}

/** A region that misses the first band's footprint exports nothing but masked pixels: reject it. */
function checkIntersects(
  win: PixelWindow,
  lattice: { crs: string; affine: Affine },
  footprint: readonly PixelGrid[],
  what: string | undefined,
  region?: GridParams['region'],
): void {
  for (const g of footprint) {
    let b: [number, number, number, number];
    try {
      b = pixelBounds(footprintOutline(g), g.crs, lattice, 'the image');
    } catch {
      continue;
    }
    if (win.x0 < b[2] && win.x0 + win.width > b[0] && win.y0 < b[3] && win.y0 + win.height > b[1]) return;
  }
  const g = footprint[0]!;
  throw bad(
    'region',
    `${what ?? 'the grid'} does not intersect the image (bounds ${JSON.stringify(imageBounds(g))} in ${g.crs}, ${g.width}x${g.height} pixels)${region ? swappedHint(region as Region, g) : ''}`,
  );
}
