/**
 * The storage port (STYLE.md §2): where sources are read and outputs written. One interface, with a
 * local-directory implementation here and Cloud Storage in `gcs.ts`; the pipeline never knows which.
 *
 * Writes are atomic: an object appears under its name only once complete (local: temporary file under
 * `<root>/.geotfr/tmp/` then rename; GCS: an upload is visible only when finished), so a killed run
 * never leaves a torn shard.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { GeotfrError, asGeotfrError } from './errors.js';

export interface BlobInfo {
  key: string;
  size: number;
  /** Opaque version (GCS generation, local mtime in ns) for preconditions and caching. */
  generation?: string;
}

export interface WriteOptions {
  /** Fail with code 'PRECONDITION' if the object exists (create-once). */
  ifNotExists?: boolean;
  contentType?: string;
}

/** A pending object: write to `stream`, then `commit()` to publish it or `abort()` to drop it. */
export interface BlobWriter {
  readonly stream: Writable;
  /** Ends the stream (if not yet ended) and publishes the object atomically. */
  commit(): Promise<BlobInfo>;
  abort(): Promise<void>;
}

export interface BlobStore {
  /** Human-readable location of the store root (`/abs/dir` or `gs://bucket`). */
  readonly root: string;
  /** Full URI of a key, for messages and summaries. */
  uri(key: string): string;
  stat(key: string): Promise<BlobInfo | undefined>;
  read(key: string): Promise<Buffer>;
  /** Reads bytes [start, end) of an object. */
  readRange(key: string, start: number, end: number): Promise<Buffer>;
  readStream(key: string): Readable;
  write(key: string, data: Uint8Array | string, opts?: WriteOptions): Promise<BlobInfo>;
  createWriter(key: string, opts?: WriteOptions): Promise<BlobWriter>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<BlobInfo[]>;
  delete(key: string): Promise<void>;
}

/** Thrown by create-once writes when the object already exists. */
export class PreconditionFailed extends GeotfrError {
  constructor(uri: string) {
    super('IO', 'object already exists (precondition failed)', { file: uri }, { retryable: false });
  }
}

/** Whether a create-once write lost because the object exists (a store may report it as a plain GeotfrError). */
export function isPreconditionFailed(err: unknown): boolean {
  return err instanceof PreconditionFailed || (err instanceof GeotfrError && /precondition/i.test(err.message));
}

/**
 * Validates an object key: relative, `/`-separated, no `..`, no empty or `.` segments, no NUL.
 * Keeps hostile prefixes (`../../etc`, `/abs`) from escaping the destination (SPEC §2, issue 6).
 */
export function checkKey(key: string, field = 'fileNamePrefix'): string {
  const bad = (why: string): never => {
    throw new GeotfrError('FORBIDDEN', `${why}: ${JSON.stringify(key)}`, { field });
  };
  if (!key) bad('empty object name');
  if (key.includes('\0')) bad('object name contains NUL');
  if (key.includes('\\')) bad('object name contains a backslash');
  if (key.startsWith('/')) bad('object name must be relative, not absolute');
  for (const seg of key.split('/')) {
    if (seg === '..') bad('object name must not contain ".."');
    if (seg === '.') bad('object name must not contain "." segments');
  }
  if (key.split('/').slice(0, -1).some((s) => s === '')) bad('object name contains an empty path segment');
  return key;
}

export class LocalBlobStore implements BlobStore {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  uri(key: string): string {
    return path.join(this.root, key);
  }

  private p(key: string): string {
    checkKey(key, 'key');
    return path.join(this.root, key);
  }

