/**
 * One GeoTIFF/COG file as a pixel source: its grid, sample types, nodata and band descriptions, and
 * window reads aligned to its internal tiles or strips. Whole blocks are fetched and decoded once and
 * kept in a decoded-block LRU sized for about two rows of blocks across the image, so the overlapping
 * tiles of neighbouring export patches (margins, docs/semantics.md §3) never decode a block twice.
 */
import { GeoTIFF, getDecoder, type GeoTIFFImage } from 'geotiff';
import { GeotfrError, abortable, asGeotfrError } from '../errors.js';
import { BlobSource, type BlobSourceOptions } from './blobsource.js';
import { readAffine, readCrs } from './georef.js';
import type { RangeReader } from '../storage/http.js';
import { missingInput } from '../storage/open.js';
import { checkLimit, formatCount } from '../limits.js';
import { LruCache, type CacheStats } from './lru.js';
import { option } from '../options.js';
import { blockCacheShare } from '../budget.js';
import { SAMPLE_ARRAYS, type PixelArray as Typed, type PixelGrid, type ReadFront, type SampleType } from './types.js';
import { registerLzwDecoder } from './lzw-decoder.js';
import { registerZlibDecoder } from './zlib-decoder.js';
import { registerZstdDecoder } from './zstd-decoder.js';
import { registerHeaderCheckedDecoders } from './header-decoders.js';

type Decoder = Awaited<ReturnType<typeof getDecoder>>;

export interface TiffOpenOptions {
  /**
   * Decoded block cache budget; default: GEOTFR_TILE_CACHE_MB, else two rows of blocks across the
   * image, at most the memory budget's block share (shared/budget.ts; 256 MiB of the default 1 GiB).
   * With a `blockProvider` the other thread's cache holds the blocks: a few are kept here.
   */
  tileCacheBytes?: number;
  source?: BlobSourceOptions;
  signal?: AbortSignal;
  /** Keep decoded blocks in SharedArrayBuffers, so other threads can read them (`sharedBlock`). */
  sharedBlocks?: boolean;
  /**
   * Take decoded blocks from another thread's TiffFile of the same file (its `sharedBlock`) instead
   * of fetching and decoding them here: the export's worker threads then decode each block once
   * between them (shared/export/run.ts).
   */
  blockProvider?: BlockProvider;
}

/** Decoded bytes of block (bx, by) of sample plane `plane` (0 for pixel-interleaved files), as `TiffFile.sharedBlock` returns them. */
export type BlockProvider = (bx: number, by: number, plane: number) => Promise<ArrayBufferLike>;

const SAMPLE_TYPES: Record<string, SampleType> = {
  '1/8': 'uint8',
  '2/8': 'int8',
  '1/16': 'uint16',
  '2/16': 'int16',
  '1/32': 'uint32',
  '2/32': 'int32',
  '3/32': 'float32',
  '3/64': 'float64',
};

/** Bytes per sample of each type. */
const BYTES = Object.fromEntries(Object.entries(SAMPLE_ARRAYS).map(([t, C]) => [t, C.BYTES_PER_ELEMENT])) as Record<SampleType, number>;

/** `buf` as samples of `type` (whole samples only). */
function typedView(type: SampleType, buf: ArrayBufferLike): Typed {
  // One signature for the union of constructors (TypeScript picks an ArrayBuffer-only overload otherwise).
  const View = SAMPLE_ARRAYS[type] as new (buf: ArrayBufferLike, byteOffset: number, length: number) => Typed;
  return new View(buf, 0, Math.floor(buf.byteLength / BYTES[type]));
}

/** Parses GDAL's nodata text ("-9999", "nan", "inf", "-inf"); undefined when absent. */
function parseGdalNodata(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const t = text.replace(/\0+$/, '').trim().toLowerCase();
  if (!t) return undefined;
  if (t === 'nan' || t === '-nan') return NaN;
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  const v = Number(t);
  return Number.isNaN(v) ? undefined : v;
}

