/**
 * A streaming Cloud-Optimized GeoTIFF writer (issue 4; no JavaScript library writes tiled,
 * compressed GeoTIFF correctly, ECOSYSTEM.md).
 *
 * Rows arrive top to bottom (`writeRows`). Each resolution level buffers one row of tiles, cuts it
 * into tiles (pixel-interleaved, zero-padded at the edges), applies the TIFF predictor (2 for
 * integers, 3 for floats) and DEFLATEs them on libuv's thread pool; compressed tiles go to a
 * `SpillBuffer` per level (memory, then a temporary file). Each level also reduces row pairs 2×
 * into the next level, down to the first level that fits in one tile (GDAL's COG rule).
 *
 * `finish()` then writes the file in GDAL's COG layout, so `gdalinfo` reports `LAYOUT=COG`:
 * header, the "ghost" structural metadata GDAL looks for, every IFD (full resolution first, then
 * overviews by decreasing size), then tile data from the smallest overview to full resolution,
 * each tile row-major with a 4-byte size leader and its last 4 bytes repeated as trailer.
 * BigTIFF is chosen when the classic 32-bit offsets would overflow.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import { SAMPLE_ARRAYS, isFloatType as isFloat, type PixelArray, type SampleType } from '../raster/types.js';
import { geoTags, requireGeoTiffEpsg } from './geokeys.js';
import { FieldType, Tag, encodeHeader, encodeIfd, ifdSize, type IfdEntry, type TiffFlavor } from './ifd.js';
import { reduceRow, type Resampling } from './overview.js';
import { floatingPointDiff, horizontalDiff, type IntArray } from './predictor.js';
import { SpillBuffer, writeWithDrain } from './spill.js';
import { ownedTmpPrefix, reclaimOwnedTmpDirs } from '../tmpfiles.js';

const deflate = promisify(zlib.deflate);

/** Default square tile size (GDAL's COG default). */
const DEFAULT_TILE_SIZE = 512;

/** A typed array of `n` samples of `type`. */
export function allocPixels(type: SampleType, n: number): PixelArray {
  return new SAMPLE_ARRAYS[type](n);
}

const SAMPLE_FORMAT_UINT = 1;
const SAMPLE_FORMAT_INT = 2;
const SAMPLE_FORMAT_FLOAT = 3;
const COMPRESSION_DEFLATE = 8;
const PHOTOMETRIC_MINISBLACK = 1;
const PLANAR_CONTIG = 1;

/** GDAL's structural metadata block, byte for byte what its COG driver writes (140 bytes). */
const GHOST_BODY =
  'LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ';
const GHOST = Buffer.from(`GDAL_STRUCTURAL_METADATA_SIZE=${String(Buffer.byteLength(GHOST_BODY)).padStart(6, '0')} bytes\n${GHOST_BODY}`, 'latin1');

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
  resampling?: Resampling;
  /** `auto` (default) switches to BigTIFF only when 32-bit offsets would overflow. */
  bigTiff?: 'auto' | 'yes' | 'no';
  /** Directory for spilled tiles (default the OS temp dir). */
  tmpDir?: string;
  /** In-memory budget for compressed tiles per level before spilling (default 16 MiB). */
  spillBytes?: number;
  /** File name for error messages. */
  file?: string;
}

/** One resolution level: its tile-row buffer, compressed tiles and the link to the next level. */
class Level {
  readonly tilesAcross: number;
  readonly tilesDown: number;
  readonly rowBuf: PixelArray[];
  filled = 0;
  received = 0;
  private carry: PixelArray[] | undefined;
  readonly byteCounts: number[] = [];
  private pending: Promise<void> = Promise.resolve();

  constructor(
    readonly w: CogWriter,
    readonly width: number,
    readonly height: number,
    readonly spill: SpillBuffer,
    readonly next: Level | undefined,
  ) {
    const ts = w.tileSize;
    this.tilesAcross = Math.ceil(width / ts);
    this.tilesDown = Math.ceil(height / ts);
    this.rowBuf = Array.from({ length: w.bandCount }, () => allocPixels(w.type, ts * width));
  }

