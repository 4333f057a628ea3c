/**
 * Patch export benchmark (issue 13): 20,000 labelled points over an 8-band float32 2048² COG (DEFLATE,
 * 512-px tiles, made by GDAL), K = 64, gzip level 6. Whole-process wall time of `geotfr
 * export-patches` against, in the same run,
 * - bench/python/patches_tf_gdal.py, the usual way (a GDAL window read per point → tf.train.Example →
 *   gzip tf.io.TFRecordWriter), and
 * - `geotfr export-image` writing the same bytes as a grid (20,000 tiles of 64×64: patch 12, kernel 53,
 *   a 1920×1500 region), i.e. today's gridded export on the same output size;
 * and peak RSS of export-patches for 1M vs 100k points (K = 4, so that the 1M run stays short: the
 * point is that memory does not grow with the table).
 *
 * The ceiling: both exports end in zlib level 6 over the same framed bytes, and float patches hardly
 * compress (≈ 0.88), so DEFLATE is most of the work. The bench measures node:zlib level 6 on one and
 * on all cores (bench/zlibbound.ts; the faster of memLevel 8 and 9) over the first 256 MiB of the records geotfr wrote, and prints the
 * fastest any exporter could write these bytes here: framed bytes ÷ all-core zlib throughput, and
 * what that allows against the Python run (Python's own zlib time is its single-thread share).
 *
 * Run: `npx tsc -p . && node dist/bench/patches.js [--runs 1] [--points 20000] [--workers N]`
 * Prints a markdown table and one JSON line (medians over runs).
 */
import { createReadStream, createWriteStream, existsSync, promises as fs } from 'node:fs';
import { once } from 'node:events';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeGeoTiff } from '../test/support/rasters.js';
import { createGunzip } from 'node:zlib';
import { median, timed, type Measure } from './stats.js';
import { ZlibBound } from './zlibbound.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const cli = path.join(here, '..', 'bundle', 'geotfr.js');
const pyScript = path.join(repo, 'bench', 'python', 'patches_tf_gdal.py');
const python = process.env.GEOTFR_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const RUNS = Number(arg('--runs', '1'));
const POINTS = Number(arg('--points', '20000'));
const WORKERS = arg('--workers', String(availableParallelism()));
const RSS_SMALL = Number(arg('--rss-small', '100000'));
const RSS_LARGE = Number(arg('--rss-large', '1000000'));
const SIZE = 2048;
const BANDS = 8;
const K = 64;
const work = path.join(tmpdir(), 'geotfr-bench-patches');
const src = path.join(work, `src-${BANDS}x${SIZE}.tif`);
const affine = [30, 0, 500000, 0, -30, 4000000] as const;

async function makeSource(): Promise<void> {
  if (existsSync(src)) return;
  await fs.mkdir(work, { recursive: true });
  // The image export bench's scene: smooth fields with noise and nodata holes.
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const bands = Array.from({ length: BANDS }, (_, b) => {
    const v = new Float32Array(SIZE * SIZE);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) {
        const hole = (x - 300 * (b + 1)) ** 2 + (y - 700) ** 2 < 40 ** 2;
        v[y * SIZE + x] = hole ? -9999 : 1000 * Math.sin(x / (90 + b * 7)) * Math.cos(y / (130 - b * 5)) + 50 * b + rand() * 8;
      }
    return v;
  });
  await writeGeoTiff(src, {
    width: SIZE,
    height: SIZE,
    bands,
    type: 'float32',
    nodata: -9999,
    affine: [...affine],
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 512,
    compress: 'DEFLATE',
    bandNames: Array.from({ length: BANDS }, (_, i) => `B${i + 1}`),
  });
}

