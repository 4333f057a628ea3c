/**
 * One patch → one framed tf.train.Example (docs/semantics.md §12): every band a `float_list` of
 * D·ky·kx values (y outer, x inner, depth-major for array bands), masked or outside pixels holding the
 * band's fill (defaultValue truncated and clamped for integer bands, docs/semantics.md §4), then the
 * properties' map entries as table export encoded them, then `longitude`/`latitude` with geometries.
 *
 * The band part has a fixed layout, so it is a template built once from the encoder's entry prefixes
 * (tfrecord/example.ts) and the floats land at known offsets; the framing is tfrecord/framing.ts's.
 * Tests check the bytes equal encodeExample's for the same features.
 */
import { exampleSize, floatEntryPrefix, writeExampleHead } from '../tfrecord/example.js';
import { framedSize, RECORD_HEADER_BYTES, writeRecordFooter, writeRecordHeader } from '../tfrecord/framing.js';
import { GeotfrError } from '../errors.js';
import { fillFor } from '../export/layout.js';
import type { BandInfo, WindowData } from '../raster/types.js';
import { PATCH_LIMITS } from './request.js';

/** One output band: its feature name, depth and fill. */
export interface PatchBand {
  name: string;
  type: BandInfo['type'];
  /** Values per pixel in the source. */
  sourceDepth: number;
  /** Values per pixel in the output: tensorDepths[name] for array bands, else 1. */
  depth: number;
  array: boolean;
  /** defaultValue as the band stores it (docs/semantics.md §4). */
  fill: number;
}

/** Output bands from the image's bands and tensorDepths (an array band needs a depth, as in image export). */
export function patchBands(bands: BandInfo[], tensorDepths: Record<string, number>, defaultValue: number): PatchBand[] {
  const names = new Set(bands.map((b) => b.name));
  for (const name of Object.keys(tensorDepths))
    if (!names.has(name))
      throw new GeotfrError('BAD_REQUEST', `tensorDepths names ${JSON.stringify(name)}, which is not a band of the image (bands: ${[...names].join(', ')})`, {
        field: `tensorDepths.${name}`,
      });
  return bands.map((b) => {
    const td = tensorDepths[b.name];
    const array = b.depth > 1 || td !== undefined;
    if (array && td === undefined)
      throw new GeotfrError(
        'BAD_REQUEST',
        `array band ${JSON.stringify(b.name)} (${b.depth} values per pixel) needs an entry in tensorDepths (docs/semantics.md §4)`,
        { field: 'tensorDepths' },
      );
    return { name: b.name, type: b.type, sourceDepth: b.depth, depth: array ? td! : 1, array, fill: fillFor(b.type, defaultValue) };
  });
}

/** The parse shape of a band feature: [ky, kx], or [D, ky, kx] for an array band. */
export const bandShape = (b: Pick<PatchBand, 'array' | 'depth'>, kernel: [number, number]): number[] =>
  b.array ? [b.depth, kernel[1], kernel[0]] : [kernel[1], kernel[0]];

/** `tf.io` parse spec of a band feature. */
export function bandParseSpec(b: PatchBand, kernel: [number, number]): string {
  return `tf.io.FixedLenFeature([${bandShape(b, kernel).join(', ')}], tf.float32)`;
}

export class PatchRecordEncoder {
  /** Band entries with zero floats, concatenated; band b's floats start at `floatAt[b]`. */
  private readonly template: Buffer;
  private readonly floatAt: number[];
  private readonly lonPrefix: Buffer;
  private readonly latPrefix: Buffer;
  private readonly scratch: Float32Array;
  private readonly scratchBytes: Uint8Array;
  private readonly n: number;
  /** Bytes of the longitude/latitude entries (0 without geometries). */
  private readonly geomBytes: number;

