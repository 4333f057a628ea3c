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
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { GeotfrError } from '../errors.js';
import { SAMPLE_ARRAYS, isFloatType as isFloat, type PixelArray, type SampleType } from '../raster/types.js';
import { reduceRow, type OverviewResampling } from './overview.js';
import { float32PredictedTile, floatingPointDiff, horizontalDiff, type IntArray } from './predictor.js';
import { predictFloat32Tile } from './predictor-simd.js';

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

/**
 * DEFLATEs one predicted tile on libuv's thread pool in a single work item: with node:zlib's
 * default 16 KiB chunks a 3 MiB tile was ~140 round trips, each waiting for the main thread, which
 * is busy predicting the next tiles. `flush: Z_FINISH` makes it one zlib call (node:zlib would
 * otherwise finish in a second call whose last bytes come back as a second buffer, concatenated
 * with the first: a copy of every tile). The tile is a view of zlib's output buffer, sized
 * `outBytes` (`outputEstimate`); a tile larger than that continues in a second buffer, joined
 * with one copy. The bytes never depend on either: zlib's output does not depend on its space.
 */
export function deflateTile(raw: Uint8Array, p: TileParams, outBytes = worstCase(raw.length)): Promise<Buffer> {
  return deflate(raw, {
    level: p.compressionLevel,
    strategy: p.zlibStrategy,
    memLevel: TILE_MEM_LEVEL,
    chunkSize: Math.max(64, Math.min(outBytes, worstCase(raw.length))),
    flush: zlib.constants.Z_FINISH,
  });
}

/** zlib's output for `n` bytes in the worst case (stored blocks), with slack. */
const worstCase = (n: number) => n + (n >>> 10) + 1024;

/**
 * Output buffer for the next tile of a level that compressed its last tile to `lastRatio` of its
 * size: 6% more plus 16 KiB. Tiles wait in memory until their turn in the file, so a buffer much
 * larger than its tile would hold memory the writer's budget does not see (it counts tile bytes).
 */
export function outputEstimate(n: number, lastRatio: number): number {
  return Math.ceil(n * Math.min(1, lastRatio) * 1.06) + 16384;
}

/**
 * zlib's memLevel for tiles: 9, not zlib's and GDAL's 8. Its larger symbol buffer means half as
 * many DEFLATE blocks, each with its Huffman trees to build: 10–15% less CPU on predicted float
 * tiles for 0.07% smaller output (docs/ingest.md), and a few hundred KiB more per DEFLATE in flight.
 * The TFRecord export's gzip chunks use 9 for the same reason.
 */
const TILE_MEM_LEVEL = 9;

/** Runs at most `n` tasks at once, in the order they were queued. */
class Slots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly n: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.busy >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.busy++;
    try {
      return await task();
    } finally {
      // The slot passes straight on to the next task waiting, if any.
      const next = this.waiting.shift();
      if (next) next();
      else this.busy--;
    }
  }
}

/**
 * Tile DEFLATEs in flight in this process, over all levels and writers: one per core plus one, and
 * always a thread of libuv's pool (4 unless UV_THREADPOOL_SIZE says otherwise) left for the input's
 * gunzip and file reads. The extra one waits in libuv's queue, so a pool thread that finishes a tile
 * starts the next at once instead of waiting for this thread to run the finished one's callback
 * (with one per core, a core stood idle while this thread predicted a tile row: cog-deflate bench
 * on two cores, 66–67% → 75–79% of the zlib bound, docs/ingest.md). More would not compress
 * faster, and queued DEFLATEs would make the gunzip feeding the writer wait behind them (the pool
 * runs work in order).
 */
const deflateSlots = new Slots(Math.max(1, Math.min(availableParallelism() + 1, (Number(process.env.UV_THREADPOOL_SIZE) || 4) - 1)));

/** Where a level's compressed tiles go, in row-major order, each with its 4-byte leader and trailer. */
export interface TileSink {
  append(chunk: Uint8Array): Promise<void>;
}

