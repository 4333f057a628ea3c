/**
 * The BlobStore contract (shared/storage/port.ts), run unchanged against both implementations:
 * `LocalBlobStore` on a temp directory and `GcsBlobStore` (shared/storage/gcs.ts) through the real
 * `@google-cloud/storage` client against our GCS JSON API server (test/gcs-server/). The pipeline
 * never knows which store it writes to, so both must behave the same.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PreconditionFailed, type BlobStore } from '../../../shared/storage/port.js';
import { LocalBlobStore } from '../../../shared/storage/local.js';
import { openBucket, resolveUri } from '../../../shared/storage/open.js';
import { GeotfrError } from '../../../shared/errors.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { randomBytes } from '../../support/random.js';

const seeded = (n: number, seed: number): Buffer => randomBytes(seed, n);

/** `count` random ranges [start, end) of an object of `len` bytes (empty ones included), from `seed`. */
function randomRanges(len: number, count: number, seed: number): [number, number][] {
  let s = seed;
  const rnd = (n: number) => (s = (s * 1103515245 + 12345) >>> 0) % n;
  return Array.from({ length: count }, () => {
    const start = rnd(len);
    return [start, start + rnd(len - start + 1)];
  });
}

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

const isCode = (code: string) => (e: unknown) => e instanceof GeotfrError && e.code === code;

interface Fixture {
  name: string;
  open(): Promise<BlobStore>;
  /** A store whose writer switches to resumable uploads early (GCS), to cover that path too. */
  openSmallThreshold?(): Promise<BlobStore>;
  close(): Promise<void>;
}