/** Extracts `<Item name="DESCRIPTION" sample="i" role="description">` values from GDAL_METADATA XML. */
function parseBandDescriptions(xml: unknown, bands: number): (string | undefined)[] {
  const out: (string | undefined)[] = new Array(bands).fill(undefined);
  if (typeof xml !== 'string') return out;
  const unescapeXml = (s: string) =>
    s
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&amp;/g, '&');
  for (const m of xml.matchAll(/<Item\b([^>]*)>([\s\S]*?)<\/Item>/g)) {
    const attrs = m[1]!;
    const attr = (n: string) => attrs.match(new RegExp(`\\b${n}\\s*=\\s*"([^"]*)"`))?.[1];
    if (attr('role') !== 'description') continue;
    const sample = Number(attr('sample'));
    // GDAL escapes item values before serializing the XML, so they are escaped twice; it unescapes twice on read.
    if (Number.isInteger(sample) && sample >= 0 && sample < bands) out[sample] = unescapeXml(unescapeXml(m[2]!));
  }
  return out;
}

export class TiffFile {
  readonly grid: PixelGrid;
  /** Sample type of each band (0-based). */
  readonly sampleTypes: SampleType[];
  /** GDAL band descriptions (0-based), undefined where unset. */
  readonly descriptions: (string | undefined)[];
  /** GDAL_NODATA (applies to every band of the file in GeoTIFF). */
  readonly nodata: number | undefined;
  readonly blockWidth: number;
  readonly blockHeight: number;
  readonly blocksAcross: number;
  readonly blocksDown: number;
  /** Blocks decoded so far (for tests and benchmarks: each should decode once). */
  decodes = 0;
  private readonly planar: boolean;
  private readonly spp: number;
  private readonly swap: boolean;
  private readonly ownPredictor: boolean;
  private readonly cache: LruCache<Typed>;
  private readonly shared: boolean;
  private readonly provider: BlockProvider | undefined;
  /** Sparse blocks, held as one fill sample each instead of the whole block (copy() fills from it). */
  private readonly sparse = new WeakSet<Typed>();
  /** Blocks whose top rows `retire` cut off: how many rows they start below the block's top. */
  private readonly firstRow = new WeakMap<Typed, number>();

  private constructor(
    readonly uri: string,
    private readonly tiff: GeoTIFF,
    private readonly image: GeoTIFFImage,
    private readonly decoder: Decoder,
    readonly source: BlobSource,
    meta: { grid: PixelGrid; types: SampleType[]; descriptions: (string | undefined)[]; nodata: number | undefined; swap: boolean; ownPredictor: boolean },
    opts: TiffOpenOptions,
  ) {
    this.grid = meta.grid;
    this.sampleTypes = meta.types;
    this.descriptions = meta.descriptions;
    this.nodata = meta.nodata;
    this.spp = meta.types.length;
    this.planar = image.planarConfiguration === 2 && this.spp > 1;
    this.swap = meta.swap;
    this.ownPredictor = meta.ownPredictor;
    this.blockWidth = image.getTileWidth();
    this.blockHeight = image.getTileHeight();
    this.blocksAcross = Math.ceil(meta.grid.width / this.blockWidth);
    this.blocksDown = Math.ceil(meta.grid.height / this.blockHeight);
    const blockBytes = this.blockWidth * this.blockHeight * BYTES[meta.types[0]!] * this.spp;
    const twoRows = 2 * (this.blocksAcross + 1) * blockBytes;
    // GEOTFR_TILE_CACHE_MB lets a deployment trade re-decodes for memory (e.g. many workers, wide images).
    const envMb = option('tileCacheMb');
    const fromEnv = envMb > 0 ? envMb * 1024 * 1024 : undefined;
    // A worker thread fed by a provider keeps only a few blocks: a large cache here would pin shared
    // blocks the serving thread has dropped, multiplying memory by the number of threads.
    const byDefault = opts.blockProvider ? 4 * blockBytes : Math.min(blockCacheShare(), Math.max(twoRows, 4 * blockBytes));
    this.cache = new LruCache<Typed>(opts.tileCacheBytes ?? fromEnv ?? byDefault);
    this.shared = opts.sharedBlocks === true;
    this.provider = opts.blockProvider;
  }

