/**
 * Hostile GeoTIFFs written byte by byte (GDAL refuses to write them): one tile of float32 samples,
 * EPSG:4326 georeferencing, and whatever tile size, byte count and tile bytes the test declares.
 */
import * as zlib from 'node:zlib';

export interface TinyTiffSpec {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  /** 1 = none, 5 = LZW, 7 = JPEG, 8 = Deflate (zlib-wrapped), 34887 = LERC, 50000 = ZSTD. */
  compression: 1 | 5 | 7 | 8 | 34887 | 50000;
  /** LercParameters (tag 50674): [LERC version, extra compression: 0 none, 1 Deflate, 2 ZSTD]. */
  lercParameters?: [number, number];
  /** The one tile's stored bytes; empty = a sparse tile (byte count 0, GDAL's SPARSE_OK). */
  tile: Uint8Array;
  /** GDAL_NODATA text, if any. */
  nodata?: string;
}

type Tag = [tag: number, type: 2 | 3 | 4 | 12, values: number[] | string];

/** A classic little-endian TIFF with one IFD and one tile. */
export function tinyGeoTiff(s: TinyTiffSpec): Buffer {
  const tags: Tag[] = [
    [256, 4, [s.width]],
    [257, 4, [s.height]],
    [258, 3, [32]],
    [259, 3, [s.compression]],
    [262, 3, [1]],
    [277, 3, [1]],
    [284, 3, [1]],
    [322, 4, [s.tileWidth]],
    [323, 4, [s.tileHeight]],
    [324, 4, [0]], // patched below: the tile's offset
    [325, 4, [s.tile.length]],
    [339, 3, [3]],
    [33550, 12, [0.01, 0.01, 0]],
    [33922, 12, [0, 0, 0, 10, 50, 0]],
    [34735, 3, [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326]],
  ];
  if (s.nodata !== undefined) tags.push([42113, 2, s.nodata + '\0']);
  if (s.lercParameters) tags.push([50674, 4, s.lercParameters]);
  const size = (t: Tag) => (t[1] === 2 ? (t[2] as string).length : (t[2] as number[]).length * { 3: 2, 4: 4, 12: 8 }[t[1]]);
  const ifdBytes = 2 + tags.length * 12 + 4;
  let extra = 8 + ifdBytes;
  const extraAt = new Map<Tag, number>();
  for (const t of tags)
    if (size(t) > 4) {
      extraAt.set(t, extra);
      extra += size(t) + (size(t) & 1);
    }
  const tileAt = extra;
  tags.find((t) => t[0] === 324)![2] = [s.tile.length ? tileAt : 0];
  const buf = Buffer.alloc(tileAt + s.tile.length);
  buf.write('II', 0, 'latin1');
  buf.writeUInt16LE(42, 2);
  buf.writeUInt32LE(8, 4);
  buf.writeUInt16LE(tags.length, 8);
  const put = (t: Tag, at: number) => {
    if (t[1] === 2) buf.write(t[2] as string, at, 'latin1');
    else
      (t[2] as number[]).forEach((v, i) =>
        t[1] === 3 ? buf.writeUInt16LE(v, at + 2 * i) : t[1] === 4 ? buf.writeUInt32LE(v, at + 4 * i) : buf.writeDoubleLE(v, at + 8 * i),
      );
  };
  tags.forEach((t, i) => {
    const e = 10 + i * 12;
    buf.writeUInt16LE(t[0], e);
    buf.writeUInt16LE(t[1], e + 2);
    buf.writeUInt32LE(t[1] === 2 ? (t[2] as string).length : (t[2] as number[]).length, e + 4);
    const at = extraAt.get(t);
    if (at === undefined) put(t, e + 8);
    else {
      buf.writeUInt32LE(at, e + 8);
      put(t, at);
    }
  });
  buf.set(s.tile, tileAt);
  return buf;
}

/**
 * `head` then `zeros` zero bytes, compressed as zlib-wrapped DEFLATE (a TIFF tile) or gzip (a
 * TFRecord file), streamed: the zeros are never all in memory at once, and the result is about a
 * thousandth of their size.
 */
