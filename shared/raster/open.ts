/**
 * `openImage` (docs/semantics.md §2): a request's `image` — one raster URI (all its bands) or a list of band
 * requests over one or more files — as one `ImageSource` on one pixel grid. Band naming, selection,
 * renaming, array bands from several source bands, per-band nodata, and masks (docs/semantics.md §1) live here;
 * file access and tile decoding live in tiff.ts.
 */
import { resolveUri } from '../storage/open.js';
import { GeotfrError } from '../errors.js';
import { isHttpUri, openHttp } from '../storage/http.js';
import { TiffFile, type BlockProvider, type TiffOpenOptions } from './geotiff.js';
import {
  isFloatType as isFloat,
  type BandInfo,
  type ImageSource,
  type PixelGrid,
  type ReadFront,
  type ReadWindowOptions,
  type SampleType,
  type WindowData,
} from './types.js';

/** One requested band (docs/semantics.md §2): `band` picks one source band, `bands` builds an array band (1-based, like GDAL). */
export interface FileBandRequest {
  name: string;
  uri: string;
  band?: number;
  bands?: number[];
  nodata?: number;
}

export type FileImageSpec = string | { bands: FileBandRequest[] };

export interface OpenImageOptions {
  signal?: AbortSignal;
  /** Per-file decoded tile cache budget (default: about two rows of tiles across the image). */
  tileCacheBytes?: number;
  /** Decoded blocks in shared memory, served to other threads (TiffOpenOptions.sharedBlocks). */
  sharedBlocks?: boolean;
  /** Per file URI: where to take decoded blocks from instead of decoding here (TiffOpenOptions.blockProvider). */
  blockProvider?: (uri: string) => BlockProvider;
}

/** Relative tolerance for "same affine" between files (docs/semantics.md §2: all bands share one pixel grid). */
const AFFINE_RTOL = 1e-9;

/** How one output band is read: which file, which 0-based samples (depth order), and its mask rule. */
export interface BandPlan {
  info: BandInfo;
  file: TiffFile;
  samples: number[];
  /** Source type per depth (float32 nodata compares at float32 precision, like GDAL). */
  types: SampleType[];
  /** Every source type is float32-exact: read as Float32Array when the caller asks for float32. */
  float32Exact: boolean;
  nodata: number | undefined;
  /** Where the band came from, for messages. */
  label: string;
}

/** Sample types every value of which a float32 holds exactly. */
export const FLOAT32_EXACT = new Set<SampleType>(['float32', 'uint8', 'int8', 'uint16', 'int16']);

/** Opens one GeoTIFF/COG by URI (local, file://, gs://, or an allowed https:// prefix); `field` names it in errors. */
export async function openTiff(uri: string, field: string, opts: TiffOpenOptions = {}): Promise<TiffFile> {
  if (typeof uri !== 'string' || !uri) throw new GeotfrError('BAD_REQUEST', 'expected a raster URI', { field });
  const loc = isHttpUri(uri) ? { store: openHttp(uri, field), key: uri } : await resolveUri(uri, field);
  return TiffFile.open(loc.store, loc.key, uri, opts);
}

function sameGrid(a: PixelGrid, b: PixelGrid): boolean {
  if (a.crs !== b.crs || a.width !== b.width || a.height !== b.height) return false;
  const scale = Math.max(Math.abs(a.affine[0]), Math.abs(a.affine[4]), Math.abs(a.affine[1]), Math.abs(a.affine[3]));
  return a.affine.every((v, i) => Math.abs(v - b.affine[i]!) <= AFFINE_RTOL * Math.max(Math.abs(v), Math.abs(b.affine[i]!), scale));
}

const describeGrid = (g: PixelGrid) => `${g.crs} ${g.width}x${g.height} affine ${JSON.stringify(g.affine)}`;