let tmp: string;
let server: GcsServer;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'geotfr-blobstore-'));
  server = await startGcsServer({ buckets: ['contract-bucket', 'contract-small'] });
  // As in `npm run stack` and the functions: the client finds the server through the environment.
  process.env.STORAGE_EMULATOR_HOST = server.host;
});
after(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

const fixtures: Fixture[] = [
  {
    name: 'LocalBlobStore',
    open: async () => new LocalBlobStore(path.join(tmp, 'local')),
    close: async () => {},
  },
  {
    name: 'GcsBlobStore',
    open: () => openBucket('gs://contract-bucket'),
    openSmallThreshold: async () => {
      const { GcsBlobStore } = await import('../../../shared/storage/gcs.js');
      return new GcsBlobStore('contract-small', { resumableThresholdBytes: 300 * 1024, chunkSizeBytes: 256 * 1024 });
    },
    close: async () => {},
  },
];

for (const fx of fixtures) {
  describe(`BlobStore contract: ${fx.name}`, () => {
    let store: BlobStore;
    before(async () => {
      store = await fx.open();
    });

    test('write, read, stat: same bytes, size and a generation; missing objects', async () => {
      const data = seeded(12_345, 1);
      const info = await store.write('c/one.bin', data);
      assert.equal(info.key, 'c/one.bin');
      assert.equal(info.size, data.length);
      assert.ok(info.generation, 'a generation is reported');
      assert.ok((await store.read('c/one.bin')).equals(data));
      const st = await store.stat('c/one.bin');
      assert.equal(st?.size, data.length);
      assert.equal(st?.generation, info.generation);
      assert.equal(await store.stat('c/missing.bin'), undefined);
      await assert.rejects(store.read('c/missing.bin'), isCode('NOT_FOUND'));
      await assert.rejects(collect(store.readStream('c/missing.bin')), isCode('NOT_FOUND'));
      assert.ok(store.uri('c/one.bin').startsWith(store.root));
      assert.ok(store.uri('c/one.bin').endsWith('c/one.bin'));
    });

    test('strings and empty objects', async () => {
      await store.write('c/text.txt', 'héllo');
      assert.equal((await store.read('c/text.txt')).toString('utf8'), 'héllo');
      const info = await store.write('c/empty', new Uint8Array(0));
      assert.equal(info.size, 0);
      assert.equal((await store.read('c/empty')).length, 0);
      assert.equal((await store.stat('c/empty'))?.size, 0);
    });

    test('overwrite replaces; ifNotExists refuses an existing object and leaves it intact', async () => {
      await store.write('c/ow.bin', 'first');
      await store.write('c/ow.bin', 'second');
      assert.equal((await store.read('c/ow.bin')).toString(), 'second');
      await assert.rejects(
        store.write('c/ow.bin', 'third', { ifNotExists: true }),
        (e: unknown) => e instanceof PreconditionFailed && !(e as GeotfrError).retryable,
      );
      const w = await store.createWriter('c/ow.bin', { ifNotExists: true });
      w.stream.write('fourth');
      await assert.rejects(w.commit(), (e: unknown) => e instanceof PreconditionFailed);
      assert.equal((await store.read('c/ow.bin')).toString(), 'second');
      await store.write('c/fresh.bin', 'new', { ifNotExists: true });
      assert.equal((await store.read('c/fresh.bin')).toString(), 'new');
    });

    test('racing create-once writers: exactly one wins and its bytes are the object', async () => {
      const bodies = Array.from({ length: 8 }, (_, i) => seeded(40_000 + i, 100 + i));
      const results = await Promise.allSettled(
        bodies.map(async (b) => {
          const w = await store.createWriter('c/race.bin', { ifNotExists: true });
          for (let o = 0; o < b.length; o += 7_000) w.stream.write(b.subarray(o, o + 7_000));
          return w.commit();
        }),
      );
      const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      assert.equal(won.length, 1, `winners: ${won}`);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof PreconditionFailed, String(r.reason));
      assert.ok((await store.read('c/race.bin')).equals(bodies[won[0]]));
    });

    test('readRange is [start, end): random ranges, clamped at the end, empty past it', async () => {
      const data = seeded(100_000, 2);
      await store.write('c/range.bin', data);
      for (const [start, end] of randomRanges(data.length, 25, 7)) {
        assert.ok((await store.readRange('c/range.bin', start, end)).equals(data.subarray(start, end)), `[${start}, ${end})`);
      }
      assert.ok((await store.readRange('c/range.bin', data.length - 5, data.length + 100)).equals(data.subarray(data.length - 5)));
      assert.equal((await store.readRange('c/range.bin', data.length + 10, data.length + 20)).length, 0);
      assert.equal((await store.readRange('c/range.bin', 50, 50)).length, 0);
    });

    test('readRangeChunks is readRange in pieces', async () => {
      const chunks = store.readRangeChunks.bind(store);
      const data = seeded(3 * 1024 * 1024 + 7, 4); // several socket reads over HTTP
      await store.write('c/chunks.bin', data);
      for (const [start, end] of randomRanges(data.length, 12, 11)) {
        const parts = await chunks('c/chunks.bin', start, end);
        assert.ok(Buffer.concat(parts).equals(data.subarray(start, end)), `[${start}, ${end}) in ${parts.length} pieces`);
      }
      assert.ok(Buffer.concat(await chunks('c/chunks.bin', data.length - 5, data.length + 100)).equals(data.subarray(data.length - 5)));
      assert.equal(Buffer.concat(await chunks('c/chunks.bin', data.length + 10, data.length + 20)).length, 0);
      assert.deepEqual(await chunks('c/chunks.bin', 50, 50), []);
    });

    test('readStream yields the whole object', async () => {
      const data = seeded(3 * 1024 * 1024 + 3, 3);
      await store.write('c/stream.bin', data);
      assert.ok((await collect(store.readStream('c/stream.bin'))).equals(data));
    });

    test('createWriter: invisible until commit, atomic publish; abort leaves nothing', async () => {
      const data = seeded(1_500_000, 4);
      const w = await store.createWriter('c/w.bin');
      for (let o = 0; o < data.length; o += 65_536) {
        if (!w.stream.write(data.subarray(o, o + 65_536))) await new Promise((r) => w.stream.once('drain', r));
      }
      assert.equal(await store.stat('c/w.bin'), undefined, 'not visible before commit');
      const info = await w.commit();
      assert.equal(info.size, data.length);
      assert.ok((await store.read('c/w.bin')).equals(data));
      await assert.rejects(w.commit(), isCode('INTERNAL'));

      const a = await store.createWriter('c/aborted.bin');
      a.stream.write(seeded(500_000, 5));
      await a.abort();
      assert.equal(await store.stat('c/aborted.bin'), undefined);
      assert.deepEqual(
        (await store.list('c/ab')).map((b) => b.key),
        [],
      );
    });

    test('list: prefix match on whole names, sorted, sizes; job state under .geotfr/ only when asked', async () => {
      const names = ['l/b/2.bin', 'l/a.txt', 'l/b/1.bin', 'l/b1', 'l/c/d/e.bin', 'lz.txt'];
      for (const [i, n] of names.entries()) await store.write(n, seeded(10 + i, i));
      await store.write('.geotfr/jobs/j1/status.json', '{}');
      assert.deepEqual(
        (await store.list('l/')).map((b) => b.key),
        ['l/a.txt', 'l/b/1.bin', 'l/b/2.bin', 'l/b1', 'l/c/d/e.bin'],
      );
      assert.deepEqual(
        (await store.list('l/b')).map((b) => b.key),
        ['l/b/1.bin', 'l/b/2.bin', 'l/b1'],
      );
      assert.deepEqual(
        (await store.list('l/b/')).map((b) => [b.key, b.size]),
        [
          ['l/b/1.bin', 12],
          ['l/b/2.bin', 10],
        ],
      );
      assert.deepEqual(await store.list('nothing/'), []);
      const all = (await store.list('')).map((b) => b.key);
      assert.ok(all.includes('lz.txt') && all.includes('l/a.txt'));
      assert.ok(!all.some((k) => k.startsWith('.geotfr/')), 'job state is not listed with outputs');
      assert.deepEqual(
        (await store.list('.geotfr/jobs/')).map((b) => b.key),
        ['.geotfr/jobs/j1/status.json'],
      );
    });

    test('delete: gone afterwards, idempotent', async () => {
      await store.write('c/del.bin', 'x');
      await store.delete('c/del.bin');
      assert.equal(await store.stat('c/del.bin'), undefined);
      await store.delete('c/del.bin');
    });

    test('delete with ifGenerationMatch removes only that version; a newer one stays (PreconditionFailed)', async () => {
      const v1 = await store.write('c/cas.bin', 'one');
      // A later version (local generations are mtimes: make sure the clock has moved).
      await new Promise((r) => setTimeout(r, 5));
      const v2 = await store.write('c/cas.bin', 'two');
      assert.notEqual(v1.generation, v2.generation);
      await assert.rejects(store.delete('c/cas.bin', { ifGenerationMatch: v1.generation }), (e: unknown) => e instanceof PreconditionFailed);
      assert.equal((await store.read('c/cas.bin')).toString(), 'two');
      await store.delete('c/cas.bin', { ifGenerationMatch: v2.generation });
      assert.equal(await store.stat('c/cas.bin'), undefined);
      await store.delete('c/cas.bin', { ifGenerationMatch: v2.generation }); // already gone: no error
    });

    test('keys that escape or are malformed are refused (FORBIDDEN) before any I/O', async () => {
      for (const k of ['../x', 'a/../../b', '/abs', 'a//b', 'a/./b', '']) {
        await assert.rejects(store.write(k, 'x'), isCode('FORBIDDEN'), k);
        await assert.rejects(store.read(k), isCode('FORBIDDEN'), k);
      }
    });

    if (fx.openSmallThreshold) {
      test('large objects through createWriter and write() take the resumable path and round-trip', async () => {
        const small = await fx.openSmallThreshold!();
        const before = server.counts['upload:resumable-put'] ?? 0;
        const data = seeded(2 * 1024 * 1024 + 77, 6);
        const w = await small.createWriter('big/r.bin', { ifNotExists: true });
        for (let o = 0; o < data.length; o += 100_000) w.stream.write(data.subarray(o, o + 100_000));
        assert.equal(await small.stat('big/r.bin'), undefined, 'not visible mid-upload');
        const info = await w.commit();
        assert.equal(info.size, data.length);
        assert.ok((server.counts['upload:resumable-put'] ?? 0) - before >= Math.ceil(data.length / (256 * 1024)));
        assert.ok((await small.read('big/r.bin')).equals(data));
        await assert.rejects(small.write('big/r.bin', data, { ifNotExists: true }), (e: unknown) => e instanceof PreconditionFailed);
        await small.write('big/w.bin', data);
        assert.ok((await small.read('big/w.bin')).equals(data));
      });
    }

    after(() => fx.close());
  });
}

