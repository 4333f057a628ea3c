/**
 * A request's `image` as files and bands, at plan time (docs/semantics.md §2, §11): URIs, lists,
 * globs (local and gs://) and STAC items expanded to files; every file's header read once (grid,
 * sample types, nodata, band descriptions) and kept in the plan, so workers know each file's
 * footprint without opening it and open only the files their windows need. Pure JSON.
 */
import { GeotfrError } from '../errors.js';
import { openTiff } from '../raster/open.js';
import type { PixelGrid, SampleType } from '../raster/types.js';
import { expandUris } from './glob.js';
import { REDUCERS, RESAMPLINGS, type Reducer, type Resampling } from './resample.js';
import { stacBands, type StacBandEntry, type StacGrid } from './stac.js';
import { footprintBounds, resolveGrid, type GridParams, type GridRule } from './resolve.js';

/** One source file as the plan records it. */
export interface SourceFile {
  uri: string;
  grid: PixelGrid;
  /** Sample type of each band (0-based). */
  types: SampleType[];
  /** GDAL_NODATA, null when unset. */
  nodata: number | null;
  descriptions: (string | null)[];
}

/** One output band: which samples of which files (mosaic order: the last valid wins), and how it is resampled. */
export interface PlannedBand {
  name: string;
  /** 0-based samples of each file, in depth order. */
  samples: number[];
  /** An array band (depth = samples.length) rather than a scalar one. */
  array: boolean;
  /** The request's nodata, overriding each file's; null when not given. */
  nodata: number | null;
  resample: Resampling;
  reduce: Reducer | null;
  /** Indexes into `PlannedImage.files`. */
  files: number[];
  /** Where the band came from, for messages. */
  label: string;
}

export interface PlannedImage {
  files: SourceFile[];
  bands: PlannedBand[];
}

/** The request's band form (docs/semantics.md §2, §11). */
export interface BandRequestSpec {
  name: string;
  uri: string | string[];
  band?: number;
  bands?: number[];
  nodata?: number;
  resample?: Resampling;
  reduce?: Reducer;
}

export type ImageRequestSpec = string | { bands: BandRequestSpec[] } | { stac: string; bands: StacBandEntry[] };

/** Headers read at once while planning (a glob over many scenes must not open them all together). */
const HEADER_CONCURRENCY = 8;

/** Reads headers of `uris` (deduplicated), `HEADER_CONCURRENCY` at a time. */
async function readHeaders(uris: string[], fields: Map<string, string>, signal?: AbortSignal): Promise<Map<string, SourceFile>> {
  const out = new Map<string, SourceFile>();
  const queue = [...new Set(uris)];
  const worker = async () => {
    for (let uri = queue.shift(); uri !== undefined; uri = queue.shift()) {
      signal?.throwIfAborted();
      const f = await openTiff(uri, fields.get(uri) ?? 'image', { signal, tileCacheBytes: 1 });
      try {
        out.set(uri, {
          uri,
          grid: { crs: f.grid.crs, affine: [...f.grid.affine], width: f.grid.width, height: f.grid.height },
          types: [...f.sampleTypes],
          nodata: f.nodata ?? null,
          descriptions: f.descriptions.map((d) => d ?? null),
        });
      } finally {
        await f.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEADER_CONCURRENCY, queue.length) }, worker));
  return out;
}

function checkKernel(resample: unknown, reduce: unknown, field: string): void {
  if (resample !== undefined && !RESAMPLINGS.includes(resample as Resampling))
    throw new GeotfrError('BAD_REQUEST', `resample must be one of ${RESAMPLINGS.join(', ')}; got ${JSON.stringify(resample)}`, { field: `${field}.resample` });
  if (reduce !== undefined && !REDUCERS.includes(reduce as Reducer))
    throw new GeotfrError('BAD_REQUEST', `reduce must be one of ${REDUCERS.join(', ')}; got ${JSON.stringify(reduce)}`, { field: `${field}.reduce` });
}

/** The STAC grid (when declared) laid over a file's own georeferencing. */
function withStacGrid(f: SourceFile, g: StacGrid | undefined): SourceFile {
  if (!g || (!g.crs && !g.affine)) return f;
  const grid: PixelGrid = {
    crs: g.crs ?? f.grid.crs,
    affine: g.affine ? [...g.affine] : f.grid.affine,
    width: g.width ?? f.grid.width,
    height: g.height ?? f.grid.height,
  };
  if (grid.width !== f.grid.width || grid.height !== f.grid.height)
    throw new GeotfrError('BAD_INPUT', `STAC proj:shape [${grid.height}, ${grid.width}] differs from the file's ${f.grid.height}x${f.grid.width} pixels`, {
      file: f.uri,
    });
  return { ...f, grid };
}

/**
 * Expands and describes a request's image. `resample` is the request's top-level default. Errors:
 * BAD_REQUEST naming the field (a glob matching nothing, a STAC item without the band, files of
 * different band counts in one mosaic, bands out of range, duplicate names).
 */
