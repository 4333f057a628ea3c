/** The storage port on a local directory: atomic writes through a temporary file and a rename. */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { STALE_TMP_MS, pidAlive } from '../tmpfiles.js';
import {
  PreconditionFailed,
  checkKey,
  type BlobInfo,
  type BlobStore,
  type BlobWriter,
  type ComposeOptions,
  type DeleteOptions,
  type WriteOptions,
} from './port.js';
import { pipeline } from 'node:stream/promises';

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

  /** One piece: a local read lands in one buffer anyway. */
  async readRangeChunks(key: string, start: number, end: number): Promise<Buffer[]> {
    if (end <= start) return [];
    const b = await this.readRange(key, start, end);
    return b.length ? [b] : [];
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
    await (this.reclaimed ??= this.reclaimStale().then(
      () => {},
      () => {},
    ));
    const tmp = path.join(tmpDir, `${path.basename(key)}.${process.pid}.${randomBytes(6).toString('hex')}`);
    let fh!: fs.FileHandle;
    try {
      await fs.mkdir(path.dirname(final), { recursive: true });
      // Open before streaming, retrying: another writer's commit may remove the empty tmp directory
      // (or `.geotfr`) between our mkdir and our open (see tidy()).
      for (let attempt = 0; ; attempt++) {
        try {
          await fs.mkdir(tmpDir, { recursive: true });
          fh = await fs.open(tmp, 'wx');
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 10) throw err;
        }
      }
    } catch (err) {
      throw asGeotfrError(err, { file: final });
    }
    const stream = createWriteStream(tmp, { fd: fh });
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
          // The target's directory may have been removed meanwhile as empty (a `.geotfr/leases/`
          // tidied by another run): recreate it and publish again.
          const publish = async (): Promise<void> => {
            for (let attempt = 0; ; attempt++) {
              try {
                return await (opts.ifNotExists ? fs.link(tmp, final) : fs.rename(tmp, final));
              } catch (err) {
                if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 10) throw err;
                await fs.mkdir(path.dirname(final), { recursive: true });
              }
            }
          };
          if (opts.ifNotExists) {
            // link() fails if the target exists: an atomic create-once.
            try {
              await publish();
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PreconditionFailed(final);
              throw err;
            } finally {
              await fs.rm(tmp, { force: true });
            }
          } else {
            await publish();
          }
          const s = await fs.stat(final, { bigint: true });
          await this.tidy();
          return { key, size: Number(s.size), generation: String(s.mtimeNs) };
        } catch (err) {
          await fs.rm(tmp, { force: true }).catch(() => {});
          await this.tidy();
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
        await this.tidy();
      },
    };
  }

  private reclaimed: Promise<void> | undefined;

  /**
   * Removes temporaries a killed run left in `.geotfr/tmp/` (a partial shard can be 1 GiB): those not
   * modified for `STALE_TMP_MS` whose writing process (the pid in the name) no longer runs here.
   * Runs once per store, before its first write: "on the next run at that destination".
   */
  async reclaimStale(maxAgeMs = STALE_TMP_MS, now = Date.now()): Promise<string[]> {
    const dir = path.join(this.root, '.geotfr', 'tmp');
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      const m = /\.(\d+)\.[0-9a-f]{12}$/.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      const file = path.join(dir, name);
      const st = await fs.stat(file).catch(() => undefined);
      if (!st?.isFile() || now - st.mtimeMs < maxAgeMs) continue;
      await fs.rm(file, { force: true });
      removed.push(file);
    }
    await this.tidy();
    return removed;
  }

  /**
   * Leaves no empty `.geotfr/tmp/` (nor an empty `.geotfr/`) behind a write: rmdir fails on a
   * non-empty directory, so a concurrent writer's temporary or an export's manifests keep them.
   */
  async tidy(): Promise<void> {
    for (const d of ['.geotfr/tmp', '.geotfr/leases', '.geotfr']) await fs.rmdir(path.join(this.root, d)).catch(() => {});
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
        // Nothing is listed under a missing directory, nor under a file standing where it would be.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
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

  async delete(key: string, opts: DeleteOptions = {}): Promise<void> {
    if (opts.ifGenerationMatch !== undefined) {
      // Checked, then removed: on one machine the window between the two is microseconds (GCS checks atomically).
      const now = await this.stat(key);
      if (now && now.generation !== opts.ifGenerationMatch) throw new PreconditionFailed(this.uri(key));
    }
    await fs.rm(this.p(key), { force: true });
  }

  async compose(sources: string[], dest: string, opts: ComposeOptions = {}): Promise<BlobInfo> {
    if (!sources.length) throw new GeotfrError('BAD_REQUEST', 'compose needs at least one source', { file: this.uri(dest) });
    // Every source must exist before anything is written (GCS answers 404 the same way).
    for (const k of sources) if (!(await this.stat(k))) throw new GeotfrError('NOT_FOUND', `compose source does not exist`, { file: this.uri(k) });
    const w = await this.createWriter(dest, opts);
    try {
      for (const k of sources) await pipeline(createReadStream(this.p(k), { highWaterMark: 1 << 20 }), w.stream, { end: false });
      return await w.commit();
    } catch (err) {
      await w.abort();
      throw asGeotfrError(err, { file: this.uri(dest) });
    }
  }
}
