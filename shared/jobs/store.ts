/**
 * A job's state in its destination bucket, under `.geotfr/jobs/<jobId>/` (issue 6, "Jobs"; never beside
 * the outputs, docs/semantics.md §5):
 *
 * | object                 | written by        | how                                             |
 * |------------------------|-------------------|-------------------------------------------------|
 * | `submitted.json`       | planner, ingest   | digest of the request as received, create-once: the id names it |
 * | `request.json`         | planner           | the effective request (after `{date}`), create-once |
 * | `plan.json`            | planner           | the export plan, create-once (a redelivery reuses it) |
 * | `shards/NNNNN.json`    | shard worker      | create-once marker once shard N's object exists  |
 * | `errors/NNNNN.json`    | shard worker      | last retryable error of shard N (read by dead-letter) |
 * | `errors/request.json`  | planner           | last retryable error planning the request        |
 * | `attempts/NNNNN.json`  | ingest            | one per delivery of a bucket drop (bounds retries) |
 * | `done.json`/`failed.json` | finalizer / any | create-once terminal outcome (the first one wins) |
 * | `status.json`          | everyone          | the document users poll (status.ts)              |
 *
 * Many functions update `status.json` without a lock, so it is only ever a snapshot recomputed from the
 * markers; a writer that may have raced with the terminal write re-checks the terminal marker afterwards
 * and, if it exists, rewrites the terminal status (`writeStatus`), so the last write is always terminal.
 */
import { createHash } from 'node:crypto';
import { isPreconditionFailed, type BlobStore } from '../storage/port.js';
import { GeotfrError } from '../errors.js';
import type { JobStatus } from './status.js';

/** Job ids are path-safe: lowercase letters, digits, `-`, `_`, `.`; 1–128 characters, not starting with `.`. */
export function checkJobId(id: string): string {
  if (!/^[a-z0-9_][a-z0-9_.-]{0,127}$/i.test(id) || id.includes('..'))
    throw new GeotfrError('BAD_REQUEST', `invalid job id ${JSON.stringify(id)} (letters, digits, "-", "_", "." only)`, { field: 'jobId' });
  return id;
}

export interface ShardMark {
  shard: number;
  name: string;
  size: number;
  patches: number;
  seconds: number;
  attempt: number;
  alreadyExisted: boolean;
  at: string;
}

const pad = (n: number) => String(n).padStart(5, '0');

/** JSON with object keys sorted, so the same document always has the same digest. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** SHA-256 of a request document as received (before `{date}` or a split change it). */
export function requestDigest(request: unknown): string {
  return createHash('sha256').update(canonical(request)).digest('hex');
}

export class JobStore {
  readonly dir: string;
  constructor(
    readonly store: BlobStore,
    readonly jobId: string,
  ) {
    this.dir = `.geotfr/jobs/${checkJobId(jobId)}/`;
  }

  /** URI of the status document (what users poll). */
  get statusUri(): string {
    return this.store.uri(this.dir + 'status.json');
  }

