/**
 * Seeded random grid pairs for the warp property tests: a target grid (possibly rotated and sheared)
 * and a north-up source grid over one area where both CRSs are valid (UTM zones north and south,
 * EPSG:4326, 3857, LAEA 3035, polar stereographic 3413/3031).
 */
import type { Affine } from '../../shared/mixer.js';
import { pointTransformer } from '../../shared/grid/crs.js';
import type { Placement } from '../../shared/grid/transform.js';
import { mulberry32 } from './random.js';

/** Areas where every listed CRS is valid (lon/lat ranges in degrees). */
export const AREAS: { name: string; lon: [number, number]; lat: [number, number]; crss: string[] }[] = [
  { name: 'central Europe', lon: [12.5, 17.5], lat: [44, 56], crss: ['EPSG:32633', 'EPSG:32634', 'EPSG:4326', 'EPSG:3857', 'EPSG:3035'] },
  { name: 'Greenland', lon: [-53, -47], lat: [64, 74], crss: ['EPSG:3413', 'EPSG:4326', 'EPSG:3857', 'EPSG:32622'] },
  { name: 'Antarctica', lon: [142, 148], lat: [-74, -66], crss: ['EPSG:3031', 'EPSG:4326', 'EPSG:32755'] },
  { name: 'California', lon: [-123.5, -117.5], lat: [34, 41], crss: ['EPSG:32610', 'EPSG:32611', 'EPSG:4326', 'EPSG:3857'] },
];

/** Pixel size in CRS units for a resolution in metres at latitude `lat`. */
export function pixelSize(crs: string, metres: number, lat: number): number {
  if (crs === 'EPSG:4326') return metres / 111320;
  if (crs === 'EPSG:3857') return metres / Math.cos((lat * Math.PI) / 180);
  return metres;
}

export interface GridPair {
  desc: string;
  target: Placement;
  source: Placement;
  /** Target window size (pixels from the target affine's origin). */
  w: number;
  h: number;
  /** Where on the area the pair is centred. */
  lon: number;
  lat: number;
  rng: () => number;
}

/**
 * A random pair over one area: different CRSs unless `sameCrs`; the target rotated (θ) and sheared
 * (k) with probability `skew`; the source north-up with a pixel `ratio` (source/target metres) drawn
 * from [0.3, 3.3).
 */
export function randomGridPair(seed: number, opts: { sameCrs?: boolean; skew?: number; w?: [number, number]; h?: [number, number] } = {}): GridPair {
  const r = mulberry32(seed);
  const area = AREAS[Math.floor(r() * AREAS.length)]!;
  const pick = () => area.crss[Math.floor(r() * area.crss.length)]!;
  const tcrs = pick();
  let scrs = opts.sameCrs ? tcrs : pick();
  while (!opts.sameCrs && scrs === tcrs) scrs = pick();
  const lon = area.lon[0] + (area.lon[1] - area.lon[0]) * r();
  const lat = area.lat[0] + (area.lat[1] - area.lat[0]) * r();
  const tm = [5, 10, 30, 100, 500][Math.floor(r() * 5)]!;
  const sm = tm * (0.3 + 3 * r());
  const [tx, ty] = pointTransformer('EPSG:4326', tcrs)(lon, lat);
  const [sx, sy] = pointTransformer('EPSG:4326', scrs)(lon, lat);
  const tp = pixelSize(tcrs, tm, lat);
  const sp = pixelSize(scrs, sm, lat);
  const skew = opts.skew ?? 0.4;
  const theta = r() < skew ? (r() - 0.5) * 1.2 : 0;
  const k = r() < skew * 0.75 ? (r() - 0.5) * 0.6 : 0;
  const cos = Math.cos(theta),
    sin = Math.sin(theta);
  const [wlo, whi] = opts.w ?? [120, 320];
  const [hlo, hhi] = opts.h ?? [90, 240];
  const w = wlo + Math.floor(r() * (whi - wlo)),
    h = hlo + Math.floor(r() * (hhi - hlo));
  // x = a*col + b*row + c, y = d*col + e*row + f: a rotation by θ of a grid sheared by k.
  const ta: Affine = [tp * cos, tp * (k * cos + sin), tx - (w / 2) * tp, tp * sin, -tp * (cos - k * sin), ty + (h / 2) * tp];
  const sa: Affine = [sp, 0, sx - 2000 * sp, 0, -sp, sy + 2000 * sp];
  const desc = `seed ${seed}: ${area.name}, ${tcrs} ${tm} m θ=${theta.toFixed(2)} k=${k.toFixed(2)} → ${scrs} ${sm.toFixed(1)} m`;
  return { desc, target: { crs: tcrs, affine: ta }, source: { crs: scrs, affine: sa }, w, h, lon, lat, rng: r };
}
