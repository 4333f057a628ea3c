/**
 * What a cloud deployment lets a request touch (issue 6, "Security"): source and destination bucket
 * allow-lists, a request size limit and a `maxPixels` cap. The CLI does not apply it (a user on their own
 * machine may read what they like); the functions apply it to every request before planning.
 *
 * Its settings are declared once in shared/options.ts (STYLE.md §5).
 * Secure by default: with no allow-list configured, no bucket is allowed.
 */
import { checkKey } from '../storage/port.js';
import { GeotfrError } from '../errors.js';
import { option } from '../options.js';
import { requestedPrefix } from '../export/request.js';

export interface Policy {
  /** Buckets requests may read (`image`, band `uri`s, table `collection`). `*` allows any bucket. */
  sourceBuckets: string[];
  /** Buckets requests may write (`bucket`). `*` allows any bucket. */
  destinationBuckets: string[];
  /** Whether local paths / `file://` are allowed (only for the local stack and tests). */
  allowLocalPaths: boolean;
  /** Largest request document accepted, in bytes. */
  maxRequestBytes: number;
  /** Largest `maxPixels` a request may ask for (the request's own limit still applies, docs/semantics.md §2). */
  maxPixelsCap: number;
}

/** Reads the policy (shared/options.ts: one env var per setting, validated there). */
export function policyFromEnv(env: NodeJS.ProcessEnv = process.env): Policy {
  return {
    sourceBuckets: option('sourceBuckets', env),
    destinationBuckets: option('destinationBuckets', env),
    allowLocalPaths: option('allowLocalPaths', env),
    maxRequestBytes: option('maxRequestBytes', env),
    maxPixelsCap: option('maxPixelsCap', env),
  };
}

/** Rejects a request document larger than the limit (checked before parsing it). */
export function checkRequestSize(bytes: number, policy: Pick<Policy, 'maxRequestBytes'>, what = 'request'): void {
  if (bytes > policy.maxRequestBytes)
    throw new GeotfrError('LIMIT', `${what} is ${bytes} bytes; the limit is ${policy.maxRequestBytes} (GEOTFR_MAX_REQUEST_BYTES)`);
}

const allowed = (bucket: string, allow: string[]) => allow.includes('*') || allow.includes(bucket);

/** The bucket a destination names, or undefined for a local directory. */
function destinationBucket(bucket: string): string | undefined {
  if (bucket.startsWith('gs://')) return bucket.slice(5).replace(/\/+$/, '');
  if (bucket.startsWith('file://') || bucket.startsWith('/') || bucket.startsWith('.')) return undefined;
  return bucket;
}

/** Checks one source URI against the allow-list. */
export function checkSourceUri(uri: string, policy: Policy, field: string): void {
  if (uri.startsWith('gs://')) {
    const rest = uri.slice(5);
    const bucket = rest.split('/')[0]!;
    const key = rest.slice(bucket.length + 1);
    checkKey(key, field);
    if (!allowed(bucket, policy.sourceBuckets))
      throw new GeotfrError('FORBIDDEN', `source bucket ${JSON.stringify(bucket)} is not in the allow-list (GEOTFR_SOURCE_BUCKETS)`, { field });
    return;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://'))
    throw new GeotfrError('FORBIDDEN', `source scheme not allowed: ${JSON.stringify(uri)}`, { field });
  if (!policy.allowLocalPaths) throw new GeotfrError('FORBIDDEN', `local paths are not allowed here, use gs://: ${JSON.stringify(uri)}`, { field });
}

/** Checks a destination (`bucket` + `fileNamePrefix`) against the allow-list and escape rules. */
export function checkDestination(bucket: string, prefix: string, policy: Policy): void {
  checkKey(prefix, 'fileNamePrefix');
  // `.geotfr/` holds job state; outputs must never land there (docs/semantics.md §5).
  if (prefix === '.geotfr' || prefix.startsWith('.geotfr/'))
    throw new GeotfrError('FORBIDDEN', 'fileNamePrefix must not be under .geotfr/', { field: 'fileNamePrefix' });
  const b = destinationBucket(bucket);
  if (b === undefined) {
    if (!policy.allowLocalPaths) throw new GeotfrError('FORBIDDEN', `local destinations are not allowed here: ${JSON.stringify(bucket)}`, { field: 'bucket' });
    return;
  }
  if (!allowed(b, policy.destinationBuckets))
    throw new GeotfrError('FORBIDDEN', `destination bucket ${JSON.stringify(b)} is not in the allow-list (GEOTFR_DESTINATION_BUCKETS)`, { field: 'bucket' });
}

/**
 * Applies the policy to a raw image or table request (docs/semantics.md §2, §8) before it is parsed: every source
 * URI, the destination, and the `maxPixels` cap. Schema validation stays with the request parsers.
 */
export function checkRequestPolicy(request: unknown, policy: Policy): void {
  if (!request || typeof request !== 'object' || Array.isArray(request)) throw new GeotfrError('BAD_REQUEST', 'request must be a JSON object');
  const r = request as Record<string, unknown>;
  if (typeof r.image === 'string') checkSourceUri(r.image, policy, 'image');
  else if (r.image && typeof r.image === 'object') {
    const bands = (r.image as { bands?: unknown }).bands;
    if (Array.isArray(bands))
      bands.forEach((b, i) => {
        const uri = (b as { uri?: unknown })?.uri;
        if (typeof uri === 'string') checkSourceUri(uri, policy, `image.bands[${i}].uri`);
        // A mosaic (docs/semantics.md §11): every URI of the list.
        else if (Array.isArray(uri)) uri.forEach((u, k) => typeof u === 'string' && checkSourceUri(u, policy, `image.bands[${i}].uri[${k}]`));
      });
    const stac = (r.image as { stac?: unknown }).stac;
    if (typeof stac === 'string') checkSourceUri(stac, policy, 'image.stac');
  }
  if (typeof r.collection === 'string') checkSourceUri(r.collection, policy, 'collection');
  if (typeof r.bucket !== 'string') throw new GeotfrError('BAD_REQUEST', 'bucket is required', { field: 'bucket' });
  // Whatever becomes the prefix (fileNamePrefix, else description, else the default) is checked.
  checkDestination(r.bucket, requestedPrefix(r), policy);
  if (r.maxPixels !== undefined && typeof r.maxPixels === 'number' && r.maxPixels > policy.maxPixelsCap)
    throw new GeotfrError('LIMIT', `maxPixels ${r.maxPixels} exceeds this deployment's cap of ${policy.maxPixelsCap} (GEOTFR_MAX_PIXELS_CAP)`, {
      field: 'maxPixels',
    });
}
