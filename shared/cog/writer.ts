/**
 * A streaming Cloud-Optimized GeoTIFF writer (issue 4; no JavaScript library writes tiled,
 * compressed GeoTIFF correctly, ECOSYSTEM.md).
 *
 * Rows arrive top to bottom (`writeRows`). Each resolution level buffers one row of tiles and cuts,
 * predicts and DEFLATEs it (tiles.ts, shared with the distributed writer in strips.ts); compressed
 * tiles go to a `SpillBuffer` per level (memory, then a temporary file; the levels share one
 * budget). Each level also reduces row pairs 2× into the next level, down to the first level that
 * fits in one tile (GDAL's COG rule).
 *
 * `finish()` then writes the file in the COG layout of layout.ts (`gdalinfo` reports `LAYOUT=COG`):
 * header and IFDs, then tile data from the smallest overview to full resolution. BigTIFF is chosen
 * when the classic 32-bit offsets would overflow.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { memoryBudgetBytes } from '../budget.js';
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import { SAMPLE_ARRAYS, type SampleType } from '../raster/types.js';
import { requireGeoTiffEpsg } from './geokeys.js';
import { CogLayout } from './layout.js';
import type { OverviewResampling } from './overview.js';
import { SpillBuffer, SpillPool, writeWithDrain } from './spill.js';
import { Level, tileParams, type TileParams } from './tiles.js';
import { ownedTmpPrefix, reclaimOwnedTmpDirs } from '../tmpfiles.js';

export { allocPixels } from './tiles.js';

/** Default square tile size (GDAL's COG default). */
const DEFAULT_TILE_SIZE = 512;

export interface CogOptions {
  width: number;
  height: number;
  bands: number;
  type: SampleType;
  /** "EPSG:n" (docs/semantics.md §6 mixers always carry one). */
  crs: string;
  affine: Affine;
  /** Band descriptions (GDAL_METADATA `DESCRIPTION` items). */
  bandNames?: string[];
  /** Written as GDAL_NODATA; also excluded from overview averages. */
  nodata?: number;
  /** Square tile size in pixels, a multiple of 16 (default 512, GDAL's COG default). */
  tileSize?: number;
  /** zlib level 1–9 (default 6, GDAL's default ZLEVEL). */
  compressionLevel?: number;
  /**
   * zlib strategy. Default `rle` for floats: after predictor 3 the high byte planes are runs and the
   * low ones noise, so run-length matching compresses within 1% of the default strategy for less
   * than half the CPU (docs/ingest.md); `default` for integers, whose repeats are farther apart.
   */
  deflateStrategy?: 'default' | 'rle';
  /** Overview resampling; default `average` for floats, `nearest` for integers. */
  resampling?: OverviewResampling;
  /** `auto` (default) switches to BigTIFF only when 32-bit offsets would overflow. */
  bigTiff?: 'auto' | 'yes' | 'no';
  /** Directory for spilled tiles (default the OS temp dir). */
  tmpDir?: string;
  /**
   * In-memory budget for compressed tiles, all levels together, before the oldest spill (default
   * 3/16 of the memory budget, at least 16 MiB; see `compressedTileShare`).
   */
  spillBytes?: number;
  /** File name for error messages. */
  file?: string;
}

/**
 * Bytes of compressed tiles, all levels together, the writer keeps in memory before the oldest
 * spill to temporary files: 3/16 of the memory budget (shared/budget.ts), at least 16 MiB. Spilling
 * writes every byte beyond it to a file and reads it back (~0.2 CPU-s of the writer's ~2.2 for the
 * ~130 MB the benchmark's COG spilled before, docs/ingest.md), so under the default 1 GiB budget a
 * 4096² × 3-band float COG (~190 MB) is written without touching the disk, and a larger one spills
 * only what exceeds the share (from the level holding the most: level 0, which the file ends with).
 */
export function compressedTileShare(): number {
  return Math.max(16 << 20, Math.floor((memoryBudgetBytes() * 3) / 16));
}

/** Streams a raster into a COG. Create with `CogWriter.create`, feed rows, `finish`, and always `close` (also on error). */
export class CogWriter {
  readonly tileSize: number;
  readonly bandCount: number;
  readonly type: SampleType;
  readonly params: TileParams;
  readonly layout: CogLayout;
  private readonly levels: Level[] = [];
  private readonly spills: SpillBuffer[] = [];

