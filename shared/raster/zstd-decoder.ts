/**
 * TIFF ZSTD (compression 50000) decoded into at most the block's declared size (docs/limits.md).
 * geotiff's own decoder lets zstd allocate whatever the frame says it holds, or grow without bound
 * when it does not say; a 16 KiB frame of run-length blocks can declare 512 MiB. Here the frame
 * header's content size is checked against the block before anything is allocated, and zstd then
 * decodes into a buffer of exactly the allowed capacity, failing rather than writing past it.
 */
import { BaseDecoder, addDecoder } from 'geotiff';
import type { ZSTDDecoder } from 'zstddec/stream';
import { limit } from '../limits.js';
import { blockBytes, type BlockParameters } from './zlib-decoder.js';

let zstd: Promise<ZSTDDecoder> | undefined;
/**
 * zstddec (86 KB of JavaScript around its WebAssembly) loads with the first ZSTD data, as `lerc`
 * does (header-decoders.ts): most sources have none, and every command paid for parsing it.
 */
const loadZstd = (): Promise<ZSTDDecoder> =>
  (zstd ??= import('zstddec/stream').then(async ({ ZSTDDecoder: Decoder }) => {
    const d = new Decoder();
    await d.init();
    return d;
  }));
const ZSTD_MAGIC = 0xfd2fb528;

/**
 * The decoded size a zstd frame header declares (RFC 8878 §3.1.1.1), or undefined when the frame does
 * not say (or is not a zstd frame: zstd then reports the error).
 */
export function zstdFrameContentSize(b: Uint8Array): number | undefined {
  if (b.length < 6) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0, true) !== ZSTD_MAGIC) return undefined;
  const fhd = b[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  let at = 5 + (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  const size = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  if (size === 0 || at + size > b.length) return undefined;
  if (size === 1) return b[at];
  if (size === 2) return dv.getUint16(at, true) + 256;
  if (size === 4) return dv.getUint32(at, true);
  const lo = dv.getUint32(at, true);
  at += 4;
  return dv.getUint32(at, true) * 2 ** 32 + lo;
}

/**
 * Decodes a zstd stream into at most `cap` bytes: a frame declaring more is refused from its header,
 * one that does not say decodes into a buffer of `cap` bytes and fails past it. `what` names the data.
 */
export async function zstdDecodeCapped(data: Uint8Array, cap: number, what = 'ZSTD', capNote = ''): Promise<Uint8Array> {
  const declared = zstdFrameContentSize(data);
  // geotiff.ts names the file and the tile around these messages.
  if (declared !== undefined && declared > cap) throw new Error(`${what} data declares ${declared} decoded bytes, more than the block's ${cap}${capNote}`);
  // With a capacity, zstd decodes into a buffer of exactly that size and fails instead of going past it.
  const out = (await loadZstd()).decode(data, declared ?? cap);
  if (out.byteLength === 0 && data.length > 0) throw new Error(`${what} data is corrupt or decodes to more than the block's ${cap} decoded bytes${capNote}`);
  return out;
}

/** geotiff decoder for TIFF compression 50000 (ZSTD). */
export class CappedZstdDecoder extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBufferLike): Promise<ArrayBuffer> {
    const n = blockBytes((this as unknown as { parameters?: BlockParameters }).parameters);
    const cap = Math.min(n ?? Infinity, limit('maxBlockBytes'));
    const out = await zstdDecodeCapped(new Uint8Array(buffer), cap, 'ZSTD', n === undefined ? ' (the maxBlockBytes limit)' : '');
    return out.byteLength === out.buffer.byteLength ? (out.buffer as ArrayBuffer) : out.slice().buffer;
  }
}

let registered = false;

/** Registers the capped ZSTD decoder with geotiff (idempotent). */
export function registerZstdDecoder(): void {
  if (registered) return;
  registered = true;
  addDecoder(50000, async () => CappedZstdDecoder, undefined, false);
}
