/**
 * Who may write under an export prefix (docs/semantics.md §5 "Overwriting and concurrent exports").
 *
 * - A lease: `.geotfr/leases/<sha256 of the prefix>.json`, created once (`ifNotExists`) with the run's
 *   id and an expiry, renewed while the run lasts and removed at its end. A second export to the same
 *   prefix finds it and fails at once instead of interleaving its shards with the first one's. A lease
 *   past its expiry, or held by a process of this host that no longer exists (a SIGKILLed run), is
 *   taken over.
 * - The previous export: shards, mixer and manifest already under the prefix. An export refuses such a
 *   prefix unless the request says `overwrite: true`; it then removes exactly the old files its own
 *   output did not replace, and only once its own output is complete.
 *
 * The same functions run in the CLI (shared/export/run.ts) and in the cloud planner
 * (shared/jobs/planner.ts), through the storage port.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { GeotfrError } from '../errors.js';
import { isPreconditionFailed, type BlobStore } from '../storage/port.js';
import { pidAlive } from '../tmpfiles.js';
import type { ExportManifest } from './finalize.js';
import type { ExportPlan } from './plan.js';

/** What a lease object holds. */
export interface LeaseRecord {
  version: 1;
  prefix: string;
  runId: string;
  host: string;
  pid: number;
  acquiredAt: string;
  expiresAt: string;
}

/** A held lease: renew it while working, release it at the end (success or failure). */
export interface PrefixLease {
  readonly key: string;
  readonly record: LeaseRecord;
  /** True when this run already held the lease (a redelivered cloud request). */
  readonly reentered: boolean;
  renew(): Promise<void>;
  release(): Promise<void>;
}

export interface LeaseOptions {
  /** Identifies the run; the same id re-entering its own lease succeeds (idempotent cloud planning). */
  runId: string;
  /** How long the lease holds without renewal. */
  ttlMs: number;
  now?: () => Date;
  /** Extra staleness test (the cloud: the holding job has finished). */
  isStale?: (lease: LeaseRecord) => Promise<boolean>;
}

/** A fresh id for a local run: host, pid and randomness, so two runs never share one. */
export function newRunId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
}

/** Object key of a prefix's lease (hashed: a prefix may be long or hold slashes). */
export function leaseKey(prefix: string): string {
  return `.geotfr/leases/${createHash('sha256').update(prefix).digest('hex').slice(0, 40)}.json`;
}

/**
 * The lease on `key` and its version. The version is read first: if the lease is replaced between the
 * two reads, the text is the newer lease's and the version the older's, and a takeover conditioned on
 * that version fails (it never removes a lease it has not read).
 */
