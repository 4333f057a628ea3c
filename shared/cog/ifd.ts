/**
 * TIFF image file directories (TIFF 6.0 §2, BigTIFF): tag entries serialized with their
 * out-of-line values placed right after the directory, little-endian.
 *
 * Sizes do not depend on where a directory lands, so a writer can lay out the whole file first
 * (COG: every IFD before any tile data) and serialize each IFD once its offset is known.
 */

/** TIFF field types used by the writer. */
export const enum FieldType {
  ASCII = 2,
  SHORT = 3,
  LONG = 4,
  DOUBLE = 12,
  LONG8 = 16,
}

const TYPE_BYTES: Record<FieldType, number> = {
  [FieldType.ASCII]: 1,
  [FieldType.SHORT]: 2,
  [FieldType.LONG]: 4,
  [FieldType.DOUBLE]: 8,
  [FieldType.LONG8]: 8,
};

/** TiffTag numbers (TIFF 6.0, GeoTIFF 1.0, GDAL's private tags). */
export const TiffTag = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  SamplesPerPixel: 277,
  PlanarConfiguration: 284,
  Predictor: 317,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  ExtraSamples: 338,
  SampleFormat: 339,
  ModelPixelScale: 33550,
  ModelTiepoint: 33922,
  ModelTransformation: 34264,
  GeoKeyDirectory: 34735,
  GeoDoubleParams: 34736,
  GeoAsciiParams: 34737,
  GdalMetadata: 42112,
  GdalNodata: 42113,
} as const;

export interface IfdEntry {
  tag: number;
  type: FieldType;
  /** Numbers, or a string for ASCII (a NUL terminator is added). */
  values: ArrayLike<number> | string;
}

/** Byte layout parameters of classic TIFF vs BigTIFF. */
export interface TiffFlavor {
  bigTiff: boolean;
}

const entrySize = (f: TiffFlavor) => (f.bigTiff ? 20 : 12);
const inlineBytes = (f: TiffFlavor) => (f.bigTiff ? 8 : 4);
const countBytes = (f: TiffFlavor) => (f.bigTiff ? 8 : 2);
const nextBytes = (f: TiffFlavor) => (f.bigTiff ? 8 : 4);

function valueCount(e: IfdEntry): number {
  return typeof e.values === 'string' ? Buffer.byteLength(e.values, 'utf8') + 1 : e.values.length;
}

function valueBytes(e: IfdEntry): number {
  return valueCount(e) * TYPE_BYTES[e.type];
}

/** Out-of-line values are word-aligned (TIFF 6.0: "must begin on a word boundary"). */
const pad2 = (n: number) => n + (n & 1);

/** Total bytes of a directory including its out-of-line values. */
export function ifdSize(entries: IfdEntry[], f: TiffFlavor): number {
  let size = countBytes(f) + entries.length * entrySize(f) + nextBytes(f);
  for (const e of entries) {
    const b = valueBytes(e);
    if (b > inlineBytes(f)) size += pad2(b);
  }
  return size;
}

function writeValues(buf: Buffer, at: number, e: IfdEntry): void {
  if (typeof e.values === 'string') {
    buf.write(e.values, at, 'utf8');
    buf[at + Buffer.byteLength(e.values, 'utf8')] = 0;
    return;
  }
  const v = e.values;
  for (let i = 0; i < v.length; i++) {
    switch (e.type) {
      case FieldType.SHORT:
        buf.writeUInt16LE(v[i], at + 2 * i);
        break;
      case FieldType.LONG:
        buf.writeUInt32LE(v[i], at + 4 * i);
        break;
      case FieldType.DOUBLE:
        buf.writeDoubleLE(v[i], at + 8 * i);
        break;
      case FieldType.LONG8:
        buf.writeBigUInt64LE(BigInt(v[i]), at + 8 * i);
        break;
      default:
        throw new Error(`unsupported TIFF field type ${e.type}`);
    }
  }
}

/**
 * Serializes a directory that starts at absolute file offset `offset`, with `next` as the offset of
 * the following IFD (0 for the last). Entries are sorted by tag as TIFF requires.
 */
export function encodeIfd(entries: IfdEntry[], offset: number, next: number, f: TiffFlavor): Buffer {
  const sorted = [...entries].sort((a, b) => a.tag - b.tag);
  const size = ifdSize(sorted, f);
  const buf = Buffer.alloc(size);
  let p = 0;
  if (f.bigTiff) buf.writeBigUInt64LE(BigInt(sorted.length), p);
  else buf.writeUInt16LE(sorted.length, p);
  p += countBytes(f);
  let extra = countBytes(f) + sorted.length * entrySize(f) + nextBytes(f);
  for (const e of sorted) {
    buf.writeUInt16LE(e.tag, p);
    buf.writeUInt16LE(e.type, p + 2);
    const count = valueCount(e);
    if (f.bigTiff) buf.writeBigUInt64LE(BigInt(count), p + 4);
    else buf.writeUInt32LE(count, p + 4);
    const vp = p + (f.bigTiff ? 12 : 8);
    const bytes = valueBytes(e);
    if (bytes <= inlineBytes(f)) writeValues(buf, vp, e);
    else {
      if (f.bigTiff) buf.writeBigUInt64LE(BigInt(offset + extra), vp);
      else buf.writeUInt32LE(offset + extra, vp);
      writeValues(buf, extra, e);
      extra += pad2(bytes);
    }
    p += entrySize(f);
  }
  if (f.bigTiff) buf.writeBigUInt64LE(BigInt(next), p);
  else buf.writeUInt32LE(next, p);
  return buf;
}

/** The file header: byte order, magic (42 or BigTIFF's 43) and the first IFD's offset. */
export function encodeHeader(firstIfd: number, f: TiffFlavor): Buffer {
  if (f.bigTiff) {
    const b = Buffer.alloc(16);
    b.write('II', 0, 'latin1');
    b.writeUInt16LE(43, 2);
    b.writeUInt16LE(8, 4); // bytesize of offsets
    b.writeUInt16LE(0, 6);
    b.writeBigUInt64LE(BigInt(firstIfd), 8);
    return b;
  }
  const b = Buffer.alloc(8);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(firstIfd, 4);
  return b;
}
