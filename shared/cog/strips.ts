/**
 * The distributed COG writer (docs/semantics.md §13): the image is cut into horizontal strips of
 * `2^m` tile rows; each strip is written by its own process into one *part* per level 0…m (its
 * tiles of that level, row-major, with leaders and trailers, exactly as they sit in the file) plus
 * its rows of level m+1 raw (reduced from its level m; at level m+1 a tile row spans two strips, so
 * its tiles are the finalizer's); a finalizer tiles levels m+1… from those raw rows, writes the
 * header with final offsets (layout.ts), and the file is the concatenation
 *
 *     head (header, IFDs, levels L-1 … m+1) · level m of strips 0…n-1 · … · level 0 of strips 0…n-1
 *
 * (Cloud Storage compose). A strip's first row is a multiple of `tileSize·2^m`, so at every level
 * k ≤ m it starts on a tile row and on an even row: its tiles are a contiguous run of the level's
 * row-major tiles, and it reduces the same row pairs the single-process writer does (also into
 * level m+1: a strip holds `tileSize` rows of level m, an even number, and the last strip's odd
 * bottom row is reduced alone, as at the image's bottom). The result is byte-identical to
 * `CogWriter` (tiles.ts holds the one tile pipeline). Handing over level m+1 rather than m makes the
 * raw part a quarter of the size: for strips of one tile row it was the strip's full-resolution
 * pixels, more than its compressed tiles (docs/cloud.md).
 *
 * The raw format of level m+1: rows top to bottom, each row band after band, samples little-endian.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { GeotfrError } from '../errors.js';
import { SAMPLE_ARRAYS, type PixelArray } from '../raster/types.js';
import { CogLayout, type CogMeta } from './layout.js';
import { SpillBuffer } from './spill.js';
import { Level, allocPixels, tileParams, type TileParams, type TileSink } from './tiles.js';
import { checkCogOptions, type CogOptions } from './writer.js';

/** How an image is cut into strips. */
export interface StripGeometry {
  /** Levels in the file (0 = full resolution). */
  levels: number;
  /** Strips hold levels 0…m (and hand over m+1 raw); the finalizer tiles m+1…levels-1. */
  m: number;
  /** Rows (full resolution) per strip: `tileSize·2^m` (the last strip may have fewer). */
  stripRows: number;
  strips: number;
}

/**
 * The strip cut for an image: `stripTileRows` (a power of two) tile rows per strip, lowered when
 * the image has fewer levels than that needs (then one strip holds every level).
 */
export function stripGeometry(width: number, height: number, tileSize: number, stripTileRows: number): StripGeometry {
  if (!(Number.isInteger(stripTileRows) && stripTileRows > 0 && (stripTileRows & (stripTileRows - 1)) === 0))
    throw new GeotfrError('BAD_REQUEST', `strip height must be a power of two tile rows, got ${stripTileRows}`, { field: 'stripTileRows' });
  const levels = new CogLayout({ width, height, tileSize, bands: 1, type: 'uint8', crs: 'EPSG:4326', affine: [1, 0, 0, 0, -1, 0] }).levels;
  const m = Math.min(Math.log2(stripTileRows), levels - 1);
  const stripRows = tileSize * 2 ** m;
  return { levels, m, stripRows, strips: Math.ceil(height / stripRows) };
}

/** Rows [start, end) of level `k` that strip `s` holds. */
export function stripLevelRows(layout: CogLayout, g: StripGeometry, s: number, k: number): [number, number] {
  const per = g.stripRows / 2 ** k;
  const h = layout.sizes[k][1];
  return [Math.min(h, s * per), Math.min(h, (s + 1) * per)];
}

/** What `StripWriter.finish` reports: per level 0…m, the compressed size of each tile, row-major. */
export interface StripResult {
  byteCounts: number[][];
  /** Bytes of each level's part and of the raw coarsest level. */
  partBytes: number[];
  rawBytes: number;
}

/** The on-disk size of the tile data of one level given its tile sizes. */
const partSize = (counts: number[]) => counts.reduce((a, c) => a + c + 8, 0);

