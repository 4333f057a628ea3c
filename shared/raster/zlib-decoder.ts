/**
 * DEFLATE tiles decoded by `node:zlib` instead of geotiff's default pako: about 2× faster
 * (ECOSYSTEM.md, "COG window read"), and the async API inflates on libuv's thread pool so several
 * tiles of one window decode in parallel on a multi-core machine.
 */
import { promisify } from 'node:util';
import { inflate as inflateCb } from 'node:zlib';
import { BaseDecoder, addDecoder } from 'geotiff';

const inflate = promisify(inflateCb);

/** Copies a Node Buffer into an ArrayBuffer of its exact size (geotiff's predictor indexes the whole buffer). */
function exactArrayBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** geotiff decoder for TIFF compression 8 (Deflate) and 32946 (old Adobe Deflate). */
export class ZlibDeflateDecoder extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBufferLike): Promise<ArrayBuffer> {
    return exactArrayBuffer(await inflate(new Uint8Array(buffer)));
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