/** A FeatureCollection of `n` random points (UTM, crs member) with an integer label, streamed to disk. */
async function makePoints(n: number): Promise<string> {
  const file = path.join(work, `points-${n}.geojson`);
  if (existsSync(file)) return file;
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const out = createWriteStream(file);
  out.write('{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:32633"}},"features":[\n');
  for (let i = 0; i < n; i++) {
    const x = affine[2] + (0.5 + rand() * (SIZE - 1)) * affine[0];
    const y = affine[5] + (0.5 + rand() * (SIZE - 1)) * affine[4];
    const line = `${i ? ',' : ''}{"type":"Feature","geometry":{"type":"Point","coordinates":[${x.toFixed(3)},${y.toFixed(3)}]},"properties":{"label":${i % 10}}}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end(']}\n');
  await once(out, 'finish');
  return file;
}

/** Up to `limit` bytes of the records a gzip file holds (its uncompressed content), for the zlib ceiling. */
async function recordsSample(file: string, limit: number): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  let n = 0;
  const gunzip = createReadStream(file).pipe(createGunzip({ chunkSize: 1 << 20 }));
  for await (const c of gunzip as AsyncIterable<Buffer>) {
    parts.push(c);
    n += c.length;
    if (n >= limit) break;
  }
  gunzip.destroy();
  return Buffer.concat(parts).subarray(0, Math.min(n, limit));
}

/** zlib level 6 MB/s over `buf` on `threads` threads (median of 3), at the faster of memLevel 8 (zlib's default) and 9 (the export's). */
async function zlibMBs(buf: Uint8Array, threads: number): Promise<number> {
  const b = new ZlibBound(threads);
  const secs: number[] = [];
  for (let i = 0; i < 3; i++) secs.push(Math.min((await b.seconds(buf, 6, 8)).seconds, (await b.seconds(buf, 6, 9)).seconds));
  await b.close();
  return buf.length / 1e6 / median(secs);
}

let zlibSample: Uint8Array | undefined;

async function patches(name: string, points: string, k: number): Promise<Measure & { bytes: number; bytesFramed: number; records: number }> {
  const dir = path.join(work, `out-${name}`);
  await fs.rm(dir, { recursive: true, force: true });
  const req = path.join(work, `${name}.json`);
  await fs.writeFile(req, JSON.stringify({ image: src, points, properties: ['label'], kernelSize: k, dropNulls: false, bucket: dir, fileNamePrefix: 'bench' }));
  const m = timed(process.execPath, [cli, 'export-patches', req, '--workers', WORKERS]);
  const s = JSON.parse(m.out);
  if (k === K && !zlibSample) zlibSample = await recordsSample(s.shards[0], 256 * 2 ** 20);
  await fs.rm(dir, { recursive: true, force: true });
  return { ...m, bytes: s.bytes, bytesFramed: s.bytesFramed, records: s.records };
}

/** The same number of 64×64 tiles through export-image: patch 12 + 2·26 margins = 64, across × down = n patches. */
async function gridded(name: string, n: number): Promise<Measure & { bytesFramed: number; patches: number }> {
  const dir = path.join(work, `out-${name}`);
  await fs.rm(dir, { recursive: true, force: true });
  const req = path.join(work, `${name}.json`);
  // n = across × down patches of 12 px; the region starts 26 px in, so margins read real pixels.
  let across = Math.min(160, n);
  while (n % across) across--; // an exact grid of n patches when n has a divisor ≤ 160 (20,000 = 160 × 125)
  const down = n / across;
  const x0 = affine[2] + 26 * affine[0],
    y0 = affine[5] + 26 * affine[4];
  const region = [x0, y0 + down * 12 * affine[4], x0 + across * 12 * affine[0], y0];
  await fs.writeFile(
    req,
    JSON.stringify({
      image: src,
      bucket: dir,
      fileNamePrefix: 'bench',
      region,
      formatOptions: { patchDimensions: [12, 12], kernelSize: [53, 53], compressed: true },
    }),
  );
  const m = timed(process.execPath, [cli, 'export-image', req, '--workers', WORKERS]);
  const s = JSON.parse(m.out);
  await fs.rm(dir, { recursive: true, force: true });
  return { ...m, bytesFramed: s.bytesFramed, patches: s.patches };
}

function pythonRun(points: string): Measure {
  const out = path.join(work, 'python.tfrecord.gz');
  const m = timed(python, [pyScript, src, points, out, String(K)]);
  return m;
}

await makeSource();
const pts = await makePoints(POINTS);
const load0 = loadavg()[0];
const res: { geotfr: Measure[]; python: Measure[]; grid: Measure[] } = { geotfr: [], python: [], grid: [] };
let framed = 0,
  gridFramed = 0,
  records = 0,
  bytes = 0;
for (let i = 0; i < RUNS; i++) {
  const g = await patches('patches', pts, K);
  framed = g.bytesFramed;
  records = g.records;
  bytes = g.bytes;
  res.geotfr.push(g);
  const grid = await gridded('grid', POINTS);
  gridFramed = grid.bytesFramed;
  res.grid.push(grid);
  res.python.push(pythonRun(pts));
  process.stderr.write(
    `run ${i + 1}/${RUNS}: geotfr ${g.seconds.toFixed(1)}s, gridded ${grid.seconds.toFixed(1)}s, python ${res.python[i]!.seconds.toFixed(1)}s\n`,
  );
}
const cores = availableParallelism();
const zlibAllMBs = await zlibMBs(zlibSample!, cores);
const zlibOneMBs = await zlibMBs(zlibSample!, 1);
const small = await makePoints(RSS_SMALL);
const large = await makePoints(RSS_LARGE);
const rssSmall = await patches('rss-small', small, 4);
const rssLarge = await patches('rss-large', large, 4);
const med = (xs: Measure[]) => ({ seconds: median(xs.map((m) => m.seconds)), rssMB: median(xs.map((m) => m.rssMB)) });
const G = med(res.geotfr),
  P = med(res.python),
  R = med(res.grid);
const summary = {
  date: new Date().toISOString(),
  source: `${BANDS}-band float32 ${SIZE}x${SIZE} COG (DEFLATE, 512 tiles)`,
  points: POINTS,
  kernel: K,
  workers: Number(WORKERS),
  runs: RUNS,
  records,
  bytes,
  bytesFramed: framed,
  gridBytesFramed: gridFramed,
  loadavgStart: load0,
  loadavgEnd: loadavg()[0],
  geotfrSeconds: G.seconds,
  pythonSeconds: P.seconds,
  griddedSeconds: R.seconds,
  speedupVsPython: P.seconds / G.seconds,
  vsGridded: G.seconds / R.seconds,
  geotfrMBs: framed / 1e6 / G.seconds,
  geotfrRssMB: G.rssMB,
  pythonRssMB: P.rssMB,
  rssPoints: [RSS_SMALL, RSS_LARGE],
  rssSmallMB: rssSmall.rssMB,
  rssLargeMB: rssLarge.rssMB,
  rssRatio: rssLarge.rssMB / rssSmall.rssMB,
  rssSeconds: [rssSmall.seconds, rssLarge.seconds],
  zlibSampleBytes: zlibSample!.length,
  zlibCores: cores,
  zlibAllCoresMBs: zlibAllMBs,
  zlibOneThreadMBs: zlibOneMBs,
  /** The fastest any exporter could gzip these framed bytes at level 6 on this machine. */
  zlibFloorSeconds: framed / 1e6 / zlibAllMBs,
  /** Python's time over that floor: the largest speedup any exporter could show here. */
  maxSpeedupVsPython: P.seconds / (framed / 1e6 / zlibAllMBs),
  /** The Python run's own single-thread zlib share (an estimate: framed bytes ÷ one thread's rate). */
  pythonZlibSeconds: framed / 1e6 / zlibOneMBs,
  geotfrVsZlibFloor: framed / 1e6 / zlibAllMBs / G.seconds,
};
const f = (x: number, d = 1) => x.toFixed(d);
console.log(`| run (${POINTS} points, K=${K}, ${BANDS} bands, gzip 6) | wall s | vs geotfr | peak RSS MB |`);
console.log(`|---|---|---|---|`);
console.log(`| geotfr export-patches (${WORKERS} workers) | ${f(G.seconds)} | 1.0× | ${f(G.rssMB, 0)} |`);
console.log(`| Python: GDAL window per point → tf.train.Example → TFRecordWriter | ${f(P.seconds)} | ${f(P.seconds / G.seconds)}× slower | ${f(P.rssMB, 0)} |`);
console.log(
  `| geotfr export-image, same bytes as a grid (${f(gridFramed / 1e9, 2)} GB vs ${f(framed / 1e9, 2)} GB framed) | ${f(R.seconds)} | patches take ${f(G.seconds / R.seconds, 2)}× its time | ${f(R.rssMB, 0)} |`,
);
console.log(
  `\npeak RSS of export-patches (K=4): ${RSS_SMALL} points ${f(rssSmall.rssMB, 0)} MB (${f(rssSmall.seconds)} s), ${RSS_LARGE} points ${f(rssLarge.rssMB, 0)} MB (${f(rssLarge.seconds)} s): ratio ${f(summary.rssRatio, 2)}; load average ${f(load0, 2)} → ${f(summary.loadavgEnd, 2)}`,
);
console.log(
  `\nzlib level 6 on these records (first ${f(summary.zlibSampleBytes / 2 ** 20, 0)} MiB): ${f(zlibOneMBs)} MB/s on one thread, ${f(zlibAllMBs)} MB/s on ${cores} cores. ` +
    `Gzipping ${f(framed / 1e9, 2)} GB takes at least ${f(summary.zlibFloorSeconds)} s here, so no exporter can beat the Python run by more than ` +
    `**${f(summary.maxSpeedupVsPython)}×** on this machine (Python's own zlib share ≈ ${f(summary.pythonZlibSeconds)} s of ${f(P.seconds)} s); ` +
    `geotfr runs at ${f(100 * summary.geotfrVsZlibFloor, 0)}% of that floor.`,
);
console.log(JSON.stringify(summary));
