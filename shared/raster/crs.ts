/**
 * Regions → pixel windows (docs/semantics.md §1, §2). A region is a bbox `[xmin, ymin, xmax, ymax]` in the image
 * CRS, or a GeoJSON geometry whose bbox (in its `crs` member, else EPSG:4326) is reprojected to the
 * image CRS with proj4. The result is snapped outward to whole pixels, an edge within 1e-6 pixel of a
 * grid line snapping to that line, and may extend beyond the image (margins read what exists, docs/semantics.md §3).
 */
import { normalizeCrs, pointTransformer } from '../grid/crs.js';
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import type { PixelGrid } from './types.js';

/** Tolerance (pixels) within which a region edge snaps to a grid line (docs/semantics.md §1). */
export const SNAP_TOLERANCE_PX = 1e-6;
/** Points per bbox edge when reprojecting, so edges that curve in the image CRS stay covered. */
const DENSIFY_POINTS = 64;

/** A pixel window on an image grid (x = column, y = row of its top-left pixel). */
export interface PixelWindow {
  x0: number;
  y0: number;
  width: number;
  height: number;
}

/** A GeoJSON geometry, Feature or FeatureCollection, optionally with a (2008-style) `crs` member. */
export interface GeoJsonRegion {
  type: string;
  coordinates?: unknown;
  geometries?: unknown[];
  geometry?: unknown;
  features?: unknown[];
  crs?: unknown;
  [k: string]: unknown;
}

export { normalizeCrs };

export type RegionInput = readonly [number, number, number, number] | readonly number[] | GeoJsonRegion;

const bad = (message: string) => new GeotfrError('BAD_REQUEST', message, { field: 'region' });

/** A point transformer between two CRSs (identity when they are the same; any EPSG code, shared/grid/crs.ts). */
export function crsTransformer(from: string, to: string): (x: number, y: number) => [number, number] {
  return pointTransformer(from, to, 'region');
}

/** World (image CRS) → fractional pixel coordinates, inverting the affine (docs/semantics.md §6 order). */
export function worldToPixel(affine: Affine, x: number, y: number): [col: number, row: number] {
  const [a, b, c, d, e, f] = affine;
  const det = a * e - b * d;
  const dx = x - c,
    dy = y - f;
  return [(e * dx - b * dy) / det, (a * dy - d * dx) / det];
}