/**
 * Where a strip's parts go as they are made: level k's tiles (leaders and trailers included) and
 * the raw level-(m+1) rows, each in order. The strip worker streams them to the bucket.
 */
export interface PartSinks {
  level(k: number): TileSink;
  /** Needed when the strips do not hold every level (`m < levels - 1`). */
  raw?: TileSink;
}

/** Writes one strip into its part sinks: feed its rows top to bottom, then `finish`. */
export class StripWriter {
  readonly layout: CogLayout;
  readonly params: TileParams;
  private readonly levels: Level[] = [];
  /** Full-resolution rows [y0, y1) this strip holds. */
  readonly y0: number;
  readonly y1: number;
  private rawBytes = 0;

  private constructor(
    readonly opts: CogOptions,
    readonly g: StripGeometry,
    readonly strip: number,
    sinks: PartSinks,
  ) {
    this.params = tileParams(opts);
    this.layout = new CogLayout({ ...opts, tileSize: this.params.tileSize });
    [this.y0, this.y1] = stripLevelRows(this.layout, g, strip, 0);
    const bps = SAMPLE_ARRAYS[this.params.type].BYTES_PER_ELEMENT;
    // The raw rows are only needed when the finalizer has levels to tile: level m+1, reduced here
    // from level m and kept raw (no tiles of its own in this strip).
    let next: Level | undefined;
    if (g.m < g.levels - 1) {
      const raw = sinks.raw;
      if (!raw) throw new GeotfrError('INTERNAL', 'strip sinks without a raw part');
      const [a, b] = stripLevelRows(this.layout, g, strip, g.m + 1);
      const tap = (src: ArrayLike<number>[], n: number, width: number) => this.tapRaw(raw, src as PixelArray[], n, width, bps);
      next = new Level(this.params, this.layout.sizes[g.m + 1][0], b - a, undefined, undefined, tap);
    }
    for (let k = g.m; k >= 0; k--) {
      const [a, b] = stripLevelRows(this.layout, g, strip, k);
      next = new Level(this.params, this.layout.sizes[k][0], b - a, sinks.level(k), next);
      this.levels.unshift(next);
    }
  }

  static create(opts: CogOptions, g: StripGeometry, strip: number, sinks: PartSinks): StripWriter {
    checkCogOptions(opts);
    if (!(Number.isInteger(strip) && strip >= 0 && strip < g.strips)) throw new GeotfrError('INTERNAL', `strip ${strip} of ${g.strips}`);
    return new StripWriter(opts, g, strip, sinks);
  }

  private async tapRaw(raw: TileSink, src: PixelArray[], n: number, width: number, bps: number): Promise<void> {
    for (let y = 0; y < n; y++)
      for (const band of src) {
        const row = band.subarray(y * width, (y + 1) * width);
        // Copied: the caller reuses its buffers.
        await raw.append(new Uint8Array(row.buffer.slice(row.byteOffset, row.byteOffset + width * bps)));
        this.rawBytes += width * bps;
      }
  }

  /** Appends the strip's next `n` full-resolution rows (per band `n * width` samples). */
  async writeRows(bands: ArrayLike<number>[], n: number): Promise<void> {
    if (bands.length !== this.params.bands) throw new GeotfrError('INTERNAL', `expected ${this.params.bands} bands, got ${bands.length}`);
    await this.levels[0].pushRows(bands, n);
  }

  async finish(): Promise<StripResult> {
    await this.levels[0].end();
    const byteCounts = this.levels.map((l) => l.byteCounts);
    return { byteCounts, partBytes: byteCounts.map(partSize), rawBytes: this.rawBytes };
  }
}

/**
 * The finalizer's side: levels m+1… from the strips' raw level-(m+1) rows (fed strip by strip, in
 * order), then the head object: header with final offsets followed by those levels' tiles.
 */
