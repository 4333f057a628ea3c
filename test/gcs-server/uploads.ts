/**
 * The three JSON API upload protocols (https://cloud.google.com/storage/docs/uploads-downloads):
 * `media` (body = bytes), `multipart` (multipart/related: JSON metadata part, then the bytes), and
 * `resumable` (a session URI, then PUTs with `Content-Range`, answered 308 + `Range` until complete).
 *
 * Hashes the client sends (metadata `crc32c`/`md5Hash`, or the `X-Goog-Hash` header on the final
 * request) are verified against the bytes received; a mismatch is a 400 and nothing is stored.
 */
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import { HttpError, type ObjectStore, type PendingBody, type Preconditions, type StoredObject } from './store.js';

/** Object metadata a client may send with an upload. */
export interface UploadMeta {
  name?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  crc32c?: string;
  md5Hash?: string;
}

/** Parses `X-Goog-Hash: crc32c=…,md5=…`. */
export function parseGoogHash(header: string | string[] | undefined): { crc32c?: string; md5Hash?: string } {
  const out: { crc32c?: string; md5Hash?: string } = {};
  const all = Array.isArray(header) ? header.join(',') : (header ?? '');
  for (const part of all.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim().toLowerCase();
    const v = part.slice(i + 1).trim();
    if (k === 'crc32c') out.crc32c = v;
    else if (k === 'md5') out.md5Hash = v;
  }
  return out;
}

