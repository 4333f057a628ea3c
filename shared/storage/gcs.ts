/**
 * Cloud Storage implementation of the BlobStore port (STYLE.md §2), over `@google-cloud/storage` v7.
 * `open.ts` loads this module on first use of a `gs://` URI or bucket name, so they work
 * everywhere `openBucket`/`resolveUri` are used.
 *
 * - Endpoint: the client honours `STORAGE_EMULATOR_HOST` (our test server, `npm run stack`);
 *   `GOOGLE_CLOUD_PROJECT` names the project. Credentials are the client's usual ones.
 * - Atomic writes: an object becomes visible only when its upload completes (single multipart request
 *   for small objects, a resumable session in retryable chunks for large ones), so a killed worker
 *   never leaves a torn shard (docs/semantics.md §10).
 * - Create-once (`ifNotExists`) is `ifGenerationMatch=0`: the server arbitrates races; the loser gets
 *   412, surfaced as `PreconditionFailed`.
 * - A lost answer (the connection broke, no HTTP status): the object is looked at, and holding exactly
 *   the bytes sent it is the write done (docs/gcs.md, "A lost answer").
 * - Errors: 404 → NOT_FOUND, 401/403 → FORBIDDEN, 408/429/5xx and network errors → IO retryable
 *   (a function throws, Pub/Sub redelivers), other 4xx → IO permanent.
 */
import { PassThrough, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type File, type StorageOptions } from '@google-cloud/storage';
import { createHash, randomBytes } from 'node:crypto';
import {
  checkKey,
  MAX_COMPOSE_SOURCES,
  PreconditionFailed,
  type BlobInfo,
  type BlobStore,
  type BlobWriter,
  type ComposeOptions,
  type DeleteOptions,
  type WriteOptions,
} from './port.js';
import { GeotfrError } from '../errors.js';
import { option } from '../options.js';
import { crc32c } from '../tfrecord/crc32c.js';

/** Tuning knobs (defaults suit Cloud Functions' memory; env vars let deployments change them). */
export interface GcsStoreOptions {
  /** A configured client (default: one shared client per endpoint, from the environment). */
  storage?: Storage;
  /** Objects up to this size go up in one request; larger ones through a resumable session. */
  resumableThresholdBytes?: number;
  /** Resumable chunk size (a multiple of 256 KiB); each chunk is retried on its own. */
  chunkSizeBytes?: number;
  /**
   * Extra attempts for idempotent reads (stat, read, readRange, list) after a retryable failure
   * (default 3). The client does not retry downloads answered 5xx, and one flaky range read of a
   * COG should not cost a whole shard's redelivery.
   */
  readRetries?: number;
  /**
   * Extra attempts for a one-request write whose answer was lost (the connection broke with no HTTP
   * status), after the store has found that the object does not hold the bytes sent (default:
   * `readRetries`). See `saveSmall`.
   */
  writeRetries?: number;
}

const MiB = 1 << 20;

/** GCS's form of a CRC-32C: base64 of the big-endian 32-bit value. */
function crc32cOf(data: Buffer): string {
  const c = new NativeCrc32c();
  c.update(data);
  return c.toString();
}

/**
 * The client's CRC-32C validator, backed by our native CRC-32C: the client's own JavaScript class
 * runs at ~123 MB/s (ECOSYSTEM.md) and would bound every validated upload and whole download.
 */
class NativeCrc32c {
  private crc = 0;
  update(data: Buffer): void {
    this.crc = crc32c(data, this.crc);
  }
  /** GCS's form: base64 of the big-endian 32-bit value. */
  toString(): string {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.crc >>> 0);
    return b.toString('base64');
  }
  validate(value: string): boolean {
    return value === this.toString();
  }
}
export const nativeCrc32cGenerator = (): NativeCrc32c => new NativeCrc32c();

const clients = new Map<string, Storage>();

