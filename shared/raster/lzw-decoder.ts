/**
 * TIFF LZW (compression 5) decoded into a buffer of the block's declared size, never more. geotiff's
 * own decoder appends to a JavaScript array with no bound, and LZW reaches ~2,500:1 (a 12-bit code
 * can stand for a 4,000-byte string), so a 200 KB tile could claim gigabytes (docs/limits.md).
 *
 * The TIFF 6.0 variant: codes MSB-first, 9 to 12 bits, ClearCode 256, EndOfInformation 257, the code
 * width growing one code early (at 511, 1023, 2047), as libtiff writes it.
 */
import { BaseDecoder, addDecoder } from 'geotiff';
import { limit } from '../limits.js';
import { blockBytes, type BlockParameters } from './zlib-decoder.js';

const CLEAR = 256;
const EOI = 257;
const FIRST_FREE = 258;
const MAX_CODES = 4096;

/** Decodes `input` into at most `cap` bytes; throws (a plain Error; geotiff.ts names file and tile) past that. */
export function lzwDecode(input: Uint8Array, cap: number): Uint8Array {
  // Grown by doubling up to the cap (the block's size: usually reached, as a whole block decodes).
  let out = new Uint8Array(Math.min(cap, 1 << 20));
  const room = (n: number): void => {
    if (o + n <= out.length) return;
    if (o + n > cap) throw tooLong();
    const grown = new Uint8Array(Math.min(cap, Math.max(o + n, 2 * out.length)));
    grown.set(out.subarray(0, o));
    out = grown;
  };
  const prefix = new Int16Array(MAX_CODES); // the code this one extends, -1 for single bytes
  const suffix = new Uint8Array(MAX_CODES); // its last byte
  const first = new Uint8Array(MAX_CODES); // its first byte
  const length = new Uint16Array(MAX_CODES);
  for (let i = 0; i < 256; i++) {
    prefix[i] = -1;
    suffix[i] = first[i] = i;
    length[i] = 1;
  }
  let next = FIRST_FREE;
  let width = 9;
  let prev = -1;
  let o = 0;
  const bits = input.length * 8;
  const tooLong = () => new Error(`LZW data decodes to more than the block's ${cap} decoded bytes`);
  /** Writes the string of `code` at `o`. */
  const emit = (code: number): void => {
    const n = length[code]!;
    room(n);
    for (let c = code, p = o + n - 1; c >= 0; c = prefix[c]!) out[p--] = suffix[c]!;
    o += n;
  };
  for (let pos = 0; pos + width <= bits; ) {
    const at = pos >>> 3;
    const word = (input[at]! << 16) | ((input[at + 1] ?? 0) << 8) | (input[at + 2] ?? 0);
    const code = (word >>> (24 - (pos & 7) - width)) & ((1 << width) - 1);
    pos += width;
    if (code === EOI) break;
    if (code === CLEAR) {
      next = FIRST_FREE;
      width = 9;
      prev = -1;
      continue;
    }
    if (prev < 0) {
      if (code >= 256) throw new Error(`LZW code ${code} before any string was defined`);
      emit(code);
      prev = code;
      continue;
    }
    let head: number;
    if (code < next) {
      emit(code);
      head = first[code]!;
    } else if (code === next) {
      // The string being defined: the previous one plus its own first byte.
      emit(prev);
      room(1);
      out[o++] = first[prev]!;
      head = first[prev]!;
    } else throw new Error(`LZW code ${code} is not defined yet (next is ${next})`);
    if (next < MAX_CODES) {
      prefix[next] = prev;
      suffix[next] = head;
      first[next] = first[prev]!;
      length[next] = length[prev]! + 1;
      next++;
      if (next >= (1 << width) - 1 && width < 12) width++;
    }
    prev = code;
  }
  return out.subarray(0, o);
}

/** geotiff decoder for TIFF compression 5 (LZW). */
export class CappedLzwDecoder extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBufferLike): Promise<ArrayBuffer> {
    const n = blockBytes((this as unknown as { parameters?: BlockParameters }).parameters);
    const out = lzwDecode(new Uint8Array(buffer), Math.min(n ?? Infinity, limit('maxBlockBytes')));
    return out.byteLength === out.buffer.byteLength ? (out.buffer as ArrayBuffer) : out.slice().buffer;
  }
}

let registered = false;

/** Registers the capped LZW decoder with geotiff (idempotent). */
export function registerLzwDecoder(): void {
  if (registered) return;
  registered = true;
  addDecoder(5, async () => CappedLzwDecoder, undefined, false);
}
