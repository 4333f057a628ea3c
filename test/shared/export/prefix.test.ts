/**
 * Who may write under an export prefix (docs/semantics.md §5 "Overwriting and concurrent exports"):
 * a failed re-export keeps the earlier export (issue 11 item 2), an earlier export is refused unless
 * `overwrite`, which removes exactly its stale files once the new export is complete (item 3), and two
 * exports to one prefix never both succeed (item 4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { hostname } from 'node:os';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { runImageExport } from '../../../shared/export/run.js';
import { acquirePrefixLease, leaseKey } from '../../../shared/export/prefix.js';
import { LocalBlobStore } from '../../../shared/storage/local.js';
import type { BlobStore } from '../../../shared/storage/port.js';
import { GeotfrError } from '../../../shared/errors.js';
import { parseMixer } from '../../../shared/mixer.js';
import { listFiles } from '../../support/files.js';
import { MemSource } from './memsource.js';
import { submitJob } from '../../../shared/jobs/planner.js';
import { cloudConfigFromEnv } from '../../../shared/jobs/config.js';
import { InProcessQueue } from '../../../shared/queue/memory.js';
import { CogWriter } from '../../../shared/cog/writer.js';

const dirs: string[] = [];
test.after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-prefix-'));
  dirs.push(d);
  return d;
}

const W = 64;
const H = 48;
const data = new Float64Array(W * H).map((_, i) => i);
/** A source that throws at its `failAt`-th window read (0: never). */
function source(failAt = 0, ac?: AbortController): MemSource {
  const src = new MemSource(W, H, [{ name: 'b', type: 'float32', data }]);
  let n = 0;
  const read = src.readWindow.bind(src);
  src.readWindow = async (...a) => {
    if (++n === failAt) {
      if (ac) ac.abort(new GeotfrError('CANCELLED', 'stopped by test'));
      else throw new GeotfrError('BAD_INPUT', 'unreadable tile', { file: 'mem' });
    }
    return read(...a);
  };
  return src;
}
const request = (dir: string, patch: number, maxFileSize: number, extra: object = {}) => ({
  image: 'm',
  bucket: dir,
  fileNamePrefix: 'out/p',
  formatOptions: { patchDimensions: [patch, patch], maxFileSize, compressed: false },
  ...extra,
});