/** Receives a level's rows as they arrive (a strip's level m+1, kept raw for the finalizer: strips.ts). */
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
  /** Tile buffers whose DEFLATE is done, for the next tile row (fresh multi-MiB buffers cost page faults and GC). */
  private readonly freeTiles: Uint8Array[] = [];
  /** Scratch of the float32 predictor (one row of a tile). */
  private readonly diff: Uint32Array;
  /** Compressed / raw size of this level's last tile (the next tile's output buffer, `outputEstimate`). */
  private lastRatio = 1;
  /** The reduced rows handed to the next level, reused (the next level is done with them when its pushRows resolves). */
  private reduced: PixelArray[] = [];

  /**
   * `height` is the number of rows this piece holds at this level; `sink` undefined means the level
   * only feeds its tap or the next one (a strip's raw level m+1).
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
    this.diff = new Uint32Array(sink && p.type === 'float32' ? ts * p.bands : 0);
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
    if (n === 0) return;
    const next = this.next!;
    const nb = this.p.bands;
    const width = this.width;
    const c = this.carry ? 1 : 0;
    const total = n + c;
    const m = Math.floor(total / 2);
    const { resampling, nodata } = this.p;
    if (m > 0) {
      if (!this.reduced.length || this.reduced[0].length < m * next.width)
        this.reduced = Array.from({ length: nb }, () => allocPixels(this.p.type, m * next.width));
      for (let b = 0; b < nb; b++) {
        const s = src[b] as PixelArray;
        const out = this.reduced[b];
        let j = 0;
        if (c) reduceRow(this.carry![b], s.subarray(0, width), width, out, j++ * next.width, resampling, nodata);
        for (let y = c; y + 1 < n; y += 2, j++)
          reduceRow(s.subarray(y * width, (y + 1) * width), s.subarray((y + 1) * width, (y + 2) * width), width, out, j * next.width, resampling, nodata);
      }
    }
    // An odd row left over waits for its partner (next call, or end()).
    this.carry = total % 2 ? Array.from({ length: nb }, (_, b) => (src[b] as PixelArray).slice((n - 1) * width, n * width)) : undefined;
    if (m > 0) await next.pushRows(this.reduced, m);
  }

  /** Cuts the buffered rows into tiles and queues their compression (at most two tile rows in flight). */
  private async flushTileRow(): Promise<void> {
    const ts = this.p.tileSize;
    const rows = this.filled;
    this.filled = 0;
    const compressed: Promise<Buffer>[] = [];
    for (let tx = 0; tx < this.tilesAcross; tx++) {
      // Between tiles, let finished DEFLATEs hand their slot on (their callbacks run on this thread):
      // a tile row takes tens of milliseconds to predict, and a pool thread left waiting for the
      // next tile that long is a core idle.
      if (tx > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const raw = encodeTile(this.p, this.rowBuf, this.width, tx * ts, rows, this.freeTiles.pop(), this.diff);
      compressed.push(
        deflateSlots.run(async () => {
          const data = await deflateTile(raw, this.p, outputEstimate(raw.length, this.lastRatio));
          this.lastRatio = data.length / raw.length;
          this.freeTiles.push(raw);
          return data;
        }),
      );
    }
    const prev = this.pending;
    const sink = this.sink!;
    const job = (async () => {
      await prev;
      for (const tile of compressed) {
        const data = await tile;
        const leader = Buffer.allocUnsafe(4);
        leader.writeUInt32LE(data.length, 0);
        // GDAL's BLOCK_TRAILER=LAST_4_BYTES_REPEATED lets readers detect a torn tile.
        await sink.append(leader);
        await sink.append(data);
        await sink.append(data.subarray(data.length - 4));
        this.byteCounts.push(data.length);
      }
    })();
    for (const t of compressed) t.catch(() => {}); // each is awaited by the job above
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
 * `reuse` is a tile buffer of an earlier call to fill instead of a new one; `diff` the float32
 * predictor's scratch (ts·bands words).
 */
export function encodeTile(p: TileParams, rowBuf: PixelArray[], width: number, x0: number, rows: number, reuse?: Uint8Array, diff?: Uint32Array): Uint8Array {
  const ts = p.tileSize;
  const nb = p.bands;
  const w = Math.min(ts, width - x0);
  const bytes = ts * ts * nb * SAMPLE_ARRAYS[p.type].BYTES_PER_ELEMENT;
  const out = reuse?.length === bytes && reuse.byteOffset % 8 === 0 ? reuse : new Uint8Array(bytes);
  if (p.type === 'float32') {
    const lanes = rowBuf.map((r) => new Uint32Array(r.buffer, r.byteOffset, r.length));
    // WebAssembly SIMD where the runtime has it; the same bytes in JavaScript otherwise.
    if (!predictFloat32Tile(lanes, width, x0, w, rows, ts, out))
      float32PredictedTile(lanes, width, x0, w, rows, ts, new Uint32Array(out.buffer, out.byteOffset, bytes / 4), diff ?? new Uint32Array(ts * nb));
    return out;
  }
  // Integers are predicted in place; float64 goes through an interleaved copy.
  const tile = isFloat(p.type) ? allocPixels(p.type, ts * ts * nb) : new SAMPLE_ARRAYS[p.type](out.buffer as ArrayBuffer, out.byteOffset, ts * ts * nb);
  if (tile.buffer === out.buffer && out === reuse && (w < ts || rows < ts)) tile.fill(0);
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
  if (!isFloat(p.type)) {
    horizontalDiff(tile as IntArray, ts, ts * nb, nb);
    return out;
  }
  floatingPointDiff(new Uint8Array(tile.buffer, tile.byteOffset, tile.byteLength), ts, ts * nb, nb, tile.BYTES_PER_ELEMENT, out);
  return out;
}