async function readLease(store: BlobStore, key: string): Promise<(LeaseRecord & { generation?: string }) | undefined> {
  const info = await store.stat(key);
  if (!info) return undefined;
  let text: string;
  try {
    text = (await store.read(key)).toString('utf8');
  } catch (err) {
    if (err instanceof GeotfrError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
  try {
    return { ...(JSON.parse(text) as LeaseRecord), generation: info.generation };
  } catch {
    // A torn or foreign lease file cannot be trusted to protect anything: treat it as expired.
    return { version: 1, prefix: '', runId: '', host: '', pid: 0, acquiredAt: '', expiresAt: new Date(0).toISOString(), generation: info.generation };
  }
}

/**
 * Takes the lease on `prefix` or throws `IO` (not retryable locally: the user decides) naming the run
 * that holds it and until when.
 */
export async function acquirePrefixLease(store: BlobStore, prefix: string, opts: LeaseOptions): Promise<PrefixLease> {
  const now = opts.now ?? (() => new Date());
  const key = leaseKey(prefix);
  const make = (): LeaseRecord => {
    const t = now();
    return {
      version: 1,
      prefix,
      runId: opts.runId,
      host: hostname(),
      pid: process.pid,
      acquiredAt: t.toISOString(),
      expiresAt: new Date(t.getTime() + opts.ttlMs).toISOString(),
    };
  };
  let record = make();
  let reentered = false;
  // Up to three attempts: after a stale lease is removed (or another taker replaced it first), again.
  for (let attempt = 0; ; attempt++) {
    try {
      await store.write(key, JSON.stringify(record, null, 2) + '\n', { ifNotExists: true, contentType: 'application/json' });
      break;
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
    }
    const held = await readLease(store, key);
    if (!held) {
      if (attempt < 2) continue;
      throw new GeotfrError('IO', `could not take the lease on prefix ${JSON.stringify(prefix)}`, { file: store.uri(key) });
    }
    if (held.runId === opts.runId) {
      const { generation: _version, ...own } = held;
      record = { ...own, expiresAt: make().expiresAt };
      await store.write(key, JSON.stringify(record, null, 2) + '\n', { contentType: 'application/json' });
      reentered = true;
      break;
    }
    const expired = !(Date.parse(held.expiresAt) > now().getTime());
    const orphaned = held.host === hostname() && !pidAlive(held.pid);
    const stale = expired || orphaned || (opts.isStale ? await opts.isStale(held) : false);
    if (!stale || attempt >= 2)
      throw new GeotfrError(
        'IO',
        `another export (run ${held.runId}, started ${held.acquiredAt}) is writing to prefix ${JSON.stringify(prefix)}; its lease holds until ${held.expiresAt} (docs/semantics.md §5)`,
        { file: store.uri(key), field: 'fileNamePrefix' },
        { retryable: false },
      );
    // Only the stale lease just read: when two runs find it stale at once, the second one's delete
    // fails its precondition instead of removing the lease the first has just written.
    try {
      await store.delete(key, { ifGenerationMatch: held.generation });
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
    }
    record = make();
  }
  let released = false;
  const lease: PrefixLease = {
    key,
    get record() {
      return record;
    },
    reentered,
    renew: async () => {
      if (released) return;
      const current = await readLease(store, key);
      if (current && current.runId !== opts.runId)
        throw new GeotfrError(
          'IO',
          `lost the lease on prefix ${JSON.stringify(prefix)} to run ${current.runId}`,
          { file: store.uri(key), field: 'fileNamePrefix' },
          { retryable: false },
        );
      record = { ...record, expiresAt: make().expiresAt };
      await store.write(key, JSON.stringify(record, null, 2) + '\n', { contentType: 'application/json' });
    },
    release: async () => {
      if (released) return;
      released = true;
      // Only our own lease: a run whose lease was taken over must not free the new holder's.
      const current = await readLease(store, key).catch(() => undefined);
      if (current && current.runId === opts.runId) await store.delete(key);
    },
  };
  return lease;
}

/** Shard names of a prefix (`PREFIX-00000.tfrecord[.gz]`, docs/semantics.md §5). */
function isExportFile(prefix: string, key: string): boolean {
  const rest = key.slice(prefix.length);
  return key.startsWith(prefix) && (/^-\d{5}\.tfrecord(\.gz)?$/.test(rest) || rest === '-mixer.json');
}

/** The files of an earlier export under the plan's prefix: shards and mixer by name, plus the manifest. */
export interface PriorExport {
  keys: string[];
  manifest: ExportManifest | undefined;
}

/** Lists what an earlier export left under the plan's prefix (its manifest, and files named like an export's). */
export async function findPriorExport(store: BlobStore, plan: Pick<ExportPlan, 'request' | 'manifestKey'>): Promise<PriorExport> {
  const prefix = plan.request.fileNamePrefix;
  const keys = new Set<string>();
  for (const info of await store.list(prefix + '-')) if (isExportFile(prefix, info.key)) keys.add(info.key);
  let manifest: ExportManifest | undefined;
  if (await store.stat(plan.manifestKey)) {
    keys.add(plan.manifestKey);
    try {
      manifest = JSON.parse((await store.read(plan.manifestKey)).toString('utf8')) as ExportManifest;
    } catch {
      manifest = undefined;
    }
    // The old manifest names the old export's files; those that still exist are part of it.
    for (const k of [...(manifest?.shards ?? []), ...(manifest?.mixer ? [manifest.mixer] : [])])
      if (typeof k === 'string' && isExportFile(prefix, k) && (await store.stat(k))) keys.add(k);
  }
  return { keys: [...keys].sort(), manifest };
}

/** Refuses a prefix that holds an earlier export, unless the request allows overwriting it. */
export function checkPriorExport(store: BlobStore, plan: Pick<ExportPlan, 'request'>, prior: PriorExport): void {
  if (!prior.keys.length || plan.request.overwrite) return;
  const shown = prior.keys.slice(0, 3).map((k) => store.uri(k));
  throw new GeotfrError(
    'BAD_REQUEST',
    `prefix ${JSON.stringify(plan.request.fileNamePrefix)} already holds another export (${prior.keys.length} file${prior.keys.length === 1 ? '' : 's'}: ${shown.join(', ')}${prior.keys.length > 3 ? ', …' : ''}); ` +
      'choose another fileNamePrefix, or pass --overwrite ("overwrite": true) to replace it once the new export is complete (docs/semantics.md §5)',
    { field: 'fileNamePrefix' },
  );
}

/** After the new export is complete: removes the earlier export's files that the new one did not replace. */
export async function removeReplaced(store: BlobStore, prior: PriorExport, written: Iterable<string>): Promise<string[]> {
  const keep = new Set(written);
  const gone = prior.keys.filter((k) => !keep.has(k));
  for (const k of gone) await store.delete(k);
  return gone;
}

/**
 * The whole check for one run, as the cloud planner needs it: takes the prefix's lease, then (when the
 * lease is new) refuses a prefix holding an earlier export unless `overwrite`. Releases the lease if the
 * check fails. A re-entered lease (the same job redelivered) skips the check: its own shards may exist.
 */
export async function claimPrefix(
  store: BlobStore,
  plan: Pick<ExportPlan, 'request' | 'manifestKey'>,
  opts: LeaseOptions,
): Promise<{ lease: PrefixLease; prior: PriorExport }> {
  const lease = await acquirePrefixLease(store, plan.request.fileNamePrefix, opts);
  try {
    const prior = lease.reentered ? { keys: [], manifest: undefined } : await findPriorExport(store, plan);
    checkPriorExport(store, plan, prior);
    return { lease, prior };
  } catch (err) {
    await lease.release().catch(() => {});
    throw err;
  }
}