/** The shared client for the current environment (re-created if `STORAGE_EMULATOR_HOST` changes). */
export function defaultStorage(): Storage {
  const endpoint = process.env.STORAGE_EMULATOR_HOST ?? '';
  let s = clients.get(endpoint);
  if (!s) {
    const o: StorageOptions = { crc32cGenerator: nativeCrc32cGenerator };
    const project = process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT;
    if (project) o.projectId = project;
    // The client itself reads STORAGE_EMULATOR_HOST (and then skips authentication).
    s = new Storage(o);
    clients.set(endpoint, s);
  }
  return s;
}

/** HTTP status (or undefined) of an error thrown by the client. */
function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const v of [e?.code, e?.status, e?.response?.status]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
    if (typeof v === 'string' && /^\d{3}$/.test(v)) return Number(v);
  }
  return undefined;
}

/** Client error codes worth retrying: dropped connections and transfers whose CRC-32C did not match. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'CONTENT_DOWNLOAD_MISMATCH', // hash-stream-validator: a download's bytes do not match x-goog-hash
  'FILE_NO_UPLOAD', // an upload's stored hash differs from the client's (the client deleted the object)
]);

/** The client's error text; for a JSON error body, just its `error.message`. */
function messageOf(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  if (raw.startsWith('{')) {
    try {
      const m = (JSON.parse(raw) as { error?: { message?: unknown } }).error?.message;
      if (typeof m === 'string') return m;
    } catch {
      /* not JSON after all */
    }
  }
  return raw.split('\n')[0];
}

/** Maps a client error to a GeotfrError with the object's URI as context. */
export function gcsError(err: unknown, uri: string, what: string): GeotfrError {
  if (err instanceof GeotfrError) return err;
  const status = statusOf(err);
  const msg = messageOf(err);
  const opts = { cause: err };
  if (status === 404) return new GeotfrError('NOT_FOUND', `${what}: no such object (${msg})`, { file: uri }, opts);
  if (status === 412) return new PreconditionFailed(uri);
  if (status === 401 || status === 403) return new GeotfrError('FORBIDDEN', `${what}: permission denied (${msg})`, { file: uri }, opts);
  if (status !== undefined && (status === 408 || status === 429 || status >= 500))
    return new GeotfrError('IO', `${what}: Cloud Storage answered ${status} (${msg})`, { file: uri }, { ...opts, retryable: true });
  if (status !== undefined) return new GeotfrError('IO', `${what}: Cloud Storage answered ${status} (${msg})`, { file: uri }, { ...opts, retryable: false });
  const code = (err as { code?: unknown })?.code;
  // Connection failures and corrupted transfers (hash mismatch) are transient: retry the whole step.
  const retryable = typeof code === 'string' ? TRANSIENT_CODES.has(code) || code.startsWith('E') : true;
  return new GeotfrError('IO', `${what}: ${msg}`, { file: uri }, { ...opts, retryable });
}

export class GcsBlobStore implements BlobStore {
  readonly root: string;
  private readonly storage: Storage;
  private readonly threshold: number;
  private readonly chunkSize: number;
  private readonly readRetries: number;
  private readonly writeRetries: number;

  constructor(
    readonly bucket: string,
    opts: GcsStoreOptions = {},
  ) {
    this.root = `gs://${bucket}`;
    this.storage = opts.storage ?? defaultStorage();
    this.threshold = opts.resumableThresholdBytes ?? option('gcsResumableThreshold');
    // Resumable chunks must be multiples of 256 KiB.
    const chunk = opts.chunkSizeBytes ?? option('gcsChunkBytes');
    this.chunkSize = Math.max(1, Math.round(chunk / (256 * 1024))) * 256 * 1024;
    this.readRetries = opts.readRetries ?? option('gcsReadRetries');
    this.writeRetries = opts.writeRetries ?? this.readRetries;
  }

