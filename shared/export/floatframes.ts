/**
 * The fast path for the common case — float features in tf.train.Examples (SPEC §4 Decision: every
 * band a float_list): every record has the same layout, so the protobuf bytes around the floats are
 * a constant template and each float list lands at a fixed offset. Records are framed straight into
 * one chunk buffer (header, template gaps, floats converted from the window, CRC footer) with no
 * per-record allocation; the bytes equal `encodeExample` + `frameRecords` (tests check it, and EE's
 * real shard is reproduced through this path).
 */
import { maskedCrc32c } from '../crc32c.js';
import { encodeExample, varintSize, type Feature } from '../example.js';
import { GeotfrError } from '../errors.js';
import { recordHeader, RECORD_OVERHEAD_BYTES } from '../record.js';
import type { WindowData } from '../raster/types.js';
import type { ExportGrid } from './grid.js';
import type { FeatureLayout } from './layout.js';

interface Block {
  /** Offset of the packed floats within the payload. */
  offset: number;
  /** Floats in the block. */
  count: number;
}

const ld = (n: number) => 1 + varintSize(n) + n;

/** Where each feature's floats sit in the serialized Example (map entry: key then value, SPEC §4). */
function floatBlocks(features: { name: Uint8Array; count: number }[]): { blocks: Block[]; size: number } {
  let body = 0;
  const parts = features.map((f) => {
    const listBody = ld(f.count * 4);
    const featureBody = ld(listBody);
    const entryBody = ld(f.name.length) + ld(featureBody);
    body += ld(entryBody);
    return { ...f, listBody, featureBody, entryBody };
  });
  let pos = 1 + varintSize(body);
  const blocks = parts.map((p) => {
    const offset = pos + 1 + varintSize(p.entryBody) + ld(p.name.length) + 1 + varintSize(p.featureBody) + 1 + varintSize(p.listBody) + 1 + varintSize(p.count * 4);
    pos += ld(p.entryBody);
    return { offset, count: p.count };
  });
  return { blocks, size: pos };
}

/** Frames float-feature Examples for patches of one grid straight into chunk buffers. */
export class FloatFramer {
  private readonly template: Buffer;
  private readonly blocks: Block[];
  private readonly header: Buffer;
  private readonly scratch: Float32Array[];
  readonly recordBytes: number;

  constructor(
    private readonly grid: ExportGrid,
    private readonly layout: FeatureLayout,
    private readonly collapse: boolean,
  ) {
    const n = grid.tileWidth * grid.tileHeight;
    const enc = new TextEncoder();
    const feats = collapse
      ? [{ name: enc.encode(layout.bands[0].name), count: layout.bands.reduce((s, b) => s + b.depth, 0) * n }]
      : layout.bands.map((b) => ({ name: enc.encode(b.name), count: b.depth * n }));
    const { blocks, size } = floatBlocks(feats);
    // The template is the canonical encoder's output with zero floats: the layout check is built in.
    this.template = encodeExample(feats.map((f, i): [string, Feature] => [collapse ? layout.bands[0].name : layout.bands[i].name, { kind: 'float_list', value: new Float32Array(f.count) }]));
    if (this.template.length !== size) throw new GeotfrError('INTERNAL', `float layout of ${size} bytes disagrees with the encoder's ${this.template.length}`);
    this.blocks = blocks;
    this.recordBytes = size;
    this.header = recordHeader(size);
    this.scratch = layout.bands.map((b) => new Float32Array(b.depth * n));
  }

  /** Framed records of the given patches (column offsets `ox` in the window) in one buffer. */
  frame(win: WindowData, patchOffsets: number[]): Buffer {
    const framed = this.recordBytes + RECORD_OVERHEAD_BYTES;
    const out = Buffer.allocUnsafe(framed * patchOffsets.length);
    const tpl = this.template;
    patchOffsets.forEach((ox, k) => {
      const rec = k * framed;
      const payload = rec + 12;
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
        const s = this.scratch[i];
        this.fillTile(win, i, ox, s, band.fill, band.sourceDepth, band.depth);
        const bytes = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
        out.set(bytes, payload + this.blocks[blockIndex].offset + within);
        if (this.collapse) within += s.byteLength;
        else blockIndex++;
      });
      out.writeUInt32LE(maskedCrc32c(out.subarray(payload, payload + this.recordBytes)), payload + this.recordBytes);
    });
    return out;
  }

  /** One band's tile into `dst` ([D, th, tw]): float32 of the source, masked pixels → fill, depth padded. */
  private fillTile(win: WindowData, bandIndex: number, ox: number, dst: Float32Array, fill: number, sourceDepth: number, depth: number): void {
    const { tileWidth: tw, tileHeight: th } = this.grid;
    const W = win.width;
    const plane = W * win.height;
    const src = win.values[bandIndex];
    const valid = win.valid[bandIndex];
    const copyDepth = Math.min(depth, sourceDepth);
    for (let d = 0; d < copyDepth; d++) {
      let o = d * th * tw;
      for (let y = 0; y < th; y++) {
        const row = y * W + ox;
        const s = d * plane + row;
        // One fused pass (a plain indexed loop JIT-compiles tighter than subarray + set + mask scan).
        for (let x = 0; x < tw; x++, o++) dst[o] = valid[row + x] ? src[s + x] : fill;
      }
    }
    if (copyDepth < depth) dst.fill(fill, copyDepth * th * tw);
  }
}
