/**
 * Resampling onto the export grid (docs/semantics.md §11): values for target pixels from a window of
 * source pixels, given where each target pixel centre (or corner) lands in source pixel space
 * (transform.ts). GDAL's warper conventions (`gdalwarp -et 0 -wo XSCALE=1 -wo YSCALE=1`):
 *
 * - nearest: source pixel floor(x + 1e-10), floor(y + 1e-10) (GDAL's bias, so a centre on a pixel
 *   edge takes the right/lower pixel);
 * - bilinear: the 2×2 pixels around (x - 0.5, y - 0.5), weights 1 - f and f;
 * - bicubic: Keys' cubic convolution (a = -0.5) over the 4×4 pixels around (x - 0.5, y - 0.5);
 * - reducers mean/mode/min/max (EE's reduceResolution): every source pixel the target pixel's
 *   footprint covers, weighted by the covered fraction (exact rectangle overlap when the footprint is
 *   axis-aligned, polygon clipping otherwise); overlaps under 1e-6 px (the snapping tolerance of
 *   docs/semantics.md §1) count as none.
 *
 * Kernels are data (taps and weights per target pixel), computed once per source window and applied
 * to every band and depth read from it. Masks: a target pixel is masked when any source pixel with a
 * non-zero weight is masked or outside the source (docs/semantics.md §11), where GDAL would instead
 * renormalize over the valid ones; away from masks and edges the values are GDAL's.
 */
import { GeotfrError } from '../errors.js';
import type { Coords, GridTransform } from './transform.js';

export type Resampling = 'nearest' | 'bilinear' | 'bicubic';
export type Reducer = 'mean' | 'mode' | 'min' | 'max';
export const RESAMPLINGS: readonly Resampling[] = ['nearest', 'bilinear', 'bicubic'];
export const REDUCERS: readonly Reducer[] = ['mean', 'mode', 'min', 'max'];

/** How one band is resampled: a reducer, when given, replaces the interpolation kernel. */
export interface Kernel {
  resample: Resampling;
  reduce?: Reducer;
}

/** GDAL's bias toward the next pixel for centres on a pixel edge (gdalwarpkernel's 1e-10). */
const EDGE_BIAS = 1e-10;
/** Footprint overlaps (pixels, or square pixels) at or below this count as none (docs/semantics.md §1 tolerance). */
const COVER_TOL = 1e-6;

/** A rectangle of source pixels: `depth` planes of `height*width` values and one validity plane. */
export interface SourceWindow {
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** `depth * height * width` values, depth-major; masked pixels hold anything (NaN included). */
  values: Float64Array | Float32Array;
  /** `height * width` flags: 1 valid, 0 masked. */
  valid: Uint8Array;
}

/** Target pixels: `depth * n` values (depth-major) and `n` validity flags. */
export interface TargetWindow {
  values: Float64Array | Float32Array;
  valid: Uint8Array;
}

/** The source raster bands are warped from (one file: its bands share a grid and a read). */
export interface WarpSource {
  /** Extent in source pixels: pixels outside it are outside the source (masked). */
  width: number;
  height: number;
  /** Values per pixel of each band (1 for a scalar band, D for an array band). */
  depths: readonly number[];
  /** Reads a window lying inside the extent: per band `depth * h * w` values and `h * w` validity flags. */
  read(x0: number, y0: number, width: number, height: number, signal?: AbortSignal): Promise<{ values: (Float64Array | Float32Array)[]; valid: Uint8Array[] }>;
}

/** A rectangle [x0, x1) × [y0, y1) of source pixels. */
type Bounds = { x0: number; y0: number; x1: number; y1: number };
const unite = (a: Bounds | null, b: Bounds | null): Bounds | null =>
  a && b ? { x0: Math.min(a.x0, b.x0), y0: Math.min(a.y0, b.y0), x1: Math.max(a.x1, b.x1), y1: Math.max(a.y1, b.y1) } : (a ?? b);

/** Source pixel offsets around a sample point each kernel reads (for source window bounds). */
const SUPPORT: Record<Resampling, [lo: number, hi: number]> = { nearest: [0, 0], bilinear: [0, 1], bicubic: [-1, 2] };