/** Every file's bytes, for "unchanged" checks. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(dir)) out.set(f, (await fs.readFile(path.join(dir, f))).toString('base64'));
  return out;
}

test('a failed or cancelled overwrite keeps the earlier export: shards, mixer and manifest (item 2)', async () => {
  const dir = await tmp();
  const first = await runImageExport(request(dir, 8, 3000), { open: async () => source() });
  assert.ok(first.files > 2);
  const before = await snapshot(dir);
  assert.ok(before.has('out/p-mixer.json') && before.has('.geotfr/manifests/out/p.json'));

  // The new export has fewer shards and fails part-way; then one is cancelled part-way.
  await assert.rejects(runImageExport(request(dir, 16, 6000, { overwrite: true }), { open: async () => source(4) }), /unreadable tile/);
  assert.deepEqual(await snapshot(dir), before);
  const ac = new AbortController();
  await assert.rejects(
    runImageExport(request(dir, 16, 6000), { open: async () => source(3, ac), signal: ac.signal, overwrite: true }),
    (e: GeotfrError) => e.code === 'CANCELLED',
  );
  assert.deepEqual(await snapshot(dir), before);
});

test('an earlier export is refused without overwrite; with it, exactly its stale files go (item 3)', async () => {
  const dir = await tmp();
  const first = await runImageExport(request(dir, 8, 3000), { open: async () => source() });
  const before = await snapshot(dir);
  await assert.rejects(runImageExport(request(dir, 16, 1 << 20), { open: async () => source() }), (e: GeotfrError) => {
    assert.equal(e.code, 'BAD_REQUEST');
    assert.match(e.message, /already holds another export .*--overwrite/);
    return true;
  });
  assert.deepEqual(await snapshot(dir), before);

  // A file of another prefix that only starts the same, and an unrelated file, are not the export's.
  await fs.writeFile(path.join(dir, 'out/p-notes.txt'), 'mine');
  await fs.writeFile(path.join(dir, 'out/p2-00000.tfrecord'), 'other export');
  const second = await runImageExport(request(dir, 16, 1 << 20), { open: async () => source(), overwrite: true });
  assert.equal(second.files, 1);
  assert.equal(second.replaced.length, first.files - 1);
  const files = (await listFiles(dir)).filter((f) => !f.startsWith('.geotfr/'));
  assert.deepEqual(files, ['out/p-00000.tfrecord', 'out/p-mixer.json', 'out/p-notes.txt', 'out/p2-00000.tfrecord']);
  const mixer = parseMixer(await fs.readFile(path.join(dir, 'out/p-mixer.json'), 'utf8'));
  assert.deepEqual(mixer.patchDimensions, [16, 16]);
  assert.deepEqual(await listFiles(path.join(dir, '.geotfr')), ['manifests/out/p.json']);
  const manifest = JSON.parse(await fs.readFile(path.join(dir, '.geotfr/manifests/out/p.json'), 'utf8'));
  assert.deepEqual(manifest.shards, ['out/p-00000.tfrecord']);
});

test('two concurrent exports to one prefix: exactly one succeeds, the output is that one export (item 4)', async () => {
  const dir = await tmp();
  const results = await Promise.allSettled([
    runImageExport(request(dir, 8, 3000), { open: async () => source() }),
    runImageExport(request(dir, 16, 6000), { open: async () => source() }),
  ]);
  const ok = results.filter((r) => r.status === 'fulfilled');
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.status)));
  assert.equal(failed.length, 1);
  assert.match(String(failed[0].reason.message), /another export .* is writing to prefix|already holds another export/);
  const winner = (ok[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof runImageExport>>>).value;
  const shards = (await listFiles(dir)).filter((f) => /-\d{5}\.tfrecord$/.test(f));
  assert.deepEqual(
    shards.map((f) => path.join(dir, f)),
    winner.shards,
  );
  assert.ok(!(await fs.stat(path.join(dir, leaseKey('out/p'))).catch(() => undefined)), 'the lease is released');
});

test('a held lease refuses a second run; an expired or orphaned one is taken over (item 4)', async () => {
  const dir = await tmp();
  const store = new LocalBlobStore(dir);
  const held = await acquirePrefixLease(store, 'out/p', { runId: 'other-run', ttlMs: 60_000 });
  await assert.rejects(runImageExport(request(dir, 8, 1 << 20), { open: async () => source() }), (e: GeotfrError) => {
    assert.equal(e.code, 'IO');
    assert.equal(e.retryable, false);
    assert.match(e.message, /another export \(run other-run, .*\) is writing to prefix "out\/p"/);
    return true;
  });
  assert.deepEqual(
    (await listFiles(dir)).filter((f) => !f.startsWith('.geotfr/leases/')),
    [],
  );
  await held.release();

  // Expired (its holder stopped renewing).
  let t = new Date('2026-01-01T00:00:00Z');
  await acquirePrefixLease(store, 'out/p', { runId: 'stopped', ttlMs: 1000, now: () => t });
  t = new Date('2026-01-01T00:00:02Z');
  const taken = await acquirePrefixLease(store, 'out/p', { runId: 'next', ttlMs: 1000, now: () => t });
  assert.equal(taken.record.runId, 'next');
  await taken.release();

  // Orphaned: held by a process of this host that has exited (a SIGKILLed run), long before expiry.
  const child = spawn(process.execPath, ['-e', '0']);
  const deadPid = await new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
  const orphan = {
    version: 1,
    prefix: 'out/p',
    runId: 'killed',
    host: hostname(),
    pid: deadPid,
    acquiredAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3600_000).toISOString(),
  };
  await store.write(leaseKey('out/p'), JSON.stringify(orphan));
  const s = await runImageExport(request(dir, 8, 1 << 20), { open: async () => source() });
  assert.equal(s.files, 1);
});

test("the cloud planner takes the same lease: a second job on a running job's prefix fails, a redelivery re-enters (item 4)", async () => {
  const dir = await tmp();
  // A real raster the planner can open (it plans from the file): a tiny COG from geotfr's writer.
  const image = path.join(dir, 'scene.tif');
  const cog = await CogWriter.create({
    width: 32,
    height: 32,
    bands: 1,
    type: 'float32',
    crs: 'EPSG:32633',
    affine: [10, 0, 500000, 0, -10, 4000000],
    file: image,
  });
  await cog.writeRows([new Float32Array(32 * 32)], 32);
  const ws = createWriteStream(image);
  await cog.finish(ws);
  ws.end();
  await once(ws, 'finish');
  await cog.close();

  const bucket = path.join(dir, 'bucket');
  const config = cloudConfigFromEnv({ GEOTFR_ALLOW_LOCAL_PATHS: '1', GEOTFR_SOURCE_BUCKETS: '', GEOTFR_DESTINATION_BUCKETS: '' });
  const queue = new InProcessQueue(); // nobody subscribes: the shards stay unwritten, job A stays running
  const deps = { queue, config };
  const req = { image, bucket, fileNamePrefix: 'cloud/p', formatOptions: { patchDimensions: [16, 16] } };
  const a = await submitJob(req, 'job-a', new Date(), deps);
  assert.equal(a.shards, 1);
  await assert.rejects(submitJob(req, 'job-b', new Date(), deps), (e: GeotfrError) => {
    assert.equal(e.retryable, false);
    assert.match(e.message, /another export \(run job-a, .*\) is writing to prefix "cloud\/p"/);
    return true;
  });
  // The same job delivered again is not refused by its own lease.
  assert.equal((await submitJob(req, 'job-a', new Date(), deps)).jobId, 'job-a');
  // overwrite is refused in the cloud (its finalizer would leave the old export's extra shards), writing nothing.
  const before = await listFiles(bucket);
  await assert.rejects(submitJob({ ...req, fileNamePrefix: 'cloud/q', overwrite: true }, 'job-c', new Date(), deps), (e: GeotfrError) => {
    assert.equal(e.code, 'BAD_REQUEST');
    assert.equal(e.context.field, 'overwrite');
    return true;
  });
  assert.deepEqual(
    (await listFiles(bucket)).filter((f) => f.includes('cloud/q')),
    [],
    'nothing under the refused prefix',
  );
  assert.ok(before.length > 0);
});

/**
 * Two runs that find the same stale lease at once (issue 11 item 4): both read it, the first removes it
 * and writes its own, and only then does the second act. The second must not remove the first's lease
 * (its delete is conditioned on the stale version it read), so exactly one run holds the prefix.
 */