  /** Appends `n` rows (per band, `n * width` samples). */
  async pushRows(src: ArrayLike<number>[], n: number): Promise<void> {
    const { tileSize: ts, bandCount: nb } = this.w;
    const width = this.width;
    if (this.received + n > this.height) throw new GeotfrError('INTERNAL', `COG level ${width}×${this.height} got more than ${this.height} rows`);
    let r = 0;
    while (r < n) {
      const k = Math.min(n - r, ts - this.filled);
      for (let b = 0; b < nb; b++) {
        const s = src[b] as PixelArray;
        this.rowBuf[b].set(s.subarray(r * width, (r + k) * width) as ArrayLike<number>, this.filled * width);
      }
      this.filled += k;
      this.received += k;
      r += k;
      if (this.filled === ts) await this.flushTileRow();
    }
    if (this.next) await this.reduceInto(src, n);
  }

  /** Pairs rows (with a row carried over from the previous call) into the next level. */
  private async reduceInto(src: ArrayLike<number>[], n: number): Promise<void> {
    const next = this.next!;
    const nb = this.w.bandCount;
    const width = this.width;
    const c = this.carry ? 1 : 0;
    const total = n + c;
    const m = Math.floor(total / 2);
    const row = (b: number, i: number): PixelArray =>
      i < c ? this.carry![b] : (src[b] as PixelArray).subarray((i - c) * width, (i - c + 1) * width);
    let out: PixelArray[] | undefined;
    if (m > 0) {
      out = Array.from({ length: nb }, () => allocPixels(this.w.type, m * next.width));
      for (let b = 0; b < nb; b++)
        for (let j = 0; j < m; j++) reduceRow(row(b, 2 * j), row(b, 2 * j + 1), width, out[b], j * next.width, this.w.resampling, this.w.nodata);
    }
    // An odd row left over waits for its partner (next call, or end()).
    this.carry = total % 2 ? Array.from({ length: nb }, (_, b) => row(b, total - 1).slice()) : undefined;
    if (out) await next.pushRows(out, m);
  }

  /** Cuts the buffered rows into tiles and queues their compression (at most two tile rows in flight). */
  private async flushTileRow(): Promise<void> {
    const ts = this.w.tileSize;
    const rows = this.filled;
    this.filled = 0;
    const raw: Uint8Array[] = [];
    for (let tx = 0; tx < this.tilesAcross; tx++) raw.push(this.w.encodeTile(this.rowBuf, this.width, tx * ts, rows));
    const prev = this.pending;
    const level = this.w.compressionLevel;
    const strategy = this.w.zlibStrategy;
    const job = (async () => {
      const compressed = await Promise.all(raw.map((t) => deflate(t, { level, strategy })));
      await prev;
      for (const data of compressed) {
        const leader = Buffer.allocUnsafe(4);
        leader.writeUInt32LE(data.length, 0);
        // GDAL's BLOCK_TRAILER=LAST_4_BYTES_REPEATED lets readers detect a torn tile.
        await this.spill.append(leader);
        await this.spill.append(data);
        await this.spill.append(data.subarray(data.length - 4));
        this.byteCounts.push(data.length);
      }
    })();
    job.catch(() => {}); // observed through `pending` below or in end()
    this.pending = job;
    await prev;
  }

  /** Flushes the last partial tile row and the carried row, then ends the next level. */
  async end(): Promise<void> {
    if (this.next && this.carry) {
      const nb = this.w.bandCount;
      const out = Array.from({ length: nb }, () => allocPixels(this.w.type, this.next!.width));
      for (let b = 0; b < nb; b++) reduceRow(this.carry[b], undefined, this.width, out[b], 0, this.w.resampling, this.w.nodata);
      this.carry = undefined;
      await this.next.pushRows(out, 1);
    }
    if (this.filled > 0) await this.flushTileRow();
    await this.pending;
    if (this.received !== this.height)
      throw new GeotfrError('INTERNAL', `COG level ${this.width}×${this.height} received ${this.received} of ${this.height} rows`);
    if (this.next) await this.next.end();
  }
}

/** Streams a raster into a COG. Create with `CogWriter.create`, feed rows, `finish`, and always `close` (also on error). */
export class CogWriter {
  readonly tileSize: number;
  readonly bandCount: number;
  readonly type: SampleType;
  readonly compressionLevel: number;
  readonly zlibStrategy: number;
  readonly resampling: Resampling;
  readonly nodata: number | undefined;
  private readonly levels: Level[] = [];