  async stat(key: string): Promise<BlobInfo | undefined> {
    try {
      const s = await fs.stat(this.p(key), { bigint: true });
      if (!s.isFile()) return undefined;
      return { key, size: Number(s.size), generation: String(s.mtimeNs) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw asGeotfrError(err, { file: this.uri(key) });
    }
  }

  async read(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.p(key));
    } catch (err) {
      throw asGeotfrError(err, { file: this.uri(key) });
    }
  }

  async readRange(key: string, start: number, end: number): Promise<Buffer> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(this.p(key), 'r');
      const buf = Buffer.allocUnsafe(end - start);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === buf.length ? buf : buf.subarray(0, got);
    } catch (err) {
      throw asGeotfrError(err, { file: this.uri(key) });
    } finally {
      await fh?.close();
    }
  }

  readStream(key: string): Readable {
    const src = createReadStream(this.p(key), { highWaterMark: 1 << 20 });
    // Errors as data, like read(): a missing file is NOT_FOUND naming the file, not a bare ENOENT.
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    src.on('error', (err) => out.destroy(asGeotfrError(err, { file: this.uri(key) })));
    out.on('close', () => src.destroy());
    return src.pipe(out);
  }

  async write(key: string, data: Uint8Array | string, opts: WriteOptions = {}): Promise<BlobInfo> {
    const w = await this.createWriter(key, opts);
    w.stream.end(data);
    return w.commit();
  }

  async createWriter(key: string, opts: WriteOptions = {}): Promise<BlobWriter> {
    const final = this.p(key);
    const tmpDir = path.join(this.root, '.geotfr', 'tmp');
    try {
      await fs.mkdir(tmpDir, { recursive: true });
      await fs.mkdir(path.dirname(final), { recursive: true });
    } catch (err) {
      throw asGeotfrError(err, { file: final });
    }
    const tmp = path.join(tmpDir, `${path.basename(key)}.${process.pid}.${randomBytes(6).toString('hex')}`);
    const stream = createWriteStream(tmp);
    const done = new Promise<void>((resolve, reject) => {
      stream.once('finish', resolve);
      stream.once('error', reject);
    });
    done.catch(() => {}); // observed in commit()
    let settled = false;
    return {
      stream,
      commit: async () => {
        if (settled) throw new GeotfrError('INTERNAL', 'writer already committed or aborted', { file: final });
        settled = true;
        try {
          if (!stream.writableEnded) stream.end();
          await done;
          if (opts.ifNotExists) {
            // link() fails if the target exists: an atomic create-once.
            try {
              await fs.link(tmp, final);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailed(final);
              throw err;
            } finally {
              await fs.rm(tmp, { force: true });
            }
          } else {
            await fs.rename(tmp, final);
          }
          const s = await fs.stat(final, { bigint: true });
          return { key, size: Number(s.size), generation: String(s.mtimeNs) };
        } catch (err) {
          await fs.rm(tmp, { force: true }).catch(() => {});
          throw asGeotfrError(err, { file: final });
        }
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        // The file may still be opening: removing it before the stream has closed its descriptor
        // would let the open create it afterwards, leaving a stray temporary behind.
        if (!stream.closed) {
          const closed = once(stream, 'close').catch(() => {});
          stream.destroy();
          await closed;
        }
        await fs.rm(tmp, { force: true }).catch(() => {});
      },
    };
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    // Walk only the directory that holds the prefix, then filter by the full prefix.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
    const out: BlobInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await fs.readdir(path.join(this.root, rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw asGeotfrError(err, { file: path.join(this.root, rel) });
      }
      for (const e of entries) {
        const k = rel + e.name;
        if (e.isDirectory()) {
          if (k === '.geotfr' && !prefix.startsWith('.geotfr')) continue;
          if ((k + '/').startsWith(prefix) || prefix.startsWith(k + '/')) await walk(k + '/');
        } else if (e.isFile() && k.startsWith(prefix)) {
          const s = await fs.stat(path.join(this.root, k), { bigint: true });
          out.push({ key: k, size: Number(s.size), generation: String(s.mtimeNs) });
        }
      }
    };
    await walk(dirPart);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.p(key), { force: true });
  }
}

/** Where a URI points: a store and the key inside it. */
export interface Location {
  store: BlobStore;
  key: string;
}

type GcsFactory = (bucket: string) => BlobStore;
let gcsFactory: GcsFactory | undefined;

/** Registers the Cloud Storage implementation (done by `gcs.ts` on import, keeping the core free of the SDK). */
export function registerGcs(factory: GcsFactory): void {
  gcsFactory = factory;
}

async function gcsStore(bucket: string): Promise<BlobStore> {
  if (!gcsFactory) await import('./gcs.js');
  if (!gcsFactory) throw new GeotfrError('INTERNAL', 'Cloud Storage support is not available');
  return gcsFactory(bucket);
}

/**
 * Opens the store for a destination `bucket` (SPEC §2): a GCS bucket name, `gs://name`, or a local
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
