/**
 * Patch encoding (docs/semantics.md §3–4): turns a window holding the tiles of consecutive patches of one patch
 * row into serialized records — masked pixels → the band's fill, features in band order, tensor
 * depths, collapseBands, sequenceData, maskedThreshold.
 *
 * This is the hot path: one typed-array pass per band and patch, then the canonical Example encoder.
 */
import { encodeExample, encodeSequenceExample, type Feature } from '../tfrecord/example.js';
import type { WindowData } from '../raster/types.js';
import type { ExportGrid } from './grid.js';
import { intRange, type FeatureLayout, type OutBand, type ValueKind } from './layout.js';
import type { FormatOptions } from './request.js';
import { floatRecordBytes } from './floatframes.js';

/** Options the encoder needs (a subset of formatOptions). */
export type EncodeOptions = Pick<FormatOptions, 'collapseBands' | 'sequenceData' | 'maskedThreshold'>;

/** Values of one band over one tile, depth-major ([D, H, W]), masked pixels already filled. */
type TileValues = Float64Array;

/**
 * Encodes patches. One instance per export; `encodeRow()` is called with windows laid out by
 * `tilesWindow()` (the tiles of `count` adjacent patches of a row, side by side, overlapping by the margins).
 */
export class PatchEncoder {
  private readonly tw: number;
  private readonly th: number;

  constructor(
    private readonly grid: ExportGrid,
    private readonly layout: FeatureLayout,
    private readonly opts: EncodeOptions,
  ) {
    this.tw = grid.tileWidth;
    this.th = grid.tileHeight;
  }

  /** Records per patch: 1 Example, or one SequenceExample per tile pixel. */
  get recordsPerPatch(): number {
    return this.opts.sequenceData ? this.tw * this.th : 1;
  }

  /**
   * Serialized records for each of the `count` patches in `win` (window from `tilesWindow`), in patch
   * order; a patch over `maskedThreshold` yields `null` (it is not written, docs/semantics.md §4).
   */
  encodeRow(win: WindowData, count: number): (Uint8Array[] | null)[] {
    const out: (Uint8Array[] | null)[] = [];
    for (let p = 0; p < count; p++) {
      const ox = p * this.grid.patchWidth;
      if (!this.keeps(win, ox)) {
        out.push(null);
        continue;
      }
      const tiles = this.layout.bands.map((b, i) => this.tileValues(win, i, b, ox));
      out.push(this.opts.sequenceData ? this.sequenceRecords(tiles) : [this.example(tiles)]);
    }
    return out;
  }

  /** Whether the patch at column offset `ox` of the window is written: its masked fraction is within maskedThreshold (docs/semantics.md §4). */
  keeps(win: WindowData, ox: number): boolean {
    const thr = this.opts.maskedThreshold;
    return thr >= 1 || this.maskedFraction(win, ox) <= thr;
  }

  /** Fraction of the patch core's pixels where any band is masked (docs/semantics.md §4 maskedThreshold). */
  maskedFraction(win: WindowData, ox: number): number {
    const g = this.grid;
    const W = win.width;
    let masked = 0;
    for (let y = 0; y < g.patchHeight; y++) {
      const row = (y + g.marginY) * W + ox + g.marginX;
      for (let x = 0; x < g.patchWidth; x++) {
        const i = row + x;
        for (let b = 0; b < win.valid.length; b++)
          if (!win.valid[b][i]) {
            masked++;
            break;
          }
      }
    }
    return masked / (g.patchWidth * g.patchHeight);
  }

  /** One band's tile at column offset `ox` of the window: [D, th, tw], masked → fill, arrays padded/truncated. */
  private tileValues(win: WindowData, bandIndex: number, band: OutBand, ox: number): TileValues {
    const { tw, th } = this;
    const W = win.width;
    const plane = W * win.height;
    const src = win.values[bandIndex];
    const valid = win.valid[bandIndex];
    const fill = band.fill;
    const out = new Float64Array(band.depth * tw * th);
    const copyDepth = Math.min(band.depth, band.sourceDepth);
    for (let d = 0; d < copyDepth; d++) {
      const base = d * plane;
      let o = d * tw * th;
      for (let y = 0; y < th; y++) {
        const row = y * W + ox;
        for (let x = 0; x < tw; x++, o++) {
          const i = row + x;
          out[o] = valid[i] ? src[base + i] : fill;
        }
      }
    }
    if (copyDepth < band.depth) out.fill(fill, copyDepth * tw * th);
    return out;
  }

