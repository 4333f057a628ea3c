/**
 * The export plan (docs/semantics.md §3, §5): everything a worker needs to write any shard, as plain JSON, so the
 * same plan drives the embedded runner and the Pub/Sub fan-out (serialized into messages and
 * `.geotfr/` objects).
 *
 * Record sizes are fixed for float features (worst case for varint-encoded int64 features), so shard
 * k's patch range is known up front: records are packed in patch order while a file's framed bytes
 * stay ≤ maxFileSize; a single bigger record gets a file of its own.
 */
import { GeotfrError } from '../errors.js';
import { checkLimit, formatCount } from '../limits.js';
import { framedSize } from '../tfrecord/record.js';
import type { Mixer } from '../mixer.js';
import type { BandInfo, PixelGrid } from '../raster/types.js';
import { makeGrid, type ExportGrid, type PixelWindow } from './grid.js';
import { makeLayout, type FeatureLayout } from './layout.js';
import type { ImageSpecOpener } from './opener.js';
import type { GridRule } from '../grid/resolve.js';
import type { PlannedImage, SourceCheck } from '../grid/image.js';
import { latticeShift } from '../grid/lattice.js';
import { manifestKey } from '../ingest/manifest.js';
import { PatchEncoder } from './patch.js';
import { parseImageExportRequest, type ImageExportRequest } from './request.js';

export const PLAN_VERSION = 1;

export interface ShardPlan {
  index: number;
  /** Object key of the shard: `PREFIX-00000.tfrecord[.gz]` (docs/semantics.md §5). */
  name: string;
  firstPatch: number;
  patchCount: number;
  /** Uncompressed framed bytes if every planned patch is written (an upper bound for native int64 features). */
  bytesFramed: number;
}

export interface ExportPlan {
  version: typeof PLAN_VERSION;
  request: ImageExportRequest;
  /** The export grid (docs/semantics.md §11): CRS, affine of output pixel (0, 0), W × H output pixels. */
  source: PixelGrid;
  /** The output bands as read on the export grid. */
  sourceBands: BandInfo[];
  /** Which grid rule applied, and the first band's native grid it started from. */
  gridRule: GridRule;
  nativeGrid: PixelGrid;
  /** The files and bands (headers read once at plan time); null when a custom opener supplies the image. */
  image: PlannedImage | null;
  grid: ExportGrid;
  layout: FeatureLayout;
  patchDimensions: [number, number];
  kernelSize: [number, number];
  tileDimensions: [number, number];
  totalPatches: number;
  patchesPerRow: number;
  /** Serialized bytes of one record (exact for float features, worst case otherwise). */
  recordBytes: number;
  /**
   * Patches per work chunk: a run of adjacent patches of one row read as one window and encoded (and
   * gzip-deflated) as one unit. Part of the plan because gzip output bytes depend on it.
   */
  chunkPatches: number;
  shards: ShardPlan[];
  /** The mixer to write, or null when maskedThreshold ≠ 1 (docs/semantics.md §4). */
  mixer: Mixer | null;
  mixerKey: string | null;
  /** `.geotfr/manifests/<fileNamePrefix>.json` in the destination bucket root. */
  manifestKey: string;
}

export type { ImageSpecOpener };

export interface PlanOptions {
  /** Cap on patches per shard (in addition to maxFileSize). */
  maxPatchesPerShard?: number;
  open?: ImageSpecOpener;
  signal?: AbortSignal;
  /** Clock for the `{date}` placeholder. */
  now?: Date;
  /** The cloud's source allow-list, applied to every file the image resolves to before it is opened. */
  checkSource?: SourceCheck;
}

/** Shard object name (docs/semantics.md §5): 5 digits, hyphen, `.gz` when compressed. */
export function shardName(prefix: string, index: number, compressed: boolean): string {
  return `${prefix}-${String(index).padStart(5, '0')}.tfrecord${compressed ? '.gz' : ''}`;
}

/** Target uncompressed bytes of one work chunk: big enough to amortize a read, small enough to keep memory flat. */
const CHUNK_TARGET_BYTES = 12 << 20;
/** Widest window (pixels) a chunk reads, so a wide region never needs a wide strip. */
const CHUNK_MAX_WIDTH_PX = 2048;

