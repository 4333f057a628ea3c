/**
 * The image export request (docs/semantics.md §2): one zod schema with Earth Engine's names, every default in this
 * file, unknown keys rejected the way EE's client rejects them (`Unknown format options: foo`).
 *
 * The same document arrives from the CLI, a Pub/Sub message, a bucket drop or a schedule, so parsing
 * is pure: `parseImageExportRequest(json)` returns the normalized request (defaults applied,
 * `{date}` in `fileNamePrefix` resolved) that the plan then carries everywhere.
 */
import * as z from 'zod';
import { GeotfrError } from '../errors.js';
import { checkValueDepth } from '../limits.js';
import { checkKey } from '../storage/port.js';

/** Defaults in one place (docs/semantics.md §2, §4, §5; EE's `Export.image.toCloudStorage`). */
export const DEFAULTS = {
  fileFormat: 'TFRecord',
  maxPixels: 1e8,
  kernelSize: [1, 1] as [number, number],
  compressed: true, // docs/semantics.md §5 Decision (EE's own clients send false)
  compressionLevel: 6, // TensorFlow's zlib level
  maxFileSize: 2 ** 30, // 1 GiB of uncompressed framed bytes per file
  defaultValue: 0,
  sequenceData: false,
  collapseBands: false,
  maskedThreshold: 1,
  bandTypes: 'float' as const,
  fileNamePrefix: 'myExportImageTask', // EE: the prefix defaults to the task description, which defaults to this
};

const posInt = z.number().int().positive();
const pair = z.tuple([posInt, posInt]);

/** Resampling onto the export grid (docs/semantics.md §11). */
const resample = z.enum(['nearest', 'bilinear', 'bicubic']);
const reduce = z.enum(['mean', 'mode', 'min', 'max']);

const bandRequest = z.strictObject({
  name: z.string().min(1),
  /** One URI, a glob, or a list of them: several files are mosaicked, the last valid on top. */
  uri: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  band: posInt.optional(),
  bands: z.array(posInt).min(1).optional(),
  nodata: z.number().optional(),
  resample: resample.optional(),
  reduce: reduce.optional(),
});

/** `{"stac": URI, "bands": [...]}`: bands of a STAC Item or ItemCollection, by asset key or eo:bands name. */
const stacBand = z.union([
  z.string().min(1),
  z.strictObject({
    name: z.string().min(1),
    asset: z.string().min(1).optional(),
    resample: resample.optional(),
    reduce: reduce.optional(),
    nodata: z.number().optional(),
  }),
]);

/** A request's `image` (docs/semantics.md §2, §11): a URI or glob, bands (mosaics per band), or STAC. Shared with export-patches. */
export const imageSpec = z.union([
  z.string().min(1),
  z.strictObject({ bands: z.array(bandRequest).min(1) }),
  z.strictObject({ stac: z.string().min(1), bands: z.array(stacBand).min(1) }),
]);

const bbox = z
  .tuple([z.number(), z.number(), z.number(), z.number()])
  .refine((b) => b.every(Number.isFinite) && b[0] < b[2] && b[1] < b[3], 'expected [xmin, ymin, xmax, ymax] with xmin < xmax and ymin < ymax');

/** A GeoJSON geometry (its bbox is used, docs/semantics.md §2); coordinates are checked when the region is projected. */
const geometry = z.looseObject({
  type: z.enum(['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon', 'GeometryCollection', 'Feature']),
});

const formatOptions = z.strictObject({
  patchDimensions: pair,
  kernelSize: pair.default(DEFAULTS.kernelSize),
  compressed: z.boolean().default(DEFAULTS.compressed),
  compressionLevel: z.number().int().min(1).max(9).default(DEFAULTS.compressionLevel),
  maxFileSize: posInt.default(DEFAULTS.maxFileSize),
  defaultValue: z.number().refine(Number.isFinite, 'expected a finite number').default(DEFAULTS.defaultValue),
  tensorDepths: z.record(z.string(), posInt).default({}),
  sequenceData: z.boolean().default(DEFAULTS.sequenceData),
  collapseBands: z.boolean().default(DEFAULTS.collapseBands),
  maskedThreshold: z.number().min(0).max(1).default(DEFAULTS.maskedThreshold),
  bandTypes: z.enum(['float', 'native']).default(DEFAULTS.bandTypes),
});

