/**
 * The object store behind our GCS JSON API server: buckets, immutable object generations, hashes,
 * preconditions and listing, with bodies kept in memory or (for big benches) in a directory.
 *
 * Semantics follow Cloud Storage's documented behaviour where geotfr depends on it:
 * - every write creates a new generation (a decimal string, strictly increasing), visible atomically;
 * - `ifGenerationMatch=0` means "only if no live object exists" (create-once), any mismatch is 412;
 * - listing is in lexicographic (UTF-8 byte) order of names, with prefix/delimiter/pagination.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { crc32c } from '../../shared/tfrecord/crc32c.js';
import { MAX_COMPONENT_COUNT, crc32cCombine, crc32cFromBase64, crc32cToBase64, type ComposeRequest } from './compose.js';

/** An HTTP-shaped failure: the server turns it into GCS's JSON error body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string = reasonFor(status),
  ) {
    super(message);
  }
}

function reasonFor(status: number): string {
  switch (status) {
    case 400:
      return 'invalid';
    case 404:
      return 'notFound';
    case 409:
      return 'conflict';
    case 412:
      return 'conditionNotMet';
    case 416:
      return 'requestedRangeNotSatisfiable';
    default:
      return status >= 500 ? 'backendError' : 'invalid';
  }
}

/** One run of stored bytes: a buffer, or a whole file of the store's directory. */
type Segment = { kind: 'memory'; data: Buffer } | { kind: 'file'; file: string; size: number };
/**
 * Where an object's bytes live: one segment, or (a composite) its sources' segments in order. Stored
 * bytes are never modified, so a composite shares them instead of copying: composing costs no memory
 * or disk beyond the object records, whatever the sizes.
 */
type Body = Segment | { kind: 'parts'; parts: Segment[] };

function segments(body: Body): Segment[] {
  return body.kind === 'parts' ? body.parts : [body];
}

export interface StoredObject {
  bucket: string;
  name: string;
  generation: string;
  metageneration: string;
  size: number;
  contentType: string;
  /** base64 of the big-endian CRC-32C, as GCS reports it. */
  crc32c: string;
  /** base64 of the MD5 digest; absent on composites, as in GCS. */
  md5Hash?: string;
  /** Composites only: how many uploaded (non-composite) objects they are made of. */
  componentCount?: number;
  timeCreated: string;
  metadata?: Record<string, string>;
  body: Body;
}

/** The object resource JSON (storage#object) as the JSON API returns it. */
export function objectResource(o: StoredObject, baseUrl: string): Record<string, unknown> {
  const enc = encodeURIComponent(o.name);
  return {
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${o.bucket}/o/${enc}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${o.bucket}/o/${enc}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: o.generation,
    metageneration: o.metageneration,
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.size),
    ...(o.md5Hash !== undefined ? { md5Hash: o.md5Hash } : {}),
    crc32c: o.crc32c,
    ...(o.componentCount !== undefined ? { componentCount: o.componentCount } : {}),
    etag: etagOf(o),
    timeCreated: o.timeCreated,
    updated: o.timeCreated,
    timeStorageClassUpdated: o.timeCreated,
    ...(o.metadata ? { metadata: o.metadata } : {}),
  };
}

/** The object's ETag: changes with every generation (and, for composites, is not an MD5). */
export function etagOf(o: StoredObject): string {
  return Buffer.from(o.generation).toString('base64');
}

/** Incremental CRC-32C + MD5 of an upload, in GCS's base64 forms. */
export class Hasher {
  private crc = 0;
  private readonly md5: Hash = createHash('md5');
  size = 0;
  update(chunk: Buffer): void {
    this.crc = crc32c(chunk, this.crc);
    this.md5.update(chunk);
    this.size += chunk.length;
  }
  digest(): { crc32c: string; md5Hash: string } {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(this.crc >>> 0);
    return { crc32c: b.toString('base64'), md5Hash: this.md5.digest('base64') };
  }
}

