/**
 * The byte source under geotiff: random slices equal the file's bytes, small reads coalesce into
 * few aligned range requests, the LRU stays within budget; and a COG read over `gs://` (our GCS JSON
 * API server driven by the real @google-cloud/storage client) equals GDAL's view of the same file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LocalBlobStore, openBucket, type BlobStore } from '../../../shared/blobstore.js';
import { BlobSource } from '../../../shared/raster/blobsource.js';
import { LruCache } from '../../../shared/raster/lru.js';
import { openImage, type GeoTiffImageSource } from '../../../shared/raster/open.js';
import { needGdal } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff } from '../../support/rasters.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let dir: string;
let server: GcsServer;
before(async () => {
  dir = await tempDir('geotfr-blobsource-');
  server = await startGcsServer({ buckets: ['raster-bucket'] });
  process.env.STORAGE_EMULATOR_HOST = server.host;
});
after(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('random slices equal the file bytes; reads past the end are clipped (seeded)', async () => {
  const r = rng(31337);
  const size = 700_001;
  const bytes = Buffer.from(Array.from({ length: size }, () => Math.floor(r() * 256)));
  await fs.writeFile(path.join(dir, 'bytes.bin'), bytes);
  const store = new LocalBlobStore(dir);
  const src = new BlobSource(store, 'bytes.bin', size, path.join(dir, 'bytes.bin'), { blockBytes: 4096, cacheBytes: 64 * 1024 });
  for (let i = 0; i < 500; i++) {
    const offset = Math.floor(r() * (size + 100));
    const length = r() < 0.8 ? Math.floor(r() * 9000) : Math.floor(r() * 40000);
    const got = Buffer.from((await src.fetchSlice({ offset, length })).data);
    assert.ok(got.equals(bytes.subarray(offset, Math.min(size, offset + length))), `slice ${offset}+${length}`);
  }
  // Concurrent overlapping reads share blocks.
  const slices = Array.from({ length: 50 }, () => ({ offset: Math.floor(r() * size), length: 1 + Math.floor(r() * 3000) }));
  const datas = await src.fetch(slices);
  slices.forEach((s, i) => assert.ok(Buffer.from(datas[i]!).equals(bytes.subarray(s.offset, Math.min(size, s.offset + s.length)))));
});

test('small reads coalesce: 200 reads inside one 64 KiB block cost one range request', async () => {
  await fs.writeFile(path.join(dir, 'small.bin'), Buffer.alloc(200_000, 7));
  const src = new BlobSource(new LocalBlobStore(dir), 'small.bin', 200_000, 'small.bin');
  await Promise.all(Array.from({ length: 200 }, (_, i) => src.fetchSlice({ offset: i * 300, length: 40 })));
  assert.equal(src.stats.requests, 1);
  // A run of missing blocks is one request, not one per block.
  await src.fetchSlice({ offset: 70_000, length: 120_000 });
  assert.equal(src.stats.requests, 2);
});

test('LRU keeps within its byte budget and drops failed loads', async () => {
  const lru = new LruCache<number>(100);
  for (let i = 0; i < 10; i++) await lru.get(`k${i}`, 30, async () => i);
  assert.ok(lru.bytesUsed <= 100 && lru.size === 3);
  assert.ok(lru.has('k9') && lru.has('k7') && !lru.has('k6'));
  await assert.rejects(lru.get('bad', 10, async () => Promise.reject(new Error('boom'))));
  assert.equal(lru.has('bad'), false);
  let loads = 0;
  const load = async () => ++loads;
  await Promise.all([lru.get('same', 1, load), lru.get('same', 1, load)]);
  assert.equal(loads, 1, 'concurrent readers share one load');
});

test('gs:// COG: openImage over the GCS store equals GDAL, with few range requests', async (t) => {
  if (!needGdal(t)) return;
  const r = rng(5);
  const W = 300, H = 200;
  const file = path.join(dir, 'gcs.tif');
  const bands = [0, 1, 2].map(() => Float64Array.from({ length: W * H }, () => (r() < 0.05 ? -9999 : Math.fround(r() * 1000 - 500))));
  await writeGeoTiff(file, { width: W, height: H, bands, type: 'float32', nodata: -9999, affine: [10, 0, 600000, 0, -10, 4500000], crs: 'EPSG:32618', layout: 'COG', blockSize: 64, compress: 'DEFLATE', predictor: 3 });
  const g = await readRasterWithGdal(file);
  const store: BlobStore = await openBucket('gs://raster-bucket');
  await store.write('rasters/gcs.tif', await fs.readFile(file));
  const before = server.counts.download ?? 0;
  const src = (await openImage('gs://raster-bucket/rasters/gcs.tif')) as GeoTiffImageSource;
  try {
    assert.deepEqual(src.grid, { crs: 'EPSG:32618', affine: g.affine, width: W, height: H });
    const x0 = -20, y0 = 50, w = 200, h = 170;
    const win = await src.readWindow(x0, y0, w, h);
    for (let b = 0; b < 3; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const X = x0 + x, Y = y0 + y, k = y * w + x;
          const inside = X >= 0 && Y >= 0 && X < W && Y < H;
          const v = inside ? g.bands[b]![Y * W + X]! : NaN;
          assert.equal(win.valid[b]![k], inside && v !== -9999 ? 1 : 0, `band ${b} (${X}, ${Y})`);
          if (inside) assert.equal(win.values[b]![k], v);
        }
    const requests = (server.counts.download ?? 0) - before;
    // Header/IFD reads coalesce into a block or two; then one request per 64x64 tile touched (4 x 3).
    assert.ok(requests <= 2 + 12, `range requests: ${requests}`);
    assert.equal(src.files[0]!.source.stats.requests, requests);
  } finally {
    await src.close();
  }
});
