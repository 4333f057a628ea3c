/**
 * `https://` sources, only under an allow-list (docs/semantics.md §2: "`https://` only where an allow-list
 * permits"): `GEOTFR_ALLOW_HTTPS` (or `--allow-https`) holds comma-separated URI prefixes, e.g.
 * `https://data.example.org/cogs/,http://127.0.0.1:8080/`. Anything else is FORBIDDEN, so a request
 * cannot make a worker fetch arbitrary URLs (SSRF). Reads are HTTP range requests with `fetch`.
 */
import type { BlobInfo, BlobStore } from './port.js';
import { GeotfrError } from '../errors.js';
import { option } from '../options.js';

/** The part of `BlobStore` a raster source needs. */
export type RangeReader = Pick<BlobStore, 'stat' | 'readRange'>;

/** Whether a URI is http(s) (and so needs the allow-list). */
export const isHttpUri = (uri: string) => /^https?:\/\//i.test(uri);

/** The allow-listed prefixes (GEOTFR_ALLOW_HTTPS or `--allow-https`, shared/options.ts). */
export function allowedHttpPrefixes(env: NodeJS.ProcessEnv = process.env): string[] {
  return option('allowHttps', env);
}

/** The path of a URI as written (before `URL` resolves dot segments and re-encodes it). */
const rawPath = (uri: string) => uri.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/)[0]!;

/** Decodes one path segment; a malformed escape is a bad request. */
function decodeSegment(seg: string, uri: string, field: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new GeotfrError('BAD_REQUEST', `malformed percent-escape in ${JSON.stringify(uri)}`, { field });
  }
}

/**
 * Checks an http(s) URI against allow-listed prefixes and returns the URL to fetch. The check is made on
 * what a server will see after decoding: an encoded separator (`%2f`, `%5c`), a backslash or a dot
 * segment (`.`, `..`, also encoded as `%2e`) is refused outright, since servers disagree on whether they
 * decode and resolve them and `…/ok/..%2fsecret.tif` would otherwise pass a textual prefix check and be
 * served `/secret.tif`. What is left is compared segment-wise, decoded, with the same origin.
 */
export function checkHttpUri(uri: string, allowed: string[], field: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new GeotfrError('BAD_REQUEST', `not a valid URL: ${JSON.stringify(uri)}`, { field });
  }
  if (!/^https?:$/.test(url.protocol)) throw new GeotfrError('FORBIDDEN', `not an http(s) URL: ${JSON.stringify(uri)}`, { field });
  if (url.username || url.password) throw new GeotfrError('FORBIDDEN', `credentials in a source URL are not allowed: ${JSON.stringify(uri)}`, { field });
  const raw = rawPath(uri);
  if (/%2f|%5c/i.test(raw) || raw.includes('\\'))
    throw new GeotfrError('FORBIDDEN', `${JSON.stringify(uri)} is not allowed: encoded path separators (%2F, %5C) and backslashes are refused`, { field });
  const segments = raw.split('/').map((seg) => decodeSegment(seg, uri, field));
  if (segments.some((seg) => seg === '.' || seg === '..'))
    throw new GeotfrError('FORBIDDEN', `${JSON.stringify(uri)} is not allowed: dot segments ("." and "..", also percent-encoded) are refused`, { field });
  const path = segments.join('/');
  const ok = allowed.some((p) => {
    const a = new URL(p);
    const prefixPath = rawPath(p)
      .split('/')
      .map((seg) => decodeSegment(seg, p, field))
      .join('/');
    return a.origin === url.origin && path.startsWith(prefixPath);
  });
  if (!ok)
    throw new GeotfrError(
      'FORBIDDEN',
      `${JSON.stringify(uri)} is not allowed: http(s) sources must start with a prefix listed in GEOTFR_ALLOW_HTTPS (comma-separated)`,
      { field },
    );
  return url.href;
}

/** Opens an allow-listed http(s) URI for range reads; FORBIDDEN otherwise. */
export function openHttp(uri: string, field: string): RangeReader {
  return new HttpRangeReader(checkHttpUri(uri, allowedHttpPrefixes(), field));
}

class HttpRangeReader implements RangeReader {
  constructor(private readonly url: string) {}

  private fail(status: number, what: string): never {
    if (status === 404 || status === 410) throw new GeotfrError('NOT_FOUND', `raster not found (HTTP ${status})`, { file: this.url });
    if (status === 401 || status === 403) throw new GeotfrError('FORBIDDEN', `access denied (HTTP ${status})`, { file: this.url });
    throw new GeotfrError('IO', `${what} failed (HTTP ${status})`, { file: this.url }, { retryable: status === 408 || status === 429 || status >= 500 });
  }

  private async request(init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      // Redirects are not followed: the target was never checked against the allow-list.
      res = await fetch(this.url, { ...init, redirect: 'manual' });
    } catch (err) {
      throw new GeotfrError('IO', `request failed (${(err as Error).message})`, { file: this.url }, { cause: err, retryable: true });
    }
    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer().catch(() => {});
      // Permanent: a redelivery gets the same redirect. The user can list the final URL instead.
      throw new GeotfrError(
        'FORBIDDEN',
        `the server redirects (HTTP ${res.status}${res.headers.get('location') ? ` to ${res.headers.get('location')}` : ''}); redirects are not followed, use the final URL`,
        { file: this.url },
      );
    }
    return res;
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    // A one-byte range read names the total size in Content-Range, and works where HEAD does not.
    const res = await this.request({ headers: { Range: 'bytes=0-0' } });
    await res.arrayBuffer();
    if (res.status === 404) return undefined;
    if (res.status === 206) {
      const total = Number(res.headers.get('content-range')?.match(/\/(\d+)$/)?.[1]);
      if (Number.isFinite(total)) return { key, size: total, generation: res.headers.get('etag') ?? undefined };
    }
    if (res.status === 200)
      throw new GeotfrError('BAD_INPUT', 'the server does not support HTTP range requests, which cloud-optimized reads need', { file: this.url });
    this.fail(res.status, 'size request');
  }

  async readRange(_key: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const res = await this.request({ headers: { Range: `bytes=${start}-${end - 1}` } });
    if (res.status !== 206) {
      await res.arrayBuffer().catch(() => {});
      if (res.status === 200) throw new GeotfrError('BAD_INPUT', 'the server ignored the Range header', { file: this.url, offset: start });
      this.fail(res.status, `range read at ${start}`);
    }
    return Buffer.from(await res.arrayBuffer());
  }
}