/** Precondition query parameters GCS accepts on object requests. */
export interface Preconditions {
  ifGenerationMatch?: string;
  ifGenerationNotMatch?: string;
  ifMetagenerationMatch?: string;
  ifMetagenerationNotMatch?: string;
}

export function preconditionsFrom(q: URLSearchParams): Preconditions {
  const p: Preconditions = {};
  for (const k of ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const) {
    const v = q.get(k);
    if (v !== null) {
      if (!/^\d+$/.test(v)) throw new HttpError(400, `Invalid value for ${k}: ${v}`);
      p[k] = v;
    }
  }
  return p;
}

/** Throws 412 unless `current` (the live object, if any) satisfies `p` (GCS request preconditions). */
export function checkPreconditions(current: StoredObject | undefined, p: Preconditions): void {
  const gen = current ? current.generation : '0';
  if (p.ifGenerationMatch !== undefined && p.ifGenerationMatch !== gen)
    throw new HttpError(
      412,
      `At least one of the pre-conditions you specified did not hold (ifGenerationMatch=${p.ifGenerationMatch}, live generation ${gen}).`,
    );
  if (p.ifGenerationNotMatch !== undefined && p.ifGenerationNotMatch === gen)
    throw new HttpError(412, `At least one of the pre-conditions you specified did not hold (ifGenerationNotMatch=${p.ifGenerationNotMatch}).`);
  if (p.ifMetagenerationMatch !== undefined && (!current || current.metageneration !== p.ifMetagenerationMatch))
    throw new HttpError(412, 'At least one of the pre-conditions you specified did not hold (ifMetagenerationMatch).');
  if (p.ifMetagenerationNotMatch !== undefined && current && current.metageneration === p.ifMetagenerationNotMatch)
    throw new HttpError(412, 'At least one of the pre-conditions you specified did not hold (ifMetagenerationNotMatch).');
}

/** Accumulates an upload's bytes (memory chunks or a temporary file) until it is committed. */
export class PendingBody {
  private readonly chunks: Buffer[] = [];
  private fh: fs.FileHandle | undefined;
  readonly hasher = new Hasher();
  constructor(private readonly file: string | undefined) {}

  get size(): number {
    return this.hasher.size;
  }

  async append(chunk: Buffer): Promise<void> {
    if (!chunk.length) return;
    this.hasher.update(chunk);
    if (this.file === undefined) {
      this.chunks.push(chunk);
      return;
    }
    this.fh ??= await fs.open(this.file, 'w');
    await this.fh.write(chunk);
  }

  /** Creates the file if nothing was written (a zero-byte upload); call before `seal()`. */
  async flush(): Promise<void> {
    if (this.file !== undefined && !this.fh) this.fh = await fs.open(this.file, 'w');
  }

  /** The finished body, synchronously (every append has been awaited); the file handle closes in the background. */
  seal(): Body {
    if (this.file === undefined) {
      const data = Buffer.concat(this.chunks);
      this.chunks.length = 0;
      return { kind: 'memory', data };
    }
    void this.fh?.close().catch(() => {});
    this.fh = undefined;
    return { kind: 'file', file: this.file, size: this.size };
  }

  async discard(): Promise<void> {
    this.chunks.length = 0;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    if (this.file !== undefined) await fs.rm(this.file, { force: true });
  }
}

/** One listing page in the JSON API's shape (before resource conversion). */
export interface ListPage {
  items: StoredObject[];
  prefixes: string[];
  nextPageToken?: string;
}

