/**
 * `--dry-run` / `"dryRun": true` (docs/grid.md): what an export would do, from its plan alone — the
 * resolved grid, the files each band reads and how, patch and shard counts, framed and estimated
 * stored bytes, and a time estimate — without reading a pixel or writing anything.
 */
import { latticeShift } from '../grid/lattice.js';
import type { ExportPlan } from './plan.js';
import { option } from '../options.js';

/**
 * Throughput assumed per worker (MB of framed records per second, uncompressed): bench/grid.ts on
 * this project's 2-core machine (2026-12-02, load ~1.8, 2 workers: 68 / 54 / 46 MB/s) for bands
 * copied from files on the export grid, warped with nearest (or a picking reducer), and blended
 * (bilinear, bicubic, mean). GEOTFR_RATE_MBPS (shared/options.ts) overrides; gzip exports run slower (docs/export.md).
 */
export const RATES_MB_PER_S = { copy: 34, warp: 27, blend: 23 };
/** Share of the framed bytes gzip keeps for typical float32 imagery at level 6 (an assumption; random data keeps ~90%). */
export const GZIP_KEEPS = 0.6;

export interface DryRun {
  dryRun: true;
  grid: { crs: string; affine: number[]; width: number; height: number; rule: string };
  nativeGrid: { crs: string; affine: number[]; width: number; height: number };
  bands: { name: string; type: string; depth: number; resample: string; reduce: string | null; files: { uri: string; mode: 'copy' | 'warp' }[] }[];
  patchDimensions: [number, number];
  patchesPerRow: number;
  rows: number;
  totalPatches: number;
  shards: number;
  shardNames: string[];
  bytesFramed: number;
  bytesEstimated: number;
  secondsEstimated: number;
  rateMBps: number;
  /** The parallelism the time estimate assumes: one per core on this machine, the shards in the cloud. */
  workers: number;
  /**
   * On this machine: the worker threads the export would start (0: the in-process pipeline, the
   * default on one or two cores, which still keeps both cores busy; docs/export.md "Threads").
   */
  threads?: number;
}

/** The dry run of a plan with `workers` parallel workers (threads, or cloud shard workers). */
export function dryRun(plan: ExportPlan, opts: { workers: number; rateMBps?: number; threads?: number }): DryRun {
  const bytesFramed = plan.shards.reduce((n, s) => n + s.bytesFramed, 0);
  const fo = plan.request.formatOptions;
  const bands = plan.image
    ? plan.image.bands.map((b, i) => ({
        name: b.name,
        type: plan.sourceBands[i]!.type,
        depth: plan.sourceBands[i]!.depth,
        resample: b.resample,
        reduce: b.reduce,
        files: b.files.map((f) => ({
          uri: plan.image!.files[f]!.uri,
          mode: latticeShift(plan.image!.files[f]!.grid, plan.source) ? ('copy' as const) : ('warp' as const),
        })),
      }))
    : plan.sourceBands.map((b) => ({ name: b.name, type: b.type, depth: b.depth, resample: 'nearest', reduce: null, files: [] }));
  // The slowest kind of band sets the pace.
  const kinds = bands.map((b): keyof typeof RATES_MB_PER_S => {
    if (b.files.every((f) => f.mode === 'copy')) return 'copy';
    return b.reduce === 'mean' || (!b.reduce && b.resample !== 'nearest') ? 'blend' : 'warp';
  });
  const configured = option('dryRunRateMbps');
  const perWorker = opts.rateMBps ?? (configured > 0 ? configured : Math.min(...kinds.map((k) => RATES_MB_PER_S[k])));
  const workers = Math.max(1, Math.min(opts.workers, plan.shards.length * plan.chunkPatches || 1));
  const rate = perWorker * workers;
  return {
    dryRun: true,
    grid: { ...plan.source, rule: plan.gridRule },
    nativeGrid: plan.nativeGrid,
    bands,
    patchDimensions: plan.patchDimensions,
    patchesPerRow: plan.patchesPerRow,
    rows: plan.grid.rows,
    totalPatches: plan.totalPatches,
    shards: plan.shards.length,
    shardNames: plan.shards.map((s) => s.name),
    bytesFramed,
    bytesEstimated: Math.round(fo.compressed ? bytesFramed * GZIP_KEEPS : bytesFramed),
    secondsEstimated: Math.round((bytesFramed / (rate * 1e6)) * 10) / 10,
    rateMBps: rate,
    workers,
    ...(opts.threads === undefined ? {} : { threads: opts.threads }),
  };
}
