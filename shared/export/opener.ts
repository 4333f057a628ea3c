/**
 * How an export reads its image. A module of its own so the worker threads, which only open images
 * and encode chunks, load neither the request schema (zod) nor the planner.
 */
import { GeotfrError } from '../errors.js';
import type { BlockProvider } from '../raster/geotiff.js';
import type { ImageSource } from '../raster/types.js';
import type { ExportPlan } from './plan.js';
import type { ImageSpec } from './request.js';

/** Opens a request's image on its own grid: tests pass in-memory sources instead of the plan's files. */
export type ImageSpecOpener = (image: ImageSpec, opts?: { signal?: AbortSignal }) => Promise<ImageSource>;

export interface PlanImageOptions {
  signal?: AbortSignal;
  open?: ImageSpecOpener;
  /** Per file URI: decoded blocks from another thread (the pool's block server). */
  blockProvider?: (uri: string) => BlockProvider;
  sharedBlocks?: boolean;
}

/**
 * The plan's image on its export grid: the plan's files through shared/grid/source.ts, or a custom
 * opener's source shifted onto the grid (custom sources are read on their own lattice only).
 */
export async function openPlanImage(plan: ExportPlan, opts: PlanImageOptions = {}): Promise<ImageSource> {
  const { GridImageSource, shiftedSource } = await import('../grid/source.js');
  if (opts.open) return shiftedSource(await opts.open(plan.request.image, { signal: opts.signal }), plan.source);
  if (!plan.image) throw new GeotfrError('INTERNAL', 'the plan has no image files and no opener was given');
  return new GridImageSource(plan.image, plan.source, { signal: opts.signal, blockProvider: opts.blockProvider, sharedBlocks: opts.sharedBlocks });
}