/** Plans an export from a request (validated here) and the image's metadata (no pixel is read). */
export async function planImageExport(request: unknown, opts: PlanOptions = {}): Promise<ExportPlan> {
  const req = parseImageExportRequest(request, { now: opts.now });
  const params = { crs: req.crs, crsTransform: req.crsTransform, scale: req.scale, dimensions: req.dimensions, region: req.region };
  const { resolveGrid } = await import('../grid/resolve.js');
  if (opts.open) {
    const src = await opts.open(req.image, { signal: opts.signal });
    try {
      const g = resolveGrid(params, src.grid);
      return planFromSource(req, { crs: g.crs, affine: g.affine, width: g.width, height: g.height }, src.bands, {
        ...opts,
        gridRule: g.rule,
        nativeGrid: src.grid,
        image: null,
      });
    } finally {
      await src.close();
    }
  }
  const { planGridImage } = await import('../grid/image.js');
  const { gridBands } = await import('../grid/source.js');
  // Files outside the grid (plus tile margins and kernel support) are dropped from the plan.
  const [kx, ky] = req.formatOptions.kernelSize;
  const margin = Math.max(Math.floor(kx / 2), Math.floor(ky / 2)) + 3;
  const { image, grid, rule, native } = await planGridImage(req.image, params, {
    resample: req.resample,
    marginPx: margin,
    signal: opts.signal,
    checkSource: opts.checkSource,
  });
  return planFromSource(req, grid, gridBands(image, grid), { ...opts, gridRule: rule, nativeGrid: native, image });
}

/** The pure part of planning: request + image metadata → plan. */
export function planFromSource(
  req: ImageExportRequest,
  source: PixelGrid,
  bands: BandInfo[],
  opts: PlanOptions & { region?: PixelWindow; gridRule?: GridRule; nativeGrid?: PixelGrid; image?: PlannedImage | null } = {},
): ExportPlan {
  const fo = req.formatOptions;
  const region: PixelWindow = opts.region ?? { x0: 0, y0: 0, width: source.width, height: source.height };
  const pixels = region.width * region.height;
  if (pixels > req.maxPixels)
    throw new GeotfrError('LIMIT', `region has ${pixels} pixels (${region.width}x${region.height}), more than maxPixels ${req.maxPixels}`, {
      field: 'maxPixels',
    });
  const grid = makeGrid(source, region, fo.patchDimensions, fo.kernelSize);
  const layout = makeLayout(bands, fo);
  checkValuesWritten(grid, layout);
  const encoder = new PatchEncoder(grid, layout, fo);
  const recordBytes = encoder.maxRecordBytes();
  // Never write a record our own readers would refuse (docs/limits.md).
  checkLimit('maxRecordBytes', recordBytes, `a record of ${recordBytes} bytes`, { field: 'formatOptions.patchDimensions' });
  const patchBytes = encoder.recordsPerPatch * framedSize(recordBytes);

  // Shards: whole patches in order while the file's framed bytes stay within maxFileSize (docs/semantics.md §5).
  const maxPerShard = opts.maxPatchesPerShard ?? Infinity;
  if (!(maxPerShard >= 1)) throw new GeotfrError('BAD_REQUEST', `maxPatchesPerShard must be ≥ 1, got ${maxPerShard}`, { field: 'maxPatchesPerShard' });
  const perShard = Math.max(1, Math.min(maxPerShard, Math.floor(fo.maxFileSize / patchBytes)));
  const shards: ShardPlan[] = [];
  for (let first = 0, i = 0; first < grid.totalPatches; first += perShard, i++) {
    const count = Math.min(perShard, grid.totalPatches - first);
    shards.push({ index: i, name: shardName(req.fileNamePrefix, i, fo.compressed), firstPatch: first, patchCount: count, bytesFramed: count * patchBytes });
  }
  if (shards.length > 99999)
    throw new GeotfrError('LIMIT', `${shards.length} shards exceed the 5-digit shard names of docs/semantics.md §5; raise maxFileSize`, {
      field: 'formatOptions.maxFileSize',
    });

  // A warped chunk also holds its coordinates, taps and source windows: a quarter of the width
  // keeps its memory near a copied chunk's (and independent of the region's width).
  const warped = opts.image ? opts.image.files.some((f) => !latticeShift(f.grid, source)) : false;
  const warpShare = warped ? 4 : 1;
  const chunkPatches = Math.max(
    1,
    Math.min(
      grid.patchesPerRow,
      Math.floor(CHUNK_TARGET_BYTES / warpShare / patchBytes),
      Math.floor((CHUNK_MAX_WIDTH_PX / warpShare - 2 * grid.marginX) / grid.patchWidth),
    ),
  );
  const mixer: Mixer | null =
    fo.maskedThreshold === 1
      ? {
          projection: { crs: source.crs, affine: { doubleMatrix: grid.affine } },
          patchDimensions: [grid.patchWidth, grid.patchHeight],
          patchesPerRow: grid.patchesPerRow,
          totalPatches: grid.totalPatches,
        }
      : null;
  return {
    version: PLAN_VERSION,
    request: req,
    source: { crs: source.crs, affine: source.affine, width: source.width, height: source.height },
    sourceBands: bands,
    gridRule: opts.gridRule ?? 'native',
    nativeGrid: opts.nativeGrid ?? source,
    image: opts.image ?? null,
    grid,
    layout,
    patchDimensions: [grid.patchWidth, grid.patchHeight],
    kernelSize: fo.kernelSize,
    tileDimensions: [grid.tileWidth, grid.tileHeight],
    totalPatches: grid.totalPatches,
    patchesPerRow: grid.patchesPerRow,
    recordBytes,
    chunkPatches,
    shards,
    mixer,
    mixerKey: mixer ? `${req.fileNamePrefix}-mixer.json` : null,
    manifestKey: manifestKey(req.fileNamePrefix),
  };
}

