/**
 * Producing one work chunk (see `ChunkTask` in plan.ts): read the tiles' window once, encode the
 * patches, frame the records, and deflate them when the export is compressed. Pure CPU after the
 * read, so chunks run on any thread; the bytes depend only on the plan and the chunk.
 */
import { availableParallelism } from 'node:os';
import { sumCacheStats, type CacheStats } from '../raster/lru.js';
import { blockCacheShare } from '../budget.js';
import { GeotfrError } from '../errors.js';
import { frameRecords } from '../tfrecord/record.js';
import type { ImageSource, ReadFront, WindowData } from '../raster/types.js';
import { tilesWindow } from './grid.js';
import { deflateChunk, deflateChunkAsync } from './gzipchunks.js';
import { FloatFramer } from './floatframes.js';
import { PatchEncoder } from './patch.js';
import { openPlanImage, type PlanImageOptions } from './opener.js';
import type { ChunkTask, ExportPlan } from './plan.js';

export interface ChunkResult {
  shard: number;
  seq: number;
  /** Framed records, deflated (sync-flushed raw DEFLATE) when the export is compressed. */
  data: Buffer;
  /** CRC-32 of the uncompressed framed bytes (for the gzip trailer). */
  crc: number;
  /** Uncompressed framed bytes. */
  rawBytes: number;
  /** Patches written / skipped by maskedThreshold. */
  patches: number;
  skipped: number;
}

/** A chunk's window, read and waiting to be encoded (`ChunkProducer.read`, then `finish`). */
export interface ReadChunk {
  task: ChunkTask;
  data: WindowData;
}

/** Windows kept for reuse: one being encoded while the next is read (pool-worker.ts reads one task ahead). */
const SPARE_WINDOWS = 2;
/** Framing buffers kept for compressed chunks: one per chunk in flight (`produceAsync`). */
const MAX_SCRATCH = 4;

/**
 * Chunks one thread keeps in flight with `produceAsync`: two uncompressed (one framed while the next
 * reads); compressed, one deflating per core besides, up to MAX_SCRATCH (each holds a window
 * and its framed bytes, so memory stays a few chunks whatever the export's size).
 */
export function inProcessDepth(plan: ExportPlan): number {
  return plan.request.formatOptions.compressed ? Math.min(MAX_SCRATCH, 1 + availableParallelism()) : 2;
}

/** An opened image plus the encoder for one plan; reused for every chunk a thread handles. */
/** Decoded block cache activity of an export (reported by `--verbose`). */
export type BlockCacheStats = CacheStats & { decodes: number; budgetBytes: number };

/** Sums the block caches of a source's GeoTIFF files (undefined for other sources). */
export function blockCacheStats(source: unknown): BlockCacheStats | undefined {
  const files = (source as { files?: { cacheStats?: () => CacheStats & { decodes: number } }[] })?.files;
  if (!Array.isArray(files) || !files.every((f) => typeof f.cacheStats === 'function')) return undefined;
  return { ...sumCacheStats(files.map((f) => f.cacheStats!())), budgetBytes: blockCacheShare() };
}

export class ChunkProducer {
  /** Fixed-layout float Examples (the default) are framed in place; other modes go through the generic encoder. */
  private readonly framer: FloatFramer | undefined;
  /** Every feature a float list: records have one fixed size, `plan.recordBytes` (checked per record on the generic path). */
  private readonly fixedSize: boolean;
  /** Windows done with, handed back to the source for reuse (each taken by one read at a time). */
  private readonly spares: WindowData[] = [];
  /**
   * Buffers compressed chunks are framed into, free for the next chunk once deflated: the framed
   * bytes only feed the deflater, so a few buffers (one per chunk in flight) serve every chunk
   * instead of a fresh ~12 MB one each (page faults, GC).
   */
  private readonly scratch: Buffer[] = [];

