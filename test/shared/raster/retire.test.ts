/**
 * `TiffFile.retire` (docs/export.md "Memory"): an export reads windows in raster order and, after
 * each, says where the later windows fall; the file drops the blocks outside that front and cuts
 * off block rows above it. Over seeded random files (tiled and striped, pixel- and band-interleaved,
 * several types) and random export geometries (patch, kernel margin, region offset, chunk width),
 * every window reads exactly what a file without retire reads, no block is ever decoded twice (the
 * front is exact), and the cache holds less at its peak. A front that lies (a later read above it)
 * still reads correct pixels: the block decodes again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openTiff } from '../../../shared/raster/open.js';
import type { TiffFile } from '../../../shared/raster/geotiff.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { needGdal } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

let dir: string;
before(async () => {
  dir = await tempDir('geotfr-retire-');
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  return { next, int, pick };
}

interface Win {
  x0: number;
  y0: number;
  w: number;
  h: number;
}

/** An export's chunk windows in plan order, and after each the front of the windows still to come. */
function exportWindows(r: ReturnType<typeof rng>, W: number, H: number): { wins: Win[]; fronts: { x: number; rowY: number; nextRowY: number }[] } {
  const pw = r.int(3, 24),
    ph = r.int(3, 24);
  const mx = r.int(0, 6),
    my = r.int(0, 6);
  const rx0 = r.int(0, Math.max(0, W - pw)),
    ry0 = r.int(0, Math.max(0, H - ph));
  const ppr = Math.max(1, Math.floor((W - rx0) / pw));
  const rows = Math.max(1, Math.floor((H - ry0) / ph));
  const chunk = r.int(1, ppr);
  const wins: Win[] = [];
  const rowOf: number[] = [];
  for (let row = 0; row < rows; row++)
    for (let c = 0; c < ppr; c += chunk) {
      const n = Math.min(chunk, ppr - c);
      wins.push({ x0: rx0 + c * pw - mx, y0: ry0 + row * ph - my, w: n * pw + 2 * mx, h: ph + 2 * my });
      rowOf.push(row);
    }
  const fronts = wins.map((win, i) => ({ x: win.x0, rowY: win.y0, nextRowY: ry0 + (rowOf[i]! + 1) * ph - my }));
  return { wins, fronts };
}

async function read(f: TiffFile, win: Win, bands: number): Promise<Float64Array[]> {
  const out = Array.from({ length: bands }, () => new Float64Array(win.w * win.h));
  await f.readSamples(
    win.x0,
    win.y0,
    win.w,
    win.h,
    out.map((_, i) => i),
    out,
  );
  return out;
}

for (let seed = 1; seed <= 12; seed++) {
  test(`retire after each export window reads the same pixels, decodes each block once, holds less (seed ${seed})`, async (t) => {
    if (!needGdal(t)) return;
    const r = rng(seed * 7919);
    const W = r.int(40, 160),
      H = r.int(60, 200);
    const nb = r.int(1, 3);
    const type = r.pick(['float32', 'uint16', 'int8', 'float64'] as SampleType[]);
    const tiled = r.next() < 0.7;
    const bands = Array.from({ length: nb }, (_, b) => Float64Array.from({ length: W * H }, (_, i) => (i * (b + 5) + seed) % 113));
    const file = path.join(dir, `src-${seed}.tif`);
    await writeGeoTiff(file, {
      width: W,
      height: H,
      bands,
      type,
      affine: [10, 0, 500000, 0, -10, 4000000],
      crs: 'EPSG:32633',
      layout: 'GTiff',
      ...(tiled ? { blockSize: r.pick([16, 32]) } : { rowsPerStrip: r.int(4, 40) }),
      compress: r.pick(['NONE', 'DEFLATE'] as const),
      ...(nb > 1 ? { interleave: r.pick(['PIXEL', 'BAND'] as const) } : {}),
    });
    const plain = await openTiff(file, 'image');
    const retiring = await openTiff(file, 'image');
    try {
      const { wins, fronts } = exportWindows(r, W, H);
      for (let i = 0; i < wins.length; i++) {
        const [a, b] = await Promise.all([read(plain, wins[i]!, nb), read(retiring, wins[i]!, nb)]);
        for (let k = 0; k < nb; k++) assert.deepEqual(b[k], a[k], `window ${i} ${JSON.stringify(wins[i])}, band ${k}`);
        if (i + 1 < wins.length) retiring.retire(fronts[i + 1]!);
      }
      const p = plain.cacheStats(),
        q = retiring.cacheStats();
      assert.equal(q.rereads, 0, `the front is exact: ${JSON.stringify(q)}`);
      // Every block the windows touch loaded once (the plain LRU may have loaded some twice).
      assert.equal(q.misses, p.misses - p.rereads);
      assert.ok(q.peakBytes <= p.peakBytes, `retiring peak ${q.peakBytes} > ${p.peakBytes}`);
    } finally {
      await plain.close();
      await retiring.close();
    }
  });
}

test('a front that a later read does not keep to still reads correct pixels (the block decodes again)', async (t) => {
  if (!needGdal(t)) return;
  const [W, H] = [64, 128];
  const bands = [Float64Array.from({ length: W * H }, (_, i) => i % 251)];
  const file = path.join(dir, 'liar.tif');
  await writeGeoTiff(file, { width: W, height: H, bands, type: 'float32', affine: [1, 0, 0, 0, -1, 0], crs: 'EPSG:32633', blockSize: 32 });
  const f = await openTiff(file, 'image');
  try {
    const whole = { x0: 0, y0: 0, w: W, h: H };
    const before = await read(f, whole, 1);
    // Says the rest of the reads start at row 100: blocks above go, the block holding row 100 keeps its rows ≥ 100.
    f.retire({ x: 0, rowY: 100, nextRowY: 100 });
    const again = await read(f, whole, 1);
    assert.deepEqual(again[0], before[0]);
    assert.deepEqual(
      again[0],
      bands[0]!.map((v) => Math.fround(v)),
    );
    assert.ok(f.cacheStats().rereads > 0, 'the dropped and cut blocks were decoded again');
  } finally {
    await f.close();
  }
});
