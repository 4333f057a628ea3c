/**
 * A Cloud Storage JSON API server of our own, on 127.0.0.1, for tests, benches and `npm run stack`
 * (no GCS emulator is installable here: ECOSYSTEM.md). It speaks enough of the API for the real
 * `@google-cloud/storage` client and for `gcloud storage`: buckets, media/multipart/resumable uploads
 * (chunked `Content-Range`, 308 + `Range`), downloads with `alt=media` + `Range`, metadata, listing
 * with prefix/delimiter/pageToken/maxResults, deletes, compose, generation preconditions (412),
 * CRC-32C/MD5 hashes, and object-finalize CloudEvents POSTed to configured function URLs.
 *
 * Point a client at it with `STORAGE_EMULATOR_HOST=<server.host>` (the client then calls `/b/...`)
 * or `new Storage({ apiEndpoint: server.host })` (the client calls `/storage/v1/b/...`); both work.
 */
import { mkdir } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Notifier, type DeliveryRecord, type NotifyTarget } from './events.js';
import { HttpError, ObjectStore, checkPreconditions, etagOf, objectResource, preconditionsFrom, readObject, type StoredObject } from './store.js';
import { parseComposeRequest } from './compose.js';
import { ResumableSessions, parseGoogHash, parseJson, parseMultipart, readBody, uploadMeta } from './uploads.js';

export type { NotifyTarget, DeliveryRecord } from './events.js';

export interface GcsServerOptions {
  /** TCP port (default 0: any free port). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  listenHost?: string;
  /** Buckets to create at start (more via `createBucket` or the API's `POST /b`). */
  buckets?: string[];
  /** Function URLs to receive object-finalize CloudEvents. */
  notify?: NotifyTarget[];
  /** Keep object bodies as files in this directory instead of memory (large benches). */
  dir?: string;
}

/**
 * An injected failure for the next `times` matching requests: either answer `status` without serving,
 * or (`corrupt: true`) serve normally but flip one byte of the data in transit — of a download's body,
 * or of a media/multipart upload before it is stored — so clients' hash checks can be exercised; or
 * break the connection, before serving (`hangUp`) or after (`drop`), so a lost answer can be.
 */
export interface Fault {
  method?: string;
  /** Matches when the request path (with query) contains this string. */
  pathIncludes?: string;
  status?: number;
  corrupt?: boolean;
  /** Serve the request (an upload is stored) but close the connection instead of answering: a response lost on the way back. */
  drop?: boolean;
  /** Close the connection without serving the request: nothing is stored, and no answer comes. */
  hangUp?: boolean;
  times: number;
}