  /** Opens `key` in `store` (`uri` names it in errors). Only the header and first IFD are read. */
  static async open(store: RangeReader, key: string, uri: string, opts: TiffOpenOptions = {}): Promise<TiffFile> {
    registerZlibDecoder();
    registerLzwDecoder();
    registerZstdDecoder();
    await registerHeaderCheckedDecoders();
    let info;
    try {
      info = await store.stat(key);
    } catch (err) {
      throw asGeotfrError(err, { file: uri });
    }
    if (!info) throw await missingInput(store, key, uri, 'raster');
    const source = new BlobSource(store, key, info.size, uri, opts.source);
    let tiff: GeoTIFF;
    let image: GeoTIFFImage;
    try {
      tiff = await GeoTIFF.fromSource(source as never, { cache: false }, opts.signal);
      image = await tiff.getImage(0);
    } catch (err) {
      if (err instanceof GeotfrError) throw err;
      throw new GeotfrError('BAD_INPUT', `not a readable GeoTIFF (${(err as Error).message})`, { file: uri }, { cause: err });
    }
    try {
      const fd = image.getFileDirectory();
      const spp = image.getSamplesPerPixel();
      const types: SampleType[] = [];
      for (let s = 0; s < spp; s++) {
        const key = `${image.getSampleFormat(s) ?? 1}/${image.getBitsPerSample(s)}`;
        const t = SAMPLE_TYPES[key];
        if (!t)
          throw new GeotfrError(
            'BAD_INPUT',
            `band ${s + 1} has an unsupported sample format/bits (${key}); supported: 8/16/32-bit integers, float32, float64`,
            { file: uri },
          );
        types.push(t);
      }
      if (types.some((t) => BYTES[t] !== BYTES[types[0]!]))
        throw new GeotfrError('BAD_INPUT', `bands have different sample sizes (${types.join(', ')})`, { file: uri });
      // Blocks are decoded whole, so their declared size bounds memory: refuse absurd ones here,
      // before anything is read (a 298-byte file can declare one 16384² float tile).
      const tw = image.getTileWidth(),
        th = image.getTileHeight();
      const perBlock = tw * th * BYTES[types[0]!] * (image.planarConfiguration === 2 ? 1 : spp);
      checkLimit(
        'maxBlockBytes',
        perBlock,
        `a ${tw}×${th} ${image.isTiled ? 'tile' : 'strip'} of ${formatCount(perBlock)} decoded bytes`,
        { file: uri },
        {
          hint: 'rewrite it in smaller blocks (gdal_translate -co TILED=YES)',
        },
      );
      const grid: PixelGrid = { crs: readCrs(image, uri), affine: readAffine(image, uri), width: image.getWidth(), height: image.getHeight() };
      const nodata = parseGdalNodata(fd.hasTag('GDAL_NODATA') ? await fd.loadValue('GDAL_NODATA') : undefined);
      const descriptions = parseBandDescriptions(fd.hasTag('GDAL_METADATA') ? await fd.loadValue('GDAL_METADATA') : undefined, spp);
      const compression = (fd.getValue('Compression') as number | undefined) ?? 1;
      let predictor = ((fd.hasTag('Predictor') ? await fd.loadValue('Predictor') : 1) as number) || 1;
      // geotiff undoes horizontal differencing on host-order words, which is wrong for big-endian
      // files; we then swap to host order first and undo it ourselves. The floating-point predictor
      // (3) already yields host-order bytes, so those blocks are not swapped at all.
      const bigEndianWords = !image.littleEndian && BYTES[types[0]!] > 1;
      const ownPredictor = bigEndianWords && predictor === 2;
      if (ownPredictor) predictor = 1;
      // GDAL/libtiff write LERC in big-endian files in a way neither geotiff nor GDAL reads back consistently.
      if (bigEndianWords && compression === 34887)
        throw new GeotfrError('BAD_INPUT', 'LERC compression in a big-endian TIFF is not supported; rewrite it (gdal_translate -co ENDIANNESS=LITTLE)', {
          file: uri,
        });
      // JPEG in YCbCr (GDAL's default for RGB JPEG GeoTIFFs) decodes to Y, Cb, Cr; GDAL converts those to RGB
      // with libjpeg's chroma upsampling, which we do not reproduce: refuse rather than export other values.
      if (compression === 7 && fd.hasTag('PhotometricInterpretation') && (await fd.loadValue('PhotometricInterpretation')) === 6)
        throw new GeotfrError(
          'BAD_INPUT',
          'JPEG tiles in YCbCr (PHOTOMETRIC=YCBCR) are not supported; rewrite them with gdal_translate -co COMPRESS=JPEG -co PHOTOMETRIC=RGB, or a lossless compression',
          { file: uri },
        );
      const swap = bigEndianWords && predictor !== 3;
      const params: Record<string, unknown> = {
        tileWidth: image.getTileWidth(),
        tileHeight: image.getTileHeight(),
        planarConfiguration: image.planarConfiguration,
        bitsPerSample: await fd.loadValue('BitsPerSample'),
        predictor,
        samplesPerPixel: spp,
      };
      if (fd.hasTag('JPEGTables')) params.JPEGTables = await fd.loadValue('JPEGTables');
      if (fd.hasTag('LercParameters')) params.LercParameters = await fd.loadValue('LercParameters');
      let decoder: Decoder;
      try {
        decoder = await getDecoder(compression, params as never);
      } catch (err) {
        throw new GeotfrError('BAD_INPUT', `unsupported TIFF compression ${compression} (${(err as Error).message})`, { file: uri }, { cause: err });
      }
      return new TiffFile(uri, tiff, image, decoder, source, { grid, types, descriptions, nodata, swap, ownPredictor }, opts);
    } catch (err) {
      if (err instanceof GeotfrError) throw err;
      throw new GeotfrError('BAD_INPUT', `unreadable GeoTIFF metadata (${(err as Error).message})`, { file: uri }, { cause: err });
    }
  }