  private constructor(
    readonly plan: ExportPlan,
    private readonly source: ImageSource,
    private readonly encoder: PatchEncoder,
  ) {
    const fo = plan.request.formatOptions;
    this.fixedSize = plan.layout.bands.every((b) => b.kind === 'float');
    if (!fo.sequenceData && this.fixedSize) {
      this.framer = new FloatFramer(plan.grid, plan.layout, fo.collapseBands);
      if (this.framer.recordBytes !== plan.recordBytes)
        throw new GeotfrError('INTERNAL', `record of ${this.framer.recordBytes} bytes, planned ${plan.recordBytes}`);
    }
  }

  static async open(plan: ExportPlan, opts: PlanImageOptions = {}): Promise<ChunkProducer> {
    const source = await openPlanImage(plan, opts);
    try {
      checkSameImage(plan, source);
      return new ChunkProducer(plan, source, new PatchEncoder(plan.grid, plan.layout, plan.request.formatOptions));
    } catch (err) {
      await source.close();
      throw err;
    }
  }

  /** The source's decoded block cache stats, when it is made of GeoTIFF files. */
  cacheStats(): BlockCacheStats | undefined {
    return blockCacheStats(this.source);
  }

  /** Every task before `next` (in plan order) is done: source blocks only they read may go (`readFront`). */
  passed(next: ChunkTask): void {
    this.source.retire?.(readFront(this.plan, next));
  }

  /**
   * The source blocks `task`'s window needs start decoding now, where the block cache has room
   * (ImageSource.prefetch): a chunk that is the first of a new row of source blocks then finds
   * them decoded instead of waiting for them while the chunks before it finish deflating.
   */
  prefetch(task: ChunkTask): void {
    const win = tilesWindow(this.plan.grid, task.row, task.col0, task.count);
    this.source.prefetch?.(win.x0, win.y0, win.width, win.height);
  }

  async produce(task: ChunkTask, signal?: AbortSignal): Promise<ChunkResult> {
    return this.finish(await this.read(task, signal));
  }

  /**
   * produce() for a thread that keeps several chunks in flight (the in-process pool, a cloud shard
   * worker): a compressed chunk deflates on libuv's thread pool, so this thread reads and frames the
   * next chunks meanwhile. The same bytes as produce(): the same zlib call, made asynchronously.
   */
  async produceAsync(task: ChunkTask, signal?: AbortSignal): Promise<ChunkResult> {
    const read = await this.read(task, signal);
    const fo = this.plan.request.formatOptions;
    if (!fo.compressed) return this.finish(read);
    // Each chunk in flight frames into a scratch buffer of its own, back on the free list once deflated.
    const { base, buf, scratch } = this.frame(read, this.scratch.pop());
    try {
      const d = await deflateChunkAsync(buf, fo.compressionLevel);
      return { ...base, data: d.data, crc: d.crc };
    } finally {
      this.recycle(scratch);
    }
  }

  /**
   * Reads a chunk's window: the only part of a chunk that waits (source I/O, or blocks decoded by
   * another thread), so a caller can start the next chunk's read before encoding this one.
   */
  async read(task: ChunkTask, signal?: AbortSignal): Promise<ReadChunk> {
    const win = tilesWindow(this.plan.grid, task.row, task.col0, task.count);
    // Taken, not shared: a concurrent read on this instance gets another spare or a new window.
    const spare = this.spares.pop();
    // The float framer emits float32: float32-exact bands come back as Float32Array (byte copies into records).
    const data = await this.source.readWindow(win.x0, win.y0, win.width, win.height, { signal, reuse: spare, float32: this.framer !== undefined });
    signal?.throwIfAborted();
    return { task, data };
  }

  /** Encodes, frames and (when compressed) deflates a chunk read by `read()`: synchronous CPU work. */
  finish(read: ReadChunk): ChunkResult {
    const fo = this.plan.request.formatOptions;
    // Compressed: framed into the scratch buffer, which only the deflater reads.
    const { base, buf, scratch } = this.frame(read, fo.compressed ? this.scratch.pop() : undefined);
    if (!fo.compressed) return { ...base, data: buf, crc: 0 };
    const d = deflateChunk(buf, fo.compressionLevel);
    this.recycle(scratch);
    return { ...base, data: d.data, crc: d.crc };
  }