export interface GcsServer {
  /** `http://127.0.0.1:PORT`: the value for `STORAGE_EMULATOR_HOST` or the client's `apiEndpoint`. */
  readonly host: string;
  readonly port: number;
  readonly store: ObjectStore;
  /** Finalize notifications delivered so far. */
  readonly deliveries: DeliveryRecord[];
  /** Requests served, by kind (`upload:media`, `upload:multipart`, `upload:resumable-init`, `upload:resumable-put`, `download`, `metadata`, `list`, `delete`, `compose`, `bucket`). */
  readonly counts: Record<string, number>;
  createBucket(name: string): void;
  buckets(): string[];
  /** Adds a finalize notification target (e.g. a function started after the server). */
  addNotify(target: NotifyTarget): void;
  /** Makes upcoming matching requests fail (fault-injection for retry tests). */
  injectFault(fault: Fault): void;
  /** Drops every injected fault not yet consumed. */
  clearFaults(): void;
  /** Resolves when no finalize notification is in flight. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Points this process's storage client and bucket allow-lists at `server`, as a function instance's
 * environment would (the metadata server is not looked for).
 */
export function useGcsServer(server: GcsServer, buckets: { source: string; destination: string }): void {
  Object.assign(process.env, {
    STORAGE_EMULATOR_HOST: server.host,
    GEOTFR_SOURCE_BUCKETS: buckets.source,
    GEOTFR_DESTINATION_BUCKETS: buckets.destination,
    METADATA_SERVER_DETECTION: 'none',
  });
}

/** Starts the server; resolves once it listens. */
export async function startGcsServer(opts: GcsServerOptions = {}): Promise<GcsServer> {
  if (opts.dir !== undefined) await mkdir(opts.dir, { recursive: true });
  const store = new ObjectStore(opts.dir);
  const sessions = new ResumableSessions(store);
  const notifier = new Notifier([...(opts.notify ?? [])]);
  const counts: Record<string, number> = {};
  const faults: Fault[] = [];
  for (const b of opts.buckets ?? []) store.createBucket(b);

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, err));
  });
  // Idle keep-alive sockets stay open longer than any pause in a test run: a socket the server closes
  // just as a client reuses it fails that request with "socket hang up" (seen when a stack test's
  // planner instance sat idle for about the old 30 s between two tests).
  server.keepAliveTimeout = 600_000;

  const count = (kind: string) => (counts[kind] = (counts[kind] ?? 0) + 1);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const base = `http://${req.headers.host ?? '127.0.0.1'}`;
    const method = req.method ?? 'GET';
    const fault = faults.find(
      (f) => f.times > 0 && (!f.method || f.method === method) && (!f.pathIncludes || (url.pathname + url.search).includes(f.pathIncludes)),
    );
    let corrupt = false;
    if (fault) {
      fault.times--;
      if (fault.corrupt) corrupt = true;
      else if (fault.hangUp) {
        req.socket.destroy();
        return;
      } else if (fault.drop) {
        // The work is done; only the answer is lost, as when a connection breaks after the server committed.
        res.end = function dropped(this: ServerResponse) {
          this.socket?.destroy();
          return this;
        } as ServerResponse['end'];
      } else {
        req.resume();
        throw new HttpError(fault.status ?? 503, `injected fault (${fault.status ?? 503})`);
      }
    }
    let p = url.pathname;
    let kind: 'json' | 'upload' | 'download' = 'json';
    if (p.startsWith('/upload/storage/v1/')) {
      kind = 'upload';
      p = p.slice('/upload/storage/v1'.length);
    } else if (p.startsWith('/resumable/upload/storage/v1/')) {
      // The discovery document's resumable media path, which apitools (gcloud) starts sessions on.
      kind = 'upload';
      p = p.slice('/resumable/upload/storage/v1'.length);
    } else if (p.startsWith('/download/storage/v1/')) {
      kind = 'download';
      p = p.slice('/download/storage/v1'.length);
    } else if (p.startsWith('/storage/v1/')) {
      p = p.slice('/storage/v1'.length);
    }
    const m = /^\/b(?:\/([^/]+)(?:\/o(?:\/(.+))?)?)?\/?$/.exec(p);
    if (!m) {
      req.resume();
      throw new HttpError(404, `Not found: ${method} ${url.pathname}`);
    }
    const bucket = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
    const objectPart = p.startsWith(`/b/${m[1]}/o`) ? (m[2] === undefined ? '' : decodeURIComponent(m[2])) : undefined;
    const q = url.searchParams;

    if (kind === 'upload') {
      if (bucket === undefined || objectPart === undefined) throw new HttpError(404, `Not found: ${url.pathname}`);
      return upload(req, res, bucket, q, base, corrupt);
    }
    if (bucket === undefined) {
      req.resume();
      count('bucket');
      if (method === 'GET') return sendJson(res, 200, { kind: 'storage#buckets', items: store.bucketNames().map((n) => bucketResource(n)) });
      if (method === 'POST') {
        const name = String(parseJson(await readBody(req), 'bucket resource').name ?? '');
        if (!store.createBucket(name)) throw new HttpError(409, `Your previous request to create the named bucket succeeded and you already own it: ${name}`);
        return sendJson(res, 200, bucketResource(name));
      }
      throw new HttpError(405, `Method not allowed: ${method} /b`);
    }
    if (objectPart === undefined) {
      req.resume();
      count('bucket');
      if (method === 'GET') {
        if (!store.hasBucket(bucket)) throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);
        return sendJson(res, 200, bucketResource(bucket));
      }
      if (method === 'DELETE') {
        await store.deleteBucket(bucket);
        return sendEmpty(res, 204);
      }
      throw new HttpError(405, `Method not allowed: ${method} /b/${bucket}`);
    }
    if (objectPart === '') {
      req.resume();
      if (method !== 'GET') throw new HttpError(405, `Method not allowed: ${method} /b/${bucket}/o`);
      count('list');
      const maxResults = q.get('maxResults');
      const page = store.list(bucket, {
        prefix: q.get('prefix') ?? undefined,
        delimiter: q.get('delimiter') ?? undefined,
        maxResults: maxResults === null ? undefined : Number(maxResults),
        pageToken: q.get('pageToken') ?? undefined,
        startOffset: q.get('startOffset') ?? undefined,
        endOffset: q.get('endOffset') ?? undefined,
      });
      return sendJson(res, 200, {
        kind: 'storage#objects',
        ...(page.nextPageToken ? { nextPageToken: page.nextPageToken } : {}),
        ...(page.prefixes.length ? { prefixes: page.prefixes } : {}),
        ...(page.items.length ? { items: page.items.map((o) => objectResource(o, base)) } : {}),
      });
    }
    const pre = preconditionsFrom(q);
    // `/o/NAME/compose` (the raw path: a name containing `/compose` arrives as `%2Fcompose`).
    const compose = /^(.+)\/compose$/.exec(m[2] ?? '');
    if (compose && method === 'POST') {
      count('compose');
      const request = parseComposeRequest(parseJson(await readBody(req), 'compose request'));
      return finished(res, store.compose(bucket, decodeURIComponent(compose[1]), request, pre), base);
    }
    const generation = q.get('generation') ?? undefined;
    req.resume();
    if (method === 'GET' || method === 'HEAD') {
      const o = store.require(bucket, objectPart, generation);
      // Read preconditions apply to the object being read.
      if (pre.ifGenerationMatch !== undefined && pre.ifGenerationMatch !== o.generation)
        throw new HttpError(412, 'At least one of the pre-conditions you specified did not hold.');
      if (pre.ifGenerationNotMatch !== undefined && pre.ifGenerationNotMatch === o.generation) throw new HttpError(304, 'Not modified');
      if (kind === 'download' || q.get('alt') === 'media') {
        count('download');
        return download(req, res, o, corrupt);
      }
      count('metadata');
      return sendJson(res, 200, objectResource(o, base));
    }
    if (method === 'DELETE') {
      count('delete');
      await store.delete(bucket, objectPart, pre, generation);
      return sendEmpty(res, 204);
    }
    throw new HttpError(405, `Method not allowed: ${method} ${url.pathname}`);
  }

  async function upload(req: IncomingMessage, res: ServerResponse, bucket: string, q: URLSearchParams, base: string, corrupt: boolean): Promise<void> {
    const method = req.method ?? 'POST';
    const uploadId = q.get('upload_id');
    if (uploadId !== null) {
      const s = sessions.get(uploadId);
      if (method === 'DELETE') {
        req.resume();
        await sessions.cancel(uploadId);
        return sendEmpty(res, 499);
      }
      if (method !== 'PUT' && method !== 'POST') throw new HttpError(405, `Method not allowed on an upload session: ${method}`);
      count('upload:resumable-put');
      const r = await sessions.put(s, req);
      if (typeof r === 'number') {
        res.statusCode = 308;
        if (r > 0) res.setHeader('Range', `bytes=0-${r - 1}`);
        res.setHeader('X-GUploader-UploadID', s.id);
        res.setHeader('Content-Length', '0');
        res.end();
        return;
      }
      return finished(res, r, base);
    }
    if (method !== 'POST') throw new HttpError(405, `Method not allowed: ${method} upload`);
    const pre = preconditionsFrom(q);
    const type = q.get('uploadType') ?? 'media';
    if (type === 'resumable') {
      count('upload:resumable-init');
      const meta = uploadMeta(parseJson(await readBody(req), 'resumable upload metadata'));
      const name = q.get('name') ?? meta.name;
      if (!name) throw new HttpError(400, 'Required parameter: name');
      meta.contentType ??= headerString(req.headers['x-upload-content-type']);
      // Fail early like GCS (the precondition is checked again when the upload completes).
      if (!store.hasBucket(bucket)) throw new HttpError(404, `The specified bucket does not exist: ${bucket}`);
      const current = store.get(bucket, name);
      checkPreconditions(current, pre);
      const s = sessions.create(bucket, name, meta, pre);
      const loc = new URL(`${base}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`);
      loc.searchParams.set('uploadType', 'resumable');
      loc.searchParams.set('name', name);
      loc.searchParams.set('upload_id', s.id);
      res.statusCode = 200;
      res.setHeader('Location', loc.toString());
      res.setHeader('X-GUploader-UploadID', s.id);
      res.setHeader('Content-Length', '0');
      res.end();
      return;
    }
    if (type === 'multipart') {
      count('upload:multipart');
      const parts = parseMultipart(await readBody(req), String(req.headers['content-type'] ?? ''));
      if (parts.length !== 2) throw new HttpError(400, `multipart upload must have 2 parts (metadata, media), got ${parts.length}`);
      const meta = uploadMeta(parseJson(parts[0].data, 'multipart metadata part'));
      const name = q.get('name') ?? meta.name;
      if (!name) throw new HttpError(400, 'Required parameter: name');
      const pending = store.pending(bucket);
      await pending.append(corrupt ? flipFirstByte(parts[1].data) : parts[1].data);
      const sent = parseGoogHash(req.headers['x-goog-hash']);
      const o = await store.commit(
        bucket,
        name,
        pending,
        {
          contentType: meta.contentType ?? parts[1].headers['content-type'],
          metadata: meta.metadata,
          expect: { crc32c: sent.crc32c ?? meta.crc32c, md5Hash: sent.md5Hash ?? meta.md5Hash },
        },
        pre,
      );
      return finished(res, o, base);
    }
    if (type === 'media') {
      count('upload:media');
      const name = q.get('name');
      if (!name) throw new HttpError(400, 'Required parameter: name');
      const pending = store.pending(bucket);
      try {
        let first = corrupt;
        for await (const c of req) {
          await pending.append(first ? flipFirstByte(c as Buffer) : (c as Buffer));
          first = false;
        }
      } catch (err) {
        await pending.discard();
        throw err;
      }
      const sent = parseGoogHash(req.headers['x-goog-hash']);
      const o = await store.commit(bucket, name, pending, { contentType: headerString(req.headers['content-type']), expect: sent }, pre);
      return finished(res, o, base);
    }
    throw new HttpError(400, `Unsupported uploadType: ${type}`);
  }

  function finished(res: ServerResponse, o: StoredObject, base: string): void {
    const resource = objectResource(o, base);
    sendJson(res, 200, resource);
    notifier.finalized(resource as { bucket: string; name: string; timeCreated: string });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.listenHost ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = `http://127.0.0.1:${port}`;

  return {
    host,
    port,
    store,
    deliveries: notifier.deliveries,
    counts,
    createBucket: (name) => void store.createBucket(name),
    buckets: () => store.bucketNames(),
    addNotify: (t) => void notifier.targets.push(t),
    injectFault: (f) => void faults.push({ ...f }),
    clearFaults: () => void faults.splice(0),
    idle: () => notifier.idle(),
    close: async () => {
      await notifier.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await sessions.clear();
      await store.clear();
    },
  };
}

