/**
 * Export onto another grid (issue 12): a 4-band float32 2048×2048 UTM COG (DEFLATE, 512-px tiles,
 * made by GDAL) exported with patch 256, uncompressed, in the same run as
 *
 * - the same-grid export (the baseline throughput), nearest and bilinear onto EPSG:3035 at 30 m;
 * - the usual way: `gdalwarp -t_srs EPSG:3035 -tr 30 30 -r near|bilinear` (default -et) to a
 *   temporary GeoTIFF, then bench/python/export_tf_gdal.py (the Python TF exporter), end to end;
 * - the grid transform's share of export time (the same windows' coordinates, one thread);
 * - peak RSS of a 1024² vs a 2048² region onto 3035, and of a 100-file glob of the same image
 *   (10 × 10 tiles) vs the single file.
 *
 * Run: `npx tsc -p . && node dist/bench/grid.js [--runs 3] [--workers N]`. Prints a markdown table
 * and one JSON line (medians over runs). Throughput is MB/s of framed TFRecord output.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tilesWindow } from '../shared/export/grid.js';
import { planImageExport, shardChunks } from '../shared/export/plan.js';
import { ChunkProducer } from '../shared/export/chunk.js';
import { GridTransform } from '../shared/grid/transform.js';
import { writeGeoTiff } from '../test/support/rasters.js';
import { median, timed, type Measure } from './stats.js';
import { defaultWorkers } from '../shared/export/spawn.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const cli = path.join(here, '..', 'bundle', 'geotfr.js');
const pyScript = path.join(repo, 'bench', 'python', 'export_tf_gdal.py');
const python = process.env.GEOTFR_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const RUNS = Number(arg('--runs', '3'));
const WORKERS = arg('--workers', String(defaultWorkers()));
const SIZE = 2048;
const BANDS = 4;
const PATCH = 256;
const RES = 30;
const X0 = 500000,
  Y0 = 5300000;
const work = path.join(tmpdir(), 'geotfr-bench-grid');
const src = path.join(work, `src-${BANDS}x${SIZE}.tif`);
const tiles = path.join(work, 'tiles');

async function makeSources(): Promise<void> {
  await fs.mkdir(work, { recursive: true });
  if (!existsSync(src)) {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const bands = Array.from({ length: BANDS }, (_, b) => {
      const v = new Float32Array(SIZE * SIZE);
      for (let y = 0; y < SIZE; y++)
        for (let x = 0; x < SIZE; x++) v[y * SIZE + x] = 1000 * Math.sin(x / (90 + b * 7)) * Math.cos(y / (130 - b * 5)) + 50 * b + rand() * 8;
      return v;
    });
    await writeGeoTiff(src, {
      width: SIZE,
      height: SIZE,
      bands,
      type: 'float32',
      nodata: -9999,
      affine: [RES, 0, X0, 0, -RES, Y0],
      crs: 'EPSG:32633',
      layout: 'COG',
      blockSize: 512,
      compress: 'DEFLATE',
    });
  }
  if (!existsSync(path.join(tiles, 't99.tif'))) {
    // The same image as a 10 × 10 mosaic of separate files (what a glob over scenes looks like).
    await fs.mkdir(tiles, { recursive: true });
    const step = Math.ceil(SIZE / 10);
    for (let j = 0; j < 10; j++)
      for (let i = 0; i < 10; i++) {
        const k = j * 10 + i;
        const w = Math.min(step, SIZE - i * step),
          h = Math.min(step, SIZE - j * step);
        const r = spawnSync('gdal_translate', [
          '-q',
          '-of',
          'COG',
          '-co',
          'COMPRESS=DEFLATE',
          '-co',
          'BLOCKSIZE=256',
          '-srcwin',
          String(i * step),
          String(j * step),
          String(w),
          String(h),
          src,
          path.join(tiles, `t${String(k).padStart(2, '0')}.tif`),
        ]);
        if (r.status !== 0) throw new Error(`gdal_translate: ${r.stderr}`);
      }
  }
}

/** The region covering `px` × `px` source pixels from the top-left corner, in the source CRS. */
const regionOf = (px: number) => ({
  type: 'Polygon',
  crs: { type: 'name', properties: { name: 'EPSG:32633' } },
  coordinates: [
    [
      [X0, Y0 - px * RES],
      [X0 + px * RES, Y0 - px * RES],
      [X0 + px * RES, Y0],
      [X0, Y0],
      [X0, Y0 - px * RES],
    ],
  ],
});