/**
 * The export grid fields (docs/semantics.md §11), one shape for every request that names a grid
 * (image export, export-patches); their interplay is checked by shared/grid/resolve.ts.
 */
export const gridFields = {
  crs: z.string().min(1).optional(),
  crsTransform: z.array(z.number()).length(6).optional(),
  scale: z.number().positive().optional(),
  dimensions: z.union([posInt, z.string().min(1), pair]).optional(),
  resample: resample.optional(),
};

const requestSchema = z.strictObject({
  image: imageSpec,
  region: z.union([bbox, geometry]).optional(),
  bucket: z.string().min(1),
  fileNamePrefix: z.string().min(1).optional(),
  description: z.string().optional(),
  fileFormat: z
    .string()
    .refine((s) => s.toLowerCase() === 'tfrecord', 'only "TFRecord" is supported')
    .transform(() => 'TFRecord' as const)
    .default('TFRecord'),
  maxPixels: z.number().positive().default(DEFAULTS.maxPixels),
  // geotfr extension: replace an earlier export under the same prefix (docs/semantics.md §5).
  overwrite: z.boolean().default(false),
  formatOptions: formatOptions,
  ...gridFields,
  /** Resolve and describe the export without reading pixels or writing anything. */
  dryRun: z.boolean().optional(),
  // EE export fields that change nothing here (docs/semantics.md §2): accepted, each one a warning.
  priority: z.number().int().optional(),
  shardSize: posInt.optional(),
  skipEmptyTiles: z.boolean().optional(),
  fileDimensions: z.union([posInt, pair]).optional(),
});

/** EE's export fields that geotfr accepts for compatibility but that have no effect on its output. */
export const NO_EFFECT_FIELDS = ['priority', 'shardSize', 'skipEmptyTiles', 'fileDimensions'] as const;

export type BandRequest = z.infer<typeof bandRequest>;
export type ImageSpec = z.infer<typeof imageSpec>;
export type FormatOptions = z.output<typeof formatOptions>;
export type Region = [number, number, number, number] | ({ type: string } & Record<string, unknown>);

/** A validated request with every default applied (plain JSON). */
export interface ImageExportRequest {
  image: ImageSpec;
  region?: Region;
  crs?: string;
  crsTransform?: number[];
  scale?: number;
  dimensions?: number | string | [number, number];
  resample?: z.infer<typeof resample>;
  dryRun?: boolean;
  bucket: string;
  fileNamePrefix: string;
  description?: string;
  fileFormat: 'TFRecord';
  maxPixels: number;
  /** Replace an earlier export under the same prefix once this one is complete (docs/semantics.md §5). */
  overwrite: boolean;
  formatOptions: FormatOptions;
  /** Which of NO_EFFECT_FIELDS the request gave (reported as warnings; absent when none). */
  ignored?: string[];
}

/** EE parameters with a hint when misspelt or misplaced. */
const UNSUPPORTED: Record<string, string> = {
  crs_transform: 'the field is crsTransform (docs/semantics.md §11)',
};

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: any = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k as any];
  }
  return v;
}

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 80 ? s.slice(0, 77) + '...' : s;
};

/** Turns the first zod issue into an error naming the field and the bad value. */
/**
 * A union's failure as the issue of the branch that got furthest (the longest path), so a bad band
 * of `{"bands": [...]}` is reported as that band's field, not as "image: Invalid input".
 */
export function deepest(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    const first = branch[0];
    if (!first) continue;
    const d = deepest({ ...first, path: [...issue.path, ...first.path] } as z.core.$ZodIssue);
    if (!best || d.path.length > best.path.length) best = d;
  }
  return best && best.path.length > issue.path.length ? best : issue;
}

