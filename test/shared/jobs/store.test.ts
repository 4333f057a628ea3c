/**
 * Job state under `.geotfr/jobs/<id>/` (shared/jobs/store.ts): create-once plan and markers, one
 * terminal outcome under concurrent writers, and `status.json` converging to the terminal state however
 * the unlocked snapshot writes interleave with it (seeded random interleavings).
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LocalBlobStore } from '../../../shared/storage/local.js';
import { GeotfrError } from '../../../shared/errors.js';
import { JobStore, checkJobId } from '../../../shared/jobs/store.js';
import type { JobStatus } from '../../../shared/jobs/status.js';
import { dropJobId, pubsubJobId } from '../../../shared/jobs/id.js';
import { mulberry32 } from '../../support/random.js';

const seeded = mulberry32;

const status = (jobId: string, state: JobStatus['state'], done: number): JobStatus => ({
  version: 1,
  jobId,
  kind: 'image',
  state,
  destination: 'x',
  fileNamePrefix: 'p',
  shards: { total: 10, done },
  patches: { total: 100, done: done * 10 },
  bytes: done,
  createdAt: new Date(0).toISOString(),
  updatedAt: new Date(done).toISOString(),
  workerSeconds: 0,
  maxShardSeconds: 0,
  errors: state === 'failed' ? [{ code: 'IO', message: 'boom', at: new Date(0).toISOString() }] : [],
});

async function withStore(fn: (store: LocalBlobStore) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-jobs-'));
  try {
    await fn(new LocalBlobStore(dir));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test('status.json ends terminal under any interleaving of snapshot writers and finishers', async () => {
  const rnd = seeded(7);
  await withStore(async (store) => {
    for (let round = 0; round < 25; round++) {
      const job = new JobStore(store, `conv-${round}`);
      const finishers = Math.floor(rnd() * 3) + 1;
      const doneWins = rnd() < 0.5;
      const ops: (() => Promise<unknown>)[] = [];
      for (let i = 0; i < 12; i++) ops.push(() => job.writeStatus(status(job.jobId, 'running', i % 10)));
      for (let i = 0; i < finishers; i++) ops.push(() => job.finish(status(job.jobId, doneWins ? 'done' : 'failed', 10)));
      // Random start delays interleave the unlocked read-modify-write sequences.
      await Promise.all(ops.map((op) => new Promise((r) => setTimeout(r, Math.floor(rnd() * 5))).then(op)));
      const final = (await job.status())!;
      assert.equal(final.state, doneWins ? 'done' : 'failed', `round ${round}`);
      assert.deepEqual(final, await job.terminal());
    }
  });
});

test('a done job stays done: a later failure (late dead-letter of a duplicate) does not replace it', async () => {
  await withStore(async (store) => {
    const job = new JobStore(store, 'late');
    await job.finish(status('late', 'done', 10));
    const after = await job.finish(status('late', 'failed', 3));
    assert.equal(after.state, 'done');
    assert.equal((await job.status())!.state, 'done');
    assert.equal(await store.stat('.geotfr/jobs/late/failed.json'), undefined);
  });
});

test('plans and shard markers are create-once: concurrent writers keep the first, readers agree', async () => {
  await withStore(async (store) => {
    const job = new JobStore(store, 'once');
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => job.savePlan({ attempt: i }, { req: i })));
    assert.equal(results.filter((r) => r.created).length, 1);
    const winner = results.find((r) => r.created)!.plan;
    for (const r of results) assert.deepEqual(r.plan, winner);
    assert.deepEqual(await job.loadPlan(), winner);
    const marks = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        job.markShard({ shard: 4, name: 'p-00004', size: i, patches: 1, seconds: 0, attempt: i, alreadyExisted: false, at: '' }),
      ),
    );
    assert.equal(marks.filter(Boolean).length, 1);
    assert.equal((await job.shardMarks()).length, 1);
  });
});

test('job ids are path-safe, derived from their event, and hostile ones are rejected', () => {
  assert.equal(dropJobId('requests/nightly run.json', '1732550000123'), 'nightly_run-1732550000123');
  assert.equal(dropJobId('requests/../../x.json', 7), 'x-7');
  assert.equal(pubsubJobId('123456'), 'ps-123456');
  assert.equal(pubsubJobId('1', { jobId: 'daily-ndvi' }), 'daily-ndvi');
  for (const bad of ['../x', '.hidden', 'a/b', '', 'x'.repeat(200), 'a..b'])
    assert.throws(
      () => checkJobId(bad),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST',
      bad,
    );
  assert.throws(() => pubsubJobId('1', { jobId: '../../etc' }), GeotfrError);
});
