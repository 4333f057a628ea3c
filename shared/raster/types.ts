/**
 * The raster source contract shared by the export pipeline (shared/export/) and the readers
 * (shared/raster/). Pixel coordinates are (x = column, y = row) from the top-left of the image.
 */
import type { Affine } from '../mixer.js';

export type SampleType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

/** A pixel grid: CRS ("EPSG:n", or WKT when no EPSG code applies) and affine in the mixer's order (SPEC §6). */
export interface PixelGrid {
  crs: string;
  /** [xScale, xShear, xTranslation, yShear, yScale, yTranslation]: x = a*col + b*row + c, y = d*col + e*row + f. */
  affine: Affine;
  width: number;
  height: number;
}

export interface BandInfo {
  /** Output feature name (GeoTIFF band description, request name, else b1, b2…). */
  name: string;
  /** Source sample type (drives integer truncation/clamping of defaultValue, SPEC §4). */
  type: SampleType;
  /** 1 for a scalar band; N for an array band built from N source bands. */
  depth: number;
  nodata?: number;
}

/** Pixels of a window, one entry per band. */
export interface WindowData {
  x0: number;
  y0: number;
  width: number;
  height: number;
  /** Per band: `depth * height * width` values, depth-major ([D, H, W]). Masked pixels hold unspecified values. */
  values: Float64Array[];
  /** Per band: `height * width` flags, 1 = valid, 0 = masked (nodata, NaN without nodata, or outside the image). */
  valid: Uint8Array[];
}

export interface ImageSource {
  readonly grid: PixelGrid;
  readonly bands: BandInfo[];
  /**
   * Reads a window; it may extend beyond the image, where pixels are masked (SPEC §3). `reuse`, a
   * window this source returned earlier that the caller no longer needs, may have its arrays
   * overwritten and returned again (no per-window allocation); sources are free to ignore it.
   */
  readWindow(x0: number, y0: number, width: number, height: number, signal?: AbortSignal, reuse?: WindowData): Promise<WindowData>;
  close(): Promise<void>;
}
