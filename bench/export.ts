/**
 * Image export benchmark (issue 3): an 8-band float32 2048×2048 (`--size`) COG (DEFLATE, 512-px tiles, made by
 * GDAL), patch 256, kernel 32. Whole-process wall time of `geotfr export-image` against
 * bench/python/export_tf_gdal.py (GDAL read → numpy slicing → tf.train.Example →
 * tf.io.TFRecordWriter) in the same run, uncompressed and gzip level 6; MB/s of framed TFRecord; how
 * close the gzip run comes to node:zlib on the same bytes — level 6 on two cores (two threads, each
 * gzipping half of the framed bytes, `zlibbound.ts`), measured between the gzip runs — and to one
 * thread; the export's floor (its own chunk DEFLATE and the source's inflate, alone on two threads:
 * the best ratio any export on node:zlib could reach); peak RSS for a (size/2)² vs a size² region.
 *
 * Run: `npx tsc -p . && node dist/bench/export.js [--runs 3] [--workers N] [--gzip-only] [--size N]`
 * (`--gzip-only`: the gzip export against the two-core bound, no Python or RSS runs; `--size`: the
 * image's width and height, 2048 unless given, whose whole area is exported — 4096 frames 680 MB
 * into one file, where the process's fixed start-up weighs a quarter of what it does at 2048.)
 * Prints a markdown table and one JSON line (medians over runs; runs alternate geotfr / Python).
 */
import { existsSync, promises as fs } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { writeGeoTiff } from '../test/support/rasters.js';
import { median, timed, type Measure } from './stats.js';
import { ZlibBound } from './zlibbound.js';
import { defaultWorkers } from '../shared/export/spawn.js';
import { planImageExport, shardChunks } from '../shared/export/plan.js';
import { fromFile } from 'geotiff';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const cli = path.join(here, '..', 'bundle', 'geotfr.js');
const pyScript = path.join(repo, 'bench', 'python', 'export_tf_gdal.py');
const python = process.env.GEOTFR_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const RUNS = Number(arg('--runs', '3'));
const WORKERS = arg('--workers', String(defaultWorkers()));
const GZIP_ONLY = args.includes('--gzip-only');
const SIZE = Number(arg('--size', '2048'));
if (!Number.isInteger(SIZE) || SIZE < 1024 || SIZE % 512) throw new Error(`--size ${SIZE}: a multiple of 512, at least 1024`);
const BANDS = 8;
const PATCH = 256;
const KERNEL = 32;
const work = path.join(tmpdir(), 'geotfr-bench-export');
const src = path.join(work, `src-${BANDS}x${SIZE}.tif`);

async function makeSource(): Promise<void> {
  if (existsSync(src)) return;
  await fs.mkdir(work, { recursive: true });
  // Smooth fields with noise and a few nodata holes: compresses like real imagery, not like noise or zeros.
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
    affine: [30, 0, 500000, 0, -30, 4000000],
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 512,
    compress: 'DEFLATE',
    bandNames: Array.from({ length: BANDS }, (_, i) => `B${i + 1}`),
  });
}

/** The export request the bench runs: the region's top-left `regionPx`², plain or gzip at `level`. */
function exportRequest(dir: string, level: number, regionPx = SIZE) {
  const region = [500000, 4000000 - regionPx * 30, 500000 + regionPx * 30, 4000000];
  return {
    image: src,
    bucket: dir,
    fileNamePrefix: 'bench',
    region,
    formatOptions: { patchDimensions: [PATCH, PATCH], kernelSize: [KERNEL, KERNEL], compressed: level > 0, ...(level ? { compressionLevel: level } : {}) },
  };
}

async function geotfrRun(name: string, level: number, regionPx = SIZE): Promise<Measure & { bytesFramed: number; dir: string }> {
  const dir = path.join(work, `out-${name}`);
  await fs.rm(dir, { recursive: true, force: true });
  const req = path.join(work, `${name}.json`);
  await fs.writeFile(req, JSON.stringify(exportRequest(dir, level, regionPx)));
  const m = timed(process.execPath, [cli, 'export-image', req, '--workers', WORKERS]);
  return { ...m, bytesFramed: JSON.parse(m.out).bytesFramed, dir };
}

