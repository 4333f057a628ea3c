/**
 * Sampled points (docs/semantics.md §12): EE's `sample({region, numPixels, seed})` and
 * `stratifiedSample({classBand, numPoints, classValues, classPoints, region, seed})`.
 *
 * Both use selection sampling (Knuth's Algorithm S): the region's pixels are visited once in
 * row-major order and each is taken with probability (still needed) / (still available). That draws
 * exactly the wanted number of distinct pixels, every subset of that size equally likely, with O(1)
 * memory, and yields them in row-major order, which is also the order that reads each source block
 * once. The generator is seeded and runs on the planning thread only, so the points (and the bytes)
 * do not depend on the number of workers.
 *
 * `stratified` counts each class's available pixels first (the class band valid and, with dropNulls,
 * every band valid at the pixel), then samples each class with its own quota min(requested, available):
 * the counts in the output are exact.
 */
import { GeotfrError } from '../errors.js';
import { regionToPixelWindow, type PixelWindow } from '../raster/crs.js';
import { isFloatType, type ImageSource } from '../raster/types.js';
import { PixelLocator, type PatchPoint, type PointStream } from './points.js';
import { PATCH_LIMITS, type PatchExportRequest, type PointsSpec } from './request.js';
import { SeededRandom } from './rng.js';

/** Points per yielded batch. */
const BATCH = 4096;
/** Pixels per strip read while scanning for stratified sampling. */
const STRIP_PIXELS = 1 << 20;

/** What stratified sampling found and took, per class value (in the summary). */
export interface ClassCount {
  value: number;
  available: number;
  requested: number;
  selected: number;
}

/** The region's pixels inside the image (sampling covers only real pixels). */
function sampleWindow(region: unknown, src: ImageSource, field: string): PixelWindow {
  let win: PixelWindow;
  try {
    win = regionToPixelWindow(region as never, src.grid);
  } catch (err) {
    if (err instanceof GeotfrError) throw new GeotfrError(err.code, err.message.replace(/^field region: /, ''), { field });
    throw err;
  }
  const x0 = Math.max(0, win.x0),
    y0 = Math.max(0, win.y0);
  const x1 = Math.min(src.grid.width, win.x0 + win.width),
    y1 = Math.min(src.grid.height, win.y0 + win.height);
  const out = { x0, y0, width: x1 - x0, height: y1 - y0 };
  const pixels = out.width * out.height;
  if (pixels > PATCH_LIMITS.maxPixels)
    throw new GeotfrError(
      'LIMIT',
      `the sampled region has ${pixels} pixels (${out.width}x${out.height}), more than PATCH_LIMITS.maxPixels ${PATCH_LIMITS.maxPixels}; give a smaller region`,
      { field },
    );
  return out;
}

