/**
 * The storage port (STYLE.md §2): where sources are read and outputs written. One interface, with a
 * local-directory implementation in `local.ts` and Cloud Storage in `gcs.ts`; the pipeline never knows
 * which. `open.ts` picks one for a URI or bucket name.
 *
 * Writes are atomic: an object appears under its name only once complete (local: temporary file under
 * `<root>/.geotfr/tmp/` then rename; GCS: an upload is visible only when finished), so a killed run
 * never leaves a torn shard.
 */
import type { Readable, Writable } from 'node:stream';
import { GeotfrError } from '../errors.js';

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

export interface DeleteOptions {
  ifGenerationMatch?: string;
}

/** The most sources one Cloud Storage compose request takes (more need a tree of composes). */
export const MAX_COMPOSE_SOURCES = 32;

export interface ComposeOptions extends WriteOptions {
  /**
   * Where the intermediate objects of a compose tree go (more than `MAX_COMPOSE_SOURCES` sources);
   * they are deleted afterwards. Default `.geotfr/tmp/compose-<random>/`.
   */
  tmpPrefix?: string;
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
  /**
   * Bytes [start, end) as the pieces they arrived in, not joined into one buffer (a store reading
   * over HTTP gets them in socket-sized chunks; joining them allocates and copies the range again).
   */
  readRangeChunks(key: string, start: number, end: number): Promise<Buffer[]>;
  readStream(key: string): Readable;
  write(key: string, data: Uint8Array | string, opts?: WriteOptions): Promise<BlobInfo>;
  createWriter(key: string, opts?: WriteOptions): Promise<BlobWriter>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<BlobInfo[]>;
  /**
   * Removes an object (a missing one is no error). With `ifGenerationMatch`, only while it is still
   * that version (a `generation` from stat/list): another version fails with PreconditionFailed, so a
   * stale object can be taken over without removing a newer one written meanwhile.
   */
  delete(key: string, opts?: DeleteOptions): Promise<void>;
  /**
   * Writes `dest` as the concatenation of `sources` (in order), atomically: `dest` appears complete
   * or not at all (GCS: compose; local: one file written and renamed). A missing source is NOT_FOUND.
   */
  compose(sources: string[], dest: string, opts?: ComposeOptions): Promise<BlobInfo>;
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
 * Keeps hostile prefixes (`../../etc`, `/abs`) from escaping the destination (docs/semantics.md §2, issue 6).
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
  if (
    key
      .split('/')
      .slice(0, -1)
      .some((s) => s === '')
  )
    bad('object name contains an empty path segment');
  return key;
}