  private constructor(
    readonly opts: CogOptions,
    private readonly tmpDir: string,
  ) {
    this.params = tileParams(opts);
    this.tileSize = this.params.tileSize;
    this.bandCount = opts.bands;
    this.type = opts.type;
    this.layout = new CogLayout({ ...opts, tileSize: this.tileSize });
    const sizes = this.layout.sizes;
    const pool = new SpillPool(opts.spillBytes ?? compressedTileShare());
    let next: Level | undefined;
    for (let i = sizes.length - 1; i >= 0; i--) {
      const spill = new SpillBuffer(path.join(tmpDir, `level${i}.tiles`), pool);
      this.spills.unshift(spill);
      next = new Level(this.params, sizes[i][0], sizes[i][1], spill, next);
      this.levels.unshift(next);
    }
  }

  /** Validates the options and prepares a private temporary directory. */
  static async create(opts: CogOptions): Promise<CogWriter> {
    checkCogOptions(opts);
    const base = opts.tmpDir ?? os.tmpdir();
    // A killed ingest leaves its spill directory behind; the next one reclaims it (docs/semantics.md §5).
    await reclaimOwnedTmpDirs(base, 'cog');
    const tmpDir = await fs.mkdtemp(path.join(base, ownedTmpPrefix('cog')));
    return new CogWriter(opts, tmpDir);
  }

  /** Appends the next `n` rows: per band an array of at least `n * width` samples of the writer's type. */
  async writeRows(bands: ArrayLike<number>[], n: number): Promise<void> {
    if (bands.length !== this.bandCount) throw new GeotfrError('INTERNAL', `expected ${this.bandCount} bands, got ${bands.length}`);
    if (this.levels[0].received + n > this.opts.height) throw new GeotfrError('INTERNAL', `more than ${this.opts.height} rows written`);
    await this.levels[0].pushRows(bands, n);
  }

  /**
   * Completes every level and writes the COG to `out` (not ended: the caller commits or aborts it).
   * Returns the number of bytes written.
   */
  async finish(out: Writable, signal?: AbortSignal): Promise<{ bytes: number; bigTiff: boolean; overviews: number }> {
    const rows = this.levels[0].received;
    if (rows !== this.opts.height) throw new GeotfrError('INTERNAL', `${rows} of ${this.opts.height} rows written`);
    await this.levels[0].end();
    const counts = this.levels.map((l) => l.byteCounts);
    const plan = this.layout.plan(counts, this.opts.bigTiff ?? 'auto');
    await writeWithDrain(out, this.layout.header(plan, counts), signal);
    for (let i = this.levels.length - 1; i >= 0; i--) await this.spills[i].pipeTo(out, signal);
    return { bytes: plan.total, bigTiff: plan.flavor.bigTiff, overviews: this.levels.length - 1 };
  }

  /** Bytes of compressed tiles written to temporary files so far (they exceeded `spillBytes`). */
  get spilledBytes(): number {
    return this.spills.reduce((n, s) => n + s.fileBytes, 0);
  }

  /** Drops temporary files; call after `finish` (or instead of it, on error). Idempotent. */
  async close(): Promise<void> {
    for (const s of this.spills) await s.dispose();
    await fs.rm(this.tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** Throws BAD_REQUEST for options no COG can be written with (shared by both writers). */
export function checkCogOptions(opts: Pick<CogOptions, 'width' | 'height' | 'bands' | 'type' | 'tileSize' | 'crs' | 'file'>): void {
  const bad = (why: string) => new GeotfrError('BAD_REQUEST', `GeoTIFF writer: ${why}`, { file: opts.file });
  if (!(Number.isInteger(opts.width) && opts.width > 0 && Number.isInteger(opts.height) && opts.height > 0)) throw bad(`bad size ${opts.width}×${opts.height}`);
  if (!(Number.isInteger(opts.bands) && opts.bands > 0 && opts.bands < 65536)) throw bad(`bad band count ${opts.bands}`);
  if (!(opts.type in SAMPLE_ARRAYS)) throw bad(`unsupported sample type ${opts.type}`);
  const ts = opts.tileSize ?? DEFAULT_TILE_SIZE;
  if (!(Number.isInteger(ts) && ts >= 16 && ts % 16 === 0)) throw bad(`tile size must be a multiple of 16, got ${ts}`);
  requireGeoTiffEpsg(opts.crs, opts.file); // fail early on an unusable CRS
}