test('two runs taking over one stale lease at the same time: exactly one gets it (local and GCS)', async () => {
  const { startGcsServer } = await import('../../gcs-server/server.js');
  const { GcsBlobStore } = await import('../../../shared/storage/gcs.js');
  const { Storage } = await import('@google-cloud/storage');
  const server = await startGcsServer({ buckets: ['lease-race'] });
  try {
    const storage = new Storage({ apiEndpoint: server.host, projectId: 'test' });
    let dir = '';
    const stores: [string, () => BlobStore][] = [
      ['local', () => new LocalBlobStore(dir)],
      ['gcs', () => new GcsBlobStore('lease-race', { storage })],
    ];
    for (const [name, open] of stores) {
      dir = await tmp();
      const key = leaseKey('out/p');
      const stale = {
        version: 1,
        prefix: 'out/p',
        runId: 'gone',
        host: 'elsewhere',
        pid: 1,
        acquiredAt: '2026-01-01T00:00:00Z',
        expiresAt: '2026-01-01T00:00:01Z',
      };
      await open().write(key, JSON.stringify(stale));
      // Gates: both runs read the stale lease before either acts; the second deletes only after the first wrote.
      let reads = 0;
      let bothRead!: () => void;
      const bothReadP = new Promise<void>((r) => (bothRead = r));
      let firstWrote!: () => void;
      const firstWroteP = new Promise<void>((r) => (firstWrote = r));
      const gated = (first: boolean): BlobStore => {
        const s = open();
        return new Proxy(s, {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver);
            if (typeof v !== 'function') return v;
            if (prop === 'read')
              return async (k: string) => {
                const out = await target.read(k);
                if (k === key && reads < 2) {
                  if (++reads === 2) bothRead();
                  await bothReadP;
                }
                return out;
              };
            if (prop === 'delete' && !first)
              return async (k: string, o?: { ifGenerationMatch?: string }) => {
                if (k === key) await firstWroteP;
                return target.delete(k, o);
              };
            if (prop === 'write' && first)
              return async (k: string, d: string, o?: object) => {
                try {
                  return await target.write(k, d, o);
                } finally {
                  if (k === key && reads >= 2) firstWrote();
                }
              };
            return v.bind(target);
          },
        });
      };
      const results = await Promise.allSettled([
        acquirePrefixLease(gated(true), 'out/p', { runId: 'A', ttlMs: 60_000 }),
        acquirePrefixLease(gated(false), 'out/p', { runId: 'B', ttlMs: 60_000 }),
      ]);
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? ['A', 'B'][i]! : []));
      assert.deepEqual(won, ['A'], `${name}: ${results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'held')).join(' / ')}`);
      const loser = results[1] as PromiseRejectedResult;
      assert.match(String(loser.reason), /another export \(run A, /, name);
      const held = JSON.parse((await open().read(key)).toString('utf8'));
      assert.equal(held.runId, 'A', `${name}: the lease on the prefix is A's`);
      assert.equal(held.generation, undefined, `${name}: the lease file holds only the record`);
    }
  } finally {
    await server.close();
  }
});
