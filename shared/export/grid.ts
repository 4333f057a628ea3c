/**
 * The export grid (docs/semantics.md §1, §3, §6): where patches and tiles are cut. Pure arithmetic on pixel
 * coordinates of the source image; no I/O.
 */
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import type { PixelWindow } from '../raster/crs.js';
import type { PixelGrid } from '../raster/types.js';

export type { PixelWindow };

export interface ExportGrid {
  /** The snapped region in source pixels. */
  region: PixelWindow;
  patchWidth: number;
  patchHeight: number;
  /** floor(k/2) pixels on each side (docs/semantics.md §1 Decision: 256 + kernel 60 → 316). */
  marginX: number;
  marginY: number;
  tileWidth: number;
  tileHeight: number;
  /** floor(W/pw): partial patches at the right are dropped (docs/semantics.md §3). */
  patchesPerRow: number;
  /** floor(H/ph): partial patches at the bottom are dropped. */
  rows: number;
  totalPatches: number;
  /** Affine of the export grid: translation = top-left of patch 0's core (docs/semantics.md §6). */
  affine: Affine;
}

/**
 * Cuts `region` of `image` into patches. Rejects regions that miss the image or hold no whole patch.
 */
export function makeGrid(image: PixelGrid, region: PixelWindow, patch: [number, number], kernel: [number, number]): ExportGrid {
  const [pw, ph] = patch;
  const ix0 = Math.max(0, region.x0);
  const iy0 = Math.max(0, region.y0);
  const ix1 = Math.min(image.width, region.x0 + region.width);
  const iy1 = Math.min(image.height, region.y0 + region.height);
  if (ix1 <= ix0 || iy1 <= iy0)
    throw new GeotfrError(
      'BAD_REQUEST',
      `region (pixels x ${region.x0}..${region.x0 + region.width}, y ${region.y0}..${region.y0 + region.height}) does not intersect the image (${image.width}x${image.height} pixels)`,
      { field: 'region' },
    );
  const patchesPerRow = Math.floor(region.width / pw);
  const rows = Math.floor(region.height / ph);
  if (patchesPerRow < 1 || rows < 1)
    throw new GeotfrError(
      'BAD_REQUEST',
      `region of ${region.width}x${region.height} pixels holds no whole ${pw}x${ph} patch (partial patches are dropped, docs/semantics.md §3)`,
      { field: 'formatOptions.patchDimensions' },
    );
  const marginX = Math.floor(kernel[0] / 2);
  const marginY = Math.floor(kernel[1] / 2);
  const [a, b, c, d, e, f] = image.affine;
  // x = a*col + b*row + c; written so that col = row = 0 keeps c and f bit-exact (the mixer is compared byte for byte).
  const tx = region.x0 === 0 && region.y0 === 0 ? c : a * region.x0 + b * region.y0 + c;
  const ty = region.x0 === 0 && region.y0 === 0 ? f : d * region.x0 + e * region.y0 + f;
  return {
    region,
    patchWidth: pw,
    patchHeight: ph,
    marginX,
    marginY,
    tileWidth: pw + 2 * marginX,
    tileHeight: ph + 2 * marginY,
    patchesPerRow,
    rows,
    totalPatches: patchesPerRow * rows,
    affine: [a, b, tx, d, e, ty],
  };
}

/** The source window of the tiles of patches `col0..col0+count-1` in patch row `row`. */
export function tilesWindow(g: ExportGrid, row: number, col0: number, count: number): PixelWindow {
  return {
    x0: g.region.x0 + col0 * g.patchWidth - g.marginX,
    y0: g.region.y0 + row * g.patchHeight - g.marginY,
    width: count * g.patchWidth + 2 * g.marginX,
    height: g.tileHeight,
  };
}
