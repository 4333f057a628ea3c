/**
 * The COG tile pipeline shared by the single-process writer (writer.ts) and the distributed one
 * (strips.ts), so that both produce the same tile bytes (docs/semantics.md §13): rows of one
 * resolution level are cut into tiles (pixel-interleaved, zero-padded at the edges), predicted
 * (2 for integers, 3 for floats) and DEFLATEd on libuv's thread pool with fixed zlib parameters;
 * each level also reduces row pairs 2× into the next one with the overview reducer (overview.ts).
 *
 * A `Level` is one level of one *piece* of the image: the whole image (writer.ts) or one strip
 * (strips.ts). A piece starts on a row that is even at every level it holds, so the row pairs a
 * level reduces are the same whichever way the image is cut.
 */
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { GeotfrError } from '../errors.js';
import { SAMPLE_ARRAYS, isFloatType as isFloat, type PixelArray, type SampleType } from '../raster/types.js';
import { reduceRow, type OverviewResampling } from './overview.js';
import { floatingPointDiff, horizontalDiff, type IntArray } from './predictor.js';

const deflate = promisify(zlib.deflate);

/** A typed array of `n` samples of `type`. */
export function allocPixels(type: SampleType, n: number): PixelArray {
  return new SAMPLE_ARRAYS[type](n);
}

/** Everything that decides a tile's bytes (the same in every process writing one COG). */
export interface TileParams {
  tileSize: number;
  bands: number;
  type: SampleType;
  /** zlib level 1–9. */
  compressionLevel: number;
  /** zlib strategy constant. */
  zlibStrategy: number;
  resampling: OverviewResampling;
  nodata: number | undefined;
}

/** Fills in the defaults the writer documents (tile 512, zlib 6, `rle` for floats, average/nearest). */
export function tileParams(o: {
  tileSize?: number;
  bands: number;
  type: SampleType;
  compressionLevel?: number;
  deflateStrategy?: 'default' | 'rle';
  resampling?: OverviewResampling;
  nodata?: number;
}): TileParams {
  const strategy = o.deflateStrategy ?? (isFloat(o.type) ? 'rle' : 'default');
  return {
    tileSize: o.tileSize ?? 512,
    bands: o.bands,
    type: o.type,
    compressionLevel: o.compressionLevel ?? 6,
    zlibStrategy: strategy === 'rle' ? zlib.constants.Z_RLE : zlib.constants.Z_DEFAULT_STRATEGY,
    resampling: o.resampling ?? (isFloat(o.type) ? 'average' : 'nearest'),
    nodata: o.nodata,
  };
}

/** Where a level's compressed tiles go, in row-major order, each with its 4-byte leader and trailer. */
export interface TileSink {
  append(chunk: Uint8Array): Promise<void>;
}

/** Receives a level's rows as they arrive (the strips' coarsest level, kept raw for the finalizer). */
export type RowTap = (src: ArrayLike<number>[], n: number, width: number) => Promise<void>;

/** One resolution level of one piece: its tile-row buffer, compressed tiles and the link to the next level. */
export class Level {
  readonly tilesAcross: number;
  readonly rowBuf: PixelArray[];
  filled = 0;
  received = 0;
  private carry: PixelArray[] | undefined;
  readonly byteCounts: number[] = [];
  private pending: Promise<void> = Promise.resolve();

  /**
   * `height` is the number of rows this piece holds at this level; `sink` undefined means the level
   * only feeds the next one (the finalizer re-reducing the strips' coarsest level).
   */
  constructor(
    readonly p: TileParams,
    readonly width: number,
    readonly height: number,
    readonly sink: TileSink | undefined,
    readonly next: Level | undefined,
    readonly tap?: RowTap,
  ) {
    const ts = p.tileSize;
    this.tilesAcross = Math.ceil(width / ts);
    this.rowBuf = sink ? Array.from({ length: p.bands }, () => allocPixels(p.type, ts * width)) : [];
  }

