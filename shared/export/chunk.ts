/**
 * Producing one work chunk (see `ChunkTask` in plan.ts): read the tiles' window once, encode the
 * patches, frame the records, and deflate them when the export is compressed. Pure CPU after the
 * read, so chunks run on any thread; the bytes depend only on the plan and the chunk.
 */
import { GeotfrError } from '../errors.js';
import { recordFooter, recordHeader } from '../record.js';
import type { ImageSource } from '../raster/types.js';
import { tilesWindow } from './grid.js';
import { deflateChunk } from './gzipchunks.js';
import { PatchEncoder } from './patch.js';
import { defaultOpener, type ChunkTask, type ExportPlan, type ImageSpecOpener } from './plan.js';

export interface ChunkResult {
  shard: number;
  seq: number;
  /** Framed records, deflated (sync-flushed raw DEFLATE) when the export is compressed. */
  data: Buffer;
  /** CRC-32 of the uncompressed framed bytes (for the gzip trailer). */
  crc: number;
  /** Uncompressed framed bytes. */
  rawBytes: number;
  records: number;
  /** Patches written / skipped by maskedThreshold. */
  patches: number;
  skipped: number;
}

/** An opened image plus the encoder for one plan; reused for every chunk a thread handles. */
export class ChunkProducer {
  private constructor(
    readonly plan: ExportPlan,
    private readonly source: ImageSource,
    private readonly encoder: PatchEncoder,
  ) {}

  static async open(plan: ExportPlan, opts: { open?: ImageSpecOpener; signal?: AbortSignal } = {}): Promise<ChunkProducer> {
    const open = opts.open ?? defaultOpener;
    const source = await open(plan.request.image, { signal: opts.signal });
    try {
      checkSameImage(plan, source);
    } catch (err) {
      await source.close();
      throw err;
    }
    return new ChunkProducer(plan, source, new PatchEncoder(plan.grid, plan.layout, plan.request.formatOptions));
  }

  async produce(task: ChunkTask, signal?: AbortSignal): Promise<ChunkResult> {
    const win = tilesWindow(this.plan.grid, task.row, task.col0, task.count);
    const data = await this.source.readWindow(win.x0, win.y0, win.width, win.height, signal);
    signal?.throwIfAborted();
    const perPatch = this.encoder.encodeRow(data, task.count);
    const parts: Uint8Array[] = [];
    let records = 0;
    let patches = 0;
    for (const recs of perPatch) {
      if (!recs) continue;
      patches++;
      for (const r of recs) {
        if (r.length !== this.plan.recordBytes && this.plan.layout.bands.every((b) => b.kind === 'float'))
          throw new GeotfrError('INTERNAL', `record of ${r.length} bytes, planned ${this.plan.recordBytes}`, { record: task.firstPatch });
        parts.push(recordHeader(r.length), r, recordFooter(r));
        records++;
      }
    }
    const raw = Buffer.concat(parts);
    const fo = this.plan.request.formatOptions;
    const base = { shard: task.shard, seq: task.seq, rawBytes: raw.length, records, patches, skipped: task.count - patches };
    if (!fo.compressed) return { ...base, data: raw, crc: 0 };
    const d = deflateChunk(raw, fo.compressionLevel);
    return { ...base, data: d.data, crc: d.crc };
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** A shard must be written from the image the plan was made from (Pub/Sub workers reopen it later). */
function checkSameImage(plan: ExportPlan, src: ImageSource): void {
  const a = plan.source;
  const b = src.grid;
  const same = a.width === b.width && a.height === b.height && a.crs === b.crs && a.affine.every((v, i) => v === b.affine[i]);
  const bandsSame =
    src.bands.length === plan.sourceBands.length && src.bands.every((x, i) => x.name === plan.sourceBands[i].name && x.depth === plan.sourceBands[i].depth && x.type === plan.sourceBands[i].type);
  if (!same || !bandsSame)
    throw new GeotfrError('BAD_INPUT', 'the image changed since the export was planned (grid or bands differ); plan the export again', {
      file: typeof plan.request.image === 'string' ? plan.request.image : undefined,
    });
}
