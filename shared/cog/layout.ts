/**
 * The one COG layout both writers follow (docs/semantics.md §13), GDAL's own so that `gdalinfo`
 * reports `LAYOUT=COG`: header, the "ghost" structural metadata GDAL looks for, every IFD (full
 * resolution first, then overviews by decreasing size), then tile data from the smallest overview to
 * full resolution, each level's tiles row-major, each tile with a 4-byte size leader and its last 4
 * bytes repeated as trailer.
 *
 * Given the compressed size of every tile, everything else follows: IFD sizes do not depend on
 * where they land, and tile offsets are prefix sums of the sizes. So the single-process writer and
 * the distributed finalizer, which learns the sizes from the strips, write the same header bytes.
 * BigTIFF is chosen when the classic 32-bit offsets would overflow (or when forced).
 */
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import { SAMPLE_ARRAYS, isFloatType as isFloat, type SampleType } from '../raster/types.js';
import { geoTags } from './geokeys.js';
import { FieldType, TiffTag, encodeHeader, encodeIfd, ifdSize, type IfdEntry, type TiffFlavor } from './ifd.js';

const SAMPLE_FORMAT_UINT = 1;
const SAMPLE_FORMAT_INT = 2;
const SAMPLE_FORMAT_FLOAT = 3;
const COMPRESSION_DEFLATE = 8;
const PHOTOMETRIC_MINISBLACK = 1;
const PLANAR_CONTIG = 1;

/** GDAL's structural metadata block, byte for byte what its COG driver writes (140 bytes). */
const GHOST_BODY =
  'LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ';
const GHOST = Buffer.from(`GDAL_STRUCTURAL_METADATA_SIZE=${String(Buffer.byteLength(GHOST_BODY)).padStart(6, '0')} bytes\n${GHOST_BODY}`, 'latin1');

/** Bytes a tile of `size` compressed bytes takes in the file (leader + data + trailer). */
export const TILE_OVERHEAD_BYTES = 8;

/** What the header describes besides the tile sizes. */
export interface CogMeta {
  width: number;
  height: number;
  bands: number;
  type: SampleType;
  tileSize: number;
  /** "EPSG:n". */
  crs: string;
  affine: Affine;
  bandNames?: string[];
  nodata?: number;
  /** File name for error messages. */
  file?: string;
}

/** Level sizes: halve (rounding up) until the level fits in one tile, as GDAL's COG driver does. */
export function levelSizes(width: number, height: number, tileSize: number): [number, number][] {
  const sizes: [number, number][] = [[width, height]];
  for (let [w, h] = sizes[0]; w > tileSize || h > tileSize; ) {
    w = Math.ceil(w / 2);
    h = Math.ceil(h / 2);
    sizes.push([w, h]);
  }
  return sizes;
}

/** Where everything goes, for one set of tile sizes. */
export interface CogPlan {
  flavor: TiffFlavor;
  ifdOffsets: number[];
  /** Per level, the offset of each tile's data (after its leader). */
  tileOffsets: number[][];
  /** Offset of the first tile's leader (the end of the header part). */
  dataStart: number;
  /** File size. */
  total: number;
}

export class CogLayout {
  readonly sizes: [number, number][];

  constructor(readonly meta: CogMeta) {
    this.sizes = levelSizes(meta.width, meta.height, meta.tileSize);
  }

  get levels(): number {
    return this.sizes.length;
  }

  /** Tiles across and down at level `i`. */
  tiles(i: number): [number, number] {
    const ts = this.meta.tileSize;
    return [Math.ceil(this.sizes[i][0] / ts), Math.ceil(this.sizes[i][1] / ts)];
  }

  /** The IFD entries of level `i`. */
  levelTags(i: number, offsets: number[], byteCounts: number[], flavor: TiffFlavor): IfdEntry[] {
    const m = this.meta;
    const [width, height] = this.sizes[i];
    const nb = m.bands;
    const bytes = SAMPLE_ARRAYS[m.type].BYTES_PER_ELEMENT;
    const fmt = isFloat(m.type) ? SAMPLE_FORMAT_FLOAT : m.type.startsWith('u') ? SAMPLE_FORMAT_UINT : SAMPLE_FORMAT_INT;
    const offType = flavor.bigTiff ? FieldType.LONG8 : FieldType.LONG;
    const rep = (v: number, n: number) => new Array<number>(n).fill(v);
    const tags: IfdEntry[] = [
      { tag: TiffTag.ImageWidth, type: FieldType.LONG, values: [width] },
      { tag: TiffTag.ImageLength, type: FieldType.LONG, values: [height] },
      { tag: TiffTag.BitsPerSample, type: FieldType.SHORT, values: rep(bytes * 8, nb) },
      { tag: TiffTag.Compression, type: FieldType.SHORT, values: [COMPRESSION_DEFLATE] },
      { tag: TiffTag.Photometric, type: FieldType.SHORT, values: [PHOTOMETRIC_MINISBLACK] },
      { tag: TiffTag.SamplesPerPixel, type: FieldType.SHORT, values: [nb] },
      { tag: TiffTag.PlanarConfiguration, type: FieldType.SHORT, values: [PLANAR_CONTIG] },
      { tag: TiffTag.Predictor, type: FieldType.SHORT, values: [isFloat(m.type) ? 3 : 2] },
      { tag: TiffTag.TileWidth, type: FieldType.SHORT, values: [m.tileSize] },
      { tag: TiffTag.TileLength, type: FieldType.SHORT, values: [m.tileSize] },
      { tag: TiffTag.TileOffsets, type: offType, values: offsets },
      { tag: TiffTag.TileByteCounts, type: offType, values: byteCounts },
      { tag: TiffTag.SampleFormat, type: FieldType.SHORT, values: rep(fmt, nb) },
    ];
    if (i > 0) tags.push({ tag: TiffTag.NewSubfileType, type: FieldType.LONG, values: [1] }); // reduced-resolution image
    // Extra samples beyond the first are plain data ("unspecified"), as GDAL writes for multi-band gray.
    if (nb > 1) tags.push({ tag: TiffTag.ExtraSamples, type: FieldType.SHORT, values: rep(0, nb - 1) });
    if (m.nodata !== undefined) tags.push({ tag: TiffTag.GdalNodata, type: FieldType.ASCII, values: formatNodata(m.nodata) });
    if (i === 0) {
      tags.push(...geoTags(m.crs, m.affine, m.file));
      const names = m.bandNames;
      if (names?.length) tags.push({ tag: TiffTag.GdalMetadata, type: FieldType.ASCII, values: gdalMetadataXml(names) });
    }
    return tags;
  }