  /** Runs an idempotent read, retrying retryable failures with exponential backoff (100, 200, 400 ms…). */
  private async retrying<T>(fn: () => Promise<T>, uri: string, what: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const e = gcsError(err, uri, what);
        if (!e.retryable || attempt >= this.readRetries) throw e;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  uri(key: string): string {
    return `${this.root}/${key}`;
  }

  private file(key: string): File {
    checkKey(key, 'key');
    return this.storage.bucket(this.bucket).file(key);
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    return this.retrying(
      async () => {
        const md = await this.metadata(key);
        return md && { key, size: Number(md.size ?? 0), generation: md.generation === undefined ? undefined : String(md.generation) };
      },
      this.uri(key),
      'stat',
    );
  }

  /** The object's metadata, or undefined when there is none (404). */
  private async metadata(key: string): Promise<{ size?: string | number; md5Hash?: string; crc32c?: string; generation?: string | number } | undefined> {
    try {
      return (await this.file(key).getMetadata())[0];
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async read(key: string): Promise<Buffer> {
    const f = this.file(key);
    // Full downloads are CRC-32C-checked by the client against the object's stored hash.
    return this.retrying(async () => (await f.download())[0], this.uri(key), 'read');
  }

  async readRange(key: string, start: number, end: number): Promise<Buffer> {
    const chunks = await this.readRangeChunks(key, start, end);
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  }

  async readRangeChunks(key: string, start: number, end: number): Promise<Buffer[]> {
    const f = this.file(key);
    if (end <= start) return [];
    return this.retrying(
      async () => {
        const chunks: Buffer[] = [];
        try {
          // The client's `end` is inclusive (an HTTP Range); the port's is exclusive.
          await pipeline(
            f.createReadStream({ start, end: end - 1 }),
            new Writable({
              write(c: Buffer, _e, cb) {
                chunks.push(c);
                cb();
              },
            }),
          );
        } catch (err) {
          // A range starting at or past the end is empty, as for local files.
          if (statusOf(err) === 416) return [];
          throw err;
        }
        return chunks;
      },
      this.uri(key),
      `read bytes ${start}-${end - 1}`,
    );
  }

  readStream(key: string): Readable {
    const out = new PassThrough({ highWaterMark: MiB });
    const uri = this.uri(key);
    let src: Readable;
    try {
      src = this.file(key).createReadStream();
    } catch (err) {
      process.nextTick(() => out.destroy(gcsError(err, uri, 'read')));
      return out;
    }
    src.on('error', (err) => out.destroy(gcsError(err, uri, 'read')));
    out.on('close', () => {
      if (!src.destroyed) src.destroy();
    });
    src.pipe(out);
    return out;
  }

  async write(key: string, data: Uint8Array | string, opts: WriteOptions = {}): Promise<BlobInfo> {
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length > this.threshold) {
      const w = await this.createWriter(key, opts);
      w.stream.end(buf);
      return w.commit();
    }
    return this.saveSmall(key, buf, opts);
  }

  /**
   * One-request upload. When the connection breaks without an answer, the server may or may not
   * have stored the object: the client does not retry such a request, and a caller that tried
   * again would, for a create-once write, get 412 for its own object. So the store looks: the
   * object holding exactly these bytes (size, CRC-32C and MD5) is the write done; an absent one
   * is sent again (up to `writeRetries` times, 100, 200, 400 ms apart); another object under a
   * create-once key is the usual `PreconditionFailed`. A 412 to the resent request is checked the
   * same way (the first request may have landed after the look).
   */
  private async saveSmall(key: string, buf: Buffer, opts: WriteOptions): Promise<BlobInfo> {
    for (let attempt = 0; ; attempt++) {
      const f = this.file(key);
      try {
        await f.save(buf, {
          resumable: false,
          contentType: opts.contentType,
          ...(opts.ifNotExists ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
        });
        return this.infoOf(key, f, buf.length);
      } catch (err) {
        const e = gcsError(err, this.uri(key), 'write');
        const lost = statusOf(err) === undefined && e.retryable;
        if (!lost && !(attempt > 0 && e instanceof PreconditionFailed)) throw e;
        const held = await this.holding(key, { size: buf.length, crc32c: crc32cOf(buf), md5: createHash('md5').update(buf).digest('base64') }).catch(
          () => undefined,
        );
        if (held) return held;
        if (e instanceof PreconditionFailed || attempt >= this.writeRetries) throw e;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  }

  /**
   * The object's info when it holds the bytes described (`size`, their CRC-32C in GCS's base64 form,
   * and their MD5 when known: compared where the object has one), else undefined.
   */
  private async holding(key: string, bytes: { size: number; crc32c: string; md5?: string }): Promise<BlobInfo | undefined> {
    const md = await this.metadata(key);
    if (!md || Number(md.size) !== bytes.size || md.crc32c !== bytes.crc32c) return undefined;
    if (bytes.md5 !== undefined && md.md5Hash !== undefined && md.md5Hash !== bytes.md5) return undefined;
    return { key, size: bytes.size, generation: md.generation === undefined ? undefined : String(md.generation) };
  }

  private infoOf(key: string, f: File, size: number): BlobInfo {
    const g = f.metadata?.generation;
    return { key, size: f.metadata?.size === undefined ? size : Number(f.metadata.size), generation: g === undefined ? undefined : String(g) };
  }

  /**
   * A writer that buffers up to the resumable threshold: a small object is then sent in one request
   * at commit; a large one switches to a chunked resumable upload as soon as the buffer overflows.
   * Either way nothing is visible under `key` until the final request succeeds.
   */
  async createWriter(key: string, opts: WriteOptions = {}): Promise<BlobWriter> {
    const f = this.file(key);
    const uri = this.uri(key);
    let buffered: Buffer[] = [];
    let bufferedBytes = 0;
    let upload: Writable | undefined;
    let uploadDone: Promise<void> | undefined;
    // What the upload was given, to recognise the object when its last answer is lost (commit).
    const sent = new NativeCrc32c();
    let sentBytes = 0;
    let uploadError: unknown;
    const startUpload = (): void => {
      const u = f.createWriteStream({
        resumable: true,
        chunkSize: this.chunkSize,
        contentType: opts.contentType,
        validation: 'crc32c',
        ...(opts.ifNotExists ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
      });
      upload = u;
      uploadDone = new Promise<void>((resolve, reject) => {
        u.once('finish', resolve);
        u.once('error', reject);
      });
      uploadDone.catch(() => {}); // observed in commit()
      // A failed upload (412 on a create-once conflict, retries exhausted…) fails the writer's stream
      // at once, with the mapped error, so a producer waiting for 'drain' learns it too.
      u.once('error', (err) => {
        uploadError = err;
        if (!stream.destroyed) stream.destroy(gcsError(err, uri, 'write'));
      });
    };
    const stream = new Writable({
      highWaterMark: MiB,
      write: (chunk: Buffer, _enc, cb) => {
        sent.update(chunk);
        sentBytes += chunk.length;
        if (upload) {
          if (upload.write(chunk)) cb();
          else upload.once('drain', () => cb());
          return;
        }
        buffered.push(chunk);
        bufferedBytes += chunk.length;
        if (bufferedBytes <= this.threshold) return cb();
        startUpload();
        // Handed on as they came (the upload keeps references until its chunk is sent): joining
        // them first was a copy and a fresh threshold-sized buffer for every large object.
        let more = true;
        for (const c of buffered) more = upload!.write(c);
        buffered = [];
        if (more) cb();
        else upload!.once('drain', () => cb());
      },
      final: (cb) => {
        if (upload) upload.end(() => cb());
        else cb();
      },
    });
    const ended = new Promise<void>((resolve, reject) => {
      stream.once('finish', resolve);
      stream.once('error', reject);
    });
    ended.catch(() => {});
    let settled = false;
    return {
      stream,
      commit: async () => {
        if (settled) throw new GeotfrError('INTERNAL', 'writer already committed or aborted', { file: uri });
        settled = true;
        try {
          if (!stream.writableEnded) stream.end();
          await ended;
          if (!upload) return await this.saveSmall(key, Buffer.concat(buffered), opts);
          await uploadDone;
          return this.infoOf(key, f, sentBytes);
        } catch (err) {
          const e = gcsError(uploadError ?? err, uri, 'write');
          // The session's last answer lost on a broken connection (the client gives up on it): the
          // object may be complete. Holding exactly what was sent, it is (saveSmall's reasoning).
          if (upload && statusOf(uploadError ?? err) === undefined && e.retryable) {
            const held = await this.holding(key, { size: sentBytes, crc32c: sent.toString() }).catch(() => undefined);
            if (held) return held;
          }
          throw e;
        }
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        buffered = [];
        stream.destroy();
        // Destroying the upload stream abandons the resumable session: the object never appears.
        upload?.destroy(new Error('upload aborted'));
        await uploadDone?.catch(() => {});
      },
    };
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    const [files] = await this.retrying(() => this.storage.bucket(this.bucket).getFiles({ prefix, autoPaginate: true }), `${this.root}/${prefix}`, 'list');
    return (
      files
        // Like the local store, job state under .geotfr/ shows only when asked for explicitly.
        .filter((f) => prefix.startsWith('.geotfr') || !f.name.startsWith('.geotfr/'))
        .map((f) => ({
          key: f.name,
          size: Number(f.metadata.size ?? 0),
          generation: f.metadata.generation === undefined ? undefined : String(f.metadata.generation),
        }))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    );
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<void> {
    try {
      // A precondition on a missing object answers 404, ignored like any missing object: a create-once
      // write after it decides who has the key.
      await this.file(key).delete({ ignoreNotFound: true, ...(opts.ifGenerationMatch !== undefined ? { ifGenerationMatch: opts.ifGenerationMatch } : {}) });
    } catch (err) {
      throw gcsError(err, this.uri(key), 'delete');
    }
  }

  /**
   * `objects.compose` (the client's `bucket.combine`), at most `MAX_COMPOSE_SOURCES` sources per
   * request: more are composed in rounds into intermediate objects under `tmpPrefix` (a tree of
   * composes, 32 sources per node), deleted once `dest` exists or the compose failed.
   */
  async compose(sources: string[], dest: string, opts: ComposeOptions = {}): Promise<BlobInfo> {
    const uri = this.uri(dest);
    if (!sources.length) throw new GeotfrError('BAD_REQUEST', 'compose needs at least one source', { file: uri });
    const tmp = opts.tmpPrefix ?? `.geotfr/tmp/compose-${randomBytes(6).toString('hex')}/`;
    const made: string[] = [];
    const bucket = this.storage.bucket(this.bucket);
    const combine = async (from: string[], to: string, o: { contentType?: string; ifNotExists?: boolean }) => {
      const f = this.file(to);
      if (o.contentType) f.metadata.contentType = o.contentType;
      try {
        await bucket.combine(
          from.map((k) => this.file(k)),
          f,
          o.ifNotExists ? { ifGenerationMatch: 0 } : {},
        );
      } catch (err) {
        throw gcsError(err, this.uri(to), `compose of ${from.length} objects (first ${this.uri(from[0]!)})`);
      }
      return f;
    };
    try {
      let level = sources;
      for (let round = 0; level.length > MAX_COMPOSE_SOURCES; round++) {
        const groups: string[][] = [];
        for (let i = 0; i < level.length; i += MAX_COMPOSE_SOURCES) groups.push(level.slice(i, i + MAX_COMPOSE_SOURCES));
        const names = groups.map((_, i) => `${tmp}r${round}-${String(i).padStart(5, '0')}`);
        made.push(...names);
        // Each node of a round is independent: compose them a few at a time.
        for (let i = 0; i < groups.length; i += 8) await Promise.all(groups.slice(i, i + 8).map((g, j) => combine(g, names[i + j]!, {})));
        level = names;
      }
      const f = await combine(level, dest, { contentType: opts.contentType, ifNotExists: opts.ifNotExists });
      const [md] = await f.getMetadata().catch(() => [f.metadata]);
      return { key: dest, size: Number(md.size ?? 0), generation: md.generation === undefined ? undefined : String(md.generation) };
    } finally {
      await Promise.all(made.map((k) => this.delete(k).catch(() => {})));
    }
  }
}