  /**
   * Reads the given 0-based samples over the part of window (x0, y0, w, h) inside the image into
   * `out[k]` (row-major, `w*h` each, indexed relative to the window). Pixels outside the image are
   * left untouched.
   */
  async readSamples(
    x0: number,
    y0: number,
    w: number,
    h: number,
    samples: number[],
    out: (Float64Array | Float32Array)[],
    signal?: AbortSignal,
  ): Promise<void> {
    const { width: W, height: H } = this.grid;
    const ix0 = Math.max(0, x0),
      iy0 = Math.max(0, y0);
    const ix1 = Math.min(W, x0 + w),
      iy1 = Math.min(H, y0 + h);
    if (ix1 <= ix0 || iy1 <= iy0) return;
    for (const s of samples) if (!(s >= 0 && s < this.spp)) throw new GeotfrError('INTERNAL', `sample ${s} out of range`, { file: this.uri });
    const bw = this.blockWidth,
      bh = this.blockHeight;
    const bx0 = Math.floor(ix0 / bw),
      bx1 = Math.floor((ix1 - 1) / bw);
    const by0 = Math.floor(iy0 / bh),
      by1 = Math.floor((iy1 - 1) / bh);
    // Cached block loads are shared between readers, so they never see one caller's signal (an abort
    // would otherwise fail every reader of that block); a caller checks its own signal around them.
    const cancelled = () => new GeotfrError('CANCELLED', 'read cancelled', { file: this.uri });
    if (signal?.aborted) throw cancelled();
    const jobs: Promise<void>[] = [];
    // Planar files store each sample in its own blocks; chunky blocks hold every sample.
    const reads = this.planar ? samples.map((s, k) => [s, k] as const) : [[0, -1] as const];
    for (let by = by0; by <= by1; by++) {
      for (let bx = bx0; bx <= bx1; bx++) {
        for (const [plane, k] of reads) {
          jobs.push(
            (async () => {
              // Intersection of this block with the in-image part of the window.
              const cx0 = Math.max(ix0, bx * bw),
                cx1 = Math.min(ix1, (bx + 1) * bw);
              const cy0 = Math.max(iy0, by * bh),
                cy1 = Math.min(iy1, (by + 1) * bh);
              let data = await this.block(bx, by, plane);
              if (cy0 < by * bh + (this.firstRow.get(data) ?? 0)) {
                // Rows a `retire` front said no read would touch: decoded again, whole (correct, only slower).
                this.cache.delete(blockKey(bx, by, plane));
                data = await this.block(bx, by, plane);
              }
              if (this.sparse.has(data)) {
                if (k >= 0) fillRect(out[k]!, data[0]!, cx0, cx1, cy0, cy1, x0, y0, w);
                else for (let i = 0; i < samples.length; i++) fillRect(out[i]!, data[0]!, cx0, cx1, cy0, cy1, x0, y0, w);
              } else if (k >= 0) this.copy(data, 0, 1, out[k]!, bx, by, cx0, cx1, cy0, cy1, x0, y0, w);
              else for (let i = 0; i < samples.length; i++) this.copy(data, samples[i]!, this.spp, out[i]!, bx, by, cx0, cx1, cy0, cy1, x0, y0, w);
            })(),
          );
        }
      }
    }
    const all = Promise.all(jobs);
    all.catch(() => {}); // after an abort it settles in the background; nobody waits for it
    await abortable(all, signal, cancelled);
  }