/** Image bounds [xmin, ymin, xmax, ymax] in its CRS, for messages. */
export function imageBounds(grid: PixelGrid): [number, number, number, number] {
  const [a, b, c, d, e, f] = grid.affine;
  const xs: number[] = [],
    ys: number[] = [];
  for (const [col, row] of [
    [0, 0],
    [grid.width, 0],
    [0, grid.height],
    [grid.width, grid.height],
  ] as const) {
    xs.push(a * col + b * row + c);
    ys.push(d * col + e * row + f);
  }
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** The bbox of all coordinates of a GeoJSON object, and its CRS (`crs` member, else EPSG:4326). */
export function geoJsonBbox(g: GeoJsonRegion): { bbox: [number, number, number, number]; crs: string } {
  let xmin = Infinity,
    ymin = Infinity,
    xmax = -Infinity,
    ymax = -Infinity;
  const visitCoords = (c: unknown, path: string): void => {
    if (!Array.isArray(c)) throw bad(`GeoJSON coordinates at ${path} are not an array`);
    if (c.length && typeof c[0] === 'number') {
      if (c.length < 2 || !c.every((v) => typeof v === 'number' && Number.isFinite(v)))
        throw bad(`GeoJSON position at ${path} is not [x, y] finite numbers: ${JSON.stringify(c)}`);
      xmin = Math.min(xmin, c[0]);
      xmax = Math.max(xmax, c[0]);
      ymin = Math.min(ymin, c[1]);
      ymax = Math.max(ymax, c[1]);
      return;
    }
    c.forEach((v, i) => visitCoords(v, `${path}[${i}]`));
  };
  const visit = (o: unknown, path: string): void => {
    if (!o || typeof o !== 'object') throw bad(`GeoJSON object expected at ${path}`);
    const obj = o as GeoJsonRegion;
    if (obj.type === 'Feature') visit(obj.geometry, `${path}.geometry`);
    else if (obj.type === 'FeatureCollection') (obj.features ?? []).forEach((f, i) => visit(f, `${path}.features[${i}]`));
    else if (obj.type === 'GeometryCollection') (obj.geometries ?? []).forEach((f, i) => visit(f, `${path}.geometries[${i}]`));
    else if (['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon'].includes(obj.type))
      visitCoords(obj.coordinates, `${path}.coordinates`);
    else throw bad(`unsupported GeoJSON type ${JSON.stringify(obj.type)} at ${path}`);
  };
  visit(g, 'region');
  if (!(xmin <= xmax && ymin <= ymax)) throw bad('GeoJSON region has no coordinates');
  // A `crs` member on the top object, else on a Feature's geometry.
  const crsMember = g.crs ?? (g.type === 'Feature' && g.geometry && typeof g.geometry === 'object' ? (g.geometry as GeoJsonRegion).crs : undefined);
  const crs = geoJsonCrs(crsMember);
  if (crs === 'EPSG:4326' && (xmin < -360 || xmax > 360 || ymin < -90 || ymax > 90))
    throw bad(`GeoJSON coordinates ${JSON.stringify([xmin, ymin, xmax, ymax])} are not longitude/latitude; give the geometry a "crs" member naming its CRS`);
  return { bbox: [xmin, ymin, xmax, ymax], crs };
}

/** Reads a GeoJSON (2008) `crs` member: `{type:"name", properties:{name}}`, `{type:"EPSG", properties:{code}}`, or a string. */
function geoJsonCrs(crs: unknown): string {
  if (crs === undefined || crs === null) return 'EPSG:4326';
  if (typeof crs === 'string') return normalizeCrs(crs);
  const c = crs as { type?: unknown; properties?: { name?: unknown; code?: unknown } };
  if (c.type === 'name' && typeof c.properties?.name === 'string') return normalizeCrs(c.properties.name);
  if (c.type === 'EPSG' && (typeof c.properties?.code === 'number' || typeof c.properties?.code === 'string')) return `EPSG:${c.properties.code}`;
  throw bad(`unsupported GeoJSON crs member ${JSON.stringify(crs)}; use {"type": "name", "properties": {"name": "EPSG:n"}}`);
}

/**
 * Reprojects a bbox with densified edges and returns the bbox of the result, so an edge that is
 * straight in one CRS and curved in the other is still covered.
 */
export function reprojectBbox(bbox: readonly number[], from: string, to: string): [number, number, number, number] {
  const t = crsTransformer(from, to);
  const [x0, y0, x1, y1] = bbox as [number, number, number, number];
  let xmin = Infinity,
    ymin = Infinity,
    xmax = -Infinity,
    ymax = -Infinity;
  const add = (x: number, y: number) => {
    const [px, py] = t(x, y);
    if (!Number.isFinite(px) || !Number.isFinite(py)) return;
    xmin = Math.min(xmin, px);
    xmax = Math.max(xmax, px);
    ymin = Math.min(ymin, py);
    ymax = Math.max(ymax, py);
  };
  for (let i = 0; i <= DENSIFY_POINTS; i++) {
    const u = i / DENSIFY_POINTS;
    const x = x0 + (x1 - x0) * u,
      y = y0 + (y1 - y0) * u;
    add(x, y0);
    add(x, y1);
    add(x0, y);
    add(x1, y);
  }
  if (!(xmin <= xmax && ymin <= ymax)) throw bad(`region ${JSON.stringify(bbox)} in ${from} cannot be projected to ${to}`);
  return [xmin, ymin, xmax, ymax];
}

/** Snaps fractional pixel bounds outward to whole pixels, with the docs/semantics.md §1 tolerance. */
export function snapOutward(fx0: number, fy0: number, fx1: number, fy1: number): PixelWindow {
  const x0 = Math.floor(fx0 + SNAP_TOLERANCE_PX);
  const y0 = Math.floor(fy0 + SNAP_TOLERANCE_PX);
  const x1 = Math.ceil(fx1 - SNAP_TOLERANCE_PX);
  const y1 = Math.ceil(fy1 - SNAP_TOLERANCE_PX);
  return { x0, y0, width: x1 - x0, height: y1 - y0 };
}

/**
 * The export window for a region (docs/semantics.md §2): whole image when `region` is undefined; otherwise the
 * region's bbox in the image CRS, snapped outward (docs/semantics.md §1). Throws BAD_REQUEST when the window is
 * empty or does not intersect the image.
 */
export function regionToPixelWindow(region: RegionInput | undefined | null, grid: PixelGrid): PixelWindow {
  if (region === undefined || region === null) return { x0: 0, y0: 0, width: grid.width, height: grid.height };
  let bbox: [number, number, number, number];
  let described: string;
  if (Array.isArray(region)) {
    if (region.length !== 4 || !region.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw bad(`expected [xmin, ymin, xmax, ymax] finite numbers, got ${JSON.stringify(region)}`);
    const [x0, y0, x1, y1] = region as [number, number, number, number];
    if (!(x0 < x1 && y0 < y1)) throw bad(`expected xmin < xmax and ymin < ymax, got ${JSON.stringify(region)}`);
    bbox = [x0, y0, x1, y1];
    described = `bbox ${JSON.stringify(region)} (${grid.crs})`;
  } else if (region && typeof region === 'object') {
    const g = geoJsonBbox(region as GeoJsonRegion);
    bbox = normalizeCrs(g.crs) === normalizeCrs(grid.crs) ? g.bbox : reprojectBbox(g.bbox, g.crs, grid.crs);
    described = `GeoJSON ${(region as GeoJsonRegion).type} with bbox ${JSON.stringify(g.bbox)} (${g.crs}) → ${JSON.stringify(bbox)} (${grid.crs})`;
  } else {
    throw bad(`expected a bbox array or a GeoJSON geometry, got ${JSON.stringify(region)}`);
  }
  // Corners in pixel space (a rotated/sheared grid maps the bbox to a parallelogram).
  const pts = [
    worldToPixel(grid.affine, bbox[0], bbox[1]),
    worldToPixel(grid.affine, bbox[2], bbox[1]),
    worldToPixel(grid.affine, bbox[0], bbox[3]),
    worldToPixel(grid.affine, bbox[2], bbox[3]),
  ];
  const cols = pts.map((p) => p[0]),
    rows = pts.map((p) => p[1]);
  const win = snapOutward(Math.min(...cols), Math.min(...rows), Math.max(...cols), Math.max(...rows));
  if (win.width <= 0 || win.height <= 0) throw bad(`region ${described} covers no whole pixel`);
  if (win.x0 >= grid.width || win.y0 >= grid.height || win.x0 + win.width <= 0 || win.y0 + win.height <= 0)
    throw bad(
      `region ${described} does not intersect the image (bounds ${JSON.stringify(imageBounds(grid))} in ${grid.crs}, ${grid.width}x${grid.height} pixels)${swappedHint(region, grid)}`,
    );
  return win;
}

/**
 * A hint for the commonest lon/lat mistake: coordinates given as [lat, lon]. When the region is in
 * EPSG:4326 and its axes swapped would meet the image, say so (GeoJSON is always [lon, lat]).
 */
export function swappedHint(region: RegionInput, grid: PixelGrid): string {
  try {
    let crs: string;
    let b: [number, number, number, number];
    if (Array.isArray(region)) [crs, b] = [grid.crs, region as [number, number, number, number]];
    else {
      const g = geoJsonBbox(region as GeoJsonRegion);
      [crs, b] = [g.crs, g.bbox];
    }
    if (normalizeCrs(crs) !== 'EPSG:4326') return '';
    const swapped: [number, number, number, number] = [b[1], b[0], b[3], b[2]];
    if (swapped[1] < -90 || swapped[3] > 90) return '';
    const geo = Array.isArray(region)
      ? swapped
      : {
          type: 'Polygon',
          coordinates: [
            [
              [swapped[0], swapped[1]],
              [swapped[2], swapped[1]],
              [swapped[2], swapped[3]],
              [swapped[0], swapped[3]],
              [swapped[0], swapped[1]],
            ],
          ],
        };
    regionToPixelWindow(geo as RegionInput, grid);
    return '; coordinates are [lon, lat] (x first): with the two swapped, the region would intersect the image';
  } catch {
    return '';
  }
}
