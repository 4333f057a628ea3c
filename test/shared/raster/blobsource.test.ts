/**
 * The byte source under geotiff: random slices equal the file's bytes, small reads coalesce into
 * few aligned range requests, the LRU stays within budget; and a COG read over `gs://` (our GCS JSON
 * API server driven by the real @google-cloud/storage client) equals GDAL's view of the same file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type BlobStore } from '../../../shared/storage/port.js';
import { LocalBlobStore } from '../../../shared/storage/local.js';
import { openBucket } from '../../../shared/storage/open.js';
import { BlobSource } from '../../../shared/raster/blobsource.js';
import { LruCache } from '../../../shared/raster/lru.js';
import { openImage, type GeoTiffImageSource } from '../../../shared/raster/open.js';
import { GeotfrError } from '../../../shared/errors.js';
import { needGdal } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff } from '../../support/rasters.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { mulberry32 } from '../../support/random.js';

const rng = mulberry32;

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
  const W = 300,
    H = 200;
  const file = path.join(dir, 'gcs.tif');
  const bands = [0, 1, 2].map(() => Float64Array.from({ length: W * H }, () => (r() < 0.05 ? -9999 : Math.fround(r() * 1000 - 500))));
  await writeGeoTiff(file, {
    width: W,
    height: H,
    bands,
    type: 'float32',
    nodata: -9999,
    affine: [10, 0, 600000, 0, -10, 4500000],
    crs: 'EPSG:32618',
    layout: 'COG',
    blockSize: 64,
    compress: 'DEFLATE',
    predictor: 3,
  });
  const g = await readRasterWithGdal(file);
  const store: BlobStore = await openBucket('gs://raster-bucket');
  await store.write('rasters/gcs.tif', await fs.readFile(file));
  const before = server.counts.download ?? 0;
  const src = (await openImage('gs://raster-bucket/rasters/gcs.tif')) as GeoTiffImageSource;
  try {
    assert.deepEqual(src.grid, { crs: 'EPSG:32618', affine: g.affine, width: W, height: H });
    const x0 = -20,
      y0 = 50,
      w = 200,
      h = 170;
    const win = await src.readWindow(x0, y0, w, h);
    for (let b = 0; b < 3; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const X = x0 + x,
            Y = y0 + y,
            k = y * w + x;
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

/** A static file server honouring single byte ranges (`/norange/` paths ignore them). */
async function startFileServer(root: string): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http.createServer(async (req, res) => {
    requests++;
    const name = path.basename(req.url ?? '');
    let body: Buffer;
    try {
      body = await fs.readFile(path.join(root, name));
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = req.headers.range?.match(/^bytes=(\d+)-(\d+)$/);
    if (!m || req.url?.startsWith('/norange/')) {
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    }
    const start = Number(m[1]),
      end = Math.min(Number(m[2]), body.length - 1);
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 }).end(body.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test('http(s) sources only under the GEOTFR_ALLOW_HTTPS allow-list; range reads equal GDAL', async (t) => {
  if (!needGdal(t)) return;
  const root = path.join(dir, 'www');
  await fs.mkdir(root, { recursive: true });
  const r = rng(8);
  const W = 100,
    H = 70;
  const file = path.join(root, 'web.tif');
  await writeGeoTiff(file, {
    width: W,
    height: H,
    bands: [Float64Array.from({ length: W * H }, () => Math.floor(r() * 60000))],
    type: 'uint16',
    affine: [20, 0, 300000, 0, -20, 5000000],
    crs: 'EPSG:32631',
    layout: 'COG',
    blockSize: 32,
    compress: 'LZW',
    predictor: 2,
  });
  const g = await readRasterWithGdal(file);
  const srv = await startFileServer(root);
  const saved = process.env.GEOTFR_ALLOW_HTTPS;
  try {
    delete process.env.GEOTFR_ALLOW_HTTPS;
    const forbidden = (e: unknown) => e instanceof GeotfrError && e.code === 'FORBIDDEN' && /GEOTFR_ALLOW_HTTPS/.test(e.message);
    await assert.rejects(openImage(`${srv.url}/ok/web.tif`), forbidden);
    assert.equal(srv.requests(), 0, 'nothing is fetched from a URL outside the allow-list');

    process.env.GEOTFR_ALLOW_HTTPS = `https://elsewhere.example/, ${srv.url}/ok/`;
    await assert.rejects(openImage(`${srv.url}/other/web.tif`), forbidden);
    // Dot segments are refused before the allow-list is consulted (docs/semantics.md §2).
    const dotSegments = (e: unknown) => e instanceof GeotfrError && e.code === 'FORBIDDEN' && /dot segments/.test(e.message);
    await assert.rejects(openImage(`${srv.url}/ok/../other/web.tif`), dotSegments);
    await assert.rejects(openImage(`${srv.url}/ok/%2e%2e/other/web.tif`), dotSegments);
    await assert.rejects(openImage(`${srv.url}/ok/missing.tif`), (e: unknown) => e instanceof GeotfrError && e.code === 'NOT_FOUND');
    const src = await openImage(`${srv.url}/ok/web.tif`);
    try {
      const win = await src.readWindow(-5, -5, W + 10, H + 10);
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) assert.equal(win.values[0]![(y + 5) * (W + 10) + x + 5], g.bands[0]![y * W + x]);
    } finally {
      await src.close();
    }
    process.env.GEOTFR_ALLOW_HTTPS = `${srv.url}/norange/`;
    await assert.rejects(
      openImage(`${srv.url}/norange/web.tif`),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && /range requests/.test(e.message),
    );
  } finally {
    if (saved === undefined) delete process.env.GEOTFR_ALLOW_HTTPS;
    else process.env.GEOTFR_ALLOW_HTTPS = saved;
    await srv.close();
  }
});
