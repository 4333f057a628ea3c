/**
 * The image a patch export reads (docs/semantics.md §11, §12): the plan's files seen on the resolved
 * grid through shared/grid/source.ts (copied where a file is on the grid's lattice, resampled on the
 * fly elsewhere), and the block server that decodes each source block once for every reader: the
 * planning thread (sampling scans) and the worker threads alike. A module of its own so worker
 * threads load neither zod nor the planner.
 */
import { GeotfrError } from '../errors.js';
import type { BlockProvider, TiffFile } from '../raster/geotiff.js';
import type { FileImageSpec } from '../raster/open.js';
import type { ImageSource } from '../raster/types.js';
import { sharedBlockBytes } from '../export/sabgc.js';
import type { PatchPlan } from './plan.js';

/** Files the block server keeps open at once (a glob over many scenes opens them one after another). */
const MAX_SERVED_FILES = 16;

/**
 * Decoded blocks of the plan's files in shared memory, by file URI. Files open on the first request
 * for one of their blocks (only the files some window touches); beyond MAX_SERVED_FILES the least
 * recently used idle one closes. The block cache budget is split between the files open at once.
 */
export class SharedBlockServer {
  private readonly files = new Map<string, { file: Promise<TiffFile>; inflight: number; used: number }>();
  private readonly known: Set<string>;
  private readonly decoded = new Map<TiffFile, number>();
  private readonly opened = new Set<TiffFile>();
  private readonly perFileBytes: number;
  private tick = 0;
  /**
   * Bytes of blocks decoded so far (monotonic). A worker thread collects its dropped block handles
   * once this has grown by the collection threshold since it last did (pool-worker.ts): only a block
   * decoded here can end up held by nothing but a worker's stale handle, so counting the blocks a
   * worker receives instead would collect on every re-sent block (hundreds of times per second when
   * scattered points revisit the same few blocks).
   */
  decodedBytes = 0;

  constructor(
    uris: string[],
    private readonly opts: { signal?: AbortSignal; cacheBytes: number },
  ) {
    this.known = new Set(uris);
    this.perFileBytes = Math.max(1, Math.floor(opts.cacheBytes / Math.max(1, Math.min(MAX_SERVED_FILES, this.known.size))));
  }

  /** A provider for one file (GridSourceOptions.blockProvider), on this thread. */
  readonly provider =
    (uri: string): BlockProvider =>
    (bx, by, plane) =>
      this.block(uri, bx, by, plane);

  /** Block (bx, by) of sample plane `plane` of file `uri`, decoded once. */
  async block(uri: string, bx: number, by: number, plane: number): Promise<SharedArrayBuffer> {
    if (!this.known.has(uri)) throw new GeotfrError('INTERNAL', `a reader asked for a block of ${uri}, which is not in the export`);
    const entry = this.open(uri);
    entry.inflight++;
    entry.used = ++this.tick;
    try {
      const f = await entry.file;
      const buffer = await f.sharedBlock(bx, by, plane);
      // Counted per decode, not per request: only new blocks add shared memory here.
      if (f.decodes !== this.decoded.get(f)) {
        this.decoded.set(f, f.decodes);
        this.decodedBytes += buffer.byteLength;
        sharedBlockBytes(buffer.byteLength);
      }
      return buffer;
    } finally {
      entry.inflight--;
      this.closeIdle();
    }
  }

  /** The files open now (their block caches' stats). */
  get openFiles(): TiffFile[] {
    return [...this.opened];
  }

  private open(uri: string) {
    let e = this.files.get(uri);
    if (!e) {
      const file = import('../raster/open.js').then(({ openTiff }) =>
        openTiff(uri, 'image', { signal: this.opts.signal, sharedBlocks: true, tileCacheBytes: this.perFileBytes }),
      );
      const entry = (e = { file, inflight: 0, used: ++this.tick });
      file.then(
        (t) => this.opened.add(t),
        () => this.files.get(uri) === entry && this.files.delete(uri),
      );
      this.files.set(uri, e);
    }
    return e;
  }

  private closeIdle(): void {
    if (this.files.size <= MAX_SERVED_FILES) return;
    const idle = [...this.files].filter(([, e]) => e.inflight === 0).sort((a, b) => a[1].used - b[1].used);
    for (const [uri, e] of idle.slice(0, this.files.size - MAX_SERVED_FILES)) {
      this.files.delete(uri);
      void e.file.then(
        (t) => {
          this.opened.delete(t);
          this.decoded.delete(t);
          return t.close();
        },
        () => undefined,
      );
    }
  }

  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(
      all.map((e) =>
        e.file.then(
          (t) => t.close(),
          () => undefined,
        ),
      ),
    );
  }
}

/**
 * The plan's image on its grid: its files through GridImageSource (`blockProvider` serving decoded
 * blocks from another reader), or, for version 1 plans (stored by an older planner), the request's
 * image on its first band's grid.
 */
export async function openPatchImage(
  plan: PatchPlan,
  opts: { signal?: AbortSignal; blockProvider?: (uri: string) => BlockProvider } = {},
): Promise<ImageSource> {
  if (plan.image) {
    const { GridImageSource } = await import('../grid/source.js');
    return new GridImageSource(plan.image, plan.source, { signal: opts.signal, blockProvider: opts.blockProvider });
  }
  const { openImage } = await import('../raster/open.js');
  return openImage(plan.request.image as FileImageSpec, { signal: opts.signal, blockProvider: opts.blockProvider });
}