  /**
   * Copies rows of one sample of a decoded block into a window. A block holding that sample alone
   * (planar, or one band) copies with `set`, which converts natively (a memcpy for float32 into
   * float32); a pixel-interleaved block is gathered with its stride, straight from the decoded bytes.
   */
  private copy(
    block: Typed,
    sample: number,
    stride: number,
    dst: Float64Array | Float32Array,
    bx: number,
    by: number,
    cx0: number,
    cx1: number,
    cy0: number,
    cy1: number,
    x0: number,
    y0: number,
    w: number,
  ): void {
    const bw = this.blockWidth;
    const ox = bx * bw,
      oy = by * this.blockHeight + (this.firstRow.get(block) ?? 0);
    const len = cx1 - cx0;
    for (let y = cy0; y < cy1; y++) {
      const src = (y - oy) * bw + (cx0 - ox);
      const at = (y - y0) * w + (cx0 - x0);
      if (stride === 1) dst.set(block.subarray(src, src + len), at);
      else if (block instanceof Float32Array) gatherFloat32(block, src * stride + sample, stride, dst, at, len);
      else gather(block, src * stride + sample, stride, dst, at, len);
    }
  }

  /**
   * A decoded block, cached: one sample's plane for planar files (`plane` = the sample), every sample
   * pixel-interleaved for chunky ones (copy() gathers them; no de-interleaved copy is made).
   */
  private block(bx: number, by: number, plane: number): Promise<Typed> {
    const rows = this.image.getBlockHeight(by);
    return this.cache.get(blockKey(bx, by, plane), this.blockBytes(by), async () => {
      const stride = this.planar ? 1 : this.spp;
      const type = this.sampleTypes[plane]!;
      const need = this.blockWidth * rows * stride;
      if (this.provider) {
        const arr = typedView(type, await this.provider(bx, by, plane));
        if (arr.length === 1 && need > 1) {
          this.sparse.add(arr); // the other thread's sparse block (see below)
          return arr;
        }
        if (arr.length < need)
          throw new GeotfrError('INTERNAL', `shared block (${bx}, ${by}) holds ${arr.length} samples, expected ${need}`, { file: this.uri });
        return arr;
      }
      let data: ArrayBuffer;
      try {
        // A sparse block (byte count 0, GDAL's SPARSE_OK) reads as nodata like in GDAL; geotiff would
        // fill it with 0 when the nodata is NaN.
        const index = (this.planar ? plane * this.blocksAcross * this.blocksDown : 0) + by * this.blocksAcross + bx;
        const counts = this.image.isTiled ? 'TileByteCounts' : 'StripByteCounts';
        if (Number(await this.image.getFileDirectory().loadValueIndexed(counts, index)) === 0) {
          // One sample holds the fill, not the declared block: a sparse block costs nothing however
          // large it says it is. Passed to other threads as is (a one-sample buffer for a bigger block).
          const one = BYTES[type];
          const sparse = typedView(type, this.shared ? new SharedArrayBuffer(one) : new ArrayBuffer(one));
          sparse[0] = this.nodata ?? 0;
          if (need > 1) this.sparse.add(sparse);
          return sparse;
        }
        data = (await this.image.getTileOrStrip(bx, by, plane, this.decoder)).data as ArrayBuffer;
      } catch (err) {
        if (err instanceof GeotfrError) throw err;
        throw new GeotfrError(
          'BAD_INPUT',
          `cannot decode ${this.image.isTiled ? 'tile' : 'strip'} (${bx}, ${by}) (${(err as Error).message})`,
          { file: this.uri },
          { cause: err },
        );
      }
      this.decodes++;
      if (this.swap) swapBytes(data, BYTES[type]);
      const arr = typedView(type, data);
      if (this.ownPredictor) undoHorizontalDifferencing(arr, this.blockWidth * stride, stride);
      if (arr.length < need)
        throw new GeotfrError('BAD_INPUT', `${this.image.isTiled ? 'tile' : 'strip'} (${bx}, ${by}) decodes to ${arr.length} samples, expected ${need}`, {
          file: this.uri,
        });
      if (!this.shared) return arr;
      const sab = new SharedArrayBuffer(need * BYTES[type]);
      new Uint8Array(sab).set(new Uint8Array(arr.buffer, arr.byteOffset, sab.byteLength));
      return typedView(type, sab);
    });
  }