async function pythonRun(name: string, level: number): Promise<Measure> {
  const dir = path.join(work, `out-${name}`);
  await fs.rm(dir, { recursive: true, force: true });
  return timed(python, [pyScript, src, dir, 'bench', String(PATCH), String(KERNEL), String(level)]);
}

/**
 * The two pieces of the gzip export's work that no design can leave out, each measured alone on two
 * threads: deflating the framed bytes cut into the plan's chunks with the export's own deflater
 * (memLevel 9, sync flush), and inflating the source's tiles. Their sum is the export's CPU floor;
 * the bound's CPU over it is the best ratio any export built on node:zlib could reach here.
 */
async function floorParts(plain: Buffer): Promise<{ chunks: Uint8Array[]; tiles: Uint8Array[]; tileBytes: number }> {
  const plan = await planImageExport(exportRequest(path.join(work, 'out-floor'), 6));
  if (plan.shards.length !== 1) throw new Error('the floor covers one shard');
  const framed = plain.length / plan.grid.totalPatches;
  if (!Number.isInteger(framed)) throw new Error(`${plain.length} framed bytes for ${plan.grid.totalPatches} patches: records of different sizes`);
  const chunks = shardChunks(plan, 0).map((t) =>
    plain.subarray((t.firstPatch - plan.shards[0].firstPatch) * framed, (t.firstPatch - plan.shards[0].firstPatch + t.count) * framed),
  );
  if (chunks.reduce((a, c) => a + c.length, 0) !== plain.length) throw new Error("the plan's chunks do not cover the shard");
  const tiff = await fromFile(src);
  const image = await tiff.getImage(0);
  const offsets = (await image.fileDirectory.loadValue('TileOffsets')) as ArrayLike<number>;
  const counts = (await image.fileDirectory.loadValue('TileByteCounts')) as ArrayLike<number>;
  const fh = await fs.open(src);
  const tiles: Uint8Array[] = [];
  try {
    for (let i = 0; i < offsets.length; i++) {
      const b = Buffer.allocUnsafe(Number(counts[i]));
      await fh.read(b, 0, b.length, Number(offsets[i]));
      tiles.push(b);
    }
  } finally {
    await fh.close();
  }
  await tiff.close?.();
  return { chunks, tiles, tileBytes: image.getTileWidth() * image.getTileHeight() * BANDS * 4 };
}

await makeSource();
const load0 = loadavg()[0];
const res: Record<string, Measure[]> = { geotfr: [], python: [], geotfrGz: [], pythonGz: [] };
const boundSeconds: number[] = [];
const boundCpu: number[] = [];
const bound = new ZlibBound(2, { gzipChunks: new URL('../shared/export/gzipchunks.js', import.meta.url).href });
const floorSeconds: number[] = [];
const floorCpu: number[] = [];
let floor: Awaited<ReturnType<typeof floorParts>> | undefined;
let bytesFramed = 0;
let plain: Buffer | undefined;
const log = (i: number) =>
  process.stderr.write(
    `run ${i + 1}/${RUNS}: ${Object.entries(res)
      .filter(([, v]) => v[i])
      .map(([k, v]) => `${k} ${v[i].seconds.toFixed(2)}s`)
      .join(', ')}, zlib 2 cores ${boundSeconds[i].toFixed(2)}s, export floor ${floorSeconds[i].toFixed(2)}s; load ${loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}\n`,
  );
