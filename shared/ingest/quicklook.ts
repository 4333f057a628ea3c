/**
 * Quicklook PNGs: a single band, linearly stretched between the 2nd and 98th percentiles of its
 * *valid* pixels to 8-bit gray, fills (nodata, NaN) in magenta so a hole never passes for a value,
 * subsampled to at most `maxSize` pixels on the long side and enlarged (whole pixels) to at least
 * `minSize`, so a small raster is still visible. PNG written by hand
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

export interface QuicklookOptions {
  /** Long side at most this (subsampling; default 1024). */
  maxSize?: number;
  /** Long side at least this (nearest-neighbour enlargement by a whole factor; default 512). */
  minSize?: number;
  /** Fill value: shown in the fill colour and left out of the stretch (NaN always is). */
  nodata?: number;
}

/** The colour of fills (nodata, NaN): magenta, which no gray stretch produces. */
export const FILL_RGB: [number, number, number] = [255, 0, 255];

/** Writes a stretched quicklook of one band (RGB: gray values, fills in magenta); returns its size. */
export async function writeQuicklook(
  file: string,
  band: ArrayLike<number>,
  width: number,
  height: number,
  opts: QuicklookOptions = {},
): Promise<{ width: number; height: number }> {
  const maxSize = opts.maxSize ?? 1024;
  const minSize = opts.minSize ?? 512;
  const step = Math.max(1, Math.ceil(Math.max(width, height) / maxSize));
  const sw = Math.ceil(width / step);
  const sh = Math.ceil(height / step);
  const sample = new Float64Array(sw * sh);
  for (let y = 0, i = 0; y < sh; y++) for (let x = 0; x < sw; x++) sample[i++] = band[y * step * width + x * step];
  const isFill = (v: number) => !Number.isFinite(v) || (opts.nodata !== undefined && v === opts.nodata);
  // The stretch sees valid pixels only: a fill value inside the 2–98% range would wash the picture out.
  const valid = Float64Array.from(sample.filter((v) => !isFill(v))).sort();
  const lo = valid.length ? valid[Math.floor(0.02 * (valid.length - 1))] : 0;
  const hi = valid.length ? valid[Math.ceil(0.98 * (valid.length - 1))] : 1;
  const scale = hi > lo ? 255 / (hi - lo) : 0;
  const zoom = Math.max(1, Math.ceil(minSize / Math.max(sw, sh)));
  const ow = sw * zoom;
  const oh = sh * zoom;
  const px = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++)
    for (let x = 0; x < ow; x++) {
      const v = sample[Math.floor(y / zoom) * sw + Math.floor(x / zoom)];
      const o = (y * ow + x) * 3;
      if (isFill(v)) px.set(FILL_RGB, o);
      else px.fill(Math.max(0, Math.min(255, Math.round((v - lo) * scale))), o, o + 3);
    }
  await fs.writeFile(file, encodePng(ow, oh, px, 3));
  return { width: ow, height: oh };
}
