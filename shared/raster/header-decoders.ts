/**
 * JPEG (TIFF compression 7) and LERC (34887) tiles checked against the block before they are decoded
 * (docs/limits.md). Both formats carry their own width and height, and geotiff's decoders allocate
 * what those say: a 300-byte JPEG tile can state 65,500 × 65,500 pixels. Here the JPEG frame header
 * (SOF) and every LERC blob header must fit the tile, LERC's extra DEFLATE or ZSTD layer is
 * decompressed with a bound, and only then does geotiff's (JPEG) or the `lerc` package's decoder run.
 */
import { inflateSync } from 'node:zlib';
import { BaseDecoder, addDecoder, getDecoder } from 'geotiff';
import { limit } from '../limits.js';
import { blockBytes, type BlockParameters } from './zlib-decoder.js';
import { zstdDecodeCapped } from './zstd-decoder.js';

type Params = BlockParameters & { LercParameters?: ArrayLike<number> };

type LercModule = { decode(blob: ArrayBufferLike, opts: { returnPixelInterleavedDims: boolean }): { pixels: ArrayBufferView[] } };
let lerc: Promise<LercModule> | undefined;
/**
 * The `lerc` package (90 KB of CommonJS, parsed by Node's ES module loader) loads with the first
 * LERC tile rather than at every start-up: most sources never have one, and loading it up front cost
 * every CLI run, pool worker and function instance about 0.05 s (`export-image --dry-run` 0.36 →
 * 0.31 s, docs/export.md).
 */
const loadLerc = (): Promise<LercModule> =>
  // @ts-expect-error: the lerc package ships no type declarations
  (lerc ??= import('lerc').then((m: { default: LercModule }) => m.default));

const paramsOf = (d: BaseDecoder): Params => (d as unknown as { parameters?: Params }).parameters ?? {};

/** The width and height a JPEG stream's frame header (SOF0–SOF15) states, or undefined before a scan starts without one. */
export function jpegFrameSize(b: Uint8Array): { width: number; height: number } | undefined {
  let at = 2; // after SOI (FF D8)
  while (at + 4 <= b.length) {
    if (b[at] !== 0xff) return undefined;
    const m = b[at + 1]!;
    if (m === 0xff) {
      at++; // fill byte
      continue;
    }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      at += 2; // markers without a length
      continue;
    }
    const len = (b[at + 2]! << 8) | b[at + 3]!;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (at + 9 > b.length) return undefined;
      return { height: (b[at + 5]! << 8) | b[at + 6]!, width: (b[at + 7]! << 8) | b[at + 8]! };
    }
    if (m === 0xda || m === 0xd9) return undefined; // a scan (or the end) before any frame header
    at += 2 + len;
  }
  return undefined;
}

/** Bytes per value of a LERC2 image type (char, uchar, short, ushort, int, uint, float, double). */
const LERC_TYPE_BYTES = [1, 1, 2, 2, 4, 4, 4, 8];

/**
 * Decoded bytes every LERC2 blob of `b` states (height × width × depth × value size, summed over the
 * blobs, as `lerc` decodes them all), after checking each fits `tile`. Throws with the reason.
 */