for (let i = 0; i < RUNS; i++) {
  if (!GZIP_ONLY || !plain) {
    const g = await geotfrRun('geotfr', 0);
    bytesFramed = g.bytesFramed;
    if (!GZIP_ONLY) res.geotfr.push(g);
    // The framed bytes, exactly as the gzip export deflates them (checked below).
    plain ??= await fs.readFile(path.join(g.dir, 'bench-00000.tfrecord'));
    // The bound gzips one file's bytes: a region big enough for a second file (maxFileSize) would leave some out.
    if (existsSync(path.join(g.dir, 'bench-00001.tfrecord'))) throw new Error(`--size ${SIZE}: the export wrote more than one file; the bound covers one`);
  }
  if (!GZIP_ONLY) res.python.push(await pythonRun('python', 0));
  const gz = await geotfrRun('geotfr-gz', 6);
  res.geotfrGz.push(gz);
  if (i === 0 && !zlib.gunzipSync(await fs.readFile(path.join(gz.dir, 'bench-00000.tfrecord.gz'))).equals(plain))
    throw new Error('the gzip shard does not inflate to the plain one: the bound would not be on the same bytes');
  // The bound on the same bytes, right after the export it is compared with (same machine load).
  const b = await bound.seconds(plain, 6);
  boundSeconds.push(b.seconds);
  boundCpu.push(b.cpuSeconds);
  // The export's floor right after, under the same load: its own chunk DEFLATE, then the source's inflate.
  floor ??= await floorParts(plain!);
  const d = await bound.chunkSeconds(floor.chunks, 6);
  if (i === 0 && d.compressedBytes + 20 !== (await fs.stat(path.join(gz.dir, 'bench-00000.tfrecord.gz'))).size)
    throw new Error("the floor's chunks do not deflate to the export's bytes");
  const t = await bound.inflateSeconds(floor.tiles, floor.tileBytes);
  floorSeconds.push(d.seconds + t.seconds);
  floorCpu.push(d.cpuSeconds + t.cpuSeconds);
  if (!GZIP_ONLY) res.pythonGz.push(await pythonRun('python-gz', 6));
  log(i);
}
await bound.close();
const boundMBs = plain!.length / 1e6 / median(boundSeconds);

// Bare node:zlib on the same bytes (one thread, level 6), in this process.
const zt: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  zlib.gzipSync(plain!, { level: 6 });
  zt.push((performance.now() - t0) / 1000);
}
const bareZlibMBs = plain!.length / 1e6 / median(zt);

// Peak RSS: a (SIZE/2)² region vs the whole SIZE² image (4× the pixels), uncompressed.
const rssSmall: number[] = [];
const rssLarge: number[] = [];
for (let i = 0; i < (GZIP_ONLY ? 0 : RUNS); i++) {
  rssSmall.push((await geotfrRun('rss-small', 0, SIZE / 2)).rssMB);
  rssLarge.push((await geotfrRun('rss-large', 0, SIZE)).rssMB);
}

