/**
 * The patch export request (docs/semantics.md §12): EE's `neighborhoodToArray(Kernel.fixed(K, K))`
 * followed by `sampleRegions` / `sample` / `stratifiedSample` and a TFRecord table export, as one zod
 * schema with EE's names. Defaults live here; unknown keys are rejected.
 *
 * The §11 grid fields (`crs`, `crsTransform`, `scale`, `dimensions`, `resample`) and the image forms
 * of §11 (mosaics, globs, STAC) are image export's own schema pieces (export/request.ts), so both
 * commands accept and reject the same things; shared/grid/resolve.ts checks their interplay.
 */
import * as z from 'zod';
import { GeotfrError } from '../errors.js';
import { checkKey } from '../storage/port.js';
import { deepest, gridFields, imageSpec, utcDate, type ImageExportRequest, type ImageSpec } from '../export/request.js';
import type { RegionInput as Region } from '../raster/crs.js';

/** Limits, declared once (STYLE.md §10). */
export const PATCH_LIMITS = {
  /** Largest kernel side: a 1024×1024 float patch is 4 MiB per band. */
  kernelPx: 1024,
  /** Largest serialized record (TFRecord readers hold one record in memory). */
  recordBytes: 256 * 1024 * 1024,
  /** Pixels a sampled region may hold (scanned once or twice by the sampler). */
  maxPixels: 1e8,
} as const;

export const PATCH_DEFAULTS = {
  defaultValue: 0,
  dropNulls: true,
  geometries: false,
  seed: 0, // EE's sample() and stratifiedSample() seed default
  fileNamePrefix: 'myExportTableTask',
};

const posInt = z.number().int().positive();
const kernelSide = z.number().int().positive().max(PATCH_LIMITS.kernelPx, `at most ${PATCH_LIMITS.kernelPx} pixels (PATCH_LIMITS.kernelPx)`);

const bbox = z
  .tuple([z.number(), z.number(), z.number(), z.number()])
  .refine((b) => b.every(Number.isFinite) && b[0] < b[2] && b[1] < b[3], 'expected [xmin, ymin, xmax, ymax] with xmin < xmax and ymin < ymax');
const geometry = z.looseObject({
  type: z.enum(['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon', 'GeometryCollection', 'Feature', 'FeatureCollection']),
});
const region = z.union([bbox, geometry]);
const seed = z
  .number()
  .int()
  .min(0)
  .max(2 ** 53)
  .default(PATCH_DEFAULTS.seed);

const sample = z.strictObject({
  region: region.optional(),
  numPixels: posInt,
  seed,
});
const stratified = z.strictObject({
  classBand: z.string().min(1),
  numPoints: z.number().int().min(0).optional(),
  classValues: z.array(z.number().int()).min(1).optional(),
  classPoints: z.array(z.number().int().min(0)).min(1).optional(),
  region: region.optional(),
  seed,
});
const points = z.union([z.string().min(1), z.strictObject({ sample }), z.strictObject({ stratified })]);

const schema = z.strictObject({
  image: imageSpec,
  points,
  /** EE's `sampleRegions(properties)`: names or a comma-separated string; absent → every property of the table. */
  properties: z.union([z.array(z.string().min(1)), z.string()]).optional(),
  /** CSV coordinate columns (default `longitude`, `latitude`). */
  xColumn: z.string().min(1).optional(),
  yColumn: z.string().min(1).optional(),
  /** `Kernel.fixed(width, height)`: [kx, ky], or one number for a square kernel. */
  kernelSize: z.preprocess((k) => (typeof k === 'number' ? [k, k] : k), z.tuple([kernelSide, kernelSide])),
  defaultValue: z.number().refine(Number.isFinite, 'expected a finite number').default(PATCH_DEFAULTS.defaultValue),
  dropNulls: z.boolean().default(PATCH_DEFAULTS.dropNulls),
  geometries: z.boolean().default(PATCH_DEFAULTS.geometries),
  /** Depth of each array band (docs/semantics.md §4), as in image export. */
  tensorDepths: z.record(z.string(), posInt).default({}),
  bucket: z.string().min(1),
  fileNamePrefix: z.string().min(1).optional(),
  description: z.string().optional(),
  fileFormat: z
    .string()
    .refine((s) => s.toLowerCase() === 'tfrecord', 'only "TFRecord" is supported')
    .transform(() => 'TFRecord' as const)
    .default('TFRecord'),
  /** geotfr extension: shards of at most this many uncompressed framed bytes instead of one file. */
  maxFileSize: posInt.optional(),
  /** The pixel grid the patches are cut on (docs/semantics.md §11, §12); default: the first band's. */
  ...gridFields,
});