  /** Appends `n` rows (per band, `n * width` samples). */
  async pushRows(src: ArrayLike<number>[], n: number): Promise<void> {
    const { tileSize: ts, bands: nb } = this.p;
    const width = this.width;
    if (this.received + n > this.height) throw new GeotfrError('INTERNAL', `COG level ${width}×${this.height} got more than ${this.height} rows`);
    if (this.tap) await this.tap(src, n, width);
    if (!this.sink) this.received += n;
    let r = 0;
    while (this.sink && r < n) {
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
    const nb = this.p.bands;
    const width = this.width;
    const c = this.carry ? 1 : 0;
    const total = n + c;
    const m = Math.floor(total / 2);
    const row = (b: number, i: number): PixelArray => (i < c ? this.carry![b] : (src[b] as PixelArray).subarray((i - c) * width, (i - c + 1) * width));
    let out: PixelArray[] | undefined;
    if (m > 0) {
      out = Array.from({ length: nb }, () => allocPixels(this.p.type, m * next.width));
      for (let b = 0; b < nb; b++)
        for (let j = 0; j < m; j++) reduceRow(row(b, 2 * j), row(b, 2 * j + 1), width, out[b], j * next.width, this.p.resampling, this.p.nodata);
    }
    // An odd row left over waits for its partner (next call, or end()).
    this.carry = total % 2 ? Array.from({ length: nb }, (_, b) => row(b, total - 1).slice()) : undefined;
    if (out) await next.pushRows(out, m);
  }

  /** Cuts the buffered rows into tiles and queues their compression (at most two tile rows in flight). */
  private async flushTileRow(): Promise<void> {
    const ts = this.p.tileSize;
    const rows = this.filled;
    this.filled = 0;
    const raw: Uint8Array[] = [];
    for (let tx = 0; tx < this.tilesAcross; tx++) raw.push(encodeTile(this.p, this.rowBuf, this.width, tx * ts, rows));
    const prev = this.pending;
    const level = this.p.compressionLevel;
    const strategy = this.p.zlibStrategy;
    const sink = this.sink!;
    const job = (async () => {
      const compressed = await Promise.all(raw.map((t) => deflate(t, { level, strategy })));
      await prev;
      for (const data of compressed) {
        const leader = Buffer.allocUnsafe(4);
        leader.writeUInt32LE(data.length, 0);
        // GDAL's BLOCK_TRAILER=LAST_4_BYTES_REPEATED lets readers detect a torn tile.
        await sink.append(leader);
        await sink.append(data);
        await sink.append(data.subarray(data.length - 4));
        this.byteCounts.push(data.length);
      }
    })();
    job.catch(() => {}); // observed through `pending` below or in end()
    this.pending = job;
    await prev;
  }

  /**
   * Flushes the last partial tile row and the carried row, then ends the next level. A carried
   * row only exists at the bottom of the image (pieces other than the last have even heights).
   */
  async end(): Promise<void> {
    if (this.next && this.carry) {
      const nb = this.p.bands;
      const out = Array.from({ length: nb }, () => allocPixels(this.p.type, this.next!.width));
      for (let b = 0; b < nb; b++) reduceRow(this.carry[b], undefined, this.width, out[b], 0, this.p.resampling, this.p.nodata);
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

/**
 * Builds one tile's predicted bytes: pixel-interleaved samples (zero beyond the image edge), then
 * predictor 2 (integers) or 3 (floats). Assumes a little-endian host, as TIFF "II" files are.
 */
export function encodeTile(p: TileParams, rowBuf: PixelArray[], width: number, x0: number, rows: number): Uint8Array {
  const ts = p.tileSize;
  const nb = p.bands;
  const w = Math.min(ts, width - x0);
  if (p.type === 'float32') {
    const out = new Uint8Array(ts * ts * nb * 4);
    const lanes = rowBuf.map((r) => new Uint32Array(r.buffer, r.byteOffset, r.length));
    float32Planes(lanes, width, x0, w, rows, ts, nb, out);
    return out;
  }
  const tile = allocPixels(p.type, ts * ts * nb);
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
  if (!isFloat(p.type)) {
    horizontalDiff(tile as IntArray, ts, ts * nb, nb);
    return bytes;
  }
  const out = new Uint8Array(bytes.length);
  floatingPointDiff(bytes, ts, ts * nb, nb, tile.BYTES_PER_ELEMENT, out);
  return out;
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