export class CoarseLevels {
  readonly layout: CogLayout;
  readonly params: TileParams;
  private readonly levels: Level[] = [];
  private readonly spills: SpillBuffer[] = [];
  private readonly rowBytes: number;
  private readonly bps: number;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  private constructor(
    readonly opts: CogOptions,
    readonly g: StripGeometry,
    private readonly tmpDir: string,
  ) {
    this.params = tileParams(opts);
    this.layout = new CogLayout({ ...opts, tileSize: this.params.tileSize });
    const spillBytes = opts.spillBytes ?? 16 << 20;
    let next: Level | undefined;
    for (let k = g.levels - 1; k > g.m; k--) {
      const spill = new SpillBuffer(path.join(tmpDir, `level${k}.tiles`), spillBytes);
      this.spills.unshift(spill);
      next = new Level(this.params, this.layout.sizes[k][0], this.layout.sizes[k][1], spill, next);
      this.levels.unshift(next);
    }
    this.bps = SAMPLE_ARRAYS[this.params.type].BYTES_PER_ELEMENT;
    // Raw rows are of level m+1 (none when the strips hold every level).
    const wr = g.m < g.levels - 1 ? this.layout.sizes[g.m + 1][0] : 0;
    this.rowBytes = wr * this.params.bands * this.bps;
  }

  static async create(opts: CogOptions, g: StripGeometry): Promise<CoarseLevels> {
    checkCogOptions(opts);
    const tmpDir = await fs.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'geotfr-coarse-'));
    return new CoarseLevels(opts, g, tmpDir);
  }

  /** Bytes of raw level-(m+1) rows strip `s` contributes (what its raw object must hold). */
  rawSize(s: number): number {
    if (this.g.m === this.g.levels - 1) return 0;
    const [a, b] = stripLevelRows(this.layout, this.g, s, this.g.m + 1);
    return (b - a) * this.rowBytes;
  }

  /** Feeds the next bytes of raw level-(m+1) rows (any chunking). */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.g.m === this.g.levels - 1) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // Decode in batches of whole rows (at least 64 rows, or what is there) to keep calls few.
    if (this.pendingBytes >= this.rowBytes * 64) await this.drain();
  }

  private async drain(): Promise<void> {
    const rows = Math.floor(this.pendingBytes / this.rowBytes);
    if (!rows) return;
    const all = Buffer.concat(this.pending);
    const used = rows * this.rowBytes;
    const rest = all.subarray(used);
    this.pending = rest.length ? [rest] : [];
    this.pendingBytes = rest.length;
    const { bands: nb, type } = this.params;
    const w = this.layout.sizes[this.g.m + 1][0];
    const planes = Array.from({ length: nb }, () => allocPixels(type, rows * w));
    // Aligned copy of the bytes, then per row and band a typed-array copy into the planar buffers.
    const aligned = new SAMPLE_ARRAYS[type](used / this.bps);
    new Uint8Array(aligned.buffer).set(all.subarray(0, used));
    for (let y = 0; y < rows; y++)
      for (let b = 0; b < nb; b++) {
        const s = (y * nb + b) * w;
        planes[b].set(aligned.subarray(s, s + w) as ArrayLike<number>, y * w);
      }
    await this.levels[0].pushRows(planes, rows);
  }

  /** Ends the levels; returns their tile sizes (levels m+1…, in level order). */
  async finish(): Promise<number[][]> {
    if (this.g.m === this.g.levels - 1) return [];
    await this.drain();
    if (this.pendingBytes) throw new GeotfrError('INTERNAL', `${this.pendingBytes} raw bytes left over: not whole rows`);
    await this.levels[0].end();
    return this.levels.map((l) => l.byteCounts);
  }

  /** Writes the coarse levels' tiles, smallest first (they follow the header in the file). */
  async pipeTiles(out: Writable, signal?: AbortSignal): Promise<void> {
    for (let i = this.spills.length - 1; i >= 0; i--) await this.spills[i].pipeTo(out, signal);
  }

  async close(): Promise<void> {
    for (const s of this.spills) await s.dispose();
    await fs.rm(this.tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * All tile sizes of the file (per level, row-major) from the strips' (per strip, levels 0…m) and
 * the coarse levels' (m+1…), as `CogLayout.plan` takes them.
 */
export function fileByteCounts(g: StripGeometry, strips: number[][][], coarse: number[][]): number[][] {
  const out: number[][] = [];
  for (let k = 0; k <= g.m; k++) out.push(strips.flatMap((s) => s[k]));
  out.push(...coarse);
  return out;
}

export type { CogMeta };