/** Reads a whole request body (small requests only: JSON and multipart metadata uploads). */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function parseJson(buf: Buffer, what: string): Record<string, unknown> {
  if (!buf.length) return {};
  try {
    const v = JSON.parse(buf.toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new HttpError(400, `${what} is not a JSON object`);
}

export function uploadMeta(json: Record<string, unknown>): UploadMeta {
  const str = (k: string): string | undefined => (typeof json[k] === 'string' ? (json[k] as string) : undefined);
  const md = json.metadata;
  return {
    name: str('name'),
    contentType: str('contentType'),
    metadata: md && typeof md === 'object' ? Object.fromEntries(Object.entries(md).map(([k, v]) => [k, String(v)])) : undefined,
    crc32c: str('crc32c'),
    md5Hash: str('md5Hash'),
  };
}

/**
 * Splits a multipart/related body into its parts (headers + bytes), as GCS does for any client:
 * the boundary parameter bare or quoted with `"` or `'` (gcloud sends `boundary='===…=='`), and line
 * breaks CRLF as RFC 2046 says or bare LF as Python's email generator (gcloud, gsutil) writes them. The
 * line break before each delimiter belongs to the delimiter, not to the part; which one it is comes
 * from the first delimiter line, so binary data ending in `\r` survives an LF body.
 */
export function parseMultipart(body: Buffer, contentType: string): { headers: Record<string, string>; data: Buffer }[] {
  const m = /;\s*boundary=(?:"([^"]*)"|'([^']*)'|([^\s;]+))/i.exec(contentType);
  const boundary = m ? (m[1] ?? m[2] ?? m[3]) : undefined;
  if (!boundary) throw new HttpError(400, 'multipart upload without a boundary');
  const delim = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delim);
  // The first delimiter starts the body or a line (anything before it is the ignored preamble).
  while (pos > 0 && body[pos - 1] !== 0x0a) pos = body.indexOf(delim, pos + 1);
  if (pos < 0) throw new HttpError(400, 'multipart body does not contain its boundary');
  const afterFirst = pos + delim.length;
  const eol = body[afterFirst] === 0x0d && body[afterFirst + 1] === 0x0a ? '\r\n' : '\n';
  const between = Buffer.from(`${eol}--${boundary}`);
  const blank = Buffer.from(eol + eol);
  const parts: { headers: Record<string, string>; data: Buffer }[] = [];
  for (;;) {
    pos += delim.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // `--boundary--` closes the body
    // Transport padding (spaces, tabs) may follow a delimiter before its line break.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (!body.subarray(pos, pos + eol.length).equals(Buffer.from(eol))) throw new HttpError(400, 'multipart delimiter is not followed by a line break');
    pos += eol.length;
    // A part with no headers starts with the blank line itself.
    const headEnd = body.subarray(pos, pos + eol.length).equals(Buffer.from(eol)) ? pos - eol.length : body.indexOf(blank, pos);
    if (headEnd < 0) throw new HttpError(400, 'multipart part without a header terminator');
    const headers: Record<string, string> = {};
    for (const line of body.subarray(pos, Math.max(pos, headEnd)).toString('utf8').split(eol)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const dataStart = headEnd + blank.length;
    const next = body.indexOf(between, dataStart);
    if (next < 0) throw new HttpError(400, 'multipart body is truncated (no closing boundary)');
    parts.push({ headers, data: body.subarray(dataStart, next) });
    pos = next + eol.length;
  }
  return parts;
}

/** A resumable upload session (state lives in the server, keyed by `upload_id`). */
export interface ResumableSession {
  id: string;
  bucket: string;
  name: string;
  meta: UploadMeta;
  pre: Preconditions;
  pending: PendingBody;
  /** Set once the upload completed: later PUTs return the same object (a retried final request). */
  result?: StoredObject;
  /** Serializes PUTs of one session. */
  busy: Promise<void>;
}

export class ResumableSessions {
  private readonly sessions = new Map<string, ResumableSession>();
  constructor(private readonly store: ObjectStore) {}

  create(bucket: string, name: string, meta: UploadMeta, pre: Preconditions): ResumableSession {
    const s: ResumableSession = { id: randomBytes(16).toString('hex'), bucket, name, meta, pre, pending: this.store.pending(bucket), busy: Promise.resolve() };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | null): ResumableSession {
    const s = id ? this.sessions.get(id) : undefined;
    if (!s) throw new HttpError(404, `No such upload session: ${id}`);
    return s;
  }

  async cancel(id: string): Promise<void> {
    const s = this.get(id);
    this.sessions.delete(id);
    await s.pending.discard();
  }

  /**
   * Handles one PUT to a session. Returns the object when the upload completed, or the number of
   * bytes persisted so far (the caller answers 308 with `Range: bytes=0-(n-1)`).
   */
  async put(s: ResumableSession, req: IncomingMessage): Promise<StoredObject | number> {
    const run = s.busy.then(() => this.putNow(s, req));
    s.busy = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private async putNow(s: ResumableSession, req: IncomingMessage): Promise<StoredObject | number> {
    if (s.result) {
      req.resume();
      return s.result;
    }
    const cr = String(req.headers['content-range'] ?? 'bytes */*');
    const status = /^bytes \*\/(\d+|\*)$/.exec(cr);
    const range = /^bytes (\d+)-(-?\d+|\*)\/(\d+|\*)$/.exec(cr);
    if (!status && !range) throw new HttpError(400, `Malformed Content-Range: ${cr}`);
    let total: number | undefined;
    if (status) {
      req.resume();
      if (status[1] === '*') return s.pending.size;
      total = Number(status[1]);
    } else {
      const start = Number(range![1]);
      total = range![3] === '*' ? undefined : Number(range![3]);
      // Bytes already persisted are skipped (a client retrying a chunk); a gap is an error.
      if (start > s.pending.size) {
        req.resume();
        throw new HttpError(400, `Content-Range starts at ${start} but only ${s.pending.size} bytes were received`);
      }
      let offset = start;
      for await (const c of req) {
        let chunk = c as Buffer;
        if (offset < s.pending.size) {
          const skip = Math.min(chunk.length, s.pending.size - offset);
          offset += skip;
          chunk = chunk.subarray(skip);
        }
        offset += chunk.length;
        await s.pending.append(chunk);
      }
      // `bytes N-*/*` is a single streamed request holding the rest of the object: it completes it.
      if (range![2] === '*' && total === undefined) total = s.pending.size;
    }
    if (total === undefined || s.pending.size < total) return s.pending.size;
    if (s.pending.size > total) throw new HttpError(400, `Received ${s.pending.size} bytes, more than the declared total ${total}`);
    const sent = parseGoogHash(req.headers['x-goog-hash']);
    try {
      const o = await this.store.commit(
        s.bucket,
        s.name,
        s.pending,
        {
          contentType: s.meta.contentType,
          metadata: s.meta.metadata,
          expect: { crc32c: sent.crc32c ?? s.meta.crc32c, md5Hash: sent.md5Hash ?? s.meta.md5Hash },
        },
        s.pre,
      );
      // Kept only to answer a retried final request: the metadata, not the bytes (which the store
      // frees when the object is overwritten or deleted).
      s.result = { ...o, body: { kind: 'memory', data: Buffer.alloc(0) } };
      return o;
    } catch (err) {
      // The session is finished either way: its bytes are gone.
      this.sessions.delete(s.id);
      throw err;
    }
  }

  async clear(): Promise<void> {
    for (const s of this.sessions.values()) if (!s.result) await s.pending.discard();
    this.sessions.clear();
  }
}
