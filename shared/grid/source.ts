/**
 * The image on the export grid (docs/semantics.md §11): an `ImageSource` whose grid is the resolved
 * export grid and whose bands come from the plan's files, each file seen through one view:
 *
 * - a file whose grid is the export grid up to a whole-pixel shift is *copied*: windows are read at
 *   that offset through the very reader (and mask rule) exports always used, so every existing
 *   output stays byte for byte what it was, whatever `resample` says;
 * - any other file is *warped* (transform.ts, resample.ts), each band with its own kernel.
 *
 * A band over several files is a mosaic: the last valid file wins. Files open on first use, only
 * when a window touches their footprint (from the plan, no I/O), so a worker opens only the files
 * its shard needs; at most `maxOpenFiles` stay open.
 */
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import type { BlockProvider, TiffFile } from '../raster/geotiff.js';
import { FLOAT32_EXACT, GeoTiffImageSource, openTiff, type BandPlan } from '../raster/open.js';
import {
  shiftFront,
  type BandInfo,
  type ImageSource,
  type PixelGrid,
  type ReadFront,
  type ReadWindowOptions,
  type SampleType,
  type WindowData,
} from '../raster/types.js';
import { latticeShift } from './lattice.js';
import type { PlannedBand, PlannedImage, SourceFile } from './image.js';
import { warpWindow, type Kernel, type WarpScratch, type WarpSource } from './resample.js';
import { footprintBounds } from './resolve.js';
import { GridTransform } from './transform.js';

export interface GridSourceOptions {
  signal?: AbortSignal;
  tileCacheBytes?: number;
  sharedBlocks?: boolean;
  blockProvider?: (uri: string) => BlockProvider;
  /** Files kept open at once (least recently used closed first); default 16. */
  maxOpenFiles?: number;
}

/** Pixels added around a warped file's footprint before skipping it (the widest kernel reaches 2 px). */
const SUPPORT_PX = 3;

/** Whether a band's values are interpolated somewhere (bilinear, bicubic, mean) rather than picked. */
const blends = (b: PlannedBand) => (b.reduce ? b.reduce === 'mean' : b.resample !== 'nearest');

/**
 * The output bands' descriptions on an export grid: a band keeps its source type unless some file of
 * it is warped with a blending kernel, which makes it float32 (float64 stays float64).
 */
export function gridBands(image: PlannedImage, grid: { crs: string; affine: Affine }): BandInfo[] {
  return image.bands.map((b) => {
    const types = b.files.flatMap((f) => b.samples.map((s) => image.files[f]!.types[s]!));
    let type: SampleType = types.length && types.every((t) => t === types[0]) ? types[0]! : 'float64';
    if (type !== 'float64' && blends(b) && b.files.some((f) => !latticeShift(image.files[f]!.grid, grid))) type = 'float32';
    const nodata = b.nodata ?? (b.files.length ? image.files[b.files[0]!]!.nodata : null);
    return { name: b.name, type, depth: b.array ? b.samples.length : 1, ...(nodata !== null ? { nodata } : {}) };
  });
}

/** Source window buffers per warp scratch (FileView.sourceWindow). */
const sourceBuffers = new WeakMap<WarpScratch, { float32: boolean; values: (Float32Array | Float64Array)[]; valid: Uint8Array[] }>();
/** Headroom of a grown source window buffer, so slightly larger windows later fit. */
const GROW = 1.25;

/** One file seen from the export grid, serving the bands (slots) that read it. */
class FileView {
  readonly shift: [number, number] | null;
  readonly transform: GridTransform | undefined;
  /** Bounds [x0, y0, x1, y1) in export pixels where this file can contribute (fractional; generous for warps). */
  readonly footprint: [number, number, number, number];
  readonly slots: { band: number; planned: PlannedBand }[] = [];
  private native: Promise<GeoTiffImageSource> | undefined;
  /** Whether this view's bands are all mosaics: its results are composited at once, never handed out. */
  transient = true;
  /** Reads in progress (a worker reads ahead): a view in use is never closed. */
  inflight = 0;
  /** The open file, once open (block cache stats). */
  tiff: TiffFile | undefined;
  private kernelsCache: Kernel[] | undefined;
  lastUsed = 0;

