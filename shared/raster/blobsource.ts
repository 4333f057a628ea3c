/**
 * The byte source geotiff reads through: any `BlobStore` (local file, `file://`, `gs://`), or an
 * allow-listed http(s) URL, via
 * `readRange`, with an LRU of aligned blocks so the many small header/IFD/offset-array reads of a
 * COG coalesce into a few range requests. Large slices (whole compressed tiles) bypass the block
 * cache: they are decoded once and cached decoded by the tile cache (tiff.ts), so keeping their
 * compressed bytes too would only double the memory.
 */
import { GeotfrError, asGeotfrError } from '../errors.js';
import type { RangeReader } from '../storage/http.js';
import { LruCache } from './lru.js';

export interface BlobSourceOptions {
  /** Aligned block size for small reads (default 64 KiB). */
  blockBytes?: number;
  /** Block cache budget (default 4 MiB). */
  cacheBytes?: number;
  /** Slices at least this long are read directly (default 4 blocks). */
  directBytes?: number;
}

/** Counts of range reads, for tests and benchmarks. */
export interface SourceStats {
  requests: number;
  bytes: number;
}

/** A byte range geotiff asks for. */
export interface Slice {
  offset: number;
  length: number;
}

/**
 * Implements geotiff's `BaseSource` shape (`fetch`, `fetchSlice`, `fileSize`, `close`); the class
 * itself is not exported by geotiff, and `GeoTIFF.fromSource` only calls these members.
 */
export class BlobSource {
  private readonly blockBytes: number;
  private readonly directBytes: number;
  private readonly blocks: LruCache<Buffer>;
  readonly stats: SourceStats = { requests: 0, bytes: 0 };

  /**
   * @param size the object's size in bytes (from `stat`), so blocks never read past the end.
   * @param uri the full URI, named in errors.
   */
  constructor(
    private readonly store: RangeReader,
    private readonly key: string,
    private readonly size: number,
    readonly uri: string,
    opts: BlobSourceOptions = {},
  ) {
    this.blockBytes = opts.blockBytes ?? 64 * 1024;
    this.directBytes = opts.directBytes ?? 4 * this.blockBytes;
    this.blocks = new LruCache<Buffer>(opts.cacheBytes ?? 4 * 1024 * 1024);
  }

  get fileSize(): number {
    return this.size;
  }

  async fetch(slices: Slice[], signal?: AbortSignal): Promise<ArrayBuffer[]> {
    return Promise.all(slices.map(async (s) => (await this.fetchSlice(s, signal)).data as ArrayBuffer));
  }

  async fetchSlice(slice: Slice, signal?: AbortSignal): Promise<Slice & { data: ArrayBuffer }> {
    if (signal?.aborted) throw new GeotfrError('CANCELLED', 'read cancelled', { file: this.uri });
    const start = Math.max(0, slice.offset);
    const end = Math.min(this.size, slice.offset + slice.length);
    if (end <= start) return { ...slice, data: new ArrayBuffer(0) };
    if (end - start >= this.directBytes) {
      const buf = await this.range(start, end);
      return { ...slice, data: toArrayBuffer(buf) };
    }
    const first = Math.floor(start / this.blockBytes);
    const last = Math.floor((end - 1) / this.blockBytes);
    // Fetch each run of missing blocks with one request; cached blocks are reused.
    const parts: Promise<Buffer>[] = [];
    let b = first;
    while (b <= last) {
      if (this.blocks.has(this.blockKey(b))) {
        parts.push(this.block(b));
        b++;
        continue;
      }
      let runEnd = b;
      while (runEnd + 1 <= last && !this.blocks.has(this.blockKey(runEnd + 1))) runEnd++;
      const runStart = b;
      const runBytes = Math.min(this.size, (runEnd + 1) * this.blockBytes) - runStart * this.blockBytes;
      const run = this.range(runStart * this.blockBytes, runStart * this.blockBytes + runBytes);
      for (let k = runStart; k <= runEnd; k++) {
        const off = (k - runStart) * this.blockBytes;
        parts.push(this.blocks.get(this.blockKey(k), this.blockBytes, async () => (await run).subarray(off, off + this.blockBytes)));
      }
      b = runEnd + 1;
    }
    const bufs = await Promise.all(parts);
    const out = new Uint8Array(end - start);
    let pos = 0;
    for (let i = 0; i < bufs.length; i++) {
      const blockStart = (first + i) * this.blockBytes;
      const from = Math.max(start, blockStart) - blockStart;
      const to = Math.min(end, blockStart + bufs[i]!.length) - blockStart;
      if (to > from) {
        out.set(bufs[i]!.subarray(from, to), pos);
        pos += to - from;
      }
    }
    return { ...slice, data: pos === out.length ? out.buffer : out.buffer.slice(0, pos) };
  }

  async close(): Promise<void> {
    this.blocks.clear();
  }

  private blockKey(b: number): string {
    return String(b);
  }

  private block(b: number): Promise<Buffer> {
    return this.blocks.get(this.blockKey(b), this.blockBytes, () => {
      const s = b * this.blockBytes;
      return this.range(s, Math.min(this.size, s + this.blockBytes));
    });
  }

  private async range(start: number, end: number): Promise<Buffer> {
    this.stats.requests++;
    this.stats.bytes += end - start;
    try {
      return await this.store.readRange(this.key, start, end);
    } catch (err) {
      throw asGeotfrError(err, { file: this.uri, offset: start });
    }
  }
}

/** The bytes of a Buffer as an ArrayBuffer of exactly their size: the Buffer's own when it spans it whole, else a copy (geotiff's predictor indexes the whole buffer). */
export function toArrayBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
