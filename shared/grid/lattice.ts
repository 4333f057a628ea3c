/**
 * Whether a file's grid is the export grid's lattice up to a whole-pixel shift (docs/semantics.md
 * §11 "no needless resampling"): such files are copied, never resampled. Light on purpose: the
 * planner uses it without loading the readers.
 */
import type { Affine } from '../mixer.js';
import { worldToPixel } from '../raster/crs.js';
import { sameCrs } from './crs.js';

/** Relative tolerance for "the same pixel size and orientation" (as open.ts's same-grid test). */
const AFFINE_RTOL = 1e-9;
/** A shift within this many pixels of a whole number is that whole number (docs/semantics.md §1). */
const SHIFT_TOL_PX = 1e-6;
/**
 * The whole-pixel shift (dx, dy) with file pixel = export pixel + (dx, dy) when the file's grid is the
 * export lattice shifted, else null.
 */
export function latticeShift(file: { crs: string; affine: Affine }, grid: { crs: string; affine: Affine }): [number, number] | null {
  if (!sameCrs(file.crs, grid.crs)) return null;
  const a = file.affine,
    b = grid.affine;
  const scale = Math.max(Math.abs(a[0]), Math.abs(a[1]), Math.abs(a[3]), Math.abs(a[4]));
  for (const i of [0, 1, 3, 4]) if (Math.abs(a[i]! - b[i]!) > AFFINE_RTOL * scale) return null;
  const [col, row] = worldToPixel(a, b[2], b[5]);
  const dx = Math.round(col),
    dy = Math.round(row);
  if (Math.abs(col - dx) > SHIFT_TOL_PX || Math.abs(row - dy) > SHIFT_TOL_PX) return null;
  return [dx + 0, dy + 0];
}
