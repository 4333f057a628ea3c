/**
 * Raster source benchmark: window reads from the bench COG (8-band float32 2048×2048,
 * DEFLATE, 512×512 tiles), decoded to Float64 with masks, in the access patterns that matter:
 *  - tile-aligned 512×512 windows (one decode per window),
 *  - export-style patch tiles (256 + 2×16 margin = 288×288, row-major, unaligned) with the
 *    decoded-tile cache (each tile decodes once),
 *  - the same with the cache disabled (every window re-decodes the tiles it touches),
 *  - geotiff's default pako DEFLATE decoder instead of node:zlib (tile-aligned),
 * plus GDAL's own whole-file decode (`gdal_translate -of ENVI`) as a reference point.
 * Reports medians of N runs after one warm-up run (GEOTFR_BENCH_RUNS, default 3). Run: `node dist/bench/raster.js`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addDecoder, BaseDecoder } from 'geotiff';
import { inflate } from 'pako';
import { openImage, type GeoTiffImageSource } from '../shared/raster/open.js';
import { writeGeoTiff } from '../test/support/rasters.js';
import { median } from './stats.js';

const W = 2048,
  H = 2048,
  BANDS = 8;
const runs = Number(process.env.GEOTFR_BENCH_RUNS ?? 3);
const dir = path.join(os.tmpdir(), 'geotfr-bench-raster');
const cog = path.join(dir, 'bench-8x2048x2048-f32-deflate-512.tif');

/** Smooth fields plus noise, quantized: compresses like real imagery rather than white noise. */
async function makeCog(): Promise<void> {
  if (existsSync(cog)) return;
  await fs.mkdir(dir, { recursive: true });
  let s = 12345;
  const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) / 4294967296;
  const bands = Array.from({ length: BANDS }, (_, b) => {
    const a = new Float32Array(W * H);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) a[y * W + x] = Math.round((Math.sin((x + 37 * b) / 97) * Math.cos((y - 11 * b) / 131) * 1000 + rnd() * 20) * 100) / 100;
    return a;
  });
  await writeGeoTiff(cog, {
    width: W,
    height: H,
    bands,
    type: 'float32',
    nodata: -9999,
    affine: [10, 0, 500000, 0, -10, 4000000],
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 512,
    compress: 'DEFLATE',
  });
}

const MB = (pixels: number) => (pixels * BANDS * 4) / 1e6; // decoded float32 bytes

async function timeIt(fn: () => Promise<{ pixels: number; decodes: number }>): Promise<{ seconds: number; mbps: number; decodes: number }> {
  const secs: number[] = [];
  let last = await fn(); // warm-up (JIT, page cache), not timed
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = await fn();
    secs.push((performance.now() - t0) / 1000);
  }
  const m = median(secs);
  return { seconds: m, mbps: MB(last.pixels) / m, decodes: last.decodes };
}

async function aligned(): Promise<{ pixels: number; decodes: number }> {
  const src = (await openImage(cog)) as GeoTiffImageSource;
  let pixels = 0;
  for (let y = 0; y < H; y += 512) for (let x = 0; x < W; x += 512) pixels += (await src.readWindow(x, y, 512, 512)).width * 512;
  const decodes = src.files[0]!.decodes;
  await src.close();
  return { pixels, decodes };
}

async function patches(tileCacheBytes?: number, rows = H / 256): Promise<{ pixels: number; decodes: number }> {
  const src = (await openImage(cog, { tileCacheBytes })) as GeoTiffImageSource;
  let pixels = 0;
  for (let y = 0; y + 256 <= rows * 256; y += 256)
    for (let x = 0; x + 256 <= W; x += 256) pixels += (await src.readWindow(x - 16, y - 16, 288, 288)).width * 288;
  const decodes = src.files[0]!.decodes;
  await src.close();
  return { pixels, decodes };
}

async function main(): Promise<void> {
  await makeCog();
  const size = (await fs.stat(cog)).size;
  const rows: string[] = [];
  const add = (name: string, r: { seconds: number; mbps: number; decodes: number }) =>
    rows.push(`| ${name} | ${r.seconds.toFixed(3)} | ${r.mbps.toFixed(0)} | ${r.decodes} |`);

  const gdal = await timeIt(async () => {
    const out = path.join(dir, 'gdal.envi');
    execFileSync('gdal_translate', ['-q', '-of', 'ENVI', cog, out]);
    await fs.rm(out, { force: true });
    await fs.rm(out.replace(/\.envi$/, '.hdr'), { force: true });
    await fs.rm(out + '.aux.xml', { force: true });
    return { pixels: W * H, decodes: 16 };
  });
  add('tile-aligned 512×512 windows', await timeIt(aligned));
  add('patch tiles 288×288 (256 + 2×16), row-major, tile cache', await timeIt(() => patches()));
  // Two patch rows only: without the cache this pattern is slow enough to dominate the bench.
  add('patch tiles 288×288, no tile cache (first 2 patch rows)', await timeIt(() => patches(1, 2)));
  // Last: geotiff's registry keeps one decoder per compression, so this swaps in pako for good
  // (the same code as geotiff's own DeflateDecoder, which its package exports do not expose).
  class PakoDecoder extends BaseDecoder {
    override decodeBlock(buffer: ArrayBufferLike): ArrayBuffer {
      return inflate(new Uint8Array(buffer)).buffer as ArrayBuffer;
    }
  }
  addDecoder([8, 32946], async () => PakoDecoder, undefined, false);
  add('tile-aligned 512×512, geotiff default (pako) DEFLATE', await timeIt(aligned));
  add('reference: `gdal_translate -of ENVI` whole file (process incl.)', gdal);

  console.log(
    `Raster source reads: ${BANDS}-band float32 ${W}×${H} COG, DEFLATE, 512×512 tiles (${(size / 1e6).toFixed(1)} MB on disk); MB/s of decoded float32 pixels returned; median of ${runs} runs after a warm-up; ${os.cpus().length} cores, load avg ${os.loadavg()[0]!.toFixed(2)}.\n`,
  );
  console.log('| read pattern | seconds | MB/s | tile decodes |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(r);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