function request(name: string, opts: { grid?: 'same' | 'near' | 'bilinear'; px?: number; image?: unknown } = {}): object {
  const grid = opts.grid ?? 'same';
  return {
    image: opts.image ?? src,
    bucket: path.join(work, `out-${name}`),
    fileNamePrefix: 'bench',
    ...(opts.px && opts.px !== SIZE ? { region: regionOf(opts.px) } : {}),
    ...(grid === 'same' ? {} : { crs: 'EPSG:3035', scale: RES, resample: grid === 'near' ? 'nearest' : 'bilinear' }),
    formatOptions: { patchDimensions: [PATCH, PATCH], compressed: false },
  };
}

async function geotfrRun(name: string, req: object): Promise<Measure & { bytesFramed: number }> {
  await fs.rm(path.join(work, `out-${name}`), { recursive: true, force: true });
  const file = path.join(work, `${name}.json`);
  await fs.writeFile(file, JSON.stringify(req));
  const m = timed(process.execPath, [cli, 'export-image', file, '--workers', WORKERS]);
  return { ...m, bytesFramed: JSON.parse(m.out).bytesFramed };
}

/** gdalwarp (default -et) to a temporary GeoTIFF, then the Python TF exporter: the usual two steps. */
function usualWay(alg: 'near' | 'bilinear'): { seconds: number; warpSeconds: number } {
  const tmp = path.join(work, `warped-${alg}.tif`);
  const out = path.join(work, `out-python-${alg}`);
  spawnSync('rm', ['-rf', tmp, out]);
  const w = timed('gdalwarp', [
    '-q',
    '-t_srs',
    'EPSG:3035',
    '-tr',
    String(RES),
    String(RES),
    '-r',
    alg,
    '-dstnodata',
    '-9999',
    '-wo',
    `NUM_THREADS=${availableParallelism()}`,
    '-multi',
    src,
    tmp,
  ]);
  const p = timed(python, [pyScript, tmp, out, 'bench', String(PATCH), '1', '0']);
  return { seconds: w.seconds + p.seconds, warpSeconds: w.seconds };
}

/** One thread: the export's time per chunk and the grid transform's time for the same windows. */
async function transformShare(): Promise<{ exportSeconds: number; transformSeconds: number }> {
  const plan = await planImageExport(request('share', { grid: 'near' }));
  const producer = await ChunkProducer.open(plan);
  const tasks = plan.shards.flatMap((s) => shardChunks(plan, s.index));
  let t0 = performance.now();
  for (const t of tasks) await producer.produce(t);
  const exportSeconds = (performance.now() - t0) / 1000;
  await producer.close();
  // The export computes each chunk window's coordinates once per file, into reused buffers: the
  // same here, after one warm-up pass (the export's own JIT warm-up is inside its time).
  const f = plan.image!.files[0]!;
  const g = new GridTransform(plan.source, f.grid);
  let out: ReturnType<GridTransform['map']> | undefined;
  const pass = () => {
    for (const t of tasks) {
      const w = tilesWindow(plan.grid, t.row, t.col0, t.count);
      out = g.map(w.x0, w.y0, w.width, w.height, 0.5, out);
    }
  };
  pass();
  t0 = performance.now();
  pass();
  return { exportSeconds, transformSeconds: (performance.now() - t0) / 1000 };
}