  private checkCounts(byteCounts: number[][]): void {
    if (byteCounts.length !== this.levels) throw new GeotfrError('INTERNAL', `COG layout: ${byteCounts.length} levels of tile sizes, expected ${this.levels}`);
    for (let i = 0; i < this.levels; i++) {
      const [a, d] = this.tiles(i);
      if (byteCounts[i].length !== a * d) throw new GeotfrError('INTERNAL', `COG layout: level ${i} has ${byteCounts[i].length} tiles, expected ${a * d}`);
    }
  }

  /** Places IFDs after the ghost block and tiles after the IFDs (smallest overview first). */
  private place(byteCounts: number[][], flavor: TiffFlavor): CogPlan {
    const n = this.levels;
    let pos = (flavor.bigTiff ? 16 : 8) + GHOST.length;
    const ifdOffsets: number[] = [];
    for (let i = 0; i < n; i++) {
      pos += pos & 1; // IFDs start on a word boundary
      ifdOffsets.push(pos);
      const placeholder = new Array<number>(byteCounts[i].length).fill(0);
      pos += ifdSize(this.levelTags(i, placeholder, byteCounts[i], flavor), flavor);
    }
    pos += pos & 1;
    const dataStart = pos;
    const tileOffsets: number[][] = new Array(n);
    for (let i = n - 1; i >= 0; i--) {
      const offs: number[] = [];
      for (const size of byteCounts[i]) {
        offs.push(pos + 4); // after the 4-byte leader
        pos += size + TILE_OVERHEAD_BYTES;
      }
      tileOffsets[i] = offs;
    }
    return { flavor, ifdOffsets, tileOffsets, dataStart, total: pos };
  }

  /**
   * The layout for these tile sizes (per level, row-major). `bigTiff`: `auto` switches to BigTIFF
   * only when 32-bit offsets would overflow; `yes` forces it; `no` refuses a file that needs it.
   */
  plan(byteCounts: number[][], bigTiff: 'auto' | 'yes' | 'no' = 'auto'): CogPlan {
    this.checkCounts(byteCounts);
    let plan = this.place(byteCounts, { bigTiff: bigTiff === 'yes' });
    if (!plan.flavor.bigTiff && plan.total > 0xffffffff) {
      if (bigTiff === 'no') throw new GeotfrError('LIMIT', `output of ${plan.total} bytes needs BigTIFF, which was disabled`, { file: this.meta.file });
      plan = this.place(byteCounts, { bigTiff: true });
    }
    return plan;
  }

  /** Everything before the first tile: header, ghost block, IFDs with final offsets, padding. */
  header(plan: CogPlan, byteCounts: number[][]): Buffer {
    const { flavor, ifdOffsets, tileOffsets, dataStart } = plan;
    const parts: Buffer[] = [encodeHeader(ifdOffsets[0], flavor), GHOST];
    let pos = (flavor.bigTiff ? 16 : 8) + GHOST.length;
    for (let i = 0; i < this.levels; i++) {
      if (pos < ifdOffsets[i]) parts.push(Buffer.alloc(ifdOffsets[i] - pos));
      const next = i + 1 < this.levels ? ifdOffsets[i + 1] : 0;
      const ifd = encodeIfd(this.levelTags(i, tileOffsets[i], byteCounts[i], flavor), ifdOffsets[i], next, flavor);
      parts.push(ifd);
      pos = ifdOffsets[i] + ifd.length;
    }
    if (pos < dataStart) parts.push(Buffer.alloc(dataStart - pos));
    const out = Buffer.concat(parts);
    if (out.length !== dataStart) throw new GeotfrError('INTERNAL', `COG header is ${out.length} bytes, planned ${dataStart}`);
    return out;
  }
}

/** GDAL_NODATA is ASCII: integers plainly, NaN as "nan", floats with enough digits to round-trip. */
export function formatNodata(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return Number.isInteger(v) ? String(v) : v.toPrecision(17).replace(/0+$/, '').replace(/\.$/, '');
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Band descriptions as GDAL stores them (its PAM metadata XML in tag 42112, sample = 0-based band).
 * GDAL escapes item values twice (CPLEscapeString, then its XML serializer) and unescapes twice on
 * reading, so a single escape would lose `<`, `&` and quotes: we do exactly what GDAL does.
 */
function gdalMetadataXml(names: string[]): string {
  const items = names.map((n, i) => `  <Item name="DESCRIPTION" sample="${i}" role="description">${xmlEscape(xmlEscape(n))}</Item>\n`).join('');
  return `<GDALMetadata>\n${items}</GDALMetadata>\n`;
}
