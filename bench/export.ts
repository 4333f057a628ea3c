/**
 * Image export benchmark (issue 3): an 8-band float32 2048×2048 COG (DEFLATE, 512-px tiles, made by
 * GDAL), patch 256, kernel 32. Whole-process wall time of `geotfr export-image` against
 * bench/python/export_tf_gdal.py (GDAL read → numpy slicing → tf.train.Example →
 * tf.io.TFRecordWriter) in the same run, uncompressed and gzip level 6; MB/s of framed TFRecord; how
 * close the gzip run comes to bare node:zlib on the same bytes; peak RSS for a 1024² vs a 2048² region.
 *
 * Run: `npx tsc -p . && node dist/bench/export.js [--runs 3] [--workers N]`
 * Prints a markdown table and one JSON line (medians over runs; runs alternate geotfr / Python).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { writeGeoTiff } from '../test/support/rasters.js';
import { median } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const cli = path.join(here, '..', 'cli', 'geotfr.js');
const pyScript = path.join(repo, 'bench', 'python', 'export_tf_gdal.py');
const python = process.env.GEOTFR_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const RUNS = Number(arg('--runs', '3'));
const WORKERS = arg('--workers', String(availableParallelism()));
const SIZE = 2048;
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
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const bands = Array.from({ length: BANDS }, (_, b) => {
    const v = new Float32Array(SIZE * SIZE);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) {
        const hole = (x - 300 * (b + 1)) ** 2 + (y - 700) ** 2 < 40 ** 2;
        v[y * SIZE + x] = hole ? -9999 : 1000 * Math.sin(x / (90 + b * 7)) * Math.cos(y / (130 - b * 5)) + 50 * b + rand() * 8;
      }
    return v;
  });
  await writeGeoTiff(src, { width: SIZE, height: SIZE, bands, type: 'float32', nodata: -9999, affine: [30, 0, 500000, 0, -30, 4000000], crs: 'EPSG:32633', layout: 'COG', blockSize: 512, compress: 'DEFLATE', bandNames: Array.from({ length: BANDS }, (_, i) => `B${i + 1}`) });
}

interface Measure {
  seconds: number;
  rssMB: number;
  out: string;
}

/** Runs a command under /usr/bin/time: whole-process wall seconds and peak RSS. */
function timed(cmd: string, argv: string[]): Measure {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSSKB=%M', cmd, ...argv], { encoding: 'utf8', env: { ...process.env, GEOTFR_PROGRESS: '0', TF_CPP_MIN_LOG_LEVEL: '3' }, maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const m = /RSSKB=(\d+)/.exec(r.stderr);
  return { seconds, rssMB: m ? Number(m[1]) / 1024 : NaN, out: r.stdout };
}

async function geotfrRun(name: string, level: number, regionPx = SIZE): Promise<Measure & { bytesFramed: number; dir: string }> {
  const dir = path.join(work, `out-${name}`);
  await fs.rm(dir, { recursive: true, force: true });
  const req = path.join(work, `${name}.json`);
  const region = [500000, 4000000 - regionPx * 30, 500000 + regionPx * 30, 4000000];
  await fs.writeFile(req, JSON.stringify({ image: src, bucket: dir, fileNamePrefix: 'bench', region, formatOptions: { patchDimensions: [PATCH, PATCH], kernelSize: [KERNEL, KERNEL], compressed: level > 0, ...(level ? { compressionLevel: level } : {}) } }));
  const m = timed(process.execPath, [cli, 'export-image', req, '--workers', WORKERS]);
  return { ...m, bytesFramed: JSON.parse(m.out).bytesFramed, dir };
}

async function pythonRun(name: string, level: number): Promise<Measure> {
  const dir = path.join(work, `out-${name}`);
  await fs.rm(dir, { recursive: true, force: true });
  return timed(python, [pyScript, src, dir, 'bench', String(PATCH), String(KERNEL), String(level)]);
}

await makeSource();
const load0 = loadavg()[0];
const res: Record<string, Measure[]> = { geotfr: [], python: [], geotfrGz: [], pythonGz: [] };
let bytesFramed = 0;
let plainShard = '';
for (let i = 0; i < RUNS; i++) {
  const g = await geotfrRun('geotfr', 0);
  bytesFramed = g.bytesFramed;
  plainShard = path.join(g.dir, 'bench-00000.tfrecord');
  res.geotfr.push(g);
  res.python.push(await pythonRun('python', 0));
  res.geotfrGz.push(await geotfrRun('geotfr-gz', 6));
  res.pythonGz.push(await pythonRun('python-gz', 6));
  process.stderr.write(`run ${i + 1}/${RUNS}: ${Object.entries(res).map(([k, v]) => `${k} ${v[i].seconds.toFixed(2)}s`).join(', ')}\n`);
}

// Bare node:zlib on the same bytes (one thread, level 6), in this process.
const plain = await fs.readFile(plainShard);
const zt: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  zlib.gzipSync(plain, { level: 6 });
  zt.push((performance.now() - t0) / 1000);
}
const bareZlibMBs = plain.length / 1e6 / median(zt);

// Peak RSS: a 1024² region vs the whole 2048² image (4× the pixels), uncompressed.
const rssSmall: number[] = [];
const rssLarge: number[] = [];
for (let i = 0; i < RUNS; i++) {
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
  rssSmallMB: median(rssSmall),
  rssLargeMB: median(rssLarge),
  rssRatio: median(rssLarge) / median(rssSmall),
};
const f = (x: number, d = 2) => x.toFixed(d);
console.log(`| run | geotfr s | Python TF+GDAL s | speedup | geotfr MB/s | geotfr peak RSS MB | Python peak RSS MB |`);
console.log(`|---|---|---|---|---|---|---|`);
console.log(`| uncompressed | ${f(med.geotfr.seconds)} | ${f(med.python.seconds)} | ${f(summary.speedupPlain, 1)}× | ${f(summary.geotfrMBs, 0)} | ${f(med.geotfr.rssMB, 0)} | ${f(med.python.rssMB, 0)} |`);
console.log(`| gzip level 6 | ${f(med.geotfrGz.seconds)} | ${f(med.pythonGz.seconds)} | ${f(summary.speedupGzip, 1)}× | ${f(summary.geotfrGzMBs, 0)} | ${f(med.geotfrGz.rssMB, 0)} | ${f(med.pythonGz.rssMB, 0)} |`);
console.log(`\nbare node:zlib gzip level 6, one thread, same ${f(plain.length / 1e6, 0)} MB: ${f(bareZlibMBs, 1)} MB/s; the gzip export runs at ${f(summary.gzipVsBareZlib * 100, 0)}% of that (whole process, ${WORKERS} workers)`);
console.log(`peak RSS: region 1024² ${f(summary.rssSmallMB, 0)} MB, 2048² ${f(summary.rssLargeMB, 0)} MB (ratio ${f(summary.rssRatio)}); load average ${f(load0)} → ${f(summary.loadavgEnd)}`);
console.log(JSON.stringify(summary));