export function lercDeclaredBytes(b: Uint8Array, tile: { width: number; height: number }): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  let total = 0;
  while (at + 10 <= b.length) {
    const id = String.fromCharCode(...b.subarray(at, at + 6));
    if (id.startsWith('CntZIm')) throw new Error('LERC1 blobs are not supported in TIFF tiles (GDAL writes LERC2)');
    if (id !== 'Lerc2 ') throw new Error(`not a LERC2 blob at byte ${at}`);
    const version = dv.getInt32(at + 6, true);
    let p = at + 10 + (version >= 3 ? 4 : 0);
    if (p + 8 + (version >= 4 ? 4 : 0) + 16 > b.length) throw new Error(`LERC2 header at byte ${at} is truncated`);
    const height = dv.getUint32(p, true);
    const width = dv.getUint32(p + 4, true);
    p += 8;
    const depth = version >= 4 ? dv.getUint32(p, true) : 1;
    if (version >= 4) p += 4;
    const blobSize = dv.getInt32(p + 8, true);
    const type = dv.getInt32(p + 12, true);
    if (width > tile.width || height > tile.height)
      throw new Error(`LERC blob states ${width}×${height} pixels, more than the ${tile.width}×${tile.height} tile`);
    const bytes = LERC_TYPE_BYTES[type];
    if (bytes === undefined) throw new Error(`LERC blob has unknown image type ${type}`);
    total += width * height * depth * bytes;
    if (!(blobSize > 0)) break;
    at += blobSize;
  }
  return total;
}

/** geotiff decoder for TIFF compression 7 (JPEG): geotiff's, after the frame header is checked against the tile. */
async function cappedJpegDecoder(): Promise<typeof BaseDecoder> {
  const Jpeg = (await getDecoder(7, {} as never)).constructor as typeof BaseDecoder;
  return class CappedJpegDecoder extends Jpeg {
    override decodeBlock(buffer: ArrayBufferLike): ArrayBuffer | Promise<ArrayBuffer> {
      const p = paramsOf(this);
      const size = jpegFrameSize(new Uint8Array(buffer));
      if (size && p.tileWidth && p.tileHeight && (size.width > p.tileWidth || size.height > p.tileHeight))
        throw new Error(`JPEG data states ${size.width}×${size.height} pixels, more than the ${p.tileWidth}×${p.tileHeight} tile`);
      return super.decodeBlock(buffer) as ArrayBuffer | Promise<ArrayBuffer>;
    }
  };
}

/** geotiff decoder for TIFF compression 34887 (LERC, LERC_DEFLATE, LERC_ZSTD). */
export class CappedLercDecoder extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBufferLike): Promise<ArrayBuffer> {
    const p = paramsOf(this);
    const n = blockBytes(p);
    const cap = Math.min(n ?? Infinity, limit('maxBlockBytes'));
    // A LERC blob never needs much more room than the raw pixels it encodes (its mask and headers add a little).
    const blobCap = Math.min(2 * cap + (1 << 16), 2 * limit('maxBlockBytes'));
    let data = new Uint8Array(buffer);
    const add = p.LercParameters?.[1] ?? 0;
    if (add === 1) {
      try {
        data = inflateSync(data, { maxOutputLength: blobCap });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new Error(`LERC_DEFLATE data inflates to more than ${blobCap} bytes`);
        throw err;
      }
    } else if (add === 2) data = await zstdDecodeCapped(data, blobCap, 'LERC_ZSTD');
    else if (add !== 0) throw new Error(`unsupported LERC additional compression ${add}`);
    if (p.tileWidth && p.tileHeight) {
      const declared = lercDeclaredBytes(data, { width: p.tileWidth, height: p.tileHeight });
      if (declared > cap) throw new Error(`LERC data states ${declared} decoded bytes, more than the block's ${cap}`);
    }
    // Exactly the blob's bytes (inflateSync's Buffer may sit in a larger pooled ArrayBuffer; Buffer#slice would not copy).
    const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : new Uint8Array(data).buffer;
    const r = (await loadLerc()).decode(owned, { returnPixelInterleavedDims: p.planarConfiguration === 1 });
    return r.pixels[0]!.buffer as ArrayBuffer;
  }
}

let registered: Promise<void> | undefined;

/** Registers the checked JPEG and LERC decoders with geotiff (once; every caller waits for it). */
export function registerHeaderCheckedDecoders(): Promise<void> {
  registered ??= (async () => {
    const jpeg = await cappedJpegDecoder();
    addDecoder(7, async () => jpeg, undefined, false);
    addDecoder(34887, async () => CappedLercDecoder, undefined, false);
  })();
  return registered;
}