  /** Decoded bytes of one block in block row `by` (one sample's plane for planar files), as the cache counts them. */
  private blockBytes(by: number): number {
    return this.blockWidth * this.image.getBlockHeight(by) * BYTES[this.sampleTypes[0]!] * (this.planar ? 1 : this.spp);
  }

  /**
   * Starts decoding the blocks of the given samples over window (x0, y0, w, h) that are not cached
   * yet, in the background, as long as the cache has room for them: a prefetch never drops a block
   * to make room (that block may be the one the next read needs). A block that fails to decode is
   * not kept, so the read that needs it decodes it again and reports the error. Resolves when the
   * decodes it started have settled (callers need not wait; tests do).
   */
  prefetch(x0: number, y0: number, w: number, h: number, samples: number[]): Promise<void> {
    const { width: W, height: H } = this.grid;
    const ix0 = Math.max(0, x0),
      iy0 = Math.max(0, y0);
    const ix1 = Math.min(W, x0 + w),
      iy1 = Math.min(H, y0 + h);
    const started: Promise<unknown>[] = [];
    const done = () => Promise.allSettled(started).then(() => {});
    if (ix1 <= ix0 || iy1 <= iy0) return done();
    const bw = this.blockWidth,
      bh = this.blockHeight;
    const planes = this.planar ? [...new Set(samples)].filter((s) => s >= 0 && s < this.spp) : [0];
    for (let by = Math.floor(iy0 / bh); by <= Math.floor((iy1 - 1) / bh); by++) {
      const bytes = this.blockBytes(by);
      for (let bx = Math.floor(ix0 / bw); bx <= Math.floor((ix1 - 1) / bw); bx++)
        for (const plane of planes) {
          if (this.cache.has(blockKey(bx, by, plane))) continue;
          if (this.cache.bytesUsed + bytes > this.cache.budgetBytes) return done();
          started.push(this.block(bx, by, plane));
        }
    }
    return done();
  }

  /**
   * The decoded bytes of a block in shared memory, for another thread's `blockProvider` (the file
   * must be open with `sharedBlocks`). Cached like any block read here, so each decodes once.
   */
  async sharedBlock(bx: number, by: number, plane: number): Promise<SharedArrayBuffer> {
    if (!this.shared) throw new GeotfrError('INTERNAL', 'sharedBlock() needs a file opened with sharedBlocks', { file: this.uri });
    const ok =
      Number.isInteger(bx) &&
      Number.isInteger(by) &&
      bx >= 0 &&
      by >= 0 &&
      bx < this.blocksAcross &&
      by < this.blocksDown &&
      plane >= 0 &&
      plane < (this.planar ? this.spp : 1);
    if (!ok) throw new GeotfrError('INTERNAL', `no block (${bx}, ${by}) of plane ${plane}`, { file: this.uri });
    return (await this.block(bx, by, plane)).buffer as SharedArrayBuffer;
  }

