/**
 * The fast path for the common case — float features in tf.train.Examples (docs/semantics.md §4 Decision: every
 * band a float_list): every record has the same layout, so the protobuf bytes around the floats are
 * a constant template and each float list lands at a fixed offset. Records are framed straight into
 * one chunk buffer (header, template gaps, floats converted from the window, CRC footer) with no
 * per-record allocation; the bytes equal `encodeExample` + `frameRecords` (the entry bytes come from
 * example.ts, the framing from tfrecord/framing.ts; tests check it, and EE's real shard is reproduced
 * through this path).
 */
import { exampleSize, floatEntryPrefix, writeExampleHead } from '../tfrecord/example.js';
import { GeotfrError } from '../errors.js';
import { framedSize, RECORD_HEADER_BYTES, recordHeader, writeRecordFooter } from '../tfrecord/framing.js';
import type { WindowData } from '../raster/types.js';
import type { ExportGrid } from './grid.js';
import type { FeatureLayout } from './layout.js';

interface Block {
  /** Offset of the packed floats within the payload. */
  offset: number;
  /** Floats in the block. */
  count: number;
}

/**
 * The Example with every float left out (`template`, whose float ranges are uninitialised) and where
 * each feature's floats go: the map entries' bytes come from the encoder (example.ts), so this is the
 * layout `encodeExample` writes.
 */
function floatTemplate(features: { name: string; count: number }[]): { template: Buffer; blocks: Block[] } {
  const { prefixes, body } = floatBody(features);
  const template = Buffer.allocUnsafe(exampleSize(body));
  let pos = writeExampleHead(template, 0, body);
  const blocks = features.map((f, i) => {
    template.set(prefixes[i], pos);
    pos += prefixes[i].length;
    const block = { offset: pos, count: f.count };
    pos += f.count * 4;
    return block;
  });
  return { template, blocks };
}

/** The float features of one Example of `grid`'s tiles: every band, or one collapsed feature named after the first. */
function floatFeatures(grid: ExportGrid, layout: FeatureLayout, collapse: boolean): { name: string; count: number }[] {
  const n = grid.tileWidth * grid.tileHeight;
  return collapse
    ? [{ name: layout.bands[0].name, count: layout.bands.reduce((s, b) => s + b.depth, 0) * n }]
    : layout.bands.map((b) => ({ name: b.name, count: b.depth * n }));
}

/**
 * Serialized bytes of one float-feature Example of `grid`'s tiles: the length FloatFramer's records
 * have, from the entry prefixes alone (the planner's record size, without encoding a record).
 */
export function floatRecordBytes(grid: ExportGrid, layout: FeatureLayout, collapse: boolean): number {
  return exampleSize(floatBody(floatFeatures(grid, layout, collapse)).body);
}

/** Each feature's map-entry prefix, and the Features message body: the prefixes and their floats. */
function floatBody(features: { name: string; count: number }[]): { prefixes: Buffer[]; body: number } {
  const prefixes = features.map((f) => floatEntryPrefix(f.name, f.count));
  let body = 0;
  features.forEach((f, i) => {
    body += prefixes[i].length + f.count * 4;
  });
  return { prefixes, body };
}

/** Frames float-feature Examples for patches of one grid straight into chunk buffers. */
export class FloatFramer {
  private readonly template: Buffer;
  private readonly blocks: Block[];
  private readonly header: Buffer;
  /** One tile row of floats, for rows that need per-pixel work (masked pixels, float64 sources, depth padding). */
  private readonly row: Float32Array;
  private readonly rowBytes: Uint8Array;
  /** Per band: its fill as 4 little-endian float32 bytes (for masked runs and depth padding). */
  private readonly fillBytes: Buffer[];
  readonly recordBytes: number;
  /** One framed record: length header, payload, CRC footer. */
  readonly framedBytes: number;

  constructor(
    private readonly grid: ExportGrid,
    private readonly layout: FeatureLayout,
    private readonly collapse: boolean,
  ) {
    const { template, blocks } = floatTemplate(floatFeatures(grid, layout, collapse));
    this.template = template;
    this.blocks = blocks;
    this.recordBytes = template.length;
    this.framedBytes = framedSize(template.length);
    this.header = recordHeader(template.length);
    this.row = new Float32Array(grid.tileWidth);
    this.rowBytes = new Uint8Array(this.row.buffer);
    this.fillBytes = layout.bands.map((b) => {
      const f = Buffer.allocUnsafe(4);
      f.writeFloatLE(b.fill);
      return f;
    });
  }