  private feature(kind: ValueKind, values: Float64Array): Feature {
    switch (kind) {
      case 'float':
        return { kind: 'float_list', value: Float32Array.from(values) };
      case 'int64': {
        const v = new BigInt64Array(values.length);
        for (let i = 0; i < values.length; i++) v[i] = BigInt(values[i]);
        return { kind: 'int64_list', value: v };
      }
      case 'bytes': {
        // 8-bit bands as one bytes_list of raw bytes (docs/semantics.md §4); int8 as two's complement.
        const v = new Uint8Array(values.length);
        for (let i = 0; i < values.length; i++) v[i] = values[i] & 0xff;
        return { kind: 'bytes_list', value: [v] };
      }
    }
  }

  private example(tiles: TileValues[]): Uint8Array {
    const bands = this.layout.bands;
    if (this.opts.collapseBands) {
      // One [C, H, W] feature named after the first band, channels in band order (docs/semantics.md §4).
      let n = 0;
      for (const t of tiles) n += t.length;
      const all = new Float64Array(n);
      let o = 0;
      for (const t of tiles) {
        all.set(t, o);
        o += t.length;
      }
      return encodeExample([[bands[0].name, this.feature(this.layout.collapsedKind, all)]]);
    }
    return encodeExample(bands.map((b, i): [string, Feature] => [b.name, this.feature(b.kind, tiles[i])]));
  }

  /** One SequenceExample per tile pixel, row-major (docs/semantics.md §4 sequenceData). */
  private sequenceRecords(tiles: TileValues[]): Uint8Array[] {
    const n = this.tw * this.th;
    const records: Uint8Array[] = new Array(n);
    for (let px = 0; px < n; px++) records[px] = this.sequenceRecord(tiles, px);
    return records;
  }

  private sequenceRecord(tiles: TileValues[], px: number): Uint8Array {
    const bands = this.layout.bands;
    const n = this.tw * this.th;
    const one = (v: number): Feature => ({ kind: 'float_list', value: Float32Array.of(v) });
    if (this.opts.collapseBands) {
      // All bands form one sequence named after the first band, one step per channel (docs/semantics.md §4).
      const steps: Feature[] = [];
      bands.forEach((b, i) => {
        for (let d = 0; d < b.depth; d++) steps.push(one(tiles[i][d * n + px]));
      });
      return encodeSequenceExample({ featureLists: [[bands[0].name, steps]] });
    }
    // Scalar bands → context float_list of 1; array bands → a FeatureList of D steps.
    const context: [string, Feature][] = [];
    const lists: [string, Feature[]][] = [];
    bands.forEach((b, i) => {
      if (!b.array) context.push([b.name, one(tiles[i][px])]);
      else {
        const steps: Feature[] = [];
        for (let d = 0; d < b.depth; d++) steps.push(one(tiles[i][d * n + px]));
        lists.push([b.name, steps]);
      }
    });
    return encodeSequenceExample({ context, featureLists: lists });
  }

  /**
   * Largest serialized size of one record (exact for float features, docs/semantics.md §5; for int64 features the
   * worst case: every value taking its type's longest varint). Used to plan shard boundaries.
   */
  maxRecordBytes(): number {
    // Float Examples (the default): counted from their layout, not encoded (a 2.6 MB record of 8 bands
    // of 288² took 16 ms of start-up to build); tests compare the two.
    if (!this.opts.sequenceData && this.layout.bands.every((b) => b.kind === 'float')) return floatRecordBytes(this.grid, this.layout, this.opts.collapseBands);
    const tiles = this.layout.bands.map((b) => new Float64Array(b.depth * this.tw * this.th).fill(worstValue(b)));
    // Sequence records are per pixel and all the same size (float features only).
    return this.opts.sequenceData ? this.sequenceRecord(tiles, 0).length : this.example(tiles).length;
  }
}

/** A value whose encoding is as long as any value of the band can be (negative ints take 10 varint bytes). */
function worstValue(b: OutBand): number {
  const r = intRange(b.type);
  if (!r) return 0; // float features have a fixed size
  return r[0] < 0 ? -1 : r[1];
}