  /**
   * Drops the cached blocks no read within `front` (file pixels) touches, and cuts off the top rows
   * no such read touches from the others: a reader going through the file in raster order of
   * windows (the export) then holds about one row of blocks, where the cache allows two. Blocks
   * shared with other threads are only dropped (those threads expect whole blocks).
   */
  retire(front: ReadFront): void {
    const bw = this.blockWidth,
      bh = this.blockHeight;
    const stride = this.planar ? 1 : this.spp;
    this.cache.sweep((key, block) => {
      const [, by, bx] = key.split(':').map(Number) as [number, number, number];
      const top = by * bh;
      const bottom = top + this.image.getBlockHeight(by);
      // The first row a later read can touch in this block's columns.
      const need = (bx + 1) * bw <= front.x ? front.nextRowY : front.rowY;
      if (need >= bottom) return 'drop';
      if (!block || this.shared || this.sparse.has(block)) return undefined;
      const gone = this.firstRow.get(block) ?? 0;
      const cut = need - top - gone;
      // Cut a quarter of a block or more at a time: each cut copies what is kept.
      if (cut < bh / 4) return undefined;
      const kept = (block as Float32Array).slice(cut * bw * stride) as Typed;
      this.firstRow.set(kept, gone + cut);
      return { value: kept, bytes: kept.byteLength };
    });
  }

  /** What the decoded block cache did (hits, decodes, re-decodes of dropped blocks). */
  cacheStats(): CacheStats & { decodes: number } {
    return { ...this.cache.stats, decodes: this.decodes };
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.tiff.close();
  }
}

/** A block's key in the decoded block cache (`retire` reads it back). */
const blockKey = (bx: number, by: number, plane: number) => `${plane}:${by}:${bx}`;

/** Big-endian files: geotiff hands back decoded bytes in file order; typed arrays need host (little-endian) order. */
function swapBytes(buf: ArrayBuffer, size: number): void {
  const b = new Uint8Array(buf);
  for (let i = 0; i + size <= b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = t;
    }
  }
}

/** TIFF predictor 2 (horizontal differencing) undone in place, per row; typed arrays wrap like the encoder's integer arithmetic. */
function undoHorizontalDifferencing(arr: Typed, rowLength: number, stride: number): void {
  for (let row = 0; row + rowLength <= arr.length; row += rowLength) {
    for (let i = row + stride, end = row + rowLength; i < end; i++) arr[i] = arr[i]! + arr[i - stride]!;
  }
}

/** Sets the window pixels of rectangle [cx0, cx1) × [cy0, cy1) (image coordinates) to `v`. */
function fillRect(dst: Float64Array | Float32Array, v: number, cx0: number, cx1: number, cy0: number, cy1: number, x0: number, y0: number, w: number): void {
  for (let y = cy0; y < cy1; y++) {
    const at = (y - y0) * w + (cx0 - x0);
    dst.fill(v, at, at + (cx1 - cx0));
  }
}

/** `n` samples `stride` apart from `src[from]` into `dst[at…]`. */
function gather(src: Typed, from: number, stride: number, dst: Float64Array | Float32Array, at: number, n: number): void {
  for (let i = 0, j = from; i < n; i++, j += stride) dst[at + i] = src[j]!;
}

/**
 * `gather` for the common COG (float32 samples): a function of its own, because V8 keeps type
 * feedback per function, so this loop stays monomorphic whatever other sample types are read.
 */
function gatherFloat32(src: Float32Array, from: number, stride: number, dst: Float64Array | Float32Array, at: number, n: number): void {
  for (let i = 0, j = from; i < n; i++, j += stride) dst[at + i] = src[j]!;
}