export type PointsSpec =
  | { table: string }
  | { sample: { region?: Region; numPixels: number; seed: number } }
  | { stratified: { classBand: string; numPoints?: number; classValues?: number[]; classPoints?: number[]; region?: Region; seed: number } };

/** A validated patch export request (plain JSON, defaults applied). */
export interface PatchExportRequest {
  image: ImageSpec;
  points: PointsSpec;
  /** undefined: every property of the table (in first-seen order); [] for none. */
  properties?: string[];
  xColumn: string;
  yColumn: string;
  kernelSize: [number, number];
  defaultValue: number;
  dropNulls: boolean;
  geometries: boolean;
  tensorDepths: Record<string, number>;
  bucket: string;
  fileNamePrefix: string;
  description?: string;
  fileFormat: 'TFRecord';
  maxFileSize?: number;
  crs?: string;
  crsTransform?: number[];
  scale?: number;
  dimensions?: ImageExportRequest['dimensions'];
  resample?: ImageExportRequest['resample'];
}

/** The grid fields (docs/semantics.md §11) a request may carry, in the order resolveGrid reads them. */
const GRID_KEYS = ['crs', 'crsTransform', 'scale', 'dimensions', 'resample'] as const;

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 80 ? s.slice(0, 77) + '...' : s;
};

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: any = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k as any];
  }
  return v;
}

function toError(err: z.ZodError, input: unknown): GeotfrError {
  // A union's failure as its deepest branch's (image export's rule): a bad band names its own field.
  const issue = err.issues[0]!.path[0] === 'image' ? deepest(err.issues[0]!) : err.issues[0]!;
  const field = issue.path.map(String).join('.') || '(request)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.map(String).join('.');
    return new GeotfrError('BAD_REQUEST', `Unknown ${where ? `fields in ${where}` : 'patch export options'}: ${issue.keys.join(', ')}`, {
      field: where ? `${where}.${issue.keys[0]}` : issue.keys[0],
    });
  }
  if (issue.code === 'invalid_union' && issue.path[0] === 'points') {
    const v = valueAt(input, ['points']);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      // Report the issue inside the form the user chose, not the union's summary.
      const form = 'sample' in v ? sample : 'stratified' in v ? stratified : undefined;
      const key = 'sample' in v ? 'sample' : 'stratified';
      if (form) {
        const inner = z.strictObject({ [key]: form }).safeParse(v);
        if (!inner.success) {
          const e = toError(inner.error, v);
          return new GeotfrError('BAD_REQUEST', e.message.replace(/^field [^:]*: /, ''), { field: `points.${e.context.field}` });
        }
      }
      return new GeotfrError('BAD_REQUEST', `expected a table URI, {"sample": {...}} or {"stratified": {...}}; got ${show(v)}`, { field: 'points' });
    }
  }
  const value = valueAt(input, issue.path);
  const missing = value === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union');
  return new GeotfrError('BAD_REQUEST', missing ? `required (${issue.message})` : `${issue.message}; got ${show(value)}`, { field });
}