/** Compares names by UTF-8 bytes, as GCS orders them. */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export class ObjectStore {
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  private lastGeneration = 0n;
  /** How many live objects share each body file (composites share their sources' files). */
  private readonly fileRefs = new Map<string, number>();

  /** `dir`: keep object bodies as files there (else in memory). */
  constructor(readonly dir?: string) {}

  /** A fresh generation: microseconds since the epoch like GCS, forced strictly increasing. */
  nextGeneration(): string {
    let g = BigInt(Date.now()) * 1000n;
    if (g <= this.lastGeneration) g = this.lastGeneration + 1n;
    this.lastGeneration = g;
    return String(g);
  }

  createBucket(name: string): boolean {
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(name)) throw new HttpError(400, `Invalid bucket name: '${name}'`);
    if (this.buckets.has(name)) return false;
    this.buckets.set(name, new Map());
    return true;
  }

  hasBucket(name: string): boolean {
    return this.buckets.has(name);
  }

  bucketNames(): string[] {
    return [...this.buckets.keys()].sort();
  }

  async deleteBucket(name: string): Promise<void> {
    const b = this.bucket(name);
    if (b.size) throw new HttpError(409, `The bucket you tried to delete is not empty: ${name}`);
    this.buckets.delete(name);
  }

  private bucket(name: string): Map<string, StoredObject> {
    const b = this.buckets.get(name);
    if (!b) throw new HttpError(404, `The specified bucket does not exist: ${name}`);
    return b;
  }

  /** A new pending body for an upload into `bucket` (a temp file when the store keeps files). */
  pending(bucket: string): PendingBody {
    this.bucket(bucket);
    return new PendingBody(this.dir === undefined ? undefined : path.join(this.dir, `upload-${randomBytes(8).toString('hex')}`));
  }

  get(bucket: string, name: string): StoredObject | undefined {
    return this.bucket(bucket).get(name);
  }

  require(bucket: string, name: string, generation?: string): StoredObject {
    const o = this.get(bucket, name);
    if (!o || (generation !== undefined && o.generation !== generation)) throw new HttpError(404, `No such object: ${bucket}/${name}`);
    return o;
  }

  /**
   * Publishes an upload as the new live generation of `name`, checking preconditions at this moment
   * (not only when the upload started), so two racing create-once uploads yield one object and one 412.
   */
  async commit(
    bucket: string,
    name: string,
    pending: PendingBody,
    meta: { contentType?: string; metadata?: Record<string, string>; expect?: { crc32c?: string; md5Hash?: string } },
    pre: Preconditions,
  ): Promise<StoredObject> {
    validateName(name);
    const b = this.bucket(bucket);
    const hashes = pending.hasher.digest();
    try {
      await pending.flush();
      if (meta.expect?.crc32c !== undefined && meta.expect.crc32c !== hashes.crc32c)
        throw new HttpError(400, `Provided CRC32C "${meta.expect.crc32c}" doesn't match calculated CRC32C "${hashes.crc32c}".`);
      if (meta.expect?.md5Hash !== undefined && meta.expect.md5Hash !== hashes.md5Hash)
        throw new HttpError(400, `Provided MD5 hash "${meta.expect.md5Hash}" doesn't match calculated MD5 hash "${hashes.md5Hash}".`);
      checkPreconditions(b.get(name), pre);
    } catch (err) {
      await pending.discard();
      throw err;
    }
    // No await between the precondition check above and the swap below: racing commits cannot interleave.
    const generation = this.nextGeneration();
    const o: StoredObject = {
      bucket,
      name,
      generation,
      metageneration: '1',
      size: pending.size,
      contentType: meta.contentType || 'application/octet-stream',
      ...hashes,
      timeCreated: new Date().toISOString(),
      metadata: meta.metadata,
      body: pending.seal(),
    };
    this.hold(o.body);
    const old = b.get(name);
    b.set(name, o);
    if (old) void this.drop(old.body);
    return o;
  }

  /**
   * Publishes the concatenation of `req.sources` (names in `bucket`) as the new live generation of
   * `name`, as `objects.compose` does: 404 for a missing source (or source generation), 412 for a
   * failed source or destination precondition. Synchronous from the first lookup to the swap, so the
   * composite is made of exactly the generations checked, and racing writers of `name` see one order.
   */
  compose(bucket: string, name: string, req: ComposeRequest, pre: Preconditions): StoredObject {
    validateName(name);
    const b = this.bucket(bucket);
    const sources = req.sources.map((s) => {
      const o = b.get(s.name);
      if (!o || (s.generation !== undefined && o.generation !== s.generation))
        throw new HttpError(404, `Object ${bucket}/${s.name}${s.generation === undefined ? '' : ` (generation: ${s.generation})`} not found`);
      if (s.ifGenerationMatch !== undefined && s.ifGenerationMatch !== o.generation)
        throw new HttpError(
          412,
          `At least one of the pre-conditions you specified did not hold (sourceObjects ${s.name}: ifGenerationMatch=${s.ifGenerationMatch}, live generation ${o.generation}).`,
        );
      return o;
    });
    checkPreconditions(b.get(name), pre);
    let crc = 0;
    let size = 0;
    let components = 0;
    const parts: Segment[] = [];
    for (const o of sources) {
      crc = crc32cCombine(crc, crc32cFromBase64(o.crc32c), o.size);
      size += o.size;
      components = Math.min(MAX_COMPONENT_COUNT, components + (o.componentCount ?? 1));
      for (const seg of segments(o.body)) if ((seg.kind === 'memory' ? seg.data.length : seg.size) > 0) parts.push(seg);
    }
    const o: StoredObject = {
      bucket,
      name,
      generation: this.nextGeneration(),
      metageneration: '1',
      size,
      contentType: req.contentType || 'application/octet-stream',
      crc32c: crc32cToBase64(crc),
      componentCount: components,
      timeCreated: new Date().toISOString(),
      metadata: req.metadata,
      body: { kind: 'parts', parts },
    };
    this.hold(o.body);
    const old = b.get(name);
    b.set(name, o);
    if (old) void this.drop(old.body);
    if (req.deleteSourceObjects) {
      // Exactly the generations composed; a source that is the destination itself was just replaced.
      for (const src of new Set(sources)) {
        if (src.name === name || b.get(src.name) !== src) continue;
        b.delete(src.name);
        void this.drop(src.body);
      }
    }
    return o;
  }

  /** Counts a new reference to each file of `body`. */
  private hold(body: Body): void {
    for (const seg of segments(body)) if (seg.kind === 'file') this.fileRefs.set(seg.file, (this.fileRefs.get(seg.file) ?? 0) + 1);
  }

  /** Drops a reference to each file of `body`, removing files no live object shares any more. */
  private async drop(body: Body): Promise<void> {
    for (const seg of segments(body)) {
      if (seg.kind !== 'file') continue;
      const n = (this.fileRefs.get(seg.file) ?? 1) - 1;
      if (n > 0) {
        this.fileRefs.set(seg.file, n);
        continue;
      }
      this.fileRefs.delete(seg.file);
      await fs.rm(seg.file, { force: true }).catch(() => {});
    }
  }

  async delete(bucket: string, name: string, pre: Preconditions, generation?: string): Promise<void> {
    const o = this.require(bucket, name, generation);
    checkPreconditions(o, pre);
    this.bucket(bucket).delete(name);
    await this.drop(o.body);
  }

  list(
    bucket: string,
    opts: { prefix?: string; delimiter?: string; maxResults?: number; pageToken?: string; startOffset?: string; endOffset?: string },
  ): ListPage {
    const prefix = opts.prefix ?? '';
    const max = Math.max(1, Math.min(opts.maxResults ?? 1000, 1000));
    const after = opts.pageToken ? Buffer.from(opts.pageToken, 'base64url').toString('utf8') : undefined;
    const names = [...this.bucket(bucket).keys()].filter((n) => n.startsWith(prefix)).sort(byteCompare);
    const page: ListPage = { items: [], prefixes: [] };
    let count = 0;
    let lastEntry = '';
    for (const name of names) {
      if (after !== undefined && byteCompare(name, after) <= 0) continue;
      if (opts.startOffset !== undefined && byteCompare(name, opts.startOffset) < 0) continue;
      if (opts.endOffset !== undefined && byteCompare(name, opts.endOffset) >= 0) continue;
      let entry: string = name;
      let isPrefix = false;
      if (opts.delimiter) {
        const i = name.indexOf(opts.delimiter, prefix.length);
        if (i >= 0) {
          entry = name.slice(0, i + opts.delimiter.length);
          isPrefix = true;
        }
      }
      if (isPrefix && page.prefixes[page.prefixes.length - 1] === entry) continue;
      if (count === max) {
        // The token resumes after the last entry emitted; for a prefix, after every name it covers.
        page.nextPageToken = Buffer.from(lastEntry, 'utf8').toString('base64url');
        break;
      }
      count++;
      if (isPrefix) {
        page.prefixes.push(entry);
        lastEntry = entry + '\u{10FFFF}';
      } else {
        page.items.push(this.bucket(bucket).get(name)!);
        lastEntry = name;
      }
    }
    return page;
  }

  /** Drops every bucket and body (the server is closing). */
  async clear(): Promise<void> {
    for (const b of this.buckets.values()) for (const o of b.values()) await this.drop(o.body);
    this.buckets.clear();
  }
}