const med = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { seconds: median(v.map((m) => m.seconds)), rssMB: median(v.map((m) => m.rssMB)) }]));
const mbs = (s: number) => bytesFramed / 1e6 / s;
const summary = {
  source: `${BANDS}-band float32 ${SIZE}x${SIZE} COG (DEFLATE, 512 tiles)`,
  patch: PATCH,
  kernel: KERNEL,
  workers: Number(WORKERS),
  runs: RUNS,
  bytesFramed,
  loadavgStart: load0,
  loadavgEnd: loadavg()[0],
  geotfrSeconds: med.geotfr.seconds,
  pythonSeconds: med.python.seconds,
  speedupPlain: med.python.seconds / med.geotfr.seconds,
  geotfrGzSeconds: med.geotfrGz.seconds,
  pythonGzSeconds: med.pythonGz.seconds,
  speedupGzip: med.pythonGz.seconds / med.geotfrGz.seconds,
  geotfrMBs: mbs(med.geotfr.seconds),
  geotfrGzMBs: mbs(med.geotfrGz.seconds),
  bareZlibMBs,
  gzipVsBareZlib: mbs(med.geotfrGz.seconds) / bareZlibMBs,
  zlibTwoCoresMBs: boundMBs,
  zlibTwoCoresSeconds: boundSeconds,
  gzipVsTwoCores: mbs(med.geotfrGz.seconds) / boundMBs,
  geotfrGzRunsSeconds: res.geotfrGz.map((m) => m.seconds),
  // CPU seconds: what the comparison would be if both had two idle cores and used them fully.
  zlibTwoCoresCpuSeconds: median(boundCpu),
  geotfrGzCpuSeconds: median(res.geotfrGz.map((m) => m.cpuSeconds)),
  gzipVsTwoCoresByCpu: median(boundCpu) / median(res.geotfrGz.map((m) => m.cpuSeconds)),
  // The floor: the export's chunk DEFLATE and the source inflate alone (floorParts), and the best ratio they allow.
  floorSeconds: median(floorSeconds),
  floorCpuSeconds: median(floorCpu),
  floorVsTwoCores: median(boundSeconds) / median(floorSeconds),
  floorVsTwoCoresByCpu: median(boundCpu) / median(floorCpu),
  rssSmallMB: median(rssSmall),
  rssLargeMB: median(rssLarge),
  rssRatio: median(rssLarge) / median(rssSmall),
};
const f = (x: number, d = 2) => x.toFixed(d);
console.log(`| run | geotfr s | Python TF+GDAL s | speedup | geotfr MB/s | geotfr peak RSS MB | Python peak RSS MB |`);
console.log(`|---|---|---|---|---|---|---|`);
if (!GZIP_ONLY)
  console.log(
    `| uncompressed | ${f(med.geotfr.seconds)} | ${f(med.python.seconds)} | ${f(summary.speedupPlain, 1)}× | ${f(summary.geotfrMBs, 0)} | ${f(med.geotfr.rssMB, 0)} | ${f(med.python.rssMB, 0)} |`,
  );
console.log(
  `| gzip level 6 | ${f(med.geotfrGz.seconds)} | ${f(med.pythonGz.seconds)} | ${f(summary.speedupGzip, 1)}× | ${f(summary.geotfrGzMBs, 0)} | ${f(med.geotfrGz.rssMB, 0)} | ${f(med.pythonGz.rssMB, 0)} |`,
);
console.log(
  `\nnode:zlib gzip level 6 on the same ${f(plain!.length / 1e6, 0)} MB: two cores (2 threads, half each) ${f(boundMBs, 1)} MB/s, one thread ${f(bareZlibMBs, 1)} MB/s; the gzip export (whole process, ${WORKERS === '0' ? 'in-process' : `${WORKERS} worker threads`}) runs at **${f(summary.gzipVsTwoCores * 100, 0)}% of two cores** (target ≥ 85%), ${f(summary.gzipVsBareZlib * 100, 0)}% of one`,
);
if (!GZIP_ONLY)
  console.log(`peak RSS: region ${SIZE / 2}² ${f(summary.rssSmallMB, 0)} MB, ${SIZE}² ${f(summary.rssLargeMB, 0)} MB (ratio ${f(summary.rssRatio)})`);
console.log(
  `CPU time: the gzip export ${f(summary.geotfrGzCpuSeconds)} s (whole process) vs zlib on two cores ${f(summary.zlibTwoCoresCpuSeconds)} s: **${f(summary.gzipVsTwoCoresByCpu * 100, 0)}% by CPU** (the ratio with two idle cores if the export kept both busy)`,
);
console.log(
  `floor: the export's own chunk DEFLATE and the source's inflate alone, on two threads, ${f(summary.floorSeconds)} s / ${f(summary.floorCpuSeconds)} CPU-s: an export doing nothing else would reach ${f(summary.floorVsTwoCores * 100, 0)}% by wall time, ${f(summary.floorVsTwoCoresByCpu * 100, 0)}% by CPU`,
);
console.log(`load average ${f(load0)} → ${f(summary.loadavgEnd)}; ${new Date().toISOString()}`);
console.log(JSON.stringify(summary));
