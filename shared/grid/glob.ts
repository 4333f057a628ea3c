/**
 * Band URIs that name many files (docs/semantics.md §11 mosaics): a list of URIs, or a glob over a
 * local directory tree or a Cloud Storage bucket (`dir/*.tif`, `gs://b/scenes/**\/B04.tif`). A glob
 * lists only under its literal prefix (one bucket listing, not one request per file) and its
 * matches come back sorted, so "last wins" means the same file on every machine.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GeotfrError } from '../errors.js';
import { openBucket } from '../storage/open.js';

/** Whether a URI has glob characters (`*`, `?`, `[`). */
export const isGlob = (uri: string): boolean => /[*?[]/.test(uri);

/** A glob as a regular expression over `/`-separated keys: `**` any depth, `*` and `?` within one segment, `[...]` a class. */
export function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole segments.
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The files a band's `uri` names, in mosaic order: a string without glob characters is itself; a
 * glob is expanded (sorted); a list is expanded element by element in its order. BAD_REQUEST naming
 * `field` for an empty list or a glob that matches nothing.
 */
export async function expandUris(uri: string | readonly string[], field: string): Promise<string[]> {
  const list = typeof uri === 'string' ? [uri] : [...uri];
  if (list.length === 0) throw new GeotfrError('BAD_REQUEST', 'expected at least one URI', { field });
  const out: string[] = [];
  for (const [i, u] of list.entries()) {
    const f = typeof uri === 'string' ? field : `${field}[${i}]`;
    if (typeof u !== 'string' || !u) throw new GeotfrError('BAD_REQUEST', `expected a raster URI, got ${JSON.stringify(u)}`, { field: f });
    if (!isGlob(u)) out.push(u);
    else out.push(...(await expandGlob(u, f)));
  }
  return out;
}

async function expandGlob(glob: string, field: string): Promise<string[]> {
  if (/^https?:\/\//i.test(glob)) throw new GeotfrError('BAD_REQUEST', `cannot list an http(s) location: ${JSON.stringify(glob)}; list its files`, { field });
  const wild = glob.search(/[*?[]/);
  // The directory part before the first wildcard is listed; the rest of the key is matched.
  const literal = glob.slice(0, wild);
  const dirEnd = literal.lastIndexOf('/') + 1;
  let matches: string[];
  if (glob.startsWith('gs://')) {
    const slash = glob.indexOf('/', 5);
    if (slash < 0 || slash >= wild)
      throw new GeotfrError('BAD_REQUEST', `a gs:// glob needs a bucket name without wildcards: ${JSON.stringify(glob)}`, { field });
    const bucket = glob.slice(5, slash);
    const keyGlob = glob.slice(slash + 1);
    const store = await openBucket(`gs://${bucket}`);
    const re = globRegExp(keyGlob);
    const listed = await store.list(keyGlob.slice(0, keyGlob.search(/[*?[]/)));
    matches = listed
      .map((b) => b.key)
      .filter((k) => re.test(k))
      .map((k) => `gs://${bucket}/${k}`);
  } else {
    const base = glob.startsWith('file://') ? fileURLToPath(literal.slice(0, dirEnd) || 'file:///') : path.resolve(literal.slice(0, dirEnd) || '.');
    const rest = glob.slice(dirEnd);
    const { LocalBlobStore } = await import('../storage/local.js');
    const store = new LocalBlobStore(base);
    const re = globRegExp(rest);
    const listed = await store.list(rest.slice(0, rest.search(/[*?[]/)));
    matches = listed
      .map((b) => b.key)
      .filter((k) => re.test(k))
      .map((k) => path.join(base, k));
  }
  if (matches.length === 0) throw new GeotfrError('BAD_REQUEST', `glob ${JSON.stringify(glob)} matches no file`, { field });
  return matches.sort();
}