/** Opens the image of an export request; rejects bands on different pixel grids. */
export async function openImage(image: FileImageSpec, opts: OpenImageOptions = {}): Promise<GeoTiffImageSource> {
  const requests: FileBandRequest[] | undefined = typeof image === 'string' ? undefined : image?.bands;
  if (typeof image !== 'string' && (!Array.isArray(requests) || requests.length === 0))
    throw new GeotfrError('BAD_REQUEST', 'expected a raster URI or {"bands": [...]} with at least one band', { field: 'image' });
  const uris = typeof image === 'string' ? [image] : [...new Set(requests!.map((r) => r.uri))];
  const files = new Map<string, TiffFile>();
  const tiffOpts = (uri: string): TiffOpenOptions => ({
    signal: opts.signal,
    tileCacheBytes: opts.tileCacheBytes,
    sharedBlocks: opts.sharedBlocks,
    blockProvider: opts.blockProvider?.(uri),
  });
  const opened = await Promise.allSettled(
    uris.map(async (uri) => {
      const field = typeof image === 'string' ? 'image' : `image.bands[${requests!.findIndex((r) => r.uri === uri)}].uri`;
      files.set(uri, await openTiff(uri, field, tiffOpts(uri)));
    }),
  );
  const failed = opened.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all([...files.values()].map((f) => f.close()));
    throw (failed as PromiseRejectedResult).reason;
  }
  try {
    const plans = typeof image === 'string' ? allBands(files.get(image)!) : requestedBands(requests!, files);
    const names = new Set<string>();
    for (const p of plans) {
      if (names.has(p.info.name))
        throw new GeotfrError(
          'BAD_REQUEST',
          `duplicate band name ${JSON.stringify(p.info.name)} (${p.label}); band names become feature names and must be unique`,
          { field: 'image' },
        );
      names.add(p.info.name);
    }
    const first = plans[0]!;
    for (const p of plans.slice(1)) {
      if (!sameGrid(first.file.grid, p.file.grid))
        throw new GeotfrError(
          'BAD_REQUEST',
          `bands are on different pixel grids: ${first.label} is on ${describeGrid(first.file.grid)} but ${p.label} is on ${describeGrid(p.file.grid)}; resample them onto one grid first (gdalwarp)`,
          { field: 'image' },
        );
    }
    return new GeoTiffImageSource(first.file.grid, plans, [...files.values()]);
  } catch (err) {
    await Promise.all([...files.values()].map((f) => f.close()));
    throw err;
  }
}

/** A raster URI alone: every band, named from GeoTIFF band descriptions, else b1, b2… (docs/semantics.md §2). */
function allBands(file: TiffFile): BandPlan[] {
  const described = file.descriptions.every((d) => d !== undefined && d !== '');
  return file.sampleTypes.map((type, i) => {
    const name = described ? file.descriptions[i]! : `b${i + 1}`;
    return {
      info: { name, type, depth: 1, ...(file.nodata !== undefined ? { nodata: file.nodata } : {}) },
      file,
      samples: [i],
      types: [type],
      float32Exact: FLOAT32_EXACT.has(type),
      nodata: file.nodata,
      label: `band ${i + 1} of ${file.uri}`,
    };
  });
}