function bucketResource(name: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    id: name,
    name,
    location: 'US',
    storageClass: 'STANDARD',
    iamConfiguration: { uniformBucketLevelAccess: { enabled: true } },
    timeCreated: new Date(0).toISOString(),
  };
}

function headerString(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

/** A copy of `b` with its first byte inverted (an injected transfer corruption). */
function flipFirstByte(b: Buffer): Buffer {
  const c = Buffer.from(b);
  if (c.length) c[0] ^= 0xff;
  return c;
}

/** Serves `alt=media`, honouring `Range: bytes=a-b | a- | -n` (end inclusive, as HTTP says). */
async function download(req: IncomingMessage, res: ServerResponse, o: StoredObject, corrupt = false): Promise<void> {
  res.setHeader('Content-Type', o.contentType);
  // A composite has no MD5: clients then check the CRC-32C alone.
  res.setHeader('X-Goog-Hash', o.md5Hash === undefined ? `crc32c=${o.crc32c}` : `crc32c=${o.crc32c},md5=${o.md5Hash}`);
  res.setHeader('X-Goog-Generation', o.generation);
  res.setHeader('X-Goog-Metageneration', o.metageneration);
  res.setHeader('X-Goog-Stored-Content-Encoding', 'identity');
  res.setHeader('X-Goog-Stored-Content-Length', String(o.size));
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', `"${o.md5Hash ?? etagOf(o)}"`);
  let start = 0;
  let end = o.size - 1;
  const range = headerString(req.headers.range);
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (!m || (m[1] === '' && m[2] === '')) throw new HttpError(400, `Malformed Range header: ${range}`);
    if (m[1] === '') start = Math.max(0, o.size - Number(m[2]));
    else {
      start = Number(m[1]);
      if (m[2] !== '') end = Math.min(end, Number(m[2]));
    }
    if (start >= o.size && o.size > 0) {
      res.setHeader('Content-Range', `bytes */${o.size}`);
      throw new HttpError(416, `Requested range not satisfiable: ${range} (object size ${o.size})`);
    }
    if (o.size > 0) {
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${o.size}`);
    }
  }
  if (res.statusCode !== 206) res.statusCode = 200;
  res.setHeader('Content-Length', String(Math.max(0, end - start + 1)));
  if (req.method === 'HEAD') return void res.end();
  if (corrupt) {
    const parts: Buffer[] = [];
    for await (const c of readObject(o, start, end)) parts.push(c as Buffer);
    res.end(flipFirstByte(Buffer.concat(parts)));
    return;
  }
  await pipeline(readObject(o, start, end), res);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = Buffer.from(JSON.stringify(body));
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=UTF-8');
  res.setHeader('Content-Length', String(data.length));
  res.end(data);
}

function sendEmpty(res: ServerResponse, status: number): void {
  res.statusCode = status;
  res.setHeader('Content-Length', '0');
  res.end();
}

/** GCS's JSON error body; any non-HttpError is a 500 (a bug in this server, or a dropped stream). */
function sendError(res: ServerResponse, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500;
  const message = err instanceof Error ? err.message : String(err);
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  const reason = err instanceof HttpError ? err.reason : 'backendError';
  if (status === 304) {
    sendEmpty(res, 304);
    return;
  }
  sendJson(res, status, { error: { code: status, message, errors: [{ domain: 'global', reason, message }] } });
}