await makeSources();
const load0 = loadavg()[0];
const res: Record<string, { seconds: number; rssMB: number; bytesFramed: number }[]> = { same: [], near: [], bilinear: [] };
const usual: Record<string, { seconds: number; warpSeconds: number }[]> = { near: [], bilinear: [] };
for (let i = 0; i < RUNS; i++) {
  for (const k of ['same', 'near', 'bilinear'] as const) res[k]!.push(await geotfrRun(k, request(k, { grid: k })));
  for (const a of ['near', 'bilinear'] as const) usual[a]!.push(usualWay(a));
  process.stderr.write(
    `run ${i + 1}/${RUNS}: ${Object.entries(res)
      .map(([k, v]) => `${k} ${v[i]!.seconds.toFixed(2)}s`)
      .join(', ')}, usual near ${usual.near![i]!.seconds.toFixed(2)}s, bilinear ${usual.bilinear![i]!.seconds.toFixed(2)}s\n`,
  );
}
const share = await transformShare();
const rss = { small: [] as number[], large: [] as number[], one: [] as number[], glob: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  rss.small.push((await geotfrRun('rss-small', request('rss-small', { grid: 'near', px: SIZE / 2 }))).rssMB);
  rss.large.push((await geotfrRun('rss-large', request('rss-large', { grid: 'near', px: SIZE }))).rssMB);
  rss.one.push((await geotfrRun('rss-one', request('rss-one', { grid: 'near', px: SIZE / 2 }))).rssMB);
  rss.glob.push(
    (
      await geotfrRun(
        'rss-glob',
        request('rss-glob', {
          grid: 'near',
          px: SIZE / 2,
          image: { bands: Array.from({ length: BANDS }, (_, b) => ({ name: `b${b + 1}`, uri: path.join(tiles, 't*.tif'), band: b + 1 })) },
        }),
      )
    ).rssMB,
  );
}

const med = (k: string) => ({
  seconds: median(res[k]!.map((m) => m.seconds)),
  rssMB: median(res[k]!.map((m) => m.rssMB)),
  mbs: median(res[k]!.map((m) => m.bytesFramed / 1e6 / m.seconds)),
  bytes: res[k]![0]!.bytesFramed,
});
const same = med('same'),
  near = med('near'),
  bil = med('bilinear');
const usualNear = median(usual.near!.map((u) => u.seconds)),
  usualBil = median(usual.bilinear!.map((u) => u.seconds));
const summary = {
  source: `${BANDS}-band float32 ${SIZE}x${SIZE} UTM COG (DEFLATE, 512 tiles) → EPSG:3035 ${RES} m`,
  workers: Number(WORKERS),
  runs: RUNS,
  sameMBs: same.mbs,
  nearMBs: near.mbs,
  bilinearMBs: bil.mbs,
  nearVsSame: near.mbs / same.mbs,
  bilinearVsSame: bil.mbs / same.mbs,
  nearSeconds: near.seconds,
  bilinearSeconds: bil.seconds,
  usualNearSeconds: usualNear,
  usualBilinearSeconds: usualBil,
  speedupNear: usualNear / near.seconds,
  speedupBilinear: usualBil / bil.seconds,
  transformShare: share.transformSeconds / share.exportSeconds,
  rssSmallMB: median(rss.small),
  rssLargeMB: median(rss.large),
  rssRegionRatio: median(rss.large) / median(rss.small),
  rssOneFileMB: median(rss.one),
  rssGlobMB: median(rss.glob),
  rssGlobRatio: median(rss.glob) / median(rss.one),
  loadavgStart: load0,
  loadavgEnd: loadavg()[0],
};
const f = (x: number, d = 2) => x.toFixed(d);
console.log(`| export | geotfr s | MB/s | vs same grid | gdalwarp + Python TF s | speedup |`);
console.log(`|---|---|---|---|---|---|`);
console.log(`| same grid | ${f(same.seconds)} | ${f(same.mbs, 0)} | 1.00× | | |`);
console.log(`| nearest → EPSG:3035 | ${f(near.seconds)} | ${f(near.mbs, 0)} | ${f(summary.nearVsSame)}× | ${f(usualNear)} | ${f(summary.speedupNear, 1)}× |`);
console.log(
  `| bilinear → EPSG:3035 | ${f(bil.seconds)} | ${f(bil.mbs, 0)} | ${f(summary.bilinearVsSame)}× | ${f(usualBil)} | ${f(summary.speedupBilinear, 1)}× |`,
);
console.log(
  `\ngrid transform: ${f(share.transformSeconds * 1000, 0)} ms of ${f(share.exportSeconds, 2)} s one-thread export time (${f(summary.transformShare * 100, 1)}%)`,
);
console.log(
  `peak RSS onto 3035: region 1024² ${f(summary.rssSmallMB, 0)} MB, 2048² ${f(summary.rssLargeMB, 0)} MB (ratio ${f(summary.rssRegionRatio)}); 1024² from 1 file ${f(summary.rssOneFileMB, 0)} MB, from a 100-file glob ${f(summary.rssGlobMB, 0)} MB (ratio ${f(summary.rssGlobRatio)}); load average ${f(load0)} → ${f(summary.loadavgEnd)}`,
);
console.log(JSON.stringify(summary));