/** The rectangle [x0, x1) × [y0, y1) of source pixels the coordinates at indexes [from, to) of `ranges` need, clipped to the extent; null when empty. */
export function sourceBounds(
  coords: Coords,
  ranges: readonly (readonly [from: number, to: number])[],
  kernel: Kernel,
  extent: { width: number; height: number },
): Bounds | null {
  let xmin = Infinity,
    ymin = Infinity,
    xmax = -Infinity,
    ymax = -Infinity;
  const cx = coords.x,
    cy = coords.y;
  for (const [from, to] of ranges)
    for (let k = from; k < to; k++) {
      const x = cx[k]!,
        y = cy[k]!;
      if (!(x === x && y === y)) continue; // NaN: outside every source
      if (x < xmin) xmin = x;
      if (x > xmax) xmax = x;
      if (y < ymin) ymin = y;
      if (y > ymax) ymax = y;
    }
  if (!(xmin <= xmax)) return null;
  let x0: number, x1: number, y0: number, y1: number;
  if (kernel.reduce) {
    // Footprint corners: every pixel the corners' box touches.
    x0 = Math.floor(xmin + COVER_TOL);
    y0 = Math.floor(ymin + COVER_TOL);
    x1 = Math.ceil(xmax - COVER_TOL);
    y1 = Math.ceil(ymax - COVER_TOL);
  } else if (kernel.resample === 'nearest') {
    x0 = Math.floor(xmin + EDGE_BIAS);
    y0 = Math.floor(ymin + EDGE_BIAS);
    x1 = Math.floor(xmax + EDGE_BIAS) + 1;
    y1 = Math.floor(ymax + EDGE_BIAS) + 1;
  } else {
    const [lo, hi] = SUPPORT[kernel.resample];
    x0 = Math.floor(xmin - 0.5) + lo;
    y0 = Math.floor(ymin - 0.5) + lo;
    x1 = Math.floor(xmax - 0.5) + hi + 1;
    y1 = Math.floor(ymax - 0.5) + hi + 1;
  }
  x0 = Math.max(0, x0);
  y0 = Math.max(0, y0);
  x1 = Math.min(extent.width, x1);
  y1 = Math.min(extent.height, y1);
  return x1 > x0 && y1 > y0 ? { x0, y0, x1, y1 } : null;
}

/** Keys' cubic convolution weights (a = -0.5) for taps -1, 0, 1, 2 at fraction x ∈ [0, 1) (GDAL's polynomial form). */
function cubicWeights(x: number, w: Float64Array, at: number): void {
  const halfX = 0.5 * x;
  const threeX = 3 * x;
  const halfX2 = halfX * x;
  w[at] = halfX * (-1 + x * (2 - x));
  w[at + 1] = 1 + halfX2 * (-5 + threeX);
  w[at + 2] = halfX * (1 + x * (4 - threeX));
  w[at + 3] = halfX2 * (-1 + x);
}

/**
 * Where an interpolation kernel reads, per target pixel k: `s[k]` the window index of its first tap
 * (nearest: the pixel; bilinear: (⌊x-½⌋, ⌊y-½⌋); bicubic: the same pixel, taps around it), or -1
 * when a tap with non-zero weight falls outside the window or the source; `fx`, `fy` the fractions.
 * Computed once per source window and applied to every band read from it (their masks differ).
 */
export interface Taps {
  s: Int32Array;
  fx: Float64Array;
  fy: Float64Array;
}

export const newTaps = (n: number): Taps => ({ s: new Int32Array(n), fx: new Float64Array(n), fy: new Float64Array(n) });