  private constructor(readonly opts: CogOptions, private readonly tmpDir: string) {
    this.tileSize = opts.tileSize ?? DEFAULT_TILE_SIZE;
    this.bandCount = opts.bands;
    this.type = opts.type;
    this.compressionLevel = opts.compressionLevel ?? 6;
    const strategy = opts.deflateStrategy ?? (isFloat(opts.type) ? 'rle' : 'default');
    this.zlibStrategy = strategy === 'rle' ? zlib.constants.Z_RLE : zlib.constants.Z_DEFAULT_STRATEGY;
    this.resampling = opts.resampling ?? (isFloat(opts.type) ? 'average' : 'nearest');
    this.nodata = opts.nodata;
    // Level sizes: halve (rounding up) until the level fits in one tile, as GDAL's COG driver does.
    const sizes: [number, number][] = [[opts.width, opts.height]];
    for (let [w, h] = sizes[0]; w > this.tileSize || h > this.tileSize; ) {
      w = Math.ceil(w / 2);
      h = Math.ceil(h / 2);
      sizes.push([w, h]);
    }
    const spillBytes = opts.spillBytes ?? 16 << 20;
    let next: Level | undefined;
    for (let i = sizes.length - 1; i >= 0; i--) {
      next = new Level(this, sizes[i][0], sizes[i][1], new SpillBuffer(path.join(tmpDir, `level${i}.tiles`), spillBytes), next);
      this.levels.unshift(next);
    }
  }

