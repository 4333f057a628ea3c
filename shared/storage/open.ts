/** Opens the store behind a bucket name or URI: local directory or Cloud Storage. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GeotfrError } from '../errors.js';
import { LocalBlobStore } from './local.js';
import { checkKey, type BlobStore } from './port.js';

/** Where a URI points: a store and the key inside it. */
export interface Location {
  store: BlobStore;
  key: string;
}

/** Cloud Storage is loaded on first use, so local-only users never load the SDK. */
async function gcsStore(bucket: string): Promise<BlobStore> {
  const { GcsBlobStore } = await import('./gcs.js');
  return new GcsBlobStore(bucket);
}

/**
 * Opens the store for a destination `bucket` (docs/semantics.md §2): a GCS bucket name, `gs://name`, or a local
 * directory (absolute path, `./…` or `file://`).
 */
export async function openBucket(bucket: string): Promise<BlobStore> {
  if (bucket.startsWith('gs://')) return gcsStore(bucket.slice(5).replace(/\/+$/, ''));
  if (bucket.startsWith('file://')) return new LocalBlobStore(fileURLToPath(bucket));
  if (path.isAbsolute(bucket) || bucket.startsWith('./') || bucket.startsWith('../') || bucket === '.') return new LocalBlobStore(bucket);
  if (/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket)) return gcsStore(bucket);
  throw new GeotfrError('BAD_REQUEST', `not a bucket name, gs:// URI or local directory: ${JSON.stringify(bucket)}`, { field: 'bucket' });
}

/** Resolves a source URI (`gs://b/k`, `file://…`, or a local path) to a store and key. */
export async function resolveUri(uri: string, field = 'uri'): Promise<Location> {
  if (uri.startsWith('gs://')) {
    const rest = uri.slice(5);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) throw new GeotfrError('BAD_REQUEST', `expected gs://bucket/object, got ${JSON.stringify(uri)}`, { field });
    return { store: await gcsStore(rest.slice(0, slash)), key: checkKey(rest.slice(slash + 1), field) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://'))
    throw new GeotfrError('FORBIDDEN', `unsupported URI scheme: ${JSON.stringify(uri)} (use gs://, file:// or a local path)`, { field });
  const abs = path.resolve(uri.startsWith('file://') ? fileURLToPath(uri) : uri);
  return { store: new LocalBlobStore(path.dirname(abs)), key: path.basename(abs) };
}

/**
 * The error for an input that `stat` did not find (docs/semantics.md §9): a directory where a file is
 * expected is said so (`BAD_REQUEST`), and a missing local file shows the path it resolved to, so a
 * relative name typed in the wrong directory explains itself.
 */
export async function missingInput(store: object, key: string, given: string, what = 'file', field?: string): Promise<GeotfrError> {
  const missing = what === 'file' ? 'no such file' : `${what} not found`;
  if (!(store instanceof LocalBlobStore)) return new GeotfrError('NOT_FOUND', missing, { file: given, field });
  const resolved = store.uri(key);
  {
    const st = await fs.stat(resolved).catch(() => undefined);
    if (st?.isDirectory()) return new GeotfrError('BAD_REQUEST', `is a directory, expected a ${what} (${resolved})`, { file: given, field });
  }
  return new GeotfrError('NOT_FOUND', resolved === given ? missing : `${missing} (resolved to ${resolved})`, { file: given, field });
}

/**
 * Checks an output path before any work is done: a local directory there is `BAD_REQUEST` ("is a
 * directory"), instead of an EISDIR after the whole ingest.
 */
export async function checkOutput(loc: Location, given: string, field = 'out'): Promise<void> {
  if (!(loc.store instanceof LocalBlobStore)) return;
  const resolved = loc.store.uri(loc.key);
  const st = await fs.stat(resolved).catch(() => undefined);
  if (st?.isDirectory()) throw new GeotfrError('BAD_REQUEST', `is a directory, expected a file to write (${resolved})`, { file: given, field });
}
