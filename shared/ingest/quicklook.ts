/**
 * Quicklook PNGs: a single band, linearly stretched between its 2nd and 98th percentiles to 8-bit
 * gray (NaN black), subsampled to at most `maxSize` pixels on the long side. PNG written by hand
 * (signature, IHDR, one zlib IDAT of filter-0 scanlines, IEND; CRC-32 from node:zlib) so the demos
 * need no image library; `encodePng` also serves the export demo's RGB quicklook (cli/quicklook.ts).
 */
import { promises as fs } from 'node:fs';
import * as zlib from 'node:zlib';

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * Encodes 8-bit pixels (row-major, `channels` interleaved bytes per pixel) as a PNG: colour type 0
 * (grayscale) for 1 channel, 2 (RGB) for 3.
 */
export function encodePng(width: number, height: number, pixels: Uint8Array, channels: 1 | 3): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 0; // colour type: RGB or grayscale
  const stride = width * channels;
  const raw = Buffer.alloc((stride + 1) * height); // each scanline: filter byte 0 (none), then pixels
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Writes a stretched, subsampled quicklook of one band; returns its size. */
export async function writeQuicklook(file: string, band: ArrayLike<number>, width: number, height: number, maxSize = 1024): Promise<{ width: number; height: number }> {
  const step = Math.max(1, Math.ceil(Math.max(width, height) / maxSize));
  const ow = Math.ceil(width / step);
  const oh = Math.ceil(height / step);
  const sample = new Float64Array(ow * oh);
  for (let y = 0, i = 0; y < oh; y++) for (let x = 0; x < ow; x++) sample[i++] = band[y * step * width + x * step];
  const finite = Float64Array.from(sample.filter(Number.isFinite)).sort();
  const lo = finite.length ? finite[Math.floor(0.02 * (finite.length - 1))] : 0;
  const hi = finite.length ? finite[Math.ceil(0.98 * (finite.length - 1))] : 1;
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const px = new Uint8Array(ow * oh);
  for (let i = 0; i < px.length; i++) {
    const v = sample[i];
    px[i] = Number.isFinite(v) ? Math.max(0, Math.min(255, Math.round((v - lo) * scale))) : 0;
  }
  await fs.writeFile(file, encodePng(ow, oh, px, 1));
  return { width: ow, height: oh };
}