/** Fills `t` for target pixels [from, to) of `coords` over a source window. */
export function computeTaps(
  method: Resampling,
  coords: Coords,
  from: number,
  to: number,
  win: { x0: number; y0: number; width: number; height: number },
  extent: { width: number; height: number },
  t: Taps,
): void {
  const sw = win.width;
  const wx0 = win.x0,
    wy0 = win.y0,
    wx1 = Math.min(extent.width, win.x0 + sw),
    wy1 = Math.min(extent.height, win.y0 + win.height);
  const cx = coords.x,
    cy = coords.y,
    s = t.s,
    tfx = t.fx,
    tfy = t.fy;
  if (method === 'nearest') {
    for (let k = from; k < to; k++) {
      const x = cx[k]!,
        y = cy[k]!;
      // Tested before the bias, like GDAL: -1e-11 is outside the source, not in its pixel 0.
      if (!(x >= 0 && y >= 0)) {
        s[k] = -1;
        continue;
      }
      const ix = Math.floor(x + EDGE_BIAS),
        iy = Math.floor(y + EDGE_BIAS);
      s[k] = ix < wx0 || iy < wy0 || ix >= wx1 || iy >= wy1 ? -1 : (iy - wy0) * sw + (ix - wx0);
    }
    return;
  }
  // Bilinear reaches taps 0..1 and bicubic -1..2 around ⌊x-½⌋ in each axis with a non-zero fraction.
  const lo = method === 'bicubic' ? -1 : 0,
    hi = method === 'bicubic' ? 2 : 1;
  for (let k = from; k < to; k++) {
    const x = cx[k]! - 0.5,
      y = cy[k]! - 0.5;
    if (!(x === x && y === y)) {
      s[k] = -1;
      continue;
    }
    const ix = Math.floor(x),
      iy = Math.floor(y);
    const fx = x - ix,
      fy = y - iy;
    // At a zero fraction only the first tap has weight; the others are not read (they may lie outside).
    const xlo = fx > 0 ? ix + lo : ix,
      xhi = fx > 0 ? ix + hi : ix;
    const ylo = fy > 0 ? iy + lo : iy,
      yhi = fy > 0 ? iy + hi : iy;
    if (xlo < wx0 || ylo < wy0 || xhi >= wx1 || yhi >= wy1) {
      s[k] = -1;
      continue;
    }
    s[k] = (iy - wy0) * sw + (ix - wx0);
    tfx[k] = fx;
    tfy[k] = fy;
  }
}

/** One band's values at taps computed by computeTaps over the same window (`src` is that band's window). */
export function applyTaps(method: Resampling, t: Taps, from: number, to: number, src: SourceWindow, depth: number, out: TargetWindow, n: number): void {
  const sw = src.width,
    plane = sw * src.height;
  const sv = src.values,
    ok = src.valid,
    ov = out.values,
    valid = out.valid,
    s = t.s;
  if (method === 'nearest') {
    for (let k = from; k < to; k++) {
      const i = s[k]!;
      if (i < 0 || ok[i] === 0) {
        valid[k] = 0;
        continue;
      }
      valid[k] = 1;
      ov[k] = sv[i]!;
      for (let d = 1; d < depth; d++) ov[d * n + k] = sv[d * plane + i]!;
    }
    return;
  }
  if (method === 'bilinear') {
    for (let k = from; k < to; k++) {
      const s00 = s[k]!;
      if (s00 < 0) {
        valid[k] = 0;
        continue;
      }
      const fx = t.fx[k]!,
        fy = t.fy[k]!;
      const s10 = fx > 0 ? s00 + 1 : s00,
        s01 = fy > 0 ? s00 + sw : s00,
        s11 = s01 + (s10 - s00);
      if (ok[s00] === 0 || ok[s10] === 0 || ok[s01] === 0 || ok[s11] === 0) {
        valid[k] = 0;
        continue;
      }
      valid[k] = 1;
      const gx = 1 - fx,
        gy = 1 - fy;
      for (let d = 0; d < depth; d++) {
        const o = d * plane;
        ov[d * n + k] = (sv[o + s00]! * gx + sv[o + s10]! * fx) * gy + (sv[o + s01]! * gx + sv[o + s11]! * fx) * fy;
      }
    }
    return;
  }
  // Bicubic: 4×4 taps, separable weights; a zero fraction leaves only the centre column/row.
  const wxs = new Float64Array(4),
    wys = new Float64Array(4);
  const cols = new Int32Array(4),
    rows = new Int32Array(4);
  for (let k = from; k < to; k++) {
    const c = s[k]!;
    if (c < 0) {
      valid[k] = 0;
      continue;
    }
    const fx = t.fx[k]!,
      fy = t.fy[k]!;
    cubicWeights(fx, wxs, 0);
    cubicWeights(fy, wys, 0);
    for (let q = 0; q < 4; q++) {
      cols[q] = fx > 0 ? q - 1 : 0;
      rows[q] = fy > 0 ? (q - 1) * sw : 0;
    }
    let masked = false;
    for (let r = 0; r < 4 && !masked; r++) for (let q = 0; q < 4; q++) if (ok[c + rows[r]! + cols[q]!] === 0) masked = true;
    if (masked) {
      valid[k] = 0;
      continue;
    }
    valid[k] = 1;
    for (let d = 0; d < depth; d++) {
      const o = d * plane + c;
      let acc = 0;
      for (let r = 0; r < 4; r++) {
        const row = o + rows[r]!;
        acc += wys[r]! * (wxs[0]! * sv[row + cols[0]!]! + wxs[1]! * sv[row + cols[1]!]! + wxs[2]! * sv[row + cols[2]!]! + wxs[3]! * sv[row + cols[3]!]!);
      }
      ov[d * n + k] = acc;
    }
  }
}