/** Called with every file URI an image resolves to (STAC hrefs, glob matches) before it is opened; throws to refuse it. */
export type SourceCheck = (uri: string, field: string) => void;

export async function planImage(
  image: ImageRequestSpec,
  opts: { resample?: Resampling; signal?: AbortSignal; checkSource?: SourceCheck } = {},
): Promise<PlannedImage> {
  const defaultResample = opts.resample ?? 'nearest';
  // Each band as: name, its URIs (mosaic order), STAC grids, and the request's selection.
  interface Wanted {
    name?: string;
    uris: string[];
    grids?: StacGrid[];
    band?: number;
    bands?: number[];
    nodata?: number;
    resample?: Resampling;
    reduce?: Reducer;
    field: string;
  }
  let wanted: Wanted[];
  /** A raster URI (or glob) alone: every band of its files. */
  let allOf: Wanted | undefined;
  if (typeof image === 'string') {
    allOf = { uris: await expandUris(image, 'image'), field: 'image' };
    wanted = [];
  } else if (image && typeof image === 'object' && 'stac' in image) {
    const bands = await stacBands(image.stac, image.bands, 'image');
    bands.forEach((b, i) => checkKernel(b.resample, b.reduce, `image.bands[${i}]`));
    wanted = bands.map((b, i) => ({
      name: b.name,
      uris: b.uris,
      grids: b.grids,
      nodata: b.nodata,
      resample: b.resample,
      reduce: b.reduce,
      field: `image.bands[${i}]`,
    }));
  } else if (image && typeof image === 'object' && Array.isArray((image as { bands?: unknown }).bands) && (image as { bands: unknown[] }).bands.length > 0) {
    const reqs = (image as { bands: BandRequestSpec[] }).bands;
    wanted = [];
    for (const [i, r] of reqs.entries()) {
      const field = `image.bands[${i}]`;
      if (!r || typeof r !== 'object') throw new GeotfrError('BAD_REQUEST', 'expected a band object', { field });
      if (typeof r.name !== 'string' || !r.name) throw new GeotfrError('BAD_REQUEST', 'band name must be a non-empty string', { field: `${field}.name` });
      if (r.band !== undefined && r.bands !== undefined)
        throw new GeotfrError('BAD_REQUEST', 'give either "band" (one source band) or "bands" (an array band), not both', { field });
      if (r.nodata !== undefined && typeof r.nodata !== 'number') throw new GeotfrError('BAD_REQUEST', 'nodata must be a number', { field: `${field}.nodata` });
      checkKernel(r.resample, r.reduce, field);
      wanted.push({ ...r, uris: await expandUris(r.uri, `${field}.uri`), field });
    }
  } else {
    throw new GeotfrError('BAD_REQUEST', 'expected a raster URI, {"bands": [...]} with at least one band, or {"stac": URI, "bands": [...]}', {
      field: 'image',
    });
  }

  const fields = new Map<string, string>();
  for (const w of [...wanted, ...(allOf ? [allOf] : [])])
    for (const u of w.uris) if (!fields.has(u)) fields.set(u, w.field === 'image' ? 'image' : `${w.field}.uri`);
  // The cloud's allow-list sees every file, including those a STAC item or a glob named, before any is read.
  if (opts.checkSource) for (const [u, f] of fields) opts.checkSource(u, f);
  const headers = await readHeaders([...fields.keys()], fields, opts.signal);

  const files: SourceFile[] = [];
  const index = new Map<string, number>();
  const fileIndex = (f: SourceFile): number => {
    const key = `${f.uri}\u0000${JSON.stringify(f.grid)}`;
    let i = index.get(key);
    if (i === undefined) {
      i = files.length;
      files.push(f);
      index.set(key, i);
    }
    return i;
  };

  const bands: PlannedBand[] = [];
  if (allOf) {
    const first = headers.get(allOf.uris[0]!)!;
    checkSameCount(
      allOf.uris.map((u) => headers.get(u)!),
      'image',
    );
    const described = first.descriptions.every((d) => d !== null && d !== '');
    first.types.forEach((_, s) => {
      bands.push({
        name: described ? first.descriptions[s]! : `b${s + 1}`,
        samples: [s],
        array: false,
        nodata: null,
        resample: defaultResample,
        reduce: null,
        files: allOf!.uris.map((u) => fileIndex(headers.get(u)!)),
        label: `band ${s + 1} of ${allOf!.uris.length === 1 ? first.uri : `${allOf!.uris.length} files (${first.uri}, …)`}`,
      });
    });
  }
  for (const w of wanted) {
    const srcs = w.uris.map((u, k) => withStacGrid(headers.get(u)!, w.grids?.[k]));
    checkSameCount(srcs, w.field);
    const n = srcs[0]!.types.length;
    let samples: number[];
    let which: string;
    if (w.bands !== undefined) {
      if (!Array.isArray(w.bands) || w.bands.length === 0)
        throw new GeotfrError('BAD_REQUEST', '"bands" must list at least one source band', { field: `${w.field}.bands` });
      samples = w.bands.map((b) => b - 1);
      which = `${w.field}.bands`;
    } else if (w.band !== undefined) {
      samples = [w.band - 1];
      which = `${w.field}.band`;
    } else if (n === 1) {
      samples = [0];
      which = w.field;
    } else {
      throw new GeotfrError('BAD_REQUEST', `${srcs[0]!.uri} has ${n} bands; say which with "band" or "bands"`, { field: w.field });
    }
    for (const s of samples)
      if (!Number.isInteger(s) || s < 0 || s >= n)
        throw new GeotfrError('BAD_REQUEST', `band ${JSON.stringify(s + 1)} is out of range: ${srcs[0]!.uri} has ${n} band${n === 1 ? '' : 's'} (1-based)`, {
          field: which,
        });
    bands.push({
      name: w.name!,
      samples,
      array: w.bands !== undefined,
      nodata: w.nodata ?? null,
      resample: w.resample ?? defaultResample,
      reduce: w.reduce ?? null,
      files: srcs.map(fileIndex),
      label: `${JSON.stringify(w.name)} (${w.field}, ${srcs.length === 1 ? srcs[0]!.uri : `${srcs.length} files`})`,
    });
  }
  const names = new Set<string>();
  for (const b of bands) {
    if (names.has(b.name))
      throw new GeotfrError('BAD_REQUEST', `duplicate band name ${JSON.stringify(b.name)} (${b.label}); band names become feature names and must be unique`, {
        field: 'image',
      });
    names.add(b.name);
  }
  return { files, bands };
}

