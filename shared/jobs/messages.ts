/**
 * Schemas of every queue message and job document the serverless pipeline reads (docs/semantics.md §10),
 * so a malformed message gets the same kind of error as a malformed request: BAD_REQUEST naming the
 * document, the field and the value. Messages are small JSON objects; unknown keys are refused so a
 * message from another deployment's version is not half-understood.
 */
import * as z from 'zod';
import { GeotfrError } from '../errors.js';

const jobId = z.string().min(1).max(128);
const bucket = z.string().min(1).max(1024);

/** One shard (or the one table export) for a worker (shard topic). */
export const shardMessageSchema = z.strictObject({ jobId, bucket, shard: z.number().int().min(0).max(10_000_000) });
/** A finished shard's nudge to the finalizer (finalize topic). */
export const finalizeMessageSchema = z.strictObject({ jobId, bucket });
/** The routing attributes every job message carries (the dead-letter handler reads them). */
export const jobAttributesSchema = z.object({
  jobId: jobId.optional(),
  bucket: bucket.optional(),
  shard: z.string().regex(/^\d+$/).optional(),
  kind: z.string().optional(),
});

const gsUri = z.string().startsWith('gs://', 'expected a gs:// URI');
/** An ingest request dropped at `ingest/NAME.json` (shared/jobs/ingest.ts). */
export const ingestRequestSchema = z.strictObject({
  files: z.array(z.string().min(1)).min(1).max(100_000).optional(),
  prefix: z.string().min(1).optional(),
  mixer: z.string().min(1),
  out: gsUri,
  kernelSize: z.tuple([z.number().int().positive(), z.number().int().positive()]).optional(),
});

/** The stored plan of a job, as far as workers must trust it before use (written by the planner). */
export const storedPlanSchema = z.union([
  z.looseObject({ kind: z.literal('table'), request: z.looseObject({}), output: z.string().min(1) }),
  // A patch job (shared/jobs/patches.ts): the patch plan and each shard's stored points.
  z.looseObject({
    kind: z.literal('patches'),
    plan: z.looseObject({}),
    shards: z.array(z.looseObject({ index: z.number().int().min(0), name: z.string(), pointsKey: z.string() })),
  }),
  z.looseObject({
    request: z.looseObject({ bucket: z.string(), fileNamePrefix: z.string() }),
    shards: z.array(z.looseObject({ index: z.number().int().min(0), name: z.string(), patchCount: z.number().int().min(0) })),
    totalPatches: z.number().int().min(0),
    manifestKey: z.string(),
  }),
]);

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? 'nothing' : s.length > 80 ? `${s.slice(0, 77)}...` : s;
};

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

/** Validates `json` as `what` (e.g. "shard message"); the first problem becomes a BAD_REQUEST naming its field. */
export function parseDocument<S extends z.ZodType>(schema: S, json: unknown, what: string, context: { file?: string } = {}): z.output<S> {
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join('.') || '(root)';
  const detail = issue.code === 'unrecognized_keys' ? `unknown fields ${issue.keys.join(', ')}` : `${issue.message}; got ${show(valueAt(json, issue.path))}`;
  throw new GeotfrError('BAD_REQUEST', `not a valid ${what}: ${detail}`, { ...context, field });
}
