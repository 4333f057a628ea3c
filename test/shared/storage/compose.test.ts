/**
 * `BlobStore.compose` on both stores: local (one file written and renamed) and Cloud Storage through
 * the real `@google-cloud/storage` client against the GCS JSON API server, where more than 32
 * sources need a tree of composes. Order, create-once, a missing source (NOT_FOUND, nothing
 * written) and the cleanup of intermediate objects.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LocalBlobStore } from '../../../shared/storage/local.js';
import { GcsBlobStore } from '../../../shared/storage/gcs.js';
import { MAX_COMPOSE_SOURCES, type BlobStore } from '../../../shared/storage/port.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { tempDir } from '../../support/rasters.js';

let server: GcsServer;
let dir: string;
const BUCKET = 'compose-port';

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  process.env.STORAGE_EMULATOR_HOST = server.host;
  dir = await tempDir('geotfr-compose-');
});
after(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function check(store: BlobStore, n: number): Promise<void> {
  const parts = Array.from({ length: n }, (_, i) => Buffer.from(`part ${i};`.repeat(1 + (i % 5))));
  const keys = parts.map((_, i) => `src/p${String(i).padStart(3, '0')}`);
  // Written out of order: compose follows the list, not the names or the write order.
  for (let i = n - 1; i >= 0; i--) await store.write(keys[i]!, parts[i]!);
  const order = [...keys.slice(1), keys[0]!];
  const info = await store.compose(order, 'out/all.bin', { ifNotExists: true, contentType: 'application/octet-stream', tmpPrefix: 'tmp/c/' });
  const want = Buffer.concat([...parts.slice(1), parts[0]!]);
  assert.equal(info.size, want.length);
  assert.ok((await store.read('out/all.bin')).equals(want), 'bytes in list order');
  assert.deepEqual(await store.list('tmp/'), [], 'intermediates deleted');
  await assert.rejects(store.compose(keys, 'out/all.bin', { ifNotExists: true }), /already exists|precondition/i);
  await assert.rejects(
    store.compose([keys[0]!, 'src/missing', keys[1]!], 'out/none.bin', { tmpPrefix: 'tmp/c/' }),
    (err: Error & { code?: string }) => err.code === 'NOT_FOUND' && /src\/missing|compose/.test(err.message),
  );
  assert.equal(await store.stat('out/none.bin'), undefined, 'nothing written on a failed compose');
}

test('local compose: list order, atomic, create-once, a missing source writes nothing', async () => {
  await check(new LocalBlobStore(path.join(dir, 'local')), 40);
});

test(`GCS compose: ${MAX_COMPOSE_SOURCES * 2 + 6} sources through a tree of ≤ ${MAX_COMPOSE_SOURCES}-source composes`, async () => {
  const before = server.counts.compose ?? 0;
  await check(new GcsBlobStore(BUCKET), MAX_COMPOSE_SOURCES * 2 + 6);
  // 70 sources: three nodes, then the root (the failing composes add more).
  assert.ok((server.counts.compose ?? 0) - before >= 4, `compose requests: ${(server.counts.compose ?? 0) - before}`);
});
