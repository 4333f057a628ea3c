/**
 * Target pixel → source pixel coordinates (docs/semantics.md §11), the way GDAL's warper asks for
 * them: a target point (u, v) in target pixel space (pixel centres at +0.5) goes through the target
 * affine to target CRS coordinates, through proj4 to the source CRS, and through the inverse source
 * affine to continuous source pixel coordinates (0 = the source's left/top edge).
 *
 * Same CRS: that chain is affine and computed exactly per point. Different CRSs: like GDAL's
 * approximate transformer, but in 2-D and with a bound: the target plane is cut into fixed 64×64 px
 * cells (aligned to target pixel 0, so a point's value never depends on which window asked for it:
 * overlapping chunk margins agree bit for bit); a cell is interpolated biquadratically from 9 exact
 * nodes (corners, edge midpoints, centre) once that matches the exact transform at its 4 quarter
 * points within half the bound, else split in four (down to 2 px, below which points are exact).
 * Points proj4 cannot place, or whose round trip back to the target CRS fails, come out NaN.
 *
 * The bound: docs/semantics.md §11 asks for 0.01 px; the default is 1e-4 px, because an
 * interpolating kernel's value moves by at most (value range) × (coordinate error), so 1e-4 px keeps
 * bilinear and bicubic within 1e-4 of the range of GDAL's exact warp for any data. Biquadratic cells
 * make the tighter bound nearly free (a few exact points per thousand pixels).
 */
import type { Affine } from '../mixer.js';
import { pointTransformer, sameCrs } from './crs.js';

/** A grid's placement: CRS and affine in the mixer's order. */
export interface Placement {
  crs: string;
  affine: Affine;
}

/** The default approximation bound (source pixels; docs/semantics.md §11 asks for ≤ 0.01). */
export const MAX_ERROR_PX = 1e-4;
/** Control cell size (target pixels), a power of two. */
const CELL_PX = 64;
/** Smallest interpolated cell; a cell this small that fails the check is transformed point by point. */
const MIN_CELL_PX = 2;
/** Round-trip tolerance in target pixels: larger means proj4 folded the point onto another one. */
const ROUND_TRIP_PX = 1e-3;

/** GDAL's GDALInvGeoTransform, in the mixer's order: the same operations, so same-CRS warps land on the same source pixels. */
export function invertAffine(m: Affine): Affine {
  const [a, b, c, d, e, f] = m;
  if (b === 0 && d === 0 && a !== 0 && e !== 0) return [1 / a, 0, -c / a, 0, 1 / e, -f / e];
  const det = a * e - b * d;
  const inv = 1 / det;
  return [e * inv, -b * inv, (b * f - c * e) * inv, -d * inv, a * inv, (-a * f + c * d) * inv];
}

/** Source pixel coordinates of a window of target points, as two row-major arrays. */
export interface Coords {
  x: Float64Array;
  y: Float64Array;
}

export class GridTransform {
  /** True when source and target share a CRS: the map is affine and exact. */
  readonly affineOnly: boolean;
  /** Largest difference (source pixels) from the exact per-point transform: 0 for affine maps. */
  readonly errorBoundPx: number;
  /** Exact point transforms done so far (for the benchmark's cost accounting). */
  exactPoints = 0;
  private readonly t: Affine;
  private readonly inv: Affine;
  private readonly fwd: (x: number, y: number) => [number, number];
  private readonly back: (x: number, y: number) => [number, number];
  private readonly tol: number;
  private readonly roundTrip: number;

  constructor(target: Placement, source: Placement, opts: { maxErrorPx?: number } = {}) {
    this.t = [...target.affine];
    this.inv = invertAffine(source.affine);
    this.affineOnly = sameCrs(target.crs, source.crs);
    const bound = opts.maxErrorPx ?? MAX_ERROR_PX;
    this.errorBoundPx = this.affineOnly ? 0 : bound;
    this.tol = bound / 2;
    this.fwd = pointTransformer(target.crs, source.crs);
    this.back = pointTransformer(source.crs, target.crs);
    const [a, b, , d, e] = target.affine;
    this.roundTrip = ROUND_TRIP_PX * Math.max(Math.abs(a), Math.abs(b), Math.abs(d), Math.abs(e));
  }

