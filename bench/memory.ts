/**
 * Peak RSS against the memory budget (shared/budget.ts): `geotfr export-image` on a 2048² and a
 * 4096² 4-band float32 COG (512-px blocks; patch 128, kernel 16, gzip, 3 MB shards — the case
 * issue 14 measured at 301 and 519 MB), whole process under `/usr/bin/time` (worker threads
 * included), with the default budget. 4× the region must stay ≤ 1.3× the small run's RSS and
 * ≤ the budget. `--verbose` gives the block cache's decodes and re-decodes.
 *
 * Run: `npx tsc -p . && node dist/bench/memory.js [--workers N]`
 */
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeGeoTiff } from '../test/support/rasters.js';
import { memoryBudgetBytes } from '../shared/budget.js';
import { defaultWorkers } from '../shared/export/spawn.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'bundle', 'geotfr.js');
const args = process.argv.slice(2);
const WORKERS = args.includes('--workers') ? args[args.indexOf('--workers') + 1]! : String(defaultWorkers());
const work = path.join(tmpdir(), 'geotfr-bench-memory');

async function source(size: number): Promise<string> {
  const file = path.join(work, `src-${size}.tif`);
  if (existsSync(file)) return file;
  await fs.mkdir(work, { recursive: true });
  const bands = Array.from({ length: 4 }, (_, b) =>
    Float32Array.from({ length: size * size }, (_, i) => Math.sin((i % size) / (50 + b * 7)) * Math.cos(Math.floor(i / size) / 40) + ((i * 7919) % 101) / 1000),
  );
  await writeGeoTiff(file + '.tmp.tif', {
    width: size,
    height: size,
    bands,
    type: 'float32',
    affine: [10, 0, 400000, 0, -10, 5000000],
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 512,
    compress: 'DEFLATE',
  });
  await fs.rename(file + '.tmp.tif', file);
  return file;
}

function measure(src: string, size: number): { seconds: number; rssMB: number; cache: string } {
  const out = path.join(work, `out-${size}`);
  const req = path.join(work, `req-${size}.json`);
  spawnSync('rm', ['-rf', out]); // a fresh destination each run
  {
    const body = {
      image: src,
      bucket: out,
      fileNamePrefix: 'p',
      formatOptions: { patchDimensions: [128, 128], kernelSize: [16, 16], compressed: true, maxFileSize: 3_000_000 },
    };
    writeFileSync(req, JSON.stringify(body));
    const t0 = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', 'RSSKB=%M', process.execPath, cli, 'export-image', req, '--workers', WORKERS, '--verbose'], {
      encoding: 'utf8',
      env: { ...process.env, GEOTFR_PROGRESS: '0' },
      maxBuffer: 1 << 26,
    });
    if (r.status !== 0) throw new Error(`export-image failed: ${r.stderr}`);
    const rss = Number(/RSSKB=(\d+)/.exec(r.stderr)?.[1]);
    const cache = /source block cache: [^\n]*/.exec(r.stderr)?.[0] ?? '';
    return { seconds: (performance.now() - t0) / 1000, rssMB: rss / 1024, cache };
  }
}

const l0 = loadavg()[0]!;
const small = measure(await source(2048), 2048);
const large = measure(await source(4096), 4096);
const budgetMB = memoryBudgetBytes() / 2 ** 20;
console.log(
  `\nexport-image, 4-band float32, 512-px blocks, patch 128, kernel 16, gzip, 3 MB shards, ${WORKERS} worker thread(s); budget ${budgetMB} MiB; load ${((l0 + loadavg()[0]!) / 2).toFixed(1)}\n`,
);
console.log('| region | wall s | peak RSS MB | block cache |');
console.log('|---|---|---|---|');
console.log(`| 2048² | ${small.seconds.toFixed(1)} | ${small.rssMB.toFixed(0)} | ${small.cache} |`);
console.log(`| 4096² (4×) | ${large.seconds.toFixed(1)} | ${large.rssMB.toFixed(0)} | ${large.cache} |`);
console.log(
  `\nRSS ratio 4×/1×: ${(large.rssMB / small.rssMB).toFixed(2)} (target ≤ 1.3); largest ${Math.max(small.rssMB, large.rssMB).toFixed(0)} MB of the ${budgetMB} MiB budget`,
);
console.log(JSON.stringify({ bench: 'memory', workers: WORKERS, budgetMB, small, large, ratio: large.rssMB / small.rssMB }));