  /**
   * Framed records of the given patches (column offsets `ox` in the window) in one buffer: the start
   * of `into` when given (it must hold them all; every byte of that part is overwritten), else a new one.
   */
  frame(win: WindowData, patchOffsets: number[], into?: Buffer): Buffer {
    const framed = this.framedBytes;
    const need = framed * patchOffsets.length;
    if (into && into.length < need) throw new GeotfrError('INTERNAL', `frame buffer of ${into.length} bytes, ${need} needed`);
    const out = into ? into.subarray(0, need) : Buffer.allocUnsafe(need);
    const tpl = this.template;
    const tileBytes = this.grid.tileWidth * this.grid.tileHeight * 4;
    const rowsValid = win.valid.map((v) => fullyValidRows(v, win.width, win.height));
    // Byte views of float32 bands (copied straight into records); float64 bands are converted row by row.
    const f32 = win.values.map((src) => (src instanceof Float32Array ? Buffer.from(src.buffer, src.byteOffset, src.byteLength) : undefined));
    patchOffsets.forEach((ox, k) => {
      const rec = k * framed;
      const payload = rec + RECORD_HEADER_BYTES;
      this.header.copy(out, rec);
      // Template bytes between float blocks (tags, keys, lengths).
      let from = 0;
      for (const b of this.blocks) {
        tpl.copy(out, payload + from, from, b.offset);
        from = b.offset + b.count * 4;
      }
      tpl.copy(out, payload + from, from, tpl.length);
      // Floats: band by band (collapsed: the bands' channels back to back in one block).
      let blockIndex = 0;
      let within = 0;
      this.layout.bands.forEach((band, i) => {
        this.writeBand(win, i, f32[i], rowsValid[i], ox, out, payload + this.blocks[blockIndex].offset + within);
        if (this.collapse) within += band.depth * tileBytes;
        else blockIndex++;
      });
      writeRecordFooter(out, payload, this.recordBytes);
    });
    return out;
  }

  /**
   * One band's tile ([D, th, tw] little-endian float32) into `out` at byte `at`: the source as float32,
   * masked pixels → fill, depth padded with fill. A float32 window goes in as byte copies of its valid
   * runs and fills of its masked runs; a float64 one is converted one tile row at a time.
   */
  private writeBand(win: WindowData, bandIndex: number, f32: Buffer | undefined, rowsValid: Uint8Array, ox: number, out: Buffer, at: number): void {
    const { tileWidth: tw, tileHeight: th } = this.grid;
    const W = win.width;
    const plane = W * win.height;
    const src = win.values[bandIndex];
    const valid = win.valid[bandIndex];
    const { fill, sourceDepth, depth } = this.layout.bands[bandIndex];
    const fillBytes = this.fillBytes[bandIndex];
    const copyDepth = Math.min(depth, sourceDepth);
    let pos = at;
    for (let d = 0; d < copyDepth; d++) {
      for (let y = 0; y < th; y++, pos += tw * 4) {
        const v = y * W + ox;
        const s = d * plane + v;
        const whole = rowsValid[y] === 1;
        if (f32) copyRow32(f32, valid, whole, s, v, tw, out, pos, fillBytes);
        else {
          convertRow64(src as Float64Array, valid, whole, s, v, this.row, fill);
          out.set(this.rowBytes, pos);
        }
      }
    }
    if (copyDepth < depth) out.fill(fillBytes, pos, pos + (depth - copyDepth) * th * tw * 4);
  }
}

/** A tile row from a float32 window: valid runs as byte copies, masked runs as the fill's 4 bytes repeated. */
function copyRow32(src: Buffer, valid: Uint8Array, whole: boolean, s: number, v: number, tw: number, out: Buffer, pos: number, fillBytes: Buffer): void {
  if (whole) {
    src.copy(out, pos, s * 4, (s + tw) * 4);
    return;
  }
  for (let x = 0; x < tw; ) {
    let e = x;
    while (e < tw && valid[v + e] !== 0) e++;
    if (e > x) src.copy(out, pos + x * 4, (s + x) * 4, (s + e) * 4);
    let f = e;
    while (f < tw && valid[v + f] === 0) f++;
    if (f > e) out.fill(fillBytes, pos + e * 4, pos + f * 4);
    x = f;
  }
}

/** A tile row from a float64 window into `row` (float32): masked pixels → fill. */
function convertRow64(src: Float64Array, valid: Uint8Array, whole: boolean, s: number, v: number, row: Float32Array, fill: number): void {
  const tw = row.length;
  if (whole) {
    row.set(src.subarray(s, s + tw));
    return;
  }
  for (let x = 0; x < tw; x++) row[x] = valid[v + x] !== 0 ? src[s + x]! : fill;
}

/** Per window row: 1 when every pixel of the row is valid. One native scan for zeros over the flags. */
function fullyValidRows(valid: Uint8Array, width: number, height: number): Uint8Array {
  const rows = new Uint8Array(height).fill(1);
  for (let i = valid.indexOf(0); i !== -1; ) {
    const y = Math.floor(i / width);
    rows[y] = 0;
    if (y + 1 >= height) break;
    i = valid.indexOf(0, (y + 1) * width);
  }
  return rows;
}
