/**
 * Target pixel → source pixel coordinates (docs/semantics.md §11), the way GDAL's warper asks for
 * them: a target point (u, v) in target pixel space (pixel centres at +0.5) goes through the target
 * affine to target CRS coordinates, through proj4 to the source CRS, and through the inverse source
 * affine to continuous source pixel coordinates (0 = the source's left/top edge).
 *
 * Same CRS: that chain is affine and computed exactly per point. Different CRSs: like GDAL's
 * approximate transformer, but in 2-D and with a bound: the target plane is cut into fixed 64×64 px
 * cells (aligned to target pixel 0, so a point's value never depends on which window asked for it:
 * overlapping chunk margins agree bit for bit); each cell is subdivided until bilinear interpolation
 * of its corners matches the exact transform at the cell's centre and edge midpoints within half the
 * bound; cells that do not converge by 1 px are computed exactly per point. Points proj4 cannot place,
 * or whose round trip back to the target CRS fails, come out NaN (outside every source).
 */
import type { Affine } from '../mixer.js';
import { pointTransformer, sameCrs } from './crs.js';

/** A grid's placement: CRS and affine in the mixer's order. */
export interface Placement {
  crs: string;
  affine: Affine;
}

/** The default approximation bound (source pixels): docs/semantics.md §11. */
export const MAX_ERROR_PX = 0.01;
/** Control cell size (target pixels), a power of two. */
const CELL_PX = 64;
/** Smallest subdivided cell; below it points are transformed exactly. */
const MIN_CELL_PX = 1;
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
    let x = X, y = Y;
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
    const u0 = x0 + offset, v0 = y0 + offset;
    const cx0 = Math.floor(u0 / CELL_PX), cx1 = Math.floor((u0 + w - 1) / CELL_PX);
    const cy0 = Math.floor(v0 / CELL_PX), cy1 = Math.floor((v0 + h - 1) / CELL_PX);
    const win = { u0, v0, w, h, x: res.x, y: res.y };
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const cu = cx * CELL_PX, cv = cy * CELL_PX;
        const p00 = this.exact(cu, cv), p10 = this.exact(cu + CELL_PX, cv);
        const p01 = this.exact(cu, cv + CELL_PX), p11 = this.exact(cu + CELL_PX, cv + CELL_PX);
        this.cell(win, cu, cv, CELL_PX, p00, p10, p01, p11);
      }
    }
    return res;
  }

  /** Fills the window's points inside cell [cu, cu+s) × [cv, cv+s), subdividing until the bound holds. */
  private cell(win: Win, cu: number, cv: number, s: number, p00: Pt, p10: Pt, p01: Pt, p11: Pt): void {
    // Which of the window's points fall in this cell (half-open, so each point has one cell).
    const i0 = Math.max(0, Math.ceil(cu - win.u0)), i1 = Math.min(win.w, Math.ceil(cu + s - win.u0));
    const j0 = Math.max(0, Math.ceil(cv - win.v0)), j1 = Math.min(win.h, Math.ceil(cv + s - win.v0));
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
    const h = s / 2;
    const top = this.exact(cu + h, cv), bottom = this.exact(cu + h, cv + s);
    const left = this.exact(cu, cv + h), right = this.exact(cu + s, cv + h);
    const mid = this.exact(cu + h, cv + h);
    const ok =
      close(top, p00, p10, this.tol) &&
      close(bottom, p01, p11, this.tol) &&
      close(left, p00, p01, this.tol) &&
      close(right, p10, p11, this.tol) &&
      closeMid(mid, p00, p10, p01, p11, this.tol);
    if (!ok) {
      this.cell(win, cu, cv, h, p00, top, left, mid);
      this.cell(win, cu + h, cv, h, top, p10, mid, right);
      this.cell(win, cu, cv + h, h, left, mid, p01, bottom);
      this.cell(win, cu + h, cv + h, h, mid, right, bottom, p11);
      return;
    }
    fillBilinear(win.x, win.y, win.w, win.u0 - cu, win.v0 - cv, s, i0, i1, j0, j1, p00, p10, p01, p11);
  }
}

type Pt = [number, number];

/**
 * Bilinear interpolation of a cell's corners at points (du + i, dv + j) relative to the cell's
 * top-left, i ∈ [i0, i1), j ∈ [j0, j1): along each row between its left and right edge values. A
 * function of its own with plain arguments, so the hot loop sees locals only.
 */
function fillBilinear(x: Float64Array, y: Float64Array, w: number, du: number, dv: number, s: number, i0: number, i1: number, j0: number, j1: number, p00: Pt, p10: Pt, p01: Pt, p11: Pt): void {
  const inv = 1 / s;
  const ax = p00[0], ay = p00[1], bx = p10[0], by = p10[1], cx = p01[0], cy = p01[1], ex = p11[0], ey = p11[1];
  for (let j = j0; j < j1; j++) {
    const fv = (dv + j) * inv;
    const lx = ax + (cx - ax) * fv, ly = ay + (cy - ay) * fv;
    const dx = (bx + (ex - bx) * fv - lx) * inv, dy = (by + (ey - by) * fv - ly) * inv;
    const row = j * w;
    for (let i = i0; i < i1; i++) {
      const t = du + i;
      x[row + i] = lx + dx * t;
      y[row + i] = ly + dy * t;
    }
  }
}
interface Win {
  u0: number;
  v0: number;
  w: number;
  h: number;
  x: Float64Array;
  y: Float64Array;
}

/** Whether the exact midpoint `m` of an edge is within `tol` of the average of its ends (NaN fails). */
function close(m: Pt, a: Pt, b: Pt, tol: number): boolean {
  return Math.abs(m[0] - (a[0] + b[0]) / 2) <= tol && Math.abs(m[1] - (a[1] + b[1]) / 2) <= tol;
}

function closeMid(m: Pt, a: Pt, b: Pt, c: Pt, d: Pt, tol: number): boolean {
  return Math.abs(m[0] - (a[0] + b[0] + c[0] + d[0]) / 4) <= tol && Math.abs(m[1] - (a[1] + b[1] + c[1] + d[1]) / 4) <= tol;
}
