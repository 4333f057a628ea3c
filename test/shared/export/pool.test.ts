/**
 * The worker-thread pool (shared/export/pool.ts, pool-worker.ts) on a real GeoTIFF: whatever the
 * worker count, the runner writes writeShard's bytes (docs/semantics.md §5: the bytes depend only on
 * the plan), gzip and plain alike, while workers read one chunk ahead of the one they encode, reuse
 * windows and frame buffers, and hand results back without copies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { planImageExport, shardChunks } from '../../../shared/export/plan.js';
import { runImageExport } from '../../../shared/export/run.js';
import { writeShard } from '../../../shared/export/shard.js';
import { defaultWorkers, workerEntry } from '../../../shared/export/spawn.js';
import { writeGeoTiff } from '../../support/rasters.js';
import { rng } from './memsource.js';

const W = 700;
const H = 460;

async function source(dir: string): Promise<string> {
  const next = rng(11);
  // Smooth values with noise and nodata discs: masked runs and fully valid rows in the same chunks.
  const bands = Array.from({ length: 3 }, (_, b) => {
    const v = new Float32Array(W * H);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        v[y * W + x] = (x - 150 * (b + 1)) ** 2 + (y - 200) ** 2 < 30 ** 2 ? -9999 : Math.sin(x / 40 + b) * 100 * Math.cos(y / 30) + next();
    return v;
  });
  const file = path.join(dir, 'src.tif');
  await writeGeoTiff(file, {
    width: W,
    height: H,
    bands,
    type: 'float32',
    nodata: -9999,
    affine: [10, 0, 500000, 0, -10, 4000000],
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 128,
    compress: 'DEFLATE',
  });
  return file;
}

test('thread pool: 0–3 workers write the same bytes as writeShard, gzip and plain; gzip inflates to plain', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-pool-'));
  try {
    const image = await source(dir);
    // Patch rows of one chunk each (17 chunks) over two shards: every worker gets several chunks,
    // so reads ahead, reused windows and frame buffers all happen.
    const request = (compressed: boolean, bucket: string) => ({
      image,
      bucket,
      fileNamePrefix: 'p',
      region: [500000 + 10 * 13, 4000000 - 10 * 450, 500000 + 10 * 690, 4000000 - 10 * 7],
      formatOptions: { patchDimensions: [24, 25], kernelSize: [6, 5], compressed, maxFileSize: 3 << 20 },
    });
    const plain: Buffer[] = [];
    for (const compressed of [false, true]) {
      const refDir = path.join(dir, `ref-${compressed}`);
      const ref: Buffer[] = [];
      const refPlan = await planImageExport(request(compressed, refDir));
      const chunks = refPlan.shards.flatMap((s) => shardChunks(refPlan, s.index)).length;
      assert.ok(refPlan.shards.length >= 2 && chunks >= 12, `${refPlan.shards.length} shards, ${chunks} chunks`);
      for (const s of refPlan.shards) {
        await writeShard(refPlan, s.index);
        ref.push(await fs.readFile(path.join(refDir, s.name)));
      }
      // 0: the in-process pool (several chunks in flight, deflated on libuv's pool); 1–3: threads that deflate synchronously.
      for (const workers of [0, 1, 2, 3]) {
        const out = path.join(dir, `w${workers}-${compressed}`);
        const summary = await runImageExport(request(compressed, out), { workers });
        assert.equal(summary.files, ref.length);
        for (let i = 0; i < ref.length; i++) {
          const got = await fs.readFile(path.join(out, refPlan.shards[i].name));
          assert.ok(got.equals(ref[i]), `${workers} workers, ${compressed ? 'gzip' : 'plain'} shard ${i}: ${got.length} bytes vs ${ref[i].length}`);
        }
      }
      if (!compressed) plain.push(...ref);
      else for (let i = 0; i < ref.length; i++) assert.ok(zlib.gunzipSync(ref[i]).equals(plain[i]), `gzip shard ${i} inflates to the plain one`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('default threads: none on one or two cores, one per core beyond; the bundled CLI names its worker entries', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 16].map((n) => defaultWorkers(n)),
    [0, 0, 3, 4, 16],
  );
  const beside = new URL('./pool-worker.js', import.meta.url);
  assert.equal(workerEntry('export', beside), beside, 'unbundled: the module beside the pool');
  const g = globalThis as { geotfrWorkerEntries?: Record<string, URL> };
  const bundled = new URL('file:///x/bundle/shared/export/pool-worker.js');
  g.geotfrWorkerEntries = { export: bundled };
  try {
    assert.equal(workerEntry('export', beside), bundled);
    assert.equal(workerEntry('patches', beside), beside, 'a pool the bundle does not name keeps its own');
  } finally {
    delete g.geotfrWorkerEntries;
  }
});