  private recycle(scratch: Buffer | undefined): void {
    if (scratch && this.scratch.length < MAX_SCRATCH) this.scratch.push(scratch);
  }

  /** Encodes and frames a chunk's records (into `into` when given and large enough) and recycles its window. */
  private frame({ task, data }: ReadChunk, into: Buffer | undefined): { base: Omit<ChunkResult, 'data' | 'crc'>; buf: Buffer; scratch: Buffer | undefined } {
    const raw = this.framer ? this.frameFloats(data, task, into) : { ...this.encodeGeneric(data, task), scratch: undefined };
    // Records are serialized into `raw`; nothing refers to the window any more.
    if (this.spares.length < SPARE_WINDOWS) this.spares.push(data);
    const base = { shard: task.shard, seq: task.seq, rawBytes: raw.buf.length, patches: raw.patches, skipped: task.count - raw.patches };
    return { base, buf: raw.buf, scratch: raw.scratch };
  }

  /** `into`: a buffer to frame into when it is large enough (`scratch` is the buffer used, for the next call). */
  private frameFloats(data: WindowData, task: ChunkTask, into: Buffer | undefined): { buf: Buffer; patches: number; scratch: Buffer } {
    const pw = this.plan.grid.patchWidth;
    const offsets: number[] = [];
    for (let p = 0; p < task.count; p++) if (this.encoder.keeps(data, p * pw)) offsets.push(p * pw);
    const need = offsets.length * this.framer!.framedBytes;
    const scratch = into && into.length >= need ? into : Buffer.allocUnsafe(need);
    return { buf: this.framer!.frame(data, offsets, scratch), patches: offsets.length, scratch };
  }

  private encodeGeneric(data: WindowData, task: ChunkTask): { buf: Buffer; patches: number } {
    const perPatch = this.encoder.encodeRow(data, task.count);
    const records: Uint8Array[] = [];
    let patches = 0;
    for (const recs of perPatch) {
      if (!recs) continue;
      patches++;
      for (const r of recs) {
        if (this.fixedSize && r.length !== this.plan.recordBytes)
          throw new GeotfrError('INTERNAL', `record of ${r.length} bytes, planned ${this.plan.recordBytes}`, { record: task.firstPatch });
        records.push(r);
      }
    }
    return { buf: frameRecords(records), patches };
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/**
 * Where the reads of `next` and the tasks after it fall (source pixels): tasks go through the
 * region in raster order of patches, so they read the rest of `next`'s row of windows and the rows
 * below it.
 */
export function readFront(plan: ExportPlan, next: ChunkTask): ReadFront {
  const win = tilesWindow(plan.grid, next.row, next.col0, next.count);
  return { x: win.x0, rowY: win.y0, nextRowY: tilesWindow(plan.grid, next.row + 1, 0, 1).y0 };
}

/** A shard must be written from the image the plan was made from (Pub/Sub workers reopen it later). */
function checkSameImage(plan: ExportPlan, src: ImageSource): void {
  const a = plan.source;
  const b = src.grid;
  const same = a.width === b.width && a.height === b.height && a.crs === b.crs && a.affine.every((v, i) => v === b.affine[i]);
  const bandsSame =
    src.bands.length === plan.sourceBands.length &&
    src.bands.every((x, i) => x.name === plan.sourceBands[i].name && x.depth === plan.sourceBands[i].depth && x.type === plan.sourceBands[i].type);
  if (!same || !bandsSame)
    throw new GeotfrError('BAD_INPUT', 'the image changed since the export was planned (grid or bands differ); plan the export again', {
      file: typeof plan.request.image === 'string' ? plan.request.image : undefined,
    });
}
