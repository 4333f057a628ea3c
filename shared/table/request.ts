/**
 * The table export request (docs/semantics.md §8), declared once as a zod schema with EE's names
 * (`Export.table.toCloudStorage`): defaults live here, unknown keys are rejected.
 */
import * as z from 'zod';
import { GeotfrError } from '../errors.js';
import { checkValueDepth } from '../limits.js';
import { checkKey } from '../storage/port.js';

const schema = z
  .object({
    /** The input table: a GeoJSON FeatureCollection, newline-delimited GeoJSON or CSV (local, file:// or gs://). */
    collection: z.string().min(1),
    /** Destination: a GCS bucket name, `gs://name`, or a local directory (docs/semantics.md §2). */
    bucket: z.string().min(1),
    /** Output object name without extension: the export writes exactly `PREFIX.tfrecord.gz` (docs/semantics.md §8). */
    fileNamePrefix: z.string().min(1),
    /** Only TFRecord is produced; the key is kept so EE requests validate unchanged. */
    fileFormat: z.literal('TFRecord').default('TFRecord'),
    /** Limits and orders the exported properties. EE's client also accepts a comma-separated string. */
    selectors: z.union([z.array(z.string().min(1)).min(1), z.string().min(1)]).optional(),
    /** Encode the geometry: `wkt` → bytes feature `geometry`; `lonlat` → float features `longitude`, `latitude` (points only). */
    geometry: z.enum(['wkt', 'lonlat']).optional(),
    /** EE's task description; accepted and reported, not used. */
    description: z.string().optional(),
  })
  .strict();

export type TableExportRequest = Omit<z.output<typeof schema>, 'selectors'> & { selectors?: string[] };

/** Validates a table export request, applying defaults. Throws BAD_REQUEST naming the offending key. */
export function parseTableExportRequest(json: unknown): TableExportRequest {
  checkValueDepth(json); // validation recurses; an HTTP body is parsed before we see it
  const r = schema.safeParse(json);
  if (!r.success) {
    const unknown: string[] = [];
    const other: string[] = [];
    for (const issue of r.error.issues) {
      if (issue.code === 'unrecognized_keys') unknown.push(...issue.keys);
      else other.push(`${issue.path.join('.') || '(request)'}: ${issue.message}`);
    }
    if (unknown.length) throw new GeotfrError('BAD_REQUEST', `Unknown table export options: ${unknown.join(', ')}`, { field: unknown[0] });
    throw new GeotfrError('BAD_REQUEST', `invalid table export request: ${other.join('; ')}`, {});
  }
  const v = r.data;
  checkKey(v.fileNamePrefix);
  let selectors: string[] | undefined;
  if (v.selectors !== undefined) {
    selectors =
      typeof v.selectors === 'string'
        ? v.selectors
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v.selectors;
    const seen = new Set<string>();
    for (const s of selectors) {
      if (seen.has(s)) throw new GeotfrError('BAD_REQUEST', `selector ${JSON.stringify(s)} is listed twice`, { field: 'selectors' });
      seen.add(s);
    }
  }
  return { ...v, selectors };
}