test('LocalBlobStore: a writer aborted while its file is still opening leaves no temporary behind', async () => {
  // The race behind a stray `.geotfr/tmp/…` after a failed export: abort() removed the temporary
  // before the write stream had opened (and so created) it.
  const root = path.join(tmp, 'abort-race');
  const store = new LocalBlobStore(root);
  // Many at once: the thread pool then runs opens and removals in every order.
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      const w = await store.createWriter(`r/${i}.bin`);
      if (i % 2) w.stream.write(seeded(1000, i));
      await w.abort();
    }),
  );
  // Not even the empty temporary directory stays (issue 11 item 5).
  assert.deepEqual(await readdir(root), ['r']);
  assert.deepEqual(await store.list('r/'), []);
});

test('gs:// URIs and bucket names resolve to the GCS store through the registry', async () => {
  const s = await openBucket('contract-bucket');
  assert.equal(s.root, 'gs://contract-bucket');
  await s.write('uri/x.txt', 'via name');
  const loc = await resolveUri('gs://contract-bucket/uri/x.txt');
  assert.equal(loc.store.uri(loc.key), 'gs://contract-bucket/uri/x.txt');
  assert.equal((await loc.store.read(loc.key)).toString(), 'via name');
  await assert.rejects(resolveUri('gs://contract-bucket/../etc'), isCode('FORBIDDEN'));
});