  /** The exact source pixel coordinates of target point (u, v) (NaN when it has none). */
  exact(u: number, v: number): [number, number] {
    const [a, b, c, d, e, f] = this.t;
    // GDAL's GDALApplyGeoTransform order: origin + pixel * scale + line * shear.
    const X = c + u * a + v * b;
    const Y = f + u * d + v * e;
    let x = X,
      y = Y;
    if (!this.affineOnly) {
      this.exactPoints++;
      [x, y] = this.fwd(X, Y);
      if (!Number.isFinite(x) || !Number.isFinite(y)) return [NaN, NaN];
      const [bx, by] = this.back(x, y);
      if (!(Math.abs(bx - X) <= this.roundTrip && Math.abs(by - Y) <= this.roundTrip)) return [NaN, NaN];
    }
    const [ia, ib, ic, id, ie, iF] = this.inv;
    return [ic + x * ia + y * ib, iF + x * id + y * ie];
  }

  /**
   * Source pixel coordinates of the target points (x0 + i + offset, y0 + j + offset), i < w, j < h:
   * offset 0.5 gives pixel centres (resampling), 0 pixel corners (footprints for the reducers).
   */
  map(x0: number, y0: number, w: number, h: number, offset = 0.5, out?: Coords): Coords {
    const n = w * h;
    const res = out && out.x.length >= n && out.y.length >= n ? out : { x: new Float64Array(n), y: new Float64Array(n) };
    if (this.affineOnly) {
      // exact() inlined: the same operations in the same order, without a tuple per point.
      const [a, b, c, d, e, f] = this.t;
      const [ia, ib, ic, id, ie, iF] = this.inv;
      for (let j = 0; j < h; j++) {
        const v = y0 + j + offset;
        for (let i = 0; i < w; i++) {
          const u = x0 + i + offset;
          const X = c + u * a + v * b;
          const Y = f + u * d + v * e;
          res.x[j * w + i] = ic + X * ia + Y * ib;
          res.y[j * w + i] = iF + X * id + Y * ie;
        }
      }
      return res;
    }
    const u0 = x0 + offset,
      v0 = y0 + offset;
    const cx0 = Math.floor(u0 / CELL_PX),
      cx1 = Math.floor((u0 + w - 1) / CELL_PX);
    const cy0 = Math.floor(v0 / CELL_PX),
      cy1 = Math.floor((v0 + h - 1) / CELL_PX);
    const win = { u0, v0, w, h, x: res.x, y: res.y };
    for (let cy = cy0; cy <= cy1; cy++)
      for (let cx = cx0; cx <= cx1; cx++) this.cell(win, cx * CELL_PX, cy * CELL_PX, CELL_PX, this.nodes(cx * CELL_PX, cy * CELL_PX, CELL_PX, []));
    return res;
  }

  /**
   * The 3×3 nodes of cell [cu, cu+s)² (row-major: corners, edge midpoints, centre), exact; `known`
   * holds nodes already computed (by index), e.g. a child's centre from its parent's check.
   */
  private nodes(cu: number, cv: number, s: number, known: (Pt | undefined)[]): Pt[] {
    const h = s / 2;
    const out: Pt[] = [];
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) out.push(known[r * 3 + c] ?? this.exact(cu + c * h, cv + r * h));
    return out;
  }

  /**
   * Fills the window's points inside cell [cu, cu+s) × [cv, cv+s) (half-open, so each point has one
   * cell) by biquadratic interpolation of its 9 nodes once that matches the exact transform at the
   * cell's four quarter points within half the bound; otherwise its four children do it.
   */
  private cell(win: Win, cu: number, cv: number, s: number, n: Pt[]): void {
    const i0 = Math.max(0, Math.ceil(cu - win.u0)),
      i1 = Math.min(win.w, Math.ceil(cu + s - win.u0));
    const j0 = Math.max(0, Math.ceil(cv - win.v0)),
      j1 = Math.min(win.h, Math.ceil(cv + s - win.v0));
    if (i0 >= i1 || j0 >= j1) return;
    if (s <= MIN_CELL_PX) {
      for (let j = j0; j < j1; j++)
        for (let i = i0; i < i1; i++) {
          const [sx, sy] = this.exact(win.u0 + i, win.v0 + j);
          win.x[j * win.w + i] = sx;
          win.y[j * win.w + i] = sy;
        }
      return;
    }
    // Quarter points: the centres of the four children.
    const q: Pt[] = [];
    let ok = true;
    for (let b = 0; b < 2; b++)
      for (let a = 0; a < 2; a++) {
        const t = 0.25 + 0.5 * a,
          r = 0.25 + 0.5 * b;
        const e = this.exact(cu + t * s, cv + r * s);
        q.push(e);
        if (ok) {
          const [px, py] = biquadratic(n, t, r);
          ok = Math.abs(px - e[0]) <= this.tol && Math.abs(py - e[1]) <= this.tol;
        }
      }
    if (ok) {
      fillBiquadratic(win.x, win.y, win.w, (win.u0 - cu) / s, (win.v0 - cv) / s, 1 / s, Math.ceil(cu - win.u0), i0, i1, j0, j1, n);
      return;
    }
    const h = s / 2;
    for (let b = 0; b < 2; b++)
      for (let a = 0; a < 2; a++) {
        // The child's corners are parent nodes; its centre is the quarter point just computed.
        const at = (r: number, c: number) => n[(b + r) * 3 + a + c];
        const known: (Pt | undefined)[] = [at(0, 0), undefined, at(0, 1), undefined, q[b * 2 + a], undefined, at(1, 0), undefined, at(1, 1)];
        this.cell(win, cu + a * h, cv + b * h, h, this.nodes(cu + a * h, cv + b * h, h, known));
      }
  }
}