/**
 * Nearest for several scalar bands at once (one pass over the taps instead of one per band): the
 * common case of a multi-band file warped with the default kernel.
 */
function applyNearestBands(t: Taps, from: number, to: number, srcs: SourceWindow[], outs: TargetWindow[]): void {
  const s = t.s;
  const nb = srcs.length;
  if (nb === 1) {
    applyTaps('nearest', t, from, to, srcs[0]!, 1, outs[0]!, 0);
    return;
  }
  for (let b = 0; b + 1 < nb; b += 2) {
    const va = srcs[b]!.values,
      oka = srcs[b]!.valid,
      ova = outs[b]!.values,
      vla = outs[b]!.valid;
    const vb = srcs[b + 1]!.values,
      okb = srcs[b + 1]!.valid,
      ovb = outs[b + 1]!.values,
      vlb = outs[b + 1]!.valid;
    for (let k = from; k < to; k++) {
      const i = s[k]!;
      if (i < 0) {
        vla[k] = 0;
        vlb[k] = 0;
        continue;
      }
      const a = oka[i]!,
        c = okb[i]!;
      vla[k] = a;
      vlb[k] = c;
      ova[k] = va[i]!;
      ovb[k] = vb[i]!;
    }
  }
  if (nb % 2) applyTaps('nearest', t, from, to, srcs[nb - 1]!, 1, outs[nb - 1]!, 0);
}

/**
 * Interpolates target pixels k ∈ [from, to) from pixel centre coordinates: writes `out.values`
 * (depth-major, `n` per plane) and `out.valid` at the same indices. Pixels whose kernel reaches a
 * masked pixel, outside the source extent or outside the window are masked.
 */
export function interpolate(
  method: Resampling,
  coords: Coords,
  from: number,
  to: number,
  src: SourceWindow,
  extent: { width: number; height: number },
  depth: number,
  out: TargetWindow,
  n: number,
): void {
  const t = newTaps(to);
  computeTaps(method, coords, from, to, src, extent, t);
  applyTaps(method, t, from, to, src, depth, out, n);
}

/** `v` snapped to the nearest integer when within COVER_TOL of it. */
function snap(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - r) <= COVER_TOL ? r : v;
}

/** Area of the part of convex polygon `poly` (flat x,y pairs) inside the square [px, px+1] × [py, py+1]. */
function clippedArea(poly: number[], px: number, py: number, a: number[], b: number[]): number {
  // Sutherland–Hodgman against the four edges, ping-ponging between two scratch arrays.
  let src = poly,
    dst = a;
  const clip = (inside: (x: number, y: number) => number) => {
    dst.length = 0;
    const m = src.length;
    for (let i = 0; i < m; i += 2) {
      const x1 = src[i]!,
        y1 = src[i + 1]!;
      const j = (i + 2) % m;
      const x2 = src[j]!,
        y2 = src[j + 1]!;
      const d1 = inside(x1, y1),
        d2 = inside(x2, y2);
      if (d1 >= 0) dst.push(x1, y1);
      if (d1 >= 0 !== d2 >= 0) {
        const t = d1 / (d1 - d2);
        dst.push(x1 + (x2 - x1) * t, y1 + (y2 - y1) * t);
      }
    }
    const done = dst;
    dst = src === poly ? b : src;
    src = done;
  };
  clip((x) => x - px);
  if (src.length < 6) return 0;
  clip((x) => px + 1 - x);
  if (src.length < 6) return 0;
  clip((_, y) => y - py);
  if (src.length < 6) return 0;
  clip((_, y) => py + 1 - y);
  if (src.length < 6) return 0;
  let area = 0;
  for (let i = 0, m = src.length; i < m; i += 2) {
    const j = (i + 2) % m;
    area += src[i]! * src[j + 1]! - src[j]! * src[i + 1]!;
  }
  return Math.abs(area) / 2;
}