/** Validates a patch export request (docs/semantics.md §12) and applies defaults. Throws BAD_REQUEST naming the field. */
export function parsePatchExportRequest(json: unknown, opts: { now?: Date } = {}): PatchExportRequest {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new GeotfrError('BAD_REQUEST', `a patch export request must be a JSON object, got ${show(json)}`, { field: '(request)' });
  const r = schema.safeParse(json);
  if (!r.success) throw toError(r.error, json);
  const v = r.data;
  let pts: PointsSpec;
  if (typeof v.points === 'string') pts = { table: v.points };
  else if ('sample' in v.points) pts = { sample: v.points.sample as Extract<PointsSpec, { sample: unknown }>['sample'] };
  else {
    const s = v.points.stratified;
    if (s.classPoints && !s.classValues)
      throw new GeotfrError('BAD_REQUEST', 'classPoints needs classValues (one count per class value)', { field: 'points.stratified.classPoints' });
    if (s.classPoints && s.classValues && s.classPoints.length !== s.classValues.length)
      throw new GeotfrError('BAD_REQUEST', `classPoints has ${s.classPoints.length} counts for ${s.classValues.length} classValues`, {
        field: 'points.stratified.classPoints',
      });
    if (!s.classPoints && s.numPoints === undefined)
      throw new GeotfrError('BAD_REQUEST', 'required: numPoints (or classValues with classPoints)', { field: 'points.stratified.numPoints' });
    if (s.classValues && new Set(s.classValues).size !== s.classValues.length)
      throw new GeotfrError('BAD_REQUEST', 'a class value is listed twice', { field: 'points.stratified.classValues' });
    pts = { stratified: s as Extract<PointsSpec, { stratified: unknown }>['stratified'] };
  }
  if (!('table' in pts) && (v.properties !== undefined || v.xColumn !== undefined || v.yColumn !== undefined)) {
    const f = v.properties !== undefined ? 'properties' : v.xColumn !== undefined ? 'xColumn' : 'yColumn';
    throw new GeotfrError('BAD_REQUEST', `${f} applies to a table of points; sampled points have no table`, { field: f });
  }
  let properties: string[] | undefined;
  if (v.properties !== undefined) {
    properties =
      typeof v.properties === 'string'
        ? v.properties
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v.properties;
    const seen = new Set<string>();
    for (const p of properties) {
      if (seen.has(p)) throw new GeotfrError('BAD_REQUEST', `property ${JSON.stringify(p)} is listed twice`, { field: 'properties' });
      seen.add(p);
    }
  }
  if (typeof v.image === 'object') {
    const bands: { name: string; band?: number; bands?: number[] }[] = v.image.bands.map((b) => (typeof b === 'string' ? { name: b } : b));
    const seen = new Set<string>();
    bands.forEach((b, i) => {
      if (b.band !== undefined && b.bands !== undefined)
        throw new GeotfrError('BAD_REQUEST', `band ${JSON.stringify(b.name)} gives both "band" and "bands"`, { field: `image.bands.${i}` });
      if (seen.has(b.name)) throw new GeotfrError('BAD_REQUEST', `duplicate band name ${JSON.stringify(b.name)}`, { field: 'image.bands' });
      seen.add(b.name);
    });
  }
  const rawPrefix = v.fileNamePrefix ?? v.description ?? PATCH_DEFAULTS.fileNamePrefix;
  const fileNamePrefix = checkKey(rawPrefix.replaceAll('{date}', utcDate(opts.now ?? new Date())), 'fileNamePrefix');
  if (fileNamePrefix.endsWith('/'))
    throw new GeotfrError('BAD_REQUEST', `fileNamePrefix must name files, not a directory: ${show(rawPrefix)}`, { field: 'fileNamePrefix' });
  const out: PatchExportRequest = {
    image: v.image,
    points: pts,
    xColumn: v.xColumn ?? 'longitude',
    yColumn: v.yColumn ?? 'latitude',
    kernelSize: v.kernelSize,
    defaultValue: v.defaultValue,
    dropNulls: v.dropNulls,
    geometries: v.geometries,
    tensorDepths: v.tensorDepths,
    bucket: v.bucket,
    fileNamePrefix,
    fileFormat: v.fileFormat,
  };
  if (properties !== undefined) out.properties = properties;
  if (v.description !== undefined) out.description = v.description;
  if (v.maxFileSize !== undefined) out.maxFileSize = v.maxFileSize;
  for (const k of GRID_KEYS) if (v[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = v[k];
  return out;
}