  /** Validates the options and prepares a private temporary directory. */
  static async create(opts: CogOptions): Promise<CogWriter> {
    const bad = (why: string) => new GeotfrError('BAD_REQUEST', `GeoTIFF writer: ${why}`, { file: opts.file });
    if (!(Number.isInteger(opts.width) && opts.width > 0 && Number.isInteger(opts.height) && opts.height > 0)) throw bad(`bad size ${opts.width}×${opts.height}`);
    if (!(Number.isInteger(opts.bands) && opts.bands > 0 && opts.bands < 65536)) throw bad(`bad band count ${opts.bands}`);
    if (!(opts.type in SAMPLE_ARRAYS)) throw bad(`unsupported sample type ${opts.type}`);
    const ts = opts.tileSize ?? DEFAULT_TILE_SIZE;
    if (!(Number.isInteger(ts) && ts >= 16 && ts % 16 === 0)) throw bad(`tile size must be a multiple of 16, got ${ts}`);
    requireGeoTiffEpsg(opts.crs, opts.file); // fail early on an unusable CRS
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
   * Builds one tile's predicted bytes: pixel-interleaved samples (zero beyond the image edge), then
   * predictor 2 (integers) or 3 (floats). Assumes a little-endian host, as TIFF "II" files are.
   */
  encodeTile(rowBuf: PixelArray[], width: number, x0: number, rows: number): Uint8Array {
    const ts = this.tileSize;
    const nb = this.bandCount;
    const w = Math.min(ts, width - x0);
    if (this.type === 'float32') {
      const out = new Uint8Array(ts * ts * nb * 4);
      const lanes = rowBuf.map((r) => new Uint32Array(r.buffer, r.byteOffset, r.length));
      float32Planes(lanes, width, x0, w, rows, ts, nb, out);
      return out;
    }
    const tile = allocPixels(this.type, ts * ts * nb);
    if (nb === 1) {
      for (let y = 0; y < rows; y++) tile.set(rowBuf[0].subarray(y * width + x0, y * width + x0 + w) as ArrayLike<number>, y * ts);
    } else {
      for (let b = 0; b < nb; b++) {
        const src = rowBuf[b];
        for (let y = 0; y < rows; y++) {
          let s = y * width + x0;
          let d = y * ts * nb + b;
          for (let x = 0; x < w; x++, s++, d += nb) tile[d] = src[s];
        }
      }
    }
    const bytes = new Uint8Array(tile.buffer, tile.byteOffset, tile.byteLength);
    if (!isFloat(this.type)) {
      horizontalDiff(tile as IntArray, ts, ts * nb, nb);
      return bytes;
    }
    const out = new Uint8Array(bytes.length);
    floatingPointDiff(bytes, ts, ts * nb, nb, tile.BYTES_PER_ELEMENT, out);
    return out;
  }

  private levelTags(i: number, offsets: number[], flavor: TiffFlavor): IfdEntry[] {
    const lv = this.levels[i];
    const nb = this.bandCount;
    const bytes = SAMPLE_ARRAYS[this.type].BYTES_PER_ELEMENT;
    const fmt = isFloat(this.type) ? SAMPLE_FORMAT_FLOAT : this.type.startsWith('u') ? SAMPLE_FORMAT_UINT : SAMPLE_FORMAT_INT;
    const offType = flavor.bigTiff ? FieldType.LONG8 : FieldType.LONG;
    const rep = (v: number, n: number) => new Array<number>(n).fill(v);
    const tags: IfdEntry[] = [
      { tag: Tag.ImageWidth, type: FieldType.LONG, values: [lv.width] },
      { tag: Tag.ImageLength, type: FieldType.LONG, values: [lv.height] },
      { tag: Tag.BitsPerSample, type: FieldType.SHORT, values: rep(bytes * 8, nb) },
      { tag: Tag.Compression, type: FieldType.SHORT, values: [COMPRESSION_DEFLATE] },
      { tag: Tag.Photometric, type: FieldType.SHORT, values: [PHOTOMETRIC_MINISBLACK] },
      { tag: Tag.SamplesPerPixel, type: FieldType.SHORT, values: [nb] },
      { tag: Tag.PlanarConfiguration, type: FieldType.SHORT, values: [PLANAR_CONTIG] },
      { tag: Tag.Predictor, type: FieldType.SHORT, values: [isFloat(this.type) ? 3 : 2] },
      { tag: Tag.TileWidth, type: FieldType.SHORT, values: [this.tileSize] },
      { tag: Tag.TileLength, type: FieldType.SHORT, values: [this.tileSize] },
      { tag: Tag.TileOffsets, type: offType, values: offsets },
      { tag: Tag.TileByteCounts, type: offType, values: lv.byteCounts },
      { tag: Tag.SampleFormat, type: FieldType.SHORT, values: rep(fmt, nb) },
    ];
    if (i > 0) tags.push({ tag: Tag.NewSubfileType, type: FieldType.LONG, values: [1] }); // reduced-resolution image
    // Extra samples beyond the first are plain data ("unspecified"), as GDAL writes for multi-band gray.
    if (nb > 1) tags.push({ tag: Tag.ExtraSamples, type: FieldType.SHORT, values: rep(0, nb - 1) });
    if (this.nodata !== undefined) tags.push({ tag: Tag.GdalNodata, type: FieldType.ASCII, values: formatNodata(this.nodata) });
    if (i === 0) {
      tags.push(...geoTags(this.opts.crs, this.opts.affine, this.opts.file));
      const names = this.opts.bandNames;
      if (names?.length) tags.push({ tag: Tag.GdalMetadata, type: FieldType.ASCII, values: gdalMetadataXml(names) });
    }
    return tags;
  }

  /**
   * Completes every level and writes the COG to `out` (not ended: the caller commits or aborts it).
   * Returns the number of bytes written.
   */
  async finish(out: Writable, signal?: AbortSignal): Promise<{ bytes: number; bigTiff: boolean; overviews: number }> {
    const rows = this.levels[0].received;
    if (rows !== this.opts.height) throw new GeotfrError('INTERNAL', `${rows} of ${this.opts.height} rows written`);
    await this.levels[0].end();
    const want = this.opts.bigTiff ?? 'auto';
    let layout = this.layout({ bigTiff: want === 'yes' });
    if (!layout.flavor.bigTiff && layout.total > 0xffffffff) {
      if (want === 'no') throw new GeotfrError('LIMIT', `output of ${layout.total} bytes needs BigTIFF, which was disabled`, { file: this.opts.file });
      layout = this.layout({ bigTiff: true });
    }
    const write = (b: Uint8Array) => writeWithDrain(out, b, signal);
    const { flavor, ifdOffsets, tileOffsets, dataStart } = layout;
    await write(encodeHeader(ifdOffsets[0], flavor));
    await write(GHOST);
    let pos = (flavor.bigTiff ? 16 : 8) + GHOST.length;
    for (let i = 0; i < this.levels.length; i++) {
      if (pos < ifdOffsets[i]) await write(Buffer.alloc(ifdOffsets[i] - pos));
      const next = i + 1 < this.levels.length ? ifdOffsets[i + 1] : 0;
      const ifd = encodeIfd(this.levelTags(i, tileOffsets[i], flavor), ifdOffsets[i], next, flavor);
      await write(ifd);
      pos = ifdOffsets[i] + ifd.length;
    }
    if (pos < dataStart) await write(Buffer.alloc(dataStart - pos));
    for (let i = this.levels.length - 1; i >= 0; i--) await this.levels[i].spill.pipeTo(out, signal);
    return { bytes: layout.total, bigTiff: flavor.bigTiff, overviews: this.levels.length - 1 };
  }

  /** Places IFDs after the ghost block and tiles after the IFDs (smallest overview first). */
  private layout(flavor: TiffFlavor) {
    const n = this.levels.length;
    let pos = (flavor.bigTiff ? 16 : 8) + GHOST.length;
    const ifdOffsets: number[] = [];
    for (let i = 0; i < n; i++) {
      pos += pos & 1; // IFDs start on a word boundary
      ifdOffsets.push(pos);
      const placeholder = new Array<number>(this.levels[i].byteCounts.length).fill(0);
      pos += ifdSize(this.levelTags(i, placeholder, flavor), flavor);
    }
    pos += pos & 1;
    const dataStart = pos;
    const tileOffsets: number[][] = new Array(n);
    for (let i = n - 1; i >= 0; i--) {
      const offs: number[] = [];
      for (const size of this.levels[i].byteCounts) {
        offs.push(pos + 4); // after the 4-byte leader
        pos += size + 8;
      }
      tileOffsets[i] = offs;
    }
    return { flavor, ifdOffsets, tileOffsets, dataStart, total: pos };
  }

  /** Drops temporary files; call after `finish` (or instead of it, on error). Idempotent. */
  async close(): Promise<void> {
    for (const lv of this.levels) await lv.spill.dispose();
    await fs.rm(this.tmpDir, { recursive: true, force: true }).catch(() => {});
  }
}

/** GDAL_NODATA is ASCII: integers plainly, NaN as "nan", floats with enough digits to round-trip. */
function formatNodata(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return Number.isInteger(v) ? String(v) : v.toPrecision(17).replace(/0+$/, '').replace(/\.$/, '');
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Band descriptions as GDAL stores them (its PAM metadata XML in tag 42112, sample = 0-based band).
 * GDAL escapes item values twice (CPLEscapeString, then its XML serializer) and unescapes twice on
 * reading, so a single escape would lose `<`, `&` and quotes: we do exactly what GDAL does.
 */
function gdalMetadataXml(names: string[]): string {
  const items = names.map((n, i) => `  <Item name="DESCRIPTION" sample="${i}" role="description">${xmlEscape(xmlEscape(n))}</Item>\n`).join('');
  return `<GDALMetadata>\n${items}</GDALMetadata>\n`;
}

/**
 * Predictor 3 for float32 fused with pixel interleaving (the hot path of prediction ingest): each
 * sample's four bytes go straight to their byte planes (most significant first), then the row is
 * differenced with a stride of `nb` bytes, as libtiff's fpDiff does. Same result as
 * `floatingPointDiff` over an interleaved tile, with one pass less and no intermediate tile.
 */
function float32Planes(lanes: Uint32Array[], width: number, x0: number, w: number, rows: number, ts: number, nb: number, out: Uint8Array): void {
  const rowSamples = ts * nb;
  const rowBytes = rowSamples * 4;
  for (let y = 0; y < rows; y++) {
    const base = y * rowBytes;
    const p0 = base;
    const p1 = base + rowSamples;
    const p2 = base + 2 * rowSamples;
    const p3 = base + 3 * rowSamples;
    for (let b = 0; b < nb; b++) {
      const src = lanes[b];
      let s = y * width + x0;
      for (let x = 0, i = b; x < w; x++, s++, i += nb) {
        const v = src[s];
        out[p0 + i] = v >>> 24;
        out[p1 + i] = v >>> 16;
        out[p2 + i] = v >>> 8;
        out[p3 + i] = v;
      }
    }
    for (let i = base + rowBytes - 1; i >= base + nb; i--) out[i] = out[i] - out[i - nb];
  }
}
