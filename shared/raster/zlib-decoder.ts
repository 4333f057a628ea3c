/**
 * DEFLATE tiles decoded by `node:zlib` instead of geotiff's default pako: about 2× faster
 * (ECOSYSTEM.md, "COG window read"), and the async API inflates on libuv's thread pool so several
 * tiles of one window decode in parallel on a multi-core machine.
 *
 * The output chunk size is one byte more than the block's decoded size (from the IFD): zlib then
 * inflates a tile into one buffer instead of hundreds of 16 KiB pieces, each a JS callback,
 * concatenated at the end. Not exactly the size: node:zlib takes an output buffer filled to the
 * last byte as "maybe more to come", allocates a second one of the same size and makes a second
 * trip to the thread pool to find the stream's end (every 8 MB tile of a COG cost 16 MB of fresh
 * memory that way, and the collections that memory starts).
 */
import { inflate as inflateCb, type ZlibOptions } from 'node:zlib';
import { BaseDecoder, addDecoder } from 'geotiff';
import { limit } from '../limits.js';
import { toArrayBuffer } from './blobsource.js';

const inflate = (buf: Uint8Array, opts: ZlibOptions) =>
  new Promise<Buffer>((resolve, reject) => inflateCb(buf, opts, (err, out) => (err ? reject(err) : resolve(out))));

/** What geotiff passes a decoder about the block layout (TiffFile.open sets these). */
export type BlockParameters = {
  tileWidth?: number;
  tileHeight?: number;
  bitsPerSample?: number | ArrayLike<number>;
  planarConfiguration?: number;
  samplesPerPixel?: number;
};

/** Decoded bytes of one full block, or undefined when the IFD does not say. */
export function blockBytes(p: BlockParameters | undefined): number | undefined {
  if (!p || !(p.tileWidth! > 0) || !(p.tileHeight! > 0) || p.bitsPerSample === undefined) return undefined;
  const bits = typeof p.bitsPerSample === 'number' ? [p.bitsPerSample] : Array.from(p.bitsPerSample);
  if (!bits.length) return undefined;
  const spp = p.samplesPerPixel ?? bits.length;
  const perPixel = p.planarConfiguration === 2 ? bits[0]! : bits.length === spp ? bits.reduce((a, b) => a + b, 0) : bits[0]! * spp;
  const n = Math.ceil((p.tileWidth! * perPixel) / 8) * p.tileHeight!;
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** geotiff decoder for TIFF compression 8 (Deflate) and 32946 (old Adobe Deflate). */
export class ZlibDeflateDecoder extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBufferLike): Promise<ArrayBuffer> {
    const n = blockBytes((this as unknown as { parameters?: BlockParameters }).parameters);
    // A tile never decodes to more than its declared size: inflating stops there, so a DEFLATE bomb
    // (256 KiB declared, 512 MiB of zeros inside) costs at most one block (docs/limits.md).
    const cap = Math.min(n ?? Infinity, limit('maxBlockBytes'));
    // A byte more than the block (see above); zlib's minimum is 64. More than `cap` still fails below.
    const opts: ZlibOptions = n ? { chunkSize: Math.max(64, cap + 1), maxOutputLength: cap } : { maxOutputLength: cap };
    try {
      const out = await inflate(new Uint8Array(buffer), opts);
      // A whole block is handed on in its own buffer, without a copy: one spare byte at the end,
      // past every sample a reader indexes (geotiff's predictor works row by row from offset 0). A
      // short one is copied to its exact length, so the caller's size check sees how short it is.
      if (out.length === n && out.byteOffset === 0 && out.buffer instanceof ArrayBuffer) return out.buffer;
      return toArrayBuffer(out);
    } catch (err) {
      // geotiff.ts names the file and the tile around this message.
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        throw new Error(`DEFLATE data inflates to more than the block's ${cap} decoded bytes${n === undefined ? ' (the maxBlockBytes limit)' : ''}`);
      throw err;
    }
  }
}

let registered = false;

/** Registers the node:zlib decoder with geotiff (idempotent). */
export function registerZlibDecoder(): void {
  if (registered) return;
  registered = true;
  // preferWorker=false: we decode in-process (zlib already runs off the main thread).
  addDecoder([8, 32946], async () => ZlibDeflateDecoder, undefined, false);
}