  constructor(
    readonly file: SourceFile,
    grid: PixelGrid,
    private readonly infos: BandInfo[],
    private readonly opts: GridSourceOptions,
  ) {
    this.shift = latticeShift(file.grid, grid);
    if (this.shift) {
      const [dx, dy] = this.shift;
      this.footprint = [-dx, -dy, file.grid.width - dx, file.grid.height - dy];
    } else {
      this.transform = new GridTransform(grid, file.grid);
      let fp: [number, number, number, number];
      try {
        fp = footprintBounds(file.grid, grid);
      } catch {
        fp = [Infinity, Infinity, -Infinity, -Infinity]; // the file cannot be placed on this grid at all
      }
      this.footprint = [fp[0] - SUPPORT_PX, fp[1] - SUPPORT_PX, fp[2] + SUPPORT_PX, fp[3] + SUPPORT_PX];
    }
  }

  private get kernels(): Kernel[] {
    this.kernelsCache ??= this.slots.map(({ planned }) =>
      planned.reduce ? { resample: planned.resample, reduce: planned.reduce } : { resample: planned.resample },
    );
    return this.kernelsCache;
  }

  /** Every band of this view is picked, not blended (nearest, mode, min, max). */
  private get picks(): boolean {
    return this.slots.every(({ planned }) => !blends(planned));
  }

  /** Every sample this view reads is exact in float32. */
  private get float32Exact(): boolean {
    return this.slots.every(({ planned }) => planned.samples.every((s) => FLOAT32_EXACT.has(this.file.types[s]!)));
  }

  get isOpen(): boolean {
    return this.native !== undefined;
  }

  touches(x0: number, y0: number, w: number, h: number): boolean {
    const [fx0, fy0, fx1, fy1] = this.footprint;
    return x0 < fx1 && x0 + w > fx0 && y0 < fy1 && y0 + h > fy0;
  }

  /** The file's reader for this view's bands, opened on first use and checked against the plan. */
  private open(): Promise<GeoTiffImageSource> {
    this.native ??= (async () => {
      const f = this.file;
      const tiff = await openTiff(f.uri, 'image', {
        signal: this.opts.signal,
        tileCacheBytes: this.opts.tileCacheBytes,
        sharedBlocks: this.opts.sharedBlocks,
        blockProvider: this.opts.blockProvider?.(f.uri),
      });
      const same =
        tiff.grid.width === f.grid.width &&
        tiff.grid.height === f.grid.height &&
        tiff.sampleTypes.length === f.types.length &&
        tiff.sampleTypes.every((t, i) => t === f.types[i]);
      if (!same) {
        await tiff.close();
        throw new GeotfrError('BAD_INPUT', 'the file changed since the export was planned (size or bands differ); plan the export again', { file: f.uri });
      }
      this.tiff = tiff;
      const plans: BandPlan[] = this.slots.map(({ band, planned }) => {
        const types = planned.samples.map((s) => f.types[s]!);
        const nodata = planned.nodata ?? f.nodata ?? undefined;
        const info = this.infos[band]!;
        return {
          info: { name: info.name, type: info.type, depth: info.depth, ...(nodata !== undefined ? { nodata } : {}) },
          file: tiff,
          samples: planned.samples,
          types,
          float32Exact: types.every((t) => FLOAT32_EXACT.has(t)),
          nodata,
          label: planned.label,
        };
      });
      return new GeoTiffImageSource(tiff.grid, plans, [tiff]);
    })();
    this.native.catch(() => {
      this.native = undefined;
    });
    return this.native;
  }