/**
 * Reduces target pixels (i, j) of a w×h window from their footprints: `corners` holds the
 * (w+1)×(h+1) target pixel corners in source pixel space. Rows [j0, j1), columns [i0, i1) are
 * done; values and validity are written at index j*w + i (depth-major values, `n` per plane).
 */
export function reduce(
  reducer: Reducer,
  corners: Coords,
  w: number,
  j0: number,
  j1: number,
  i0: number,
  i1: number,
  src: SourceWindow,
  extent: { width: number; height: number },
  depth: number,
  out: TargetWindow,
  n: number,
): void {
  const sw = src.width,
    plane = sw * src.height;
  const wx0 = src.x0,
    wy0 = src.y0,
    wx1 = Math.min(extent.width, src.x0 + sw),
    wy1 = Math.min(extent.height, src.y0 + src.height);
  const cw = w + 1;
  const valid = out.valid;
  // Typed scratch (grown when a footprint needs more): no per-pixel allocation in the hot loop.
  let taps = new Int32Array(64);
  let weights = new Float64Array(64);
  let m = 0;
  const poly: number[] = [],
    sa: number[] = [],
    sb: number[] = [];
  const modeVals: number[] = [],
    modeWeights: number[] = [];
  for (let j = j0; j < j1; j++) {
    for (let i = i0; i < i1; i++) {
      const k = j * w + i;
      const c00 = j * cw + i,
        c10 = c00 + 1,
        c01 = c00 + cw,
        c11 = c01 + 1;
      const x00 = corners.x[c00]!,
        y00 = corners.y[c00]!,
        x10 = corners.x[c10]!,
        y10 = corners.y[c10]!;
      const x01 = corners.x[c01]!,
        y01 = corners.y[c01]!,
        x11 = corners.x[c11]!,
        y11 = corners.y[c11]!;
      // Edges within the tolerance of a pixel line snap to it, so aligned footprints weigh whole pixels 1.
      const xmin = snap(Math.min(x00, x10, x01, x11)),
        xmax = snap(Math.max(x00, x10, x01, x11));
      const ymin = snap(Math.min(y00, y10, y01, y11)),
        ymax = snap(Math.max(y00, y10, y01, y11));
      if (!(xmin === xmin && xmax === xmax && ymin === ymin && ymax === ymax)) {
        valid[k] = 0;
        continue;
      }
      m = 0;
      const px0 = Math.floor(xmin + COVER_TOL),
        px1 = Math.ceil(xmax - COVER_TOL);
      const py0 = Math.floor(ymin + COVER_TOL),
        py1 = Math.ceil(ymax - COVER_TOL);
      const axisAligned =
        Math.abs(x00 - x01) <= COVER_TOL && Math.abs(x10 - x11) <= COVER_TOL && Math.abs(y00 - y10) <= COVER_TOL && Math.abs(y01 - y11) <= COVER_TOL;
      let masked = px1 <= px0 || py1 <= py0;
      if (!axisAligned) {
        poly.length = 0;
        poly.push(x00, y00, x10, y10, x11, y11, x01, y01);
      }
      for (let py = py0; py < py1 && !masked; py++) {
        const wy = axisAligned ? Math.min(ymax, py + 1) - Math.max(ymin, py) : 1;
        if (wy <= COVER_TOL) continue;
        for (let px = px0; px < px1; px++) {
          const wx = axisAligned ? Math.min(xmax, px + 1) - Math.max(xmin, px) : 1;
          if (wx <= COVER_TOL) continue;
          const weight = axisAligned ? wx * wy : clippedArea(poly, px, py, sa, sb);
          if (weight <= COVER_TOL) continue;
          if (px < wx0 || py < wy0 || px >= wx1 || py >= wy1) {
            masked = true;
            break;
          }
          const s = (py - wy0) * sw + (px - wx0);
          if (src.valid[s] === 0) {
            masked = true;
            break;
          }
          if (m === taps.length) {
            const t2 = new Int32Array(2 * m),
              w2 = new Float64Array(2 * m);
            t2.set(taps);
            w2.set(weights);
            taps = t2;
            weights = w2;
          }
          taps[m] = s;
          weights[m++] = weight;
        }
      }
      if (masked || m === 0) {
        valid[k] = 0;
        continue;
      }
      valid[k] = 1;
      for (let d = 0; d < depth; d++) {
        const o = d * plane;
        let r: number;
        if (reducer === 'mean') {
          let acc = 0,
            sum = 0;
          for (let t = 0; t < m; t++) {
            acc += src.values[o + taps[t]!]! * weights[t]!;
            sum += weights[t]!;
          }
          r = acc / sum;
        } else if (reducer === 'min') {
          r = Infinity;
          for (let t = 0; t < m; t++) r = Math.min(r, src.values[o + taps[t]!]!);
        } else if (reducer === 'max') {
          r = -Infinity;
          for (let t = 0; t < m; t++) r = Math.max(r, src.values[o + taps[t]!]!);
        } else {
          // Weighted mode, scanning the footprint row by row: a value becomes the mode when its
          // weight exceeds the mode's (by more than the tolerance), so of tied values the first to
          // reach the top weight wins (gdalwarp -r mode's rule, which counts the same way).
          modeVals.length = 0;
          modeWeights.length = 0;
          r = NaN;
          let best = 0;
          for (let t = 0; t < m; t++) {
            const v = src.values[o + taps[t]!]!;
            let at = modeVals.indexOf(v);
            if (at < 0) {
              at = modeVals.length;
              modeVals.push(v);
              modeWeights.push(0);
            }
            const mw = (modeWeights[at]! += weights[t]!);
            if (mw > best + COVER_TOL) {
              best = mw;
              r = v;
            }
          }
        }
        out.values[d * n + k] = r;
      }
    }
  }
}