/** Bytes [start, end] (inclusive, already clamped) of an object. */
export function readObject(o: StoredObject, start: number, endInclusive: number): Readable {
  if (endInclusive < start) return Readable.from([]);
  const segs = segments(o.body);
  if (segs.length === 1) return readSegment(segs[0], start, endInclusive);
  // A composite: the part of each segment that overlaps the range, one segment at a time (no
  // segment is buffered whole); Readable.from pulls the next chunk only when the consumer wants it.
  // Every file in the range is opened before the first byte is sent, so a composite deleted (its
  // files removed) mid-download is still served whole, as a single-file object is.
  return Readable.from(
    (async function* () {
      const pieces: { seg: Segment; a: number; b: number; fh?: fs.FileHandle }[] = [];
      let offset = 0;
      for (const seg of segs) {
        const size = seg.kind === 'memory' ? seg.data.length : seg.size;
        const a = Math.max(start, offset);
        const b = Math.min(endInclusive, offset + size - 1);
        if (a <= b) pieces.push({ seg, a: a - offset, b: b - offset });
        offset += size;
        if (offset > endInclusive) break;
      }
      try {
        for (const p of pieces) if (p.seg.kind === 'file') p.fh = await fs.open(p.seg.file, 'r');
        for (const p of pieces) {
          if (p.seg.kind === 'memory') yield p.seg.data.subarray(p.a, p.b + 1);
          else yield* createReadStream('', { fd: p.fh, start: p.a, end: p.b, autoClose: false, highWaterMark: 1 << 20 });
        }
      } finally {
        for (const p of pieces) await p.fh?.close().catch(() => {});
      }
    })(),
  );
}

function readSegment(seg: Segment, start: number, endInclusive: number): Readable {
  if (seg.kind === 'memory') return Readable.from([seg.data.subarray(start, endInclusive + 1)]);
  return createReadStream(seg.file, { start, end: endInclusive, highWaterMark: 1 << 20 });
}

/** GCS object-name rules that matter for a test server: non-empty, at most 1024 UTF-8 bytes, no CR/LF. */
function validateName(name: string): void {
  if (!name) throw new HttpError(400, 'Object name is required');
  if (Buffer.byteLength(name) > 1024) throw new HttpError(400, 'Object name is longer than 1024 bytes');
  if (/[\r\n]/.test(name)) throw new HttpError(400, 'Object name contains a carriage return or line feed');
  if (name === '.' || name === '..') throw new HttpError(400, `Invalid object name: ${name}`);
}