function requestedBands(requests: FileBandRequest[], files: Map<string, TiffFile>): BandPlan[] {
  return requests.map((r, i) => {
    const field = `image.bands[${i}]`;
    const file = files.get(r.uri)!;
    const n = file.sampleTypes.length;
    if (typeof r.name !== 'string' || !r.name) throw new GeotfrError('BAD_REQUEST', 'band name must be a non-empty string', { field: `${field}.name` });
    if (r.band !== undefined && r.bands !== undefined)
      throw new GeotfrError('BAD_REQUEST', 'give either "band" (one source band) or "bands" (an array band), not both', { field });
    let indexes: number[];
    let which: string;
    if (r.bands !== undefined) {
      if (!Array.isArray(r.bands) || r.bands.length === 0)
        throw new GeotfrError('BAD_REQUEST', '"bands" must list at least one source band', { field: `${field}.bands` });
      indexes = r.bands;
      which = `${field}.bands`;
    } else if (r.band !== undefined) {
      indexes = [r.band];
      which = `${field}.band`;
    } else if (n === 1) {
      indexes = [1];
      which = field;
    } else {
      throw new GeotfrError('BAD_REQUEST', `${r.uri} has ${n} bands; say which with "band" or "bands"`, { field });
    }
    for (const b of indexes)
      if (!Number.isInteger(b) || b < 1 || b > n)
        throw new GeotfrError('BAD_REQUEST', `band ${JSON.stringify(b)} is out of range: ${r.uri} has ${n} band${n === 1 ? '' : 's'} (1-based)`, {
          field: which,
        });
    const types = indexes.map((b) => file.sampleTypes[b - 1]!);
    // An array band over source bands of different types is carried as float64 (exact for all of them).
    const type: SampleType = types.every((t) => t === types[0]) ? types[0]! : 'float64';
    const nodata = r.nodata ?? file.nodata;
    if (r.nodata !== undefined && typeof r.nodata !== 'number') throw new GeotfrError('BAD_REQUEST', 'nodata must be a number', { field: `${field}.nodata` });
    return {
      info: { name: r.name, type, depth: r.bands !== undefined ? indexes.length : 1, ...(nodata !== undefined ? { nodata } : {}) },
      file,
      samples: indexes.map((b) => b - 1),
      types,
      float32Exact: types.every((t) => FLOAT32_EXACT.has(t)),
      nodata,
      label: `${JSON.stringify(r.name)} (${field}, ${r.uri})`,
    };
  });
}

/** The ImageSource over one or more GeoTIFF files on one grid. */
export class GeoTiffImageSource implements ImageSource {
  readonly bands: BandInfo[];
  /** Per file, every sample some band reads from it (what `prefetch` asks each file for). */
  private readonly fileSamples = new Map<TiffFile, number[]>();

  constructor(
    readonly grid: PixelGrid,
    private readonly plans: BandPlan[],
    /** The open files (for stats in tests and benchmarks). */
    readonly files: TiffFile[],
  ) {
    this.bands = plans.map((p) => p.info);
    for (const p of plans) this.fileSamples.set(p.file, [...(this.fileSamples.get(p.file) ?? []), ...p.samples]);
  }

  async readWindow(x0: number, y0: number, width: number, height: number, opts: ReadWindowOptions = {}): Promise<WindowData> {
    const { signal, reuse } = opts;
    if (![x0, y0, width, height].every(Number.isInteger) || width <= 0 || height <= 0)
      throw new GeotfrError('INTERNAL', `bad window (${x0}, ${y0}, ${width}x${height})`);
    if (signal?.aborted) throw new GeotfrError('CANCELLED', 'read cancelled');
    const n = width * height;
    const narrow = this.plans.map((p) => opts.float32 === true && p.float32Exact);
    // A window the caller is done with is overwritten in place when its arrays have room for this
    // one (the same shape, or a larger one: a shard's first and last chunks are narrower than the
    // rest): masked pixels hold unspecified values (types.ts), and every valid flag is rewritten by mask().
    const fits =
      reuse !== undefined &&
      reuse.values.length === this.plans.length &&
      reuse.valid.length === this.plans.length &&
      this.plans.every(
        (p, b) =>
          room(reuse.values[b]!) >= p.samples.length * n && reuse.values[b] instanceof (narrow[b] ? Float32Array : Float64Array) && room(reuse.valid[b]!) >= n,
      );
    const values = fits
      ? this.plans.map((p, b) => grown(reuse.values[b]!, p.samples.length * n))
      : this.plans.map((p, b) => (narrow[b] ? new Float32Array(p.samples.length * n) : new Float64Array(p.samples.length * n)));
    // One read per file covering every sample any band needs, so shared tiles decode once.
    const perFile = new Map<TiffFile, { samples: number[]; out: (Float64Array | Float32Array)[] }>();
    this.plans.forEach((p, b) => {
      let e = perFile.get(p.file);
      if (!e) perFile.set(p.file, (e = { samples: [], out: [] }));
      p.samples.forEach((s, d) => {
        e!.samples.push(s);
        e!.out.push(values[b]!.subarray(d * n, (d + 1) * n));
      });
    });
    await Promise.all([...perFile].map(([f, e]) => f.readSamples(x0, y0, width, height, e.samples, e.out, signal)));
    const valid = this.plans.map((p, b) => mask(p, values[b]!, x0, y0, width, height, this.grid, fits ? grown(reuse.valid[b]!, n) : undefined));
    return { x0, y0, width, height, values, valid };
  }