/** Buffers one caller reuses across warps (coordinates, taps), so chunk after chunk allocates nothing new. */
export interface WarpScratch {
  centres?: Coords;
  corners?: Coords;
  taps: Map<Resampling, Taps>;
}

/** Width of the target columns taps are applied in (cache locality of the source reads). */
const BLOCK_PX = 64;

/** Default budget for one source window read (pixels): bounds memory however far a chunk downsamples. */
export const MAX_SOURCE_WINDOW_PX = 1 << 22;

/**
 * Warps one target window of the export grid from one source, every band with its own kernel:
 * transforms the target pixels once (centres for interpolation, corners for reducers), reads the
 * source window(s) they need once for all bands (row strips whose source window stays within
 * `maxSourcePixels`, so memory does not grow with the downsampling factor), and resamples each band.
 * Target pixels whose kernel reaches outside the source are masked.
 */
export async function warpWindow(
  transform: GridTransform,
  source: WarpSource,
  kernels: readonly Kernel[],
  win: { x0: number; y0: number; width: number; height: number },
  opts: { signal?: AbortSignal; maxSourcePixels?: number; out?: TargetWindow[]; float32?: boolean; scratch?: WarpScratch } = {},
): Promise<TargetWindow[]> {
  const { width: w, height: h } = win;
  const n = w * h;
  const Values = opts.float32 ? Float32Array : Float64Array;
  const out = kernels.map((_, b) => {
    const o = opts.out?.[b];
    const d = source.depths[b]!;
    if (o && o.values instanceof Values && o.values.length >= d * n && o.valid.length >= n) return o;
    return { values: new Values(d * n), valid: new Uint8Array(n) };
  });
  const scratch: WarpScratch = opts.scratch ?? { taps: new Map() };
  for (const o of out) o.valid.fill(0, 0, n);
  const budget = opts.maxSourcePixels ?? MAX_SOURCE_WINDOW_PX;
  const reducing = kernels.some((k) => k.reduce !== undefined);
  const interpolating = kernels.some((k) => k.reduce === undefined);
  const centres = interpolating ? (scratch.centres = transform.map(win.x0, win.y0, w, h, 0.5, scratch.centres)) : undefined;
  const corners = reducing ? (scratch.corners = transform.map(win.x0, win.y0, w + 1, h + 1, 0, scratch.corners)) : undefined;
  // The widest support any band's kernel needs, for the source windows.
  const interp: Kernel = {
    resample: kernels.some((k) => !k.reduce && k.resample === 'bicubic')
      ? 'bicubic'
      : kernels.some((k) => !k.reduce && k.resample === 'bilinear')
        ? 'bilinear'
        : 'nearest',
  };
  const red: Kernel = { resample: 'nearest', reduce: 'mean' };
  /** Source pixels target row j's pixels [i0, i1) need. */
  const need = (j: number, i0: number, i1: number): Bounds | null => {
    let b: Bounds | null = null;
    if (centres) b = unite(b, sourceBounds(centres, [[j * w + i0, j * w + i1]], interp, source));
    if (corners) {
      // A row of footprints spans two rows of corners.
      const cw = w + 1;
      b = unite(
        b,
        sourceBounds(
          corners,
          [
            [j * cw + i0, j * cw + i1 + 1],
            [(j + 1) * cw + i0, (j + 1) * cw + i1 + 1],
          ],
          red,
          source,
        ),
      );
    }
    return b;
  };
  // Taps per interpolation method, computed once per source window for every band using it.
  const methods = [...new Set(kernels.filter((k) => !k.reduce).map((k) => k.resample))];
  for (const m of methods) if (!((scratch.taps.get(m)?.s.length ?? 0) >= n)) scratch.taps.set(m, newTaps(n));
  const taps = scratch.taps;
  const apply = async (b: Bounds, j0: number, j1: number, i0: number, i1: number) => {
    const data = await source.read(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0, opts.signal);
    const win = { x0: b.x0, y0: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0 };
    for (const m of methods) for (let j = j0; j < j1; j++) computeTaps(m, centres!, j * w + i0, j * w + i1, win, source, taps.get(m)!);
    const srcOf = (band: number): SourceWindow => ({ ...win, values: data.values[band]!, valid: data.valid[band]! });
    // Scalar nearest bands together (one pass over their shared taps), the others one by one.
    const fused = kernels.map((k, band) => !k.reduce && k.resample === 'nearest' && source.depths[band] === 1);
    const nearestBands = fused.flatMap((f, band) => (f ? [band] : []));
    // In columns of BLOCK_PX target pixels, so a rotated or reprojected grid reads a compact, cached patch of the source.
    if (nearestBands.length) {
      const srcs = nearestBands.map(srcOf),
        outs = nearestBands.map((b) => out[b]!);
      for (let i = i0; i < i1; i += BLOCK_PX)
        for (let j = j0; j < j1; j++) applyNearestBands(taps.get('nearest')!, j * w + i, j * w + Math.min(i + BLOCK_PX, i1), srcs, outs);
    }
    kernels.forEach((k, band) => {
      if (fused[band]) return;
      const src = srcOf(band);
      const d = source.depths[band]!;
      if (k.reduce) reduce(k.reduce, corners!, w, j0, j1, i0, i1, src, source, d, out[band]!, n);
      else
        for (let i = i0; i < i1; i += BLOCK_PX)
          for (let j = j0; j < j1; j++) applyTaps(k.resample, taps.get(k.resample)!, j * w + i, j * w + Math.min(i + BLOCK_PX, i1), src, d, out[band]!, n);
    });
  };
  const rowPieces = async (j: number, i0: number, i1: number): Promise<void> => {
    const b = need(j, i0, i1);
    if (!b) return;
    const area = (b.x1 - b.x0) * (b.y1 - b.y0);
    if (area > budget && i1 - i0 > 1) {
      const mid = (i0 + i1) >> 1;
      await rowPieces(j, i0, mid);
      await rowPieces(j, mid, i1);
      return;
    }
    if (area > 4 * budget)
      throw new GeotfrError('LIMIT', `one pixel of the export grid covers ${area} source pixels (more than ${4 * budget}); export at a finer scale`, {
        field: 'scale',
      });
    await apply(b, j, j + 1, i0, i1);
  };
  const rows: (Bounds | null)[] = Array.from({ length: h }, (_, r) => need(r, 0, w));
  let j = 0;
  while (j < h) {
    opts.signal?.throwIfAborted();
    // Grow the strip while its source window stays within budget (at least one row).
    let b: Bounds | null = rows[j] ?? null;
    let jb = j + 1;
    for (; jb < h; jb++) {
      const u = unite(b, rows[jb] ?? null);
      if (u && (u.x1 - u.x0) * (u.y1 - u.y0) > budget) break;
      b = u;
    }
    if (b && (b.x1 - b.x0) * (b.y1 - b.y0) <= budget) await apply(b, j, jb, 0, w);
    else if (b) await rowPieces(j, 0, w); // one row needs more than the budget (a strong downsampling)
    j = jb;
  }
  return out;
}