/**
 * maxPixels counts the region only; what is written also grows with the kernel margins (every
 * patch repeats its neighbours' edges) and the tensor depths. Both caps are checked from the grid's
 * arithmetic, before the encoder sizes (allocates) a record (docs/limits.md). The field named is the
 * factor that dominates, so the message says what to reduce.
 */
function checkValuesWritten(grid: ExportGrid, layout: FeatureLayout): void {
  const depths = layout.bands.reduce((a, b) => a + b.depth, 0);
  const patchPx = grid.patchWidth * grid.patchHeight;
  const tilePx = grid.tileWidth * grid.tileHeight;
  const perPatch = tilePx * depths;
  const depthFactor = depths / layout.bands.length;
  const kernelFactor = tilePx / patchPx;
  const field =
    depthFactor > 1 && depthFactor >= kernelFactor
      ? 'formatOptions.tensorDepths'
      : kernelFactor >= 2
        ? 'formatOptions.kernelSize'
        : 'formatOptions.patchDimensions';
  const shape = `${grid.tileWidth}×${grid.tileHeight} tile (patch ${grid.patchWidth}×${grid.patchHeight} + kernel margins) × ${depths} value(s) per pixel`;
  checkLimit('maxValuesPerPatch', perPatch, `a patch of ${formatCount(perPatch)} values (${shape})`, { field });
  const total = perPatch * grid.totalPatches;
  checkLimit('maxValuesPerExport', total, `${formatCount(total)} values written (${grid.totalPatches} patches × ${perPatch} values)`, {
    field: kernelFactor >= 2 ? 'formatOptions.kernelSize' : 'region',
  });
}

/** A unit of work: adjacent patches of one patch row within one shard. */
export interface ChunkTask {
  shard: number;
  /** Sequence number of the chunk within its shard. */
  seq: number;
  row: number;
  col0: number;
  count: number;
  firstPatch: number;
}

/**
 * The chunks of a shard in write order (row-major; a chunk never spans rows or shards).
 *
 * Compressed, a shard's first and last chunks are a quarter of the others (at least one patch): the
 * first chunk's DEFLATE starts once a quarter of a window is read and framed, and the last one,
 * which runs while nothing else is left to do, keeps the second core idle for a quarter of the time.
 * The chunking is part of the plan, so every writer of a shard (CLI, pool, cloud worker) cuts it the
 * same way and writes the same bytes.
 */
export function shardChunks(plan: ExportPlan, shardIndex: number): ChunkTask[] {
  const s = plan.shards[shardIndex];
  if (!s) throw new GeotfrError('BAD_REQUEST', `shard ${shardIndex} is not in the plan (0..${plan.shards.length - 1})`, { field: 'shard' });
  const out: ChunkTask[] = [];
  const ppr = plan.patchesPerRow;
  const edge = plan.request.formatOptions.compressed ? Math.ceil(plan.chunkPatches / 4) : plan.chunkPatches;
  let p = s.firstPatch;
  const end = s.firstPatch + s.patchCount;
  while (p < end) {
    const row = Math.floor(p / ppr);
    const col0 = p % ppr;
    const count = Math.min(p === s.firstPatch ? edge : plan.chunkPatches, ppr - col0, end - p);
    out.push({ shard: shardIndex, seq: out.length, row, col0, count, firstPatch: p });
    p += count;
  }
  // The first chunk is at most `edge` long, so only a shard of two or more chunks can end longer.
  const last = out.at(-1);
  if (last && last.count > edge) {
    last.count -= edge;
    out.push({ shard: shardIndex, seq: out.length, row: last.row, col0: last.col0 + last.count, count: edge, firstPatch: last.firstPatch + last.count });
  }
  return out;
}