  /**
   * This view's bands over an export window: values (depth-major) and validity per slot. `reuse`:
   * arrays the caller is done with (an earlier result of this view); `scratch`: warp buffers no
   * other read uses meanwhile (reads of one view may run concurrently: a worker reads ahead).
   */
  async read(x0: number, y0: number, w: number, h: number, opts: ReadWindowOptions & { scratch: WarpScratch }): Promise<WindowData> {
    this.inflight++;
    try {
      return await this.readIn(await this.open(), x0, y0, w, h, opts);
    } finally {
      this.inflight--;
    }
  }

  private async readIn(
    native: GeoTiffImageSource,
    x0: number,
    y0: number,
    w: number,
    h: number,
    opts: ReadWindowOptions & { scratch: WarpScratch },
  ): Promise<WindowData> {
    const reuse = opts.reuse;
    if (this.shift) {
      const [dx, dy] = this.shift;
      const r = await native.readWindow(x0 + dx, y0 + dy, w, h, { signal: opts.signal, reuse, float32: opts.float32 });
      return { ...r, x0, y0 };
    }
    // Kernels that pick values (nearest, mode, min, max) keep float32-exact samples exact in float32.
    const float32 = opts.float32 === true && this.picks && this.float32Exact;
    const src: WarpSource = {
      width: this.file.grid.width,
      height: this.file.grid.height,
      depths: this.slots.map(({ planned }) => (planned.array ? planned.samples.length : 1)),
      read: (sx, sy, sw, sh, signal) => native.readWindow(sx, sy, sw, sh, { signal, float32, reuse: this.sourceWindow(opts.scratch, sw, sh, float32) }),
    };
    const reused =
      reuse && reuse.width === w && reuse.height === h && reuse.values.length === this.slots.length
        ? reuse.values.map((v, i) => ({ values: v, valid: reuse.valid[i]! }))
        : undefined;
    const t = await warpWindow(
      this.transform!,
      src,
      this.kernels,
      { x0, y0, width: w, height: h },
      { signal: opts.signal, out: reused, float32, scratch: opts.scratch },
    );
    return { x0, y0, width: w, height: h, values: t.map((b) => b.values), valid: t.map((b) => b.valid) };
  }

  /**
   * A source window to read into, over buffers kept with `scratch` and grown when a window needs
   * more: source windows differ in size from chunk to chunk, so without them every warp allocated
   * its source window afresh (garbage collection, page faults). The warp is done with a window
   * before the next read through the same scratch.
   */
  private sourceWindow(scratch: WarpScratch, w: number, h: number, float32: boolean): WindowData {
    const n = w * h;
    let b = sourceBuffers.get(scratch);
    if (!b || b.float32 !== float32) sourceBuffers.set(scratch, (b = { float32, values: [], valid: [] }));
    const Values = float32 ? Float32Array : Float64Array;
    const values = this.slots.map(({ planned }, i) => {
      const len = planned.samples.length * n;
      if (!(b.values[i] && b.values[i].length >= len)) b.values[i] = new Values(Math.ceil(len * GROW));
      return b.values[i].subarray(0, len);
    });
    const valid = this.slots.map((_, i) => {
      if (!(b.valid[i] && b.valid[i].length >= n)) b.valid[i] = new Uint8Array(Math.ceil(n * GROW));
      return b.valid[i].subarray(0, n);
    });
    return { x0: 0, y0: 0, width: w, height: h, values, valid };
  }

  /**
   * Starts decoding the blocks a read of this export window will need (TiffFile.prefetch), for a
   * file on the export's lattice that is open already. A warped file's blocks are where the warp's
   * outline lands, which only the warp computes: those wait for the read.
   */
  prefetch(x0: number, y0: number, w: number, h: number): void {
    if (!this.shift || !this.tiff) return;
    const samples = this.slots.flatMap(({ planned }) => planned.samples);
    void this.tiff.prefetch(x0 + this.shift[0], y0 + this.shift[1], w, h, samples);
  }

  async close(): Promise<void> {
    const n = this.native;
    this.native = undefined;
    this.tiff = undefined;
    if (n) await (await n.catch(() => undefined))?.close();
  }
}