  /** A JSON document under the job's directory, or undefined when it does not exist. */
  private async readJson<T>(name: string): Promise<T | undefined> {
    try {
      return JSON.parse((await this.store.read(this.dir + name)).toString('utf8')) as T;
    } catch (err) {
      if (err instanceof GeotfrError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Writes a JSON document under the job's directory (`ifNotExists`: create-once). */
  private async writeJson(name: string, value: unknown, ifNotExists = false): Promise<void> {
    await this.store.write(this.dir + name, JSON.stringify(value, null, 2) + '\n', { ifNotExists, contentType: 'application/json' });
  }

  /** Writes `name` only if it does not exist; returns false when it already did. */
  private async createOnce(name: string, value: unknown): Promise<boolean> {
    try {
      await this.writeJson(name, value, true);
      return true;
    } catch (err) {
      if (isPreconditionFailed(err)) return false;
      throw err;
    }
  }

  /**
   * Binds the job id to one request (issue 11 item 1; docs/cloud.md, "Job ids"): the first request
   * under an id wins, create-once. The same request again (a redelivery, a retried POST) passes;
   * anything else is a CONFLICT and must change nothing of this job, so call this before any write.
   */
  async claim(request: unknown, now: Date): Promise<void> {
    const sha256 = requestDigest(request);
    if (await this.createOnce('submitted.json', { sha256, at: now.toISOString() })) return;
    const first = await this.readJson<{ sha256?: string; at?: string }>('submitted.json');
    if (first?.sha256 !== sha256)
      throw new GeotfrError(
        'CONFLICT',
        `job id ${JSON.stringify(this.jobId)} already names a different request (submitted ${first?.at ?? 'earlier'}); use a new job id`,
        {
          field: 'jobId',
        },
      );
  }

  /** Counts one more delivery of the job's event (create-once markers, so concurrent deliveries each count); returns the count. */
  async countAttempt(at: Date): Promise<number> {
    for (let n = (await this.store.list(this.dir + 'attempts/')).length + 1; ; n++)
      if (await this.createOnce(`attempts/${pad(n)}.json`, { at: at.toISOString() })) return n;
  }

  /** Stores the plan once; returns the stored one (the first writer's, on a redelivered request). */
  async savePlan<P>(plan: P, request: unknown): Promise<{ plan: P; created: boolean }> {
    await this.createOnce('request.json', request);
    const created = await this.createOnce('plan.json', plan);
    if (created) return { plan, created };
    const stored = await this.readJson<P>('plan.json');
    if (stored === undefined) throw new GeotfrError('IO', 'plan.json vanished after a precondition failure', { file: this.store.uri(this.dir + 'plan.json') });
    return { plan: stored, created };
  }

  async loadPlan<P>(): Promise<P> {
    const p = await this.readJson<P>('plan.json');
    // A shard message only exists after its plan was stored, so a missing plan is permanent.
    if (p === undefined) throw new GeotfrError('NOT_FOUND', `no plan for job ${this.jobId}`, { file: this.store.uri(this.dir + 'plan.json') });
    return p;
  }

  async markShard(mark: ShardMark): Promise<boolean> {
    return this.createOnce(`shards/${pad(mark.shard)}.json`, mark);
  }

  async hasShardMark(shard: number): Promise<boolean> {
    return (await this.store.stat(this.dir + `shards/${pad(shard)}.json`)) !== undefined;
  }

  /** Indexes of the shards that have a marker, from one listing (no reads). */
  async markedShards(): Promise<number[]> {
    const infos = await this.store.list(this.dir + 'shards/');
    return infos
      .map((i) => Number(/(\d+)\.json$/.exec(i.key)?.[1] ?? NaN))
      .filter(Number.isInteger)
      .sort((a, b) => a - b);
  }

  async shardMarks(): Promise<ShardMark[]> {
    const infos = await this.store.list(this.dir + 'shards/');
    const marks = await Promise.all(infos.map((i) => this.readJson<ShardMark>(i.key.slice(this.dir.length))));
    return marks.filter((m): m is ShardMark => m !== undefined).sort((a, b) => a.shard - b.shard);
  }

  /** Records the last retryable error of a shard (by index) or of the request (`'request'`). */
  async recordError(what: number | 'request', error: unknown): Promise<void> {
    const name = typeof what === 'number' ? pad(what) : what;
    await this.writeJson(`errors/${name}.json`, error);
  }

  async lastError<E>(what: number | 'request'): Promise<E | undefined> {
    return this.readJson<E>(`errors/${typeof what === 'number' ? pad(what) : what}.json`);
  }

  async status(): Promise<JobStatus | undefined> {
    return this.readJson<JobStatus>('status.json');
  }

  /** The terminal outcome if the job has one (done wins: its outputs are complete). */
  async terminal(): Promise<JobStatus | undefined> {
    return (await this.readJson<JobStatus>('done.json')) ?? (await this.readJson<JobStatus>('failed.json'));
  }

  /**
   * Records a terminal outcome once. Returns the outcome that won (this one, or an earlier one), and
   * makes `status.json` show it.
   */
  async finish(status: JobStatus): Promise<JobStatus> {
    if (status.state !== 'done' && status.state !== 'failed') throw new GeotfrError('INTERNAL', `finish() needs a terminal state, got ${status.state}`);
    // A done job stays done: a late dead-letter of a duplicate message must not fail finished outputs.
    const existingDone = await this.readJson<JobStatus>('done.json');
    if (existingDone) {
      await this.writeJson('status.json', existingDone);
      return existingDone;
    }
    await this.createOnce(`${status.state}.json`, status);
    const won = (await this.terminal()) ?? status;
    await this.writeJson('status.json', won);
    return won;
  }

  /** Writes a non-terminal snapshot, then makes sure a concurrent terminal write is not lost under it. */
  async writeStatus(status: JobStatus): Promise<JobStatus> {
    if (status.state === 'done' || status.state === 'failed') return this.finish(status);
    const before = await this.terminal();
    const doc = before ?? status;
    await this.writeJson('status.json', doc);
    if (before) return before;
    const after = await this.terminal();
    if (after) {
      await this.writeJson('status.json', after);
      return after;
    }
    return status;
  }
}