function toError(err: z.ZodError, input: unknown): GeotfrError {
  const issue = deepest(err.issues[0]!);
  const field = issue.path.map(String).join('.') || '(request)';
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.join(', ');
    const where = issue.path.length ? issue.path.map(String).join('.') : '';
    if (where === 'formatOptions') return new GeotfrError('BAD_REQUEST', `Unknown format options: ${keys}`, { field: 'formatOptions' });
    if (!where) {
      const why = issue.keys.map((k) => UNSUPPORTED[k]).filter(Boolean);
      return new GeotfrError('BAD_REQUEST', `Unknown request fields: ${keys}${why.length ? ` (${why.join('; ')})` : ''}`, { field: '(request)' });
    }
    return new GeotfrError('BAD_REQUEST', `Unknown fields in ${where}: ${keys}`, { field: where });
  }
  const value = valueAt(input, issue.path);
  const missing = value === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union');
  const msg = missing ? `required (${issue.message})` : `${issue.message}; got ${show(value)}`;
  return new GeotfrError('BAD_REQUEST', msg, { field });
}

/**
 * The prefix a request writes under, before `{date}` (docs/semantics.md §2): `fileNamePrefix`, else the
 * task `description` (EE's rule), else EE's default. One rule for the parser and the cloud policy, so
 * whatever becomes the prefix is what the policy checks.
 */
export function requestedPrefix(r: { fileNamePrefix?: unknown; description?: unknown }): string {
  if (typeof r.fileNamePrefix === 'string') return r.fileNamePrefix;
  if (typeof r.description === 'string') return r.description;
  return DEFAULTS.fileNamePrefix;
}

/** Today's UTC date as YYYY-MM-DD, the `{date}` placeholder of scheduled exports. */
export function utcDate(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/**
 * Validates an export request (docs/semantics.md §2) and applies defaults. Throws `BAD_REQUEST` naming the field
 * and value, or `FORBIDDEN` for a prefix escaping the destination (`..`, absolute).
 */
export function parseImageExportRequest(json: unknown, opts: { now?: Date } = {}): ImageExportRequest {
  // However the request arrived (an HTTP body is parsed before we see it): validation and show() recurse.
  checkValueDepth(json);
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new GeotfrError('BAD_REQUEST', `an export request must be a JSON object, got ${show(json)}`, { field: '(request)' });
  const r = requestSchema.safeParse(json);
  if (!r.success) throw toError(r.error, json);
  const v = r.data;
  const fo = v.formatOptions;
  for (const name of Object.keys(fo.tensorDepths))
    if (!name) throw new GeotfrError('BAD_REQUEST', 'tensorDepths has an empty band name', { field: 'formatOptions.tensorDepths' });
  if (typeof v.image === 'object') {
    const bands: { name: string; band?: number; bands?: number[] }[] = v.image.bands.map((b) => (typeof b === 'string' ? { name: b } : b));
    bands.forEach((b, i) => {
      if (b.band !== undefined && b.bands !== undefined)
        throw new GeotfrError('BAD_REQUEST', `band ${JSON.stringify(b.name)} gives both "band" and "bands"`, { field: `image.bands.${i}` });
    });
    const seen = new Set<string>();
    for (const b of bands) {
      if (seen.has(b.name)) throw new GeotfrError('BAD_REQUEST', `duplicate band name ${JSON.stringify(b.name)}`, { field: 'image.bands' });
      seen.add(b.name);
    }
  }
  const rawPrefix = requestedPrefix(v);
  const fileNamePrefix = checkKey(rawPrefix.replaceAll('{date}', utcDate(opts.now ?? new Date())), 'fileNamePrefix');
  if (fileNamePrefix.endsWith('/'))
    throw new GeotfrError('BAD_REQUEST', `fileNamePrefix must name files, not a directory: ${show(rawPrefix)}`, { field: 'fileNamePrefix' });
  const out: ImageExportRequest = {
    image: v.image,
    bucket: v.bucket,
    fileNamePrefix,
    fileFormat: v.fileFormat,
    maxPixels: v.maxPixels,
    overwrite: v.overwrite,
    formatOptions: fo,
  };
  if (v.region !== undefined) out.region = v.region as Region;
  if (v.description !== undefined) out.description = v.description;
  for (const k of ['crs', 'crsTransform', 'scale', 'dimensions', 'resample', 'dryRun'] as const)
    if (v[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = v[k];
  const ignored = NO_EFFECT_FIELDS.filter((k) => v[k] !== undefined);
  if (ignored.length) out.ignored = ignored;
  return out;
}