/** A mosaic's files must all have the same number of bands. */
function checkSameCount(srcs: SourceFile[], field: string): void {
  const n = srcs[0]!.types.length;
  const odd = srcs.find((f) => f.types.length !== n);
  if (odd)
    throw new GeotfrError('BAD_REQUEST', `files of one mosaic have different band counts: ${srcs[0]!.uri} has ${n}, ${odd.uri} has ${odd.types.length}`, {
      field,
    });
}

/**
 * The image without the files that cannot contribute to a W×H export grid (with `marginPx` of tile
 * margins and kernel support around it): a glob over many scenes keeps only those under the region,
 * so the plan stays small and no worker ever looks at the others. Footprints come from the headers
 * already read; a file whose footprint cannot be placed on the grid is kept (workers skip it).
 */
export function pruneImage(
  image: PlannedImage,
  grid: PixelGrid,
  marginPx: number,
  footprint: (g: PixelGrid) => [number, number, number, number] | null,
): PlannedImage {
  const keep = image.files.map((f) => {
    const b = footprint(f.grid);
    if (!b) return true;
    return b[0] < grid.width + marginPx && b[2] > -marginPx && b[1] < grid.height + marginPx && b[3] > -marginPx;
  });
  if (keep.every(Boolean)) return image;
  const index = new Map<number, number>();
  const files: SourceFile[] = [];
  image.files.forEach((f, i) => {
    if (!keep[i]) return;
    index.set(i, files.length);
    files.push(f);
  });
  return { files, bands: image.bands.map((b) => ({ ...b, files: b.files.filter((i) => keep[i]).map((i) => index.get(i)!) })) };
}

/** A request's image planned onto its resolved grid (docs/semantics.md §11). */
export interface GridImagePlan {
  /** The files that can contribute to the grid (pruneImage) and the bands. */
  image: PlannedImage;
  /** The resolved grid. */
  grid: PixelGrid;
  rule: GridRule;
  /** The first band's native grid (its first file's). */
  native: PixelGrid;
}

/**
 * Expands a request's image (planImage), resolves the grid from the request's grid fields with the
 * first band as reference (resolveGrid) and drops the files that miss the grid by more than
 * `marginPx` (pruneImage): the planning step image export and export-patches share.
 */
export async function planGridImage(
  image: ImageRequestSpec,
  params: GridParams,
  opts: { resample?: Resampling; marginPx: number; signal?: AbortSignal; checkSource?: SourceCheck },
): Promise<GridImagePlan> {
  const all = await planImage(image, { resample: opts.resample, signal: opts.signal, checkSource: opts.checkSource });
  const first = all.bands[0]!;
  const native = all.files[first.files[0]!]!.grid;
  const g = resolveGrid(
    params,
    native,
    first.files.map((f) => all.files[f]!.grid),
  );
  const grid: PixelGrid = { crs: g.crs, affine: g.affine, width: g.width, height: g.height };
  const pruned = pruneImage(all, grid, opts.marginPx, (fg) => {
    try {
      return footprintBounds(fg, grid);
    } catch {
      return null;
    }
  });
  return { image: pruned, grid, rule: g.rule, native };
}