export async function compressedZeros(format: 'deflate' | 'gzip', zeros: number, head: Uint8Array = new Uint8Array(0)): Promise<Buffer> {
  const z = format === 'gzip' ? zlib.createGzip({ level: 9, chunkSize: 1 << 20 }) : zlib.createDeflate({ level: 9, chunkSize: 1 << 20 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const done = new Promise((resolve, reject) => (z.on('end', resolve), z.on('error', reject)));
  if (head.length) z.write(head);
  const chunk = Buffer.alloc(1 << 20);
  for (let left = zeros; left > 0; left -= chunk.length) {
    if (!z.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await new Promise((r) => z.once('drain', r));
  }
  z.end();
  await done;
  return Buffer.concat(out);
}

/** TIFF LZW codes of the given widths, packed MSB-first. */
export function lzwCodes(list: [code: number, width: number][]): Uint8Array {
  const out: number[] = [];
  let acc = 0,
    n = 0;
  for (const [c, w] of list) {
    acc = (acc << w) | c;
    n += w;
    while (n >= 8) {
      out.push((acc >>> (n - 8)) & 0xff);
      n -= 8;
      acc &= (1 << n) - 1;
    }
  }
  if (n) out.push((acc << (8 - n)) & 0xff);
  return Uint8Array.from(out);
}

/**
 * An LZW stream of at least `zeros` zero bytes at ~2,500:1: codes 258… each the one being defined
 * (strings of 2, 3, … zeros) until the dictionary is full, then its longest string (3,839 zeros, one
 * 12-bit code) again and again. Returns the stream and the exact number of bytes it decodes to.
 */
export function lzwBomb(zeros: number): { data: Uint8Array; bytes: number } {
  const list: [number, number][] = [
    [256, 9],
    [0, 9],
  ];
  let width = 9;
  let bytes = 1;
  for (let next = 258; next < 4096; next++) {
    list.push([next, width]);
    bytes += next - 256;
    if (next + 1 >= (1 << width) - 1 && width < 12) width++;
  }
  while (bytes < zeros) {
    list.push([4095, 12]);
    bytes += 4095 - 256;
  }
  list.push([257, 12]);
  return { data: lzwCodes(list), bytes };
}

/**
 * A zstd frame of `zeros` zero bytes made of run-length blocks (RFC 8878 §3.1.1.2: 4 bytes per
 * 128 KiB), with the content size declared in the frame header (`declare`) or left out.
 */
export function zstdZeros(zeros: number, declare: boolean): Buffer {
  const BLOCK = 128 * 1024;
  const head = [0x28, 0xb5, 0x2f, 0xfd, declare ? 0x80 : 0x00, 0x38]; // magic; FCS 4 bytes or none; window 2^17
  if (declare) head.push(zeros & 0xff, (zeros >>> 8) & 0xff, (zeros >>> 16) & 0xff, zeros >>> 24);
  const blocks: number[] = [];
  for (let left = zeros; left > 0; left -= BLOCK) {
    const n = Math.min(BLOCK, left);
    const h = (left <= BLOCK ? 1 : 0) | (1 << 1) | (n << 3); // last?, RLE, size
    blocks.push(h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff, 0);
  }
  return Buffer.from([...head, ...blocks]);
}

/** A LERC2 (version 2) blob header stating `width` × `height` float pixels, and nothing after it. */
export function lercHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(6 + 4 + 8 + 16 + 24);
  b.write('Lerc2 ', 0, 'latin1');
  b.writeInt32LE(2, 6); // version 2: no checksum, one value per pixel
  b.writeUInt32LE(height, 10);
  b.writeUInt32LE(width, 14);
  b.writeUInt32LE(width * height, 18); // valid pixels
  b.writeInt32LE(8, 22); // micro block size
  b.writeInt32LE(b.length, 26); // blob size
  b.writeInt32LE(6, 30); // float
  return b;
}

/** A JPEG stream's start: SOI and a baseline frame header (SOF0) stating `width` × `height`, 3 components. */
export function jpegHeader(width: number, height: number): Buffer {
  return Buffer.from([
    0xff,
    0xd8,
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    1,
    0x22,
    0,
    2,
    0x11,
    1,
    3,
    0x11,
    1,
    0xff,
    0xd9,
  ]);
}