  constructor(
    private readonly bands: PatchBand[],
    private readonly kernel: [number, number],
    private readonly geometries: boolean,
  ) {
    this.n = kernel[0] * kernel[1];
    // Each band's entry: the encoder's prefix, then its floats (left uninitialised here: writeBand fills them).
    const prefixes = bands.map((b) => floatEntryPrefix(b.name, b.depth * this.n));
    this.floatAt = [];
    let at = 0;
    prefixes.forEach((e, i) => {
      this.floatAt.push(at + e.length);
      at += e.length + 4 * bands[i]!.depth * this.n;
    });
    this.template = Buffer.alloc(at);
    prefixes.forEach((e, i) => this.template.set(e, this.floatAt[i]! - e.length));
    this.lonPrefix = floatEntryPrefix('longitude', 1);
    this.latPrefix = floatEntryPrefix('latitude', 1);
    this.geomBytes = geometries ? this.lonPrefix.length + this.latPrefix.length + 8 : 0;
    const most = Math.max(...bands.map((b) => b.depth));
    this.scratch = new Float32Array(most * this.n);
    this.scratchBytes = new Uint8Array(this.scratch.buffer);
    if (this.recordBytes(0) > PATCH_LIMITS.recordBytes)
      throw new GeotfrError(
        'LIMIT',
        `a ${kernel[0]}x${kernel[1]} patch of these bands is ${this.recordBytes(0)} bytes per record, more than PATCH_LIMITS.recordBytes ${PATCH_LIMITS.recordBytes}`,
        { field: 'kernelSize' },
      );
  }

  /** Serialized Example bytes of a point whose properties take `propsBytes`. */
  recordBytes(propsBytes: number): number {
    return exampleSize(this.template.length + propsBytes + this.geomBytes);
  }

  /** Framed bytes (record + 16 bytes of TFRecord framing). */
  framedBytes(propsBytes: number): number {
    return framedSize(this.recordBytes(propsBytes));
  }

  /**
   * Frames one record for the window `win` (the K×K patch, from readWindow) into `out` at `at`
   * (`framedBytes(props.length)` bytes): `uint64 length | masked crc(length) | Example | masked
   * crc(Example)` (tfrecord/framing.ts). Returns the offset after it.
   */
  frameInto(out: Buffer, at: number, win: WindowData, props: Uint8Array | undefined, lon: number | undefined, lat: number | undefined): number {
    const pl = props?.length ?? 0;
    const len = this.recordBytes(pl);
    writeRecordHeader(out, at, len);
    const base = writeExampleHead(out, at + RECORD_HEADER_BYTES, this.template.length + pl + this.geomBytes);
    let p: number;
    this.template.copy(out, base);
    for (let b = 0; b < this.bands.length; b++) this.writeBand(out, base + this.floatAt[b]!, win, b);
    p = base + this.template.length;
    if (props) {
      out.set(props, p);
      p += props.length;
    }
    if (this.geometries) {
      this.lonPrefix.copy(out, p);
      p += this.lonPrefix.length;
      out.writeFloatLE(lon ?? 0, p);
      p += 4;
      this.latPrefix.copy(out, p);
      p += this.latPrefix.length;
      out.writeFloatLE(lat ?? 0, p);
      p += 4;
    }
    writeRecordFooter(out, at + RECORD_HEADER_BYTES, len);
    return at + framedSize(len);
  }

  /** Band b's D·K·K floats: its values where valid, its fill where masked, and fill for depth padding. */
  private writeBand(out: Buffer, at: number, win: WindowData, b: number): void {
    const band = this.bands[b]!;
    const n = this.n;
    const values = win.values[b]!;
    const valid = win.valid[b]!;
    const s = this.scratch;
    const keep = Math.min(band.depth, band.sourceDepth);
    const fill = band.fill;
    for (let d = 0; d < keep; d++) {
      const off = d * n;
      for (let i = 0; i < n; i++) s[off + i] = valid[i] ? values[off + i]! : fill;
    }
    if (keep < band.depth) s.fill(fill, keep * n, band.depth * n);
    out.set(this.scratchBytes.subarray(0, 4 * band.depth * n), at);
  }

  /** The window position in the patch of its centre pixel (docs/semantics.md §12: floor(K/2) from the top-left). */
  centreIndex(): number {
    return Math.floor(this.kernel[1] / 2) * this.kernel[0] + Math.floor(this.kernel[0] / 2);
  }
}