/** The image on the export grid. */
export class GridImageSource implements ImageSource {
  readonly bands: BandInfo[];
  private readonly views: FileView[];
  /** Per output band: its files' views (mosaic order) and the band's slot in each view. */
  private readonly layers: { view: FileView; slot: number }[][];
  private readonly maxOpen: number;
  private tick = 0;
  /**
   * Buffers for one readWindow at a time (a worker reads the next chunk while encoding one): warp
   * scratch per view, and the buffer mosaic files are read into one after another.
   */
  private readonly contexts: { scratch: Map<FileView, WarpScratch>; mosaic: WarpScratch; mosaicOut?: WindowData }[] = [];
  /** Per window returned: the views' results in it, reused when the caller hands that window back. */
  private readonly parts = new WeakMap<WindowData, Map<FileView, WindowData>>();

  constructor(
    image: PlannedImage,
    readonly grid: PixelGrid,
    opts: GridSourceOptions = {},
  ) {
    this.bands = gridBands(image, grid);
    this.maxOpen = Math.max(1, opts.maxOpenFiles ?? 16);
    const byFile = new Map<number, FileView>();
    this.layers = image.bands.map((planned, band) =>
      planned.files.map((fi) => {
        let view = byFile.get(fi);
        if (!view) byFile.set(fi, (view = new FileView(image.files[fi]!, grid, this.bands, opts)));
        view.slots.push({ band, planned });
        return { view, slot: view.slots.length - 1 };
      }),
    );
    this.views = [...byFile.values()];
    for (const band of this.layers) if (band.length === 1) band[0]!.view.transient = false;
  }

  /** The files open now (the export reports their block caches). */
  get files(): TiffFile[] {
    return this.views.flatMap((v) => (v.tiff ? [v.tiff] : []));
  }

  /** URIs of the files opened so far (a worker opens only those its windows touch). */
  get openedFiles(): string[] {
    return this.views.filter((v) => v.isOpen).map((v) => v.file.uri);
  }

  async readWindow(x0: number, y0: number, width: number, height: number, opts: ReadWindowOptions = {}): Promise<WindowData> {
    if (![x0, y0, width, height].every(Number.isInteger) || width <= 0 || height <= 0)
      throw new GeotfrError('INTERNAL', `bad window (${x0}, ${y0}, ${width}x${height})`);
    opts.signal?.throwIfAborted();
    const n = width * height;
    const tick = ++this.tick;
    // The window the caller hands back frees the arrays this source gave out in it.
    const free = opts.reuse ? this.parts.get(opts.reuse) : undefined;
    if (opts.reuse) this.parts.delete(opts.reuse);
    const ctx = this.contexts.pop() ?? {
      scratch: new Map<FileView, WarpScratch>(),
      mosaic: { taps: new Map() } as WarpScratch,
      mosaicOut: undefined as WindowData | undefined,
    };
    const scratchOf = (v: FileView) => {
      let sc = ctx.scratch.get(v);
      if (!sc) ctx.scratch.set(v, (sc = { taps: new Map() }));
      return sc;
    };
    try {
      const needed = this.views.filter((v) => v.touches(x0, y0, width, height));
      for (const v of needed) v.lastUsed = tick;
      // Views serving single-file bands read together; their arrays go out as they are.
      const direct = new Map<FileView, WindowData>();
      await Promise.all(
        needed
          .filter((v) => !v.transient)
          .map(async (v) =>
            direct.set(v, await v.read(x0, y0, width, height, { signal: opts.signal, float32: opts.float32, reuse: free?.get(v), scratch: scratchOf(v) })),
          ),
      );
      const values: (Float64Array | Float32Array)[] = [];
      const valid: Uint8Array[] = [];
      /** Per mosaic band: its composite and, per pixel, the layer that wrote it (-1: none yet). */
      const mosaics = new Map<number, { v: Float64Array; ok: Uint8Array; top: Int32Array }>();
      this.layers.forEach((layers, band) => {
        if (layers.length === 1) {
          const { view, slot } = layers[0]!;
          const r = direct.get(view);
          if (r) {
            // One file: its arrays as they are (the copy path is exactly the single-grid reader).
            values.push(r.values[slot]!);
            valid.push(r.valid[slot]!);
            return;
          }
        }
        const m = { v: new Float64Array(this.bands[band]!.depth * n), ok: new Uint8Array(n), top: new Int32Array(n).fill(-1) };
        mosaics.set(band, m);
        values.push(m.v);
        valid.push(m.ok);
      });
      // Mosaic files one at a time through this call's buffers, each composited at once: where
      // valid, a file overwrites what an earlier file of the band's list wrote (the last valid wins).
      const put = (band: number, layer: number, r: WindowData, slot: number) => {
        const m = mosaics.get(band);
        if (!m) return;
        const depth = this.bands[band]!.depth;
        const rv = r.values[slot]!,
          rok = r.valid[slot]!;
        for (let k = 0; k < n; k++) {
          if (rok[k] === 0 || m.top[k]! > layer) continue;
          m.top[k] = layer;
          m.ok[k] = 1;
          for (let d = 0; d < depth; d++) m.v[d * n + k] = rv[d * n + k]!;
        }
      };
      for (const v of needed) {
        const r = direct.get(v) ?? (ctx.mosaicOut = await v.read(x0, y0, width, height, { signal: opts.signal, reuse: ctx.mosaicOut, scratch: ctx.mosaic }));
        v.slots.forEach(({ band }, slot) =>
          put(
            band,
            this.layers[band]!.findIndex((l) => l.view === v && l.slot === slot),
            r,
            slot,
          ),
        );
      }
      const out: WindowData = { x0, y0, width, height, values, valid };
      this.parts.set(out, direct);
      await this.closeIdle(tick);
      return out;
    } finally {
      this.contexts.push(ctx);
    }
  }