  retire(front: ReadFront): void {
    for (const f of this.files) f.retire(front);
  }

  prefetch(x0: number, y0: number, width: number, height: number): void {
    for (const [f, samples] of this.fileSamples) void f.prefetch(x0, y0, width, height, samples);
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

/** Elements a typed array's buffer holds from its start on (a window's arrays may be views of larger ones). */
const room = (a: Float64Array | Float32Array | Uint8Array): number => (a.buffer.byteLength - a.byteOffset) / a.BYTES_PER_ELEMENT;

/** `a`'s buffer from its start, `length` elements long (at most `room(a)`). */
function grown<T extends Float64Array | Float32Array | Uint8Array>(a: T, length: number): T {
  return a.length === length ? a : new (a.constructor as new (b: ArrayBufferLike, o: number, l: number) => T)(a.buffer, a.byteOffset, length);
}

/** Valid flags (docs/semantics.md §1): inside the image and, for every depth, not nodata (NaN counts as nodata only without one in float bands). */
function mask(p: BandPlan, values: Float64Array | Float32Array, x0: number, y0: number, w: number, h: number, grid: PixelGrid, into?: Uint8Array): Uint8Array {
  const valid = into ? into.fill(0) : new Uint8Array(w * h);
  const cx0 = Math.max(0, x0) - x0,
    cx1 = Math.min(grid.width, x0 + w) - x0;
  const cy0 = Math.max(0, y0) - y0,
    cy1 = Math.min(grid.height, y0 + h) - y0;
  if (cx1 <= cx0 || cy1 <= cy0) return valid;
  for (let y = cy0; y < cy1; y++) valid.fill(1, y * w + cx0, y * w + cx1);
  const n = w * h;
  const nd = p.nodata;
  for (let d = 0; d < p.types.length; d++) {
    const type = p.types[d]!;
    const off = d * n;
    // Two monomorphic loops (NaN test, equality test) in functions of their own, called with
    // plain arguments: written as a closure over mutable variables inside forEach, this loop
    // allocated (boxed doubles, ~17 MB per 170 MB export in a sampling heap profile).
    if (nd === undefined) {
      if (isFloat(type)) maskNaN(values, valid, off, w, cx0, cx1, cy0, cy1);
    } else if (Number.isNaN(nd)) maskNaN(values, valid, off, w, cx0, cx1, cy0, cy1);
    // GDAL compares a float32 band against its nodata cast to float32.
    else maskEqual(values, valid, off, w, cx0, cx1, cy0, cy1, type === 'float32' ? Math.fround(nd) : nd);
  }
  return valid;
}

/** Clears the valid flag of NaN samples in rows [cy0, cy1), columns [cx0, cx1) of one depth (at `off`). */
function maskNaN(values: Float64Array | Float32Array, valid: Uint8Array, off: number, w: number, cx0: number, cx1: number, cy0: number, cy1: number): void {
  for (let y = cy0; y < cy1; y++) {
    const end = y * w + cx1;
    for (let i = y * w + cx0; i < end; i++) {
      const v = values[off + i]!;
      if (v !== v) valid[i] = 0;
    }
  }
}

/** Clears the valid flag of samples equal to `target` (maskNaN's rectangle). */
function maskEqual(
  values: Float64Array | Float32Array,
  valid: Uint8Array,
  off: number,
  w: number,
  cx0: number,
  cx1: number,
  cy0: number,
  cy1: number,
  target: number,
): void {
  for (let y = cy0; y < cy1; y++) {
    const end = y * w + cx1;
    for (let i = y * w + cx0; i < end; i++) if (values[off + i] === target) valid[i] = 0;
  }
}