/** `{"sample": {...}}`: numPixels distinct pixels, uniformly, in row-major order. */
export function samplePoints(req: PatchExportRequest, spec: Extract<PointsSpec, { sample: unknown }>['sample'], src: ImageSource): PointStream {
  const win = sampleWindow(spec.region, src, 'points.sample.region');
  const M = win.width * win.height;
  if (spec.numPixels > M)
    throw new GeotfrError('BAD_REQUEST', `numPixels ${spec.numPixels} is more than the ${M} pixels of the region (${win.width}x${win.height})`, {
      field: 'points.sample.numPixels',
    });
  const locator = new PixelLocator(src.grid, src.grid.crs, req.geometries, { field: 'points.sample.region' });
  let emitted = 0;
  const batches = async function* (): AsyncGenerator<PatchPoint[]> {
    const rng = new SeededRandom(spec.seed);
    let need = spec.numPixels;
    let batch: PatchPoint[] = [];
    for (let t = 0; t < M && need > 0; t++) {
      if (rng.next() * (M - t) >= need) continue;
      need--;
      const p: PatchPoint = { index: emitted++, col: win.x0 + (t % win.width), row: win.y0 + Math.floor(t / win.width) };
      locator.centre(p);
      batch.push(p);
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  };
  return { batches: batches(), inputPoints: () => emitted, finish() {}, columns: () => [], close: async () => {} };
}

/** `{"stratified": {...}}`: per class min(requested, available) pixels, in row-major order. */
export async function stratifiedPoints(
  req: PatchExportRequest,
  spec: Extract<PointsSpec, { stratified: unknown }>['stratified'],
  src: ImageSource,
  signal?: AbortSignal,
): Promise<PointStream & { classes: ClassCount[] }> {
  const f = 'points.stratified';
  const band = src.bands.findIndex((b) => b.name === spec.classBand);
  if (band < 0)
    throw new GeotfrError(
      'BAD_REQUEST',
      `classBand ${JSON.stringify(spec.classBand)} is not a band of the image (bands: ${src.bands.map((b) => b.name).join(', ')})`,
      { field: `${f}.classBand` },
    );
  const info = src.bands[band]!;
  if (isFloatType(info.type) || info.depth !== 1)
    throw new GeotfrError(
      'BAD_REQUEST',
      `classBand ${JSON.stringify(spec.classBand)} is ${info.depth !== 1 ? `an array band (${info.depth} values per pixel)` : `a ${info.type} band`}; it must be a scalar integer band`,
      { field: `${f}.classBand` },
    );
  const win = sampleWindow(spec.region, src, `${f}.region`);
  const wanted = spec.classValues ? new Set(spec.classValues) : undefined;
  const eligible = (valid: Uint8Array[], i: number) => {
    if (!valid[band]![i]) return false;
    if (req.dropNulls) for (const v of valid) if (!v[i]) return false;
    return true;
  };
  // Pass 1: available pixels per class.
  const available = new Map<number, number>();
  await scan(src, band, win, signal, (value, valid, i) => {
    if (!eligible(valid, i)) return;
    const c = value[i]!;
    if (wanted && !wanted.has(c)) return;
    available.set(c, (available.get(c) ?? 0) + 1);
  });
  const values = spec.classValues ?? [...available.keys()].sort((a, b) => a - b);
  const classes: ClassCount[] = values.map((v, k) => {
    const requested = spec.classPoints ? spec.classPoints[k]! : spec.numPoints!;
    const avail = available.get(v) ?? 0;
    return { value: v, available: avail, requested, selected: Math.min(requested, avail) };
  });
  const byValue = new Map(classes.map((c) => [c.value, { need: c.selected, left: c.available }]));
  const locator = new PixelLocator(src.grid, src.grid.crs, req.geometries, { field: `${f}.region` });
  let emitted = 0;
  const batches = async function* (): AsyncGenerator<PatchPoint[]> {
    // Pass 2: one seeded stream, consumed once per available pixel of a class still short of its quota.
    const rng = new SeededRandom(spec.seed);
    const queue: PatchPoint[][] = [];
    let batch: PatchPoint[] = [];
    const strips = stripsOf(win);
    for (const s of strips) {
      await scanStrip(src, band, win, s, signal, (value, valid, i) => {
        if (!eligible(valid, i)) return;
        const q = byValue.get(value[i]!);
        if (!q || q.need === 0) return;
        const take = rng.next() * q.left < q.need;
        q.left--;
        if (!take) return;
        q.need--;
        const p: PatchPoint = { index: emitted++, col: win.x0 + (i % win.width), row: s.y0 + Math.floor(i / win.width) };
        locator.centre(p);
        batch.push(p);
        if (batch.length >= BATCH) {
          queue.push(batch);
          batch = [];
        }
      });
      while (queue.length) yield queue.shift()!;
    }
    if (batch.length) yield batch;
  };
  return { batches: batches(), inputPoints: () => emitted, finish() {}, columns: () => [], close: async () => {}, classes };
}

interface Strip {
  y0: number;
  height: number;
}

function stripsOf(win: PixelWindow): Strip[] {
  const rows = Math.max(1, Math.floor(STRIP_PIXELS / win.width));
  const out: Strip[] = [];
  for (let y = win.y0; y < win.y0 + win.height; y += rows) out.push({ y0: y, height: Math.min(rows, win.y0 + win.height - y) });
  return out;
}

type Visit = (classValues: Float64Array | Float32Array, valid: Uint8Array[], i: number) => void;

/** Reads one strip of the region (every band: validity needs them all) and visits its pixels row-major. */
async function scanStrip(src: ImageSource, band: number, win: PixelWindow, s: Strip, signal: AbortSignal | undefined, visit: Visit): Promise<void> {
  signal?.throwIfAborted();
  const data = await src.readWindow(win.x0, s.y0, win.width, s.height, { signal });
  const n = win.width * s.height;
  const cls = data.values[band]!;
  for (let i = 0; i < n; i++) visit(cls, data.valid, i);
}

async function scan(src: ImageSource, band: number, win: PixelWindow, signal: AbortSignal | undefined, visit: Visit): Promise<void> {
  for (const s of stripsOf(win)) await scanStrip(src, band, win, s, signal, visit);
}
