/**
 * The raster source contract shared by the export pipeline (shared/export/) and the readers
 * (shared/raster/). Pixel coordinates are (x = column, y = row) from the top-left of the image.
 */
import type { Affine } from '../mixer.js';

export type SampleType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

export const isFloatType = (t: SampleType): boolean => t === 'float32' || t === 'float64';

/** The typed array holding samples of each type (the COG writer's buffers, the TIFF reader's blocks). */
export const SAMPLE_ARRAYS = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
} as const;

/** A typed array of samples of any `SampleType`. */
export type PixelArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** A pixel grid: CRS ("EPSG:n", or WKT when no EPSG code applies) and affine in the mixer's order (docs/semantics.md §6). */
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
  /** Source sample type (drives integer truncation/clamping of defaultValue, docs/semantics.md §4). */
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
  /**
   * Per band: `depth * height * width` values, depth-major ([D, H, W]). Masked pixels hold unspecified
   * values. Float64Array, exact for every sample type; Float32Array (also exact) for bands whose source
   * samples all fit float32 when the read asked for `float32`.
   */
  values: (Float64Array | Float32Array)[];
  /** Per band: `height * width` flags, 1 = valid, 0 = masked (nodata, NaN without nodata, or outside the image). */
  valid: Uint8Array[];
}

export interface ReadWindowOptions {
  signal?: AbortSignal;
  /**
   * A window this source returned earlier that the caller no longer needs: its arrays, and the
   * rest of the buffers they view, may be overwritten and returned again, also for a smaller
   * window (no per-window allocation); sources are free to ignore it.
   */
  reuse?: WindowData;
  /**
   * Return bands whose source samples are all exactly representable in float32 (float32, 8- and
   * 16-bit integers) as Float32Array: half the memory traffic for callers that emit float32 anyway.
   * Other bands stay Float64Array. Sources are free to ignore it.
   */
  float32?: boolean;
}

/**
 * Where a reader's windows from now on can fall, for a reader going through an image in raster order
 * of windows (the export's chunks, docs/export.md "Memory"): pixels in rows ≥ `nextRowY`, and pixels
 * in rows ≥ `rowY` and columns ≥ `x` (the rest of the current row of windows). Pixel coordinates of
 * the source's grid.
 */
export interface ReadFront {
  x: number;
  rowY: number;
  nextRowY: number;
}

/** `front` in the coordinates of a grid whose pixel (0, 0) is this grid's (dx, dy). */
export function shiftFront(front: ReadFront, dx: number, dy: number): ReadFront {
  return { x: front.x + dx, rowY: front.rowY + dy, nextRowY: front.nextRowY + dy };
}

export interface ImageSource {
  readonly grid: PixelGrid;
  readonly bands: BandInfo[];
  /** Reads a window; it may extend beyond the image, where pixels are masked (docs/semantics.md §3). */
  readWindow(x0: number, y0: number, width: number, height: number, opts?: ReadWindowOptions): Promise<WindowData>;
  /**
   * A hint that no later read falls outside `front`: cached data only such reads would use may go
   * (a later read there is still correct, only slower). Sources without a cache ignore it.
   */
  retire?(front: ReadFront): void;
  /**
   * A hint that a read of this window comes soon: the blocks it needs may start decoding now, in
   * the background, where the source's cache has room for them without dropping anything (a
   * failure is left for the read itself to report). Sources without a cache ignore it.
   */
  prefetch?(x0: number, y0: number, width: number, height: number): void;
  close(): Promise<void>;
}
