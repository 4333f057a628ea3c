/**
 * `TiffFile.prefetch` and the export's use of it (`inOrder` in shared/export/pool.ts): the blocks of
 * a window start decoding before the window is read, the read then decodes nothing, a prefetch never
 * drops a cached block to make room, and a block that fails to decode fails the read that needs it,
 * not the prefetch. Over seeded random files (tiled and striped, pixel- and band-interleaved, several
 * types) and random windows, reads after a prefetch return what reads without one return.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { openTiff } from '../../../shared/raster/open.js';
import type { TiffFile } from '../../../shared/raster/geotiff.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { inOrder, type ChunkPool } from '../../../shared/export/pool.js';
import type { ChunkResult } from '../../../shared/export/chunk.js';
import type { ChunkTask } from '../../../shared/export/plan.js';
import { needGdal } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';
import { tinyGeoTiff } from '../limits/tiff.js';

let dir: string;
before(async () => {
  dir = await tempDir('geotfr-prefetch-');
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function read(f: TiffFile, x0: number, y0: number, w: number, h: number, bands: number): Promise<Float64Array[]> {
  const out = Array.from({ length: bands }, () => new Float64Array(w * h));
  await f.readSamples(
    x0,
    y0,
    w,
    h,
    out.map((_, i) => i),
    out,
  );
  return out;
}

for (let seed = 1; seed <= 8; seed++) {
  test(`a read after a prefetch of its window decodes nothing and reads the same pixels (seed ${seed})`, async (t) => {
    if (!needGdal(t)) return;
    const next = mulberry32(seed * 104729);
    const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    const W = int(40, 150),
      H = int(40, 150);
    const nb = int(1, 3);
    const tiled = next() < 0.7;
    const bands = Array.from({ length: nb }, (_, b) => Float64Array.from({ length: W * H }, (_, i) => (i * (b + 3) + seed) % 97));
    const file = path.join(dir, `src-${seed}.tif`);
    await writeGeoTiff(file, {
      width: W,
      height: H,
      bands,
      type: pick(['float32', 'uint16', 'int8', 'float64'] as SampleType[]),
      affine: [10, 0, 500000, 0, -10, 4000000],
      crs: 'EPSG:32633',
      layout: 'GTiff',
      ...(tiled ? { blockSize: pick([16, 32]) } : { rowsPerStrip: int(4, 30) }),
      compress: pick(['NONE', 'DEFLATE'] as const),
      ...(nb > 1 ? { interleave: pick(['PIXEL', 'BAND'] as const) } : {}),
    });
    // Caches that hold the whole file: the budget test below covers a full one.
    const plain = await openTiff(file, 'image', { tileCacheBytes: 1 << 28 });
    const ahead = await openTiff(file, 'image', { tileCacheBytes: 1 << 28 });
    try {
      // Windows may reach past the image's edges, as export windows with margins do.
      const w = int(1, W),
        h = int(1, H);
      const x0 = int(-8, W - 1),
        y0 = int(-8, H - 1);
      await ahead.prefetch(
        x0,
        y0,
        w,
        h,
        Array.from({ length: nb }, (_, i) => i),
      );
      const decoded = ahead.decodes;
      assert.ok(decoded > 0, 'the prefetch decoded the window’s blocks');
      const [a, b] = await Promise.all([read(plain, x0, y0, w, h, nb), read(ahead, x0, y0, w, h, nb)]);
      for (let k = 0; k < nb; k++) assert.deepEqual(b[k], a[k], `band ${k} of window (${x0}, ${y0}) ${w}x${h}`);
      assert.equal(ahead.decodes, decoded, 'the read found every block decoded');
      assert.equal(ahead.decodes, plain.decodes, 'the prefetch decoded exactly the blocks the read needs');
      // Outside the image: nothing to decode, nothing thrown.
      await ahead.prefetch(W + 5, H + 5, 10, 10, [0]);
      await ahead.prefetch(-50, -50, 10, 10, [0]);
      assert.equal(ahead.decodes, decoded);
    } finally {
      await plain.close();
      await ahead.close();
    }
  });
}

test('a prefetch stops where the cache is full: it never drops a cached block', async (t) => {
  if (!needGdal(t)) return;
  const [W, H, B] = [128, 64, 32];
  const file = path.join(dir, 'budget.tif');
  const bands = [Float64Array.from({ length: W * H }, (_, i) => i % 251)];
  await writeGeoTiff(file, { width: W, height: H, bands, type: 'float32', affine: [1, 0, 0, 0, -1, 0], crs: 'EPSG:32633', blockSize: B });
  const block = B * B * 4;
  const f = await openTiff(file, 'image', { tileCacheBytes: 3 * block });
  try {
    await read(f, 0, 0, B, B, 1); // block (0, 0), cached
    // The other seven blocks: room for two of them.
    await f.prefetch(0, 0, W, H, [0]);
    assert.equal(f.decodes, 3, 'one read block and two prefetched');
    const before = f.cacheStats();
    await read(f, 0, 0, B, B, 1);
    assert.equal(f.cacheStats().misses, before.misses, 'the block read first is still cached');
    assert.equal(f.cacheStats().rereads, 0);
  } finally {
    await f.close();
  }
});

test('a block that fails to decode fails the read that needs it, not the prefetch', async () => {
  const file = path.join(dir, 'corrupt.tif');
  const next = mulberry32(5);
  const tile = Buffer.from(zlib.deflateSync(Uint8Array.from({ length: 32 * 32 * 4 }, () => Math.floor(next() * 256))));
  tile.fill(0xff, 2, 40); // the DEFLATE stream after the zlib header: garbage
  await fs.writeFile(file, tinyGeoTiff({ width: 32, height: 32, tileWidth: 32, tileHeight: 32, compression: 8, tile }));
  const f = await openTiff(file, 'image');
  try {
    await f.prefetch(0, 0, 32, 32, [0]); // settles, does not reject
    await assert.rejects(read(f, 0, 0, 32, 32, 1), /cannot decode tile \(0, 0\)/);
  } finally {
    await f.close();
  }
});

test('inOrder has the pool prefetch each task before it runs, beyond those in flight', async () => {
  const tasks = Array.from({ length: 9 }, (_, i) => ({ seq: i }) as unknown as ChunkTask);
  const events: string[] = [];
  const pool: ChunkPool = {
    depth: 3,
    run: async (t) => {
      events.push(`run ${t.seq}`);
      await new Promise((r) => setTimeout(r, 1));
      return { shard: 0, seq: t.seq } as unknown as ChunkResult;
    },
    prefetch: (t) => events.push(`prefetch ${t.seq}`),
    passed: () => {},
    cacheStats: () => undefined,
    close: async () => {},
  };
  const got: number[] = [];
  for await (const r of inOrder(pool, tasks)) got.push(r.seq);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  for (let i = pool.depth; i < tasks.length; i++) {
    const pre = events.indexOf(`prefetch ${i}`);
    assert.ok(pre >= 0 && pre < events.indexOf(`run ${i}`), `task ${i} prefetched before it ran: ${events.join(', ')}`);
  }
  // Never more than PREFETCH_TASKS (2) beyond what has been handed to the pool.
  for (const [k, e] of events.entries()) {
    if (!e.startsWith('prefetch')) continue;
    const ran = events.slice(0, k).filter((x) => x.startsWith('run')).length;
    assert.ok(Number(e.split(' ')[1]) < ran + 2, `${e} after ${ran} runs`);
  }
});