  /**
   * Files on the export's lattice drop the blocks no read within `front` touches; a warped file keeps
   * its cache as it is (where the front lands among its blocks is not a rectangle's edge).
   */
  retire(front: ReadFront): void {
    for (const v of this.views) if (v.shift && v.tiff) v.tiff.retire(shiftFront(front, v.shift[0], v.shift[1]));
  }

  prefetch(x0: number, y0: number, width: number, height: number): void {
    for (const v of this.views) if (v.touches(x0, y0, width, height)) v.prefetch(x0, y0, width, height);
  }

  /** Closes least recently used files beyond `maxOpenFiles` (never one this window used). */
  private async closeIdle(tick: number): Promise<void> {
    const open = this.views.filter((v) => v.isOpen);
    if (open.length <= this.maxOpen) return;
    const idle = open.filter((v) => v.lastUsed < tick && v.inflight === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    await Promise.all(idle.slice(0, open.length - this.maxOpen).map((v) => v.close()));
  }

  async close(): Promise<void> {
    await Promise.all(this.views.map((v) => v.close()));
  }
}

/**
 * An image source on its own grid seen from an export grid on the same lattice (a whole-pixel shift):
 * how custom sources (tests' in-memory images) take part; anything needing resampling is refused.
 */
export function shiftedSource(inner: ImageSource, grid: PixelGrid): ImageSource {
  const shift = latticeShift(inner.grid, grid);
  if (!shift) {
    void inner.close();
    throw new GeotfrError(
      'BAD_REQUEST',
      `this image source is read on its own grid only (${inner.grid.crs} ${JSON.stringify(inner.grid.affine)}); the export grid ${grid.crs} ${JSON.stringify(grid.affine)} needs resampling`,
      { field: 'image' },
    );
  }
  const [dx, dy] = shift;
  return {
    grid,
    bands: inner.bands,
    async readWindow(x0, y0, w, h, opts) {
      const r = await inner.readWindow(x0 + dx, y0 + dy, w, h, opts);
      return { ...r, x0, y0 };
    },
    retire: (front) => inner.retire?.(shiftFront(front, dx, dy)),
    prefetch: (x0, y0, w, h) => inner.prefetch?.(x0 + dx, y0 + dy, w, h),
    close: () => inner.close(),
  };
}
