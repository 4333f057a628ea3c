/**
 * How an export opens its request's image. A module of its own so the worker threads, which only
 * open images and encode chunks, load neither the request schema (zod) nor the planner.
 */
import type { ImageSource } from '../raster/types.js';
import type { ImageSpec } from './request.js';

/** Opens a request's image (default: `openImage` from shared/raster/open.ts); tests pass in-memory sources. */
export type ImageSpecOpener = (image: ImageSpec, opts?: { signal?: AbortSignal }) => Promise<ImageSource>;

/** `openImage` from shared/raster/open.ts, loaded on first use (keeps the planner free of the readers). */
export const defaultOpener: ImageSpecOpener = async (image, o) => (await import('../raster/open.js')).openImage(image, o);