type Pt = [number, number];
interface Win {
  u0: number;
  v0: number;
  w: number;
  h: number;
  x: Float64Array;
  y: Float64Array;
}

/** Quadratic Lagrange weights at t for nodes 0, ½, 1. */
const L0 = (t: number) => (2 * t - 1) * (t - 1);
const L1 = (t: number) => 4 * t * (1 - t);
const L2 = (t: number) => t * (2 * t - 1);

/** The biquadratic interpolant of 3×3 nodes (row-major) at normalized (t, r) ∈ [0, 1]². */
function biquadratic(n: Pt[], t: number, r: number): [number, number] {
  const wr = [L0(r), L1(r), L2(r)],
    wt = [L0(t), L1(t), L2(t)];
  let x = 0,
    y = 0;
  for (let j = 0; j < 3; j++)
    for (let i = 0; i < 3; i++) {
      const w = wr[j]! * wt[i]!;
      x += w * n[j * 3 + i]![0];
      y += w * n[j * 3 + i]![1];
    }
  return [x, y];
}

/**
 * The biquadratic interpolant at points (t0 + i*dt, r0 + j*dt) (normalized cell coordinates),
 * i ∈ [i0, i1), j ∈ [j0, j1): per row the three column values, then along the row by forward
 * differences of the quadratic in t (two additions per coordinate), started at the cell's first
 * point `iFirst` whatever the window, so every window gets the same bits for the same point.
 * A function of its own with plain arguments, so the hot loop sees locals only.
 */
function fillBiquadratic(
  x: Float64Array,
  y: Float64Array,
  w: number,
  t0: number,
  r0: number,
  dt: number,
  iFirst: number,
  i0: number,
  i1: number,
  j0: number,
  j1: number,
  n: Pt[],
): void {
  const t = t0 + iFirst * dt;
  for (let j = j0; j < j1; j++) {
    const r = r0 + j * dt;
    const a = L0(r),
      b = L1(r),
      c = L2(r);
    const cx0 = a * n[0]![0] + b * n[3]![0] + c * n[6]![0],
      cy0 = a * n[0]![1] + b * n[3]![1] + c * n[6]![1];
    const cx1 = a * n[1]![0] + b * n[4]![0] + c * n[7]![0],
      cy1 = a * n[1]![1] + b * n[4]![1] + c * n[7]![1];
    const cx2 = a * n[2]![0] + b * n[5]![0] + c * n[8]![0],
      cy2 = a * n[2]![1] + b * n[5]![1] + c * n[8]![1];
    // P(t) = C0 + t(-3C0 + 4C1 - C2) + t²·2(C0 - 2C1 + C2); ΔP = dt(β + γ(2t + dt)); Δ²P = 2γdt².
    const bx = -3 * cx0 + 4 * cx1 - cx2,
      gx = 2 * (cx0 - 2 * cx1 + cx2);
    const by = -3 * cy0 + 4 * cy1 - cy2,
      gy = 2 * (cy0 - 2 * cy1 + cy2);
    let px = cx0 + t * (bx + t * gx),
      py = cy0 + t * (by + t * gy);
    let dx = dt * (bx + gx * (2 * t + dt)),
      dy = dt * (by + gy * (2 * t + dt));
    const ddx = 2 * gx * dt * dt,
      ddy = 2 * gy * dt * dt;
    const row = j * w;
    for (let i = iFirst; i < i1; i++) {
      if (i >= i0) {
        x[row + i] = px;
        y[row + i] = py;
      }
      px += dx;
      py += dy;
      dx += ddx;
      dy += ddy;
    }
  }
}
