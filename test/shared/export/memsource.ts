/**
 * An in-memory `ImageSource` for unit tests of the export pipeline, implementing the contract of
 * shared/raster/types.ts directly (masks from nodata/NaN/outside the image) without any file format.
 */
import type { Affine } from '../../../shared/mixer.js';
import type { BandInfo, ImageSource, PixelGrid, SampleType, WindowData } from '../../../shared/raster/types.js';
import { mulberry32 } from '../../support/random.js';

export interface MemBand {
  name: string;
  type: SampleType;
  /** `depth * height * width` values, depth-major. */
  data: ArrayLike<number>;
  depth?: number;
  nodata?: number;
}

export class MemSource implements ImageSource {
  readonly grid: PixelGrid;
  readonly bands: BandInfo[];
  reads: { x0: number; y0: number; width: number; height: number }[] = [];

  constructor(
    width: number,
    height: number,
    private readonly data: MemBand[],
    affine: Affine = [1, 0, 0, 0, -1, height],
    crs = 'EPSG:32633',
  ) {
    this.grid = { crs, affine, width, height };
    this.bands = data.map((b) => ({ name: b.name, type: b.type, depth: b.depth ?? 1, ...(b.nodata === undefined ? {} : { nodata: b.nodata }) }));
  }

  async readWindow(x0: number, y0: number, width: number, height: number): Promise<WindowData> {
    this.reads.push({ x0, y0, width, height });
    const { width: W, height: H } = this.grid;
    const values: Float64Array[] = [];
    const valid: Uint8Array[] = [];
    for (const b of this.data) {
      const depth = b.depth ?? 1;
      const v = new Float64Array(depth * width * height);
      const ok = new Uint8Array(width * height);
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) {
          const sx = x0 + x;
          const sy = y0 + y;
          if (sx < 0 || sy < 0 || sx >= W || sy >= H) continue;
          let good = true;
          for (let d = 0; d < depth; d++) {
            const s = b.data[d * W * H + sy * W + sx];
            v[d * width * height + y * width + x] = s;
            if (b.nodata !== undefined ? s === b.nodata : Number.isNaN(s)) good = false;
          }
          ok[y * width + x] = good ? 1 : 0;
        }
      values.push(v);
      valid.push(ok);
    }
    return { x0, y0, width, height, values, valid };
  }

  async close(): Promise<void> {}
}

/** Seeded PRNG (mulberry32) so random cases are reproducible. */
export const rng = mulberry32;
