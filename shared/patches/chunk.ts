/**
 * Producing one chunk of patches (plan.ts): read each point's K×K window, frame its record, and
 * deflate the chunk as one piece of the shard's gzip stream (export/gzipchunks.ts).
 *
 * Reads go in source-block order (points sorted by the block holding their centre, then by row and
 * column), a few at a time, so neighbouring patches share decoded blocks while they are hot in the
 * cache; records are then laid out in input order. Everything after the reads is pure CPU, so a
 * chunk runs on any thread and its bytes depend on the plan and the chunk only.
 */
import { GeotfrError } from '../errors.js';
import { deflateChunk } from '../export/gzipchunks.js';
import type { ImageSource, WindowData } from '../raster/types.js';
import { PatchRecordEncoder } from './encode.js';
import type { PatchChunk, PatchPlan } from './plan.js';

/** gzip level of the output (docs/semantics.md §5, TensorFlow's default). */
const LEVEL = 6;
/** Window reads in flight per chunk (cached blocks resolve at once; the rest wait on decode or on the block server). */
const READS_IN_FLIGHT = 8;

export interface PatchChunkResult {
  shard: number;
  seq: number;
  /** Raw DEFLATE ending in a sync flush. */
  data: Buffer;
  crc: number;
  rawBytes: number;
  records: number;
  /** Points dropped because their centre pixel is masked (dropNulls). */
  masked: number;
}

/** Block edge used to order reads when the source does not say (a typical COG tile). */
const DEFAULT_BLOCK = 256;

export class PatchChunkProducer {
  private readonly encoder: PatchRecordEncoder;
  private readonly spares: WindowData[] = [];

  constructor(
    private readonly plan: PatchPlan,
    private readonly source: ImageSource,
  ) {
    checkSameImage(plan, source);
    const r = plan.request;
    this.encoder = new PatchRecordEncoder(plan.bands, r.kernelSize, r.geometries);
  }

  /** The first open file's block size (a grid source opens its files on first read; the order only affects speed). */
  private blockSize(): [number, number] {
    const files = (this.source as { files?: { blockWidth: number; blockHeight: number }[] }).files;
    return [files?.[0]?.blockWidth ?? DEFAULT_BLOCK, files?.[0]?.blockHeight ?? DEFAULT_BLOCK];
  }

  async produce(c: PatchChunk, signal?: AbortSignal): Promise<PatchChunkResult> {
    const n = c.index.length;
    const [kx, ky] = this.plan.request.kernelSize;
    const hx = Math.floor(kx / 2),
      hy = Math.floor(ky / 2);
    const [bw, bh] = this.blockSize();
    const across = Math.ceil(this.plan.source.width / bw) + 2;
    const key = (i: number) => (Math.floor(c.row[i]! / bh) + 1) * across + Math.floor(c.col[i]! / bw) + 1;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => key(a) - key(b) || c.row[a]! - c.row[b]! || c.col[a]! - c.col[b]! || a - b);
    // Records go straight into one chunk buffer at their input-order offsets (no per-record
    // allocation); a point dropped for a masked centre leaves a gap that is closed at the end.
    const at = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) at[i + 1] = at[i]! + this.encoder.framedBytes(c.propsAt[i + 1]! - c.propsAt[i]!);
    const raw = Buffer.allocUnsafe(at[n]!);
    const kept = new Uint8Array(n);
    const centre = this.encoder.centreIndex();
    const dropNulls = this.plan.request.dropNulls;
    const geo = c.lon.length > 0;
    let masked = 0;
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = order[next++]!;
        signal?.throwIfAborted();
        const reuse = this.spares.pop();
        const win = await this.source.readWindow(c.col[i]! - hx, c.row[i]! - hy, kx, ky, { signal, reuse, float32: true });
        if (dropNulls && win.valid.some((v) => !v[centre])) masked++;
        else {
          const props = c.propsAt[i + 1]! > c.propsAt[i]! ? c.props.subarray(c.propsAt[i]!, c.propsAt[i + 1]!) : undefined;
          this.encoder.frameInto(raw, at[i]!, win, props, geo ? c.lon[i] : undefined, geo ? c.lat[i] : undefined);
          kept[i] = 1;
        }
        this.spares.push(win);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, n) }, worker));
    let end = raw.length;
    if (masked) {
      end = 0;
      for (let i = 0; i < n; i++)
        if (kept[i]) {
          raw.copyWithin(end, at[i]!, at[i + 1]!);
          end += at[i + 1]! - at[i]!;
        }
    }
    const d = deflateChunk(raw.subarray(0, end), LEVEL);
    return { shard: c.shard, seq: c.seq, data: d.data, crc: d.crc, rawBytes: end, records: n - masked, masked };
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** A chunk must be read from the image the plan was made from (cloud workers reopen it later). */
function checkSameImage(plan: PatchPlan, src: ImageSource): void {
  const a = plan.source,
    b = src.grid;
  const same = a.width === b.width && a.height === b.height && a.crs === b.crs && a.affine.every((v, i) => v === b.affine[i]);
  const bands =
    src.bands.length === plan.bands.length &&
    src.bands.every((x, i) => x.name === plan.bands[i]!.name && x.depth === plan.bands[i]!.sourceDepth && x.type === plan.bands[i]!.type);
  if (!same || !bands)
    throw new GeotfrError('BAD_INPUT', 'the image changed since the patch export was planned (grid or bands differ); plan it again', {
      file: typeof plan.request.image === 'string' ? plan.request.image : undefined,
    });
}
