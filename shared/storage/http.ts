/**
 * `https://` sources, only under an allow-list (docs/semantics.md §2: "`https://` only where an allow-list
 * permits"): `GEOTFR_ALLOW_HTTPS` holds comma-separated URI prefixes, e.g.
 * `https://data.example.org/cogs/,http://127.0.0.1:8080/`. Anything else is FORBIDDEN, so a request
 * cannot make a worker fetch arbitrary URLs (SSRF). Reads are HTTP range requests with `fetch`.
 */
import type { BlobInfo, BlobStore } from './port.js';
import { GeotfrError } from '../errors.js';

/** The part of `BlobStore` a raster source needs. */
export type RangeReader = Pick<BlobStore, 'stat' | 'readRange'>;

/** Whether a URI is http(s) (and so needs the allow-list). */
export const isHttpUri = (uri: string) => /^https?:\/\//i.test(uri);

/** The allow-listed prefixes from GEOTFR_ALLOW_HTTPS. */
export function allowedHttpPrefixes(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.GEOTFR_ALLOW_HTTPS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /^https?:\/\/[^/]+\//i.test(s)); // a prefix must name at least a host and a '/'
}

/** Opens an allow-listed http(s) URI for range reads; FORBIDDEN otherwise. */
export function openHttp(uri: string, field: string): RangeReader {
  // Compare normalized URLs, so `…/ok/../secret` or `%2e%2e` cannot step outside an allowed prefix.
  let href: string;
  try {
    href = new URL(uri).href;
  } catch {
    throw new GeotfrError('BAD_REQUEST', `not a valid URL: ${JSON.stringify(uri)}`, { field });
  }
  const allowed = allowedHttpPrefixes().map((p) => new URL(p).href);
  if (!allowed.some((p) => href.startsWith(p)))
    throw new GeotfrError('FORBIDDEN', `${JSON.stringify(uri)} is not allowed: http(s) sources must start with a prefix listed in GEOTFR_ALLOW_HTTPS (comma-separated)`, { field });
  return new HttpRangeReader(href);
}

class HttpRangeReader implements RangeReader {
  constructor(private readonly url: string) {}

  private fail(status: number, what: string): never {
    if (status === 404 || status === 410) throw new GeotfrError('NOT_FOUND', `raster not found (HTTP ${status})`, { file: this.url });
    if (status === 401 || status === 403) throw new GeotfrError('FORBIDDEN', `access denied (HTTP ${status})`, { file: this.url });
    throw new GeotfrError('IO', `${what} failed (HTTP ${status})`, { file: this.url }, { retryable: status === 408 || status === 429 || status >= 500 });
  }

  private async request(init: RequestInit): Promise<Response> {
    try {
      return await fetch(this.url, { ...init, redirect: 'error' });
    } catch (err) {
      throw new GeotfrError('IO', `request failed (${(err as Error).message})`, { file: this.url }, { cause: err, retryable: true });
    }
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
    if (res.status === 200) throw new GeotfrError('BAD_INPUT', 'the server does not support HTTP range requests, which cloud-optimized reads need', { file: this.url });
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
