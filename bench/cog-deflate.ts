/**
 * The COG writer's DEFLATE against the machine's bound (issue 14: "COG deflate at ≥ 80% of two
 * cores' zlib throughput on the same tiles"): a 4096×4096×3 float32 mosaic like bench/ingest.ts's.
 * Bound: the writer's own tiles (tiles.ts `encodeTile`, predictor 3), DEFLATEd with the writer's
 * zlib parameters on libuv's pool, two at a time, nothing else running, each in one work item
 * (tiles.ts `deflateTile`, as the writer does: the fastest way node:zlib offers). Writer: `CogWriter` fed the
 * same rows, finished into a null sink — its whole work (interleave + predictor, reduction, DEFLATE
 * of every level). Both as MB/s of uncompressed tile bytes (every level's tiles for the writer).
 *
 * Both are measured `--runs` times (default 3), alternating bound and writer, and the medians
 * compared, as the other benches do: a single first run measures the process's warm-up (the JIT,
 * the first multi-MiB buffers' page faults) rather than the writer.
 *
 * Run: `npx tsc -p . && node dist/bench/cog-deflate.js [--size 4096] [--runs 3]`
 */
import { Writable } from 'node:stream';
import { loadavg } from 'node:os';
import * as zlib from 'node:zlib';
import { median } from './stats.js';
import { CogWriter } from '../shared/cog/writer.js';
import { CogLayout } from '../shared/cog/layout.js';
import { allocPixels, deflateTile, encodeTile, tileParams } from '../shared/cog/tiles.js';

const args = process.argv.slice(2);
const SIZE = args.includes('--size') ? Number(args[args.indexOf('--size') + 1]) : 4096;
const RUNS = args.includes('--runs') ? Number(args[args.indexOf('--runs') + 1]) : 3;
const NB = 3;
const TS = 512;

let seed = 12345;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
const bands = Array.from({ length: NB }, (_, b) => {
  const v = allocPixels('float32', SIZE * SIZE);
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++)
      v[y * SIZE + x] = Math.min(1, Math.max(0, 0.5 + 0.45 * Math.sin(x / (60 + 20 * b)) * Math.cos(y / (45 + 15 * b)) + 0.02 * (rand() - 0.5)));
  return v;
});
const opts = {
  width: SIZE,
  height: SIZE,
  bands: NB,
  type: 'float32' as const,
  crs: 'EPSG:32633',
  affine: [10, 0, 500000, 0, -10, 4200000] as [number, number, number, number, number, number],
  tileSize: TS,
};
const p = tileParams(opts);
const layout = new CogLayout({ ...opts });
const tileBytes = TS * TS * NB * 4;
const allTiles = layout.sizes.reduce((a, _, i) => a + layout.tiles(i)[0] * layout.tiles(i)[1], 0);
const l0 = loadavg()[0]!;

// Bound: level-0 tiles, pre-encoded, two DEFLATEs in flight.
const raw: Uint8Array[] = [];
for (let ty = 0; ty < SIZE / TS; ty++) {
  const rows = bands.map((b) => b.subarray(ty * TS * SIZE, (ty + 1) * TS * SIZE));
  for (let tx = 0; tx < SIZE / TS; tx++) raw.push(encodeTile(p, rows, SIZE, tx * TS, TS));
}
const boundRuns: number[] = [];
const writerRuns: number[] = [];
let spilled = 0;
for (let run = 0; run < RUNS; run++) {
  let t0 = performance.now();
  for (let i = 0; i < raw.length; i += 2) await Promise.all(raw.slice(i, i + 2).map((t) => deflateTile(t, p)));
  boundRuns.push((raw.length * tileBytes) / 1e6 / ((performance.now() - t0) / 1000));

  // Writer: everything it does, into a null sink.
  const w = await CogWriter.create(opts);
  t0 = performance.now();
  for (let y = 0; y < SIZE; y += 256)
    await w.writeRows(
      bands.map((b) => b.subarray(y * SIZE, (y + 256) * SIZE)),
      256,
    );
  await w.finish(new Writable({ write: (_c, _e, cb) => cb() }));
  writerRuns.push((allTiles * tileBytes) / 1e6 / ((performance.now() - t0) / 1000));
  spilled = w.spilledBytes;
  await w.close();
}
const boundMBs = median(boundRuns);
const writerMBs = median(writerRuns);
const l1 = loadavg()[0]!;
console.log(
  `\nCOG DEFLATE, ${SIZE}²×${NB} float32, ${TS}-px tiles, zlib level ${p.compressionLevel} (${p.zlibStrategy === zlib.constants.Z_RLE ? 'Z_RLE' : 'default'}); load average ${l0.toFixed(1)} → ${l1.toFixed(1)}; medians of ${RUNS} runs, alternating\n`,
);
console.log('| | MB/s of uncompressed tiles |');
console.log('|---|---|');
console.log(`| bound: the same tiles, node:zlib, two at a time | ${boundMBs.toFixed(1)} (runs: ${boundRuns.map((x) => x.toFixed(0)).join(', ')}) |`);
console.log(
  `| CogWriter (interleave, predictor 3, overviews, DEFLATE; ${allTiles} tiles) | ${writerMBs.toFixed(1)} (runs: ${writerRuns.map((x) => x.toFixed(0)).join(', ')}) |`,
);
console.log(`\ncompressed tiles through temporary files: ${(spilled / 1e6).toFixed(1)} MB (beyond the writer's share of GEOTFR_MEMORY_BUDGET_MB)`);
console.log(`writer / bound: ${((100 * writerMBs) / boundMBs).toFixed(0)}% (target ≥ 80%)`);
console.log(
  JSON.stringify({
    bench: 'cog-deflate',
    size: SIZE,
    boundMBs,
    writerMBs,
    ratio: writerMBs / boundMBs,
    spilledBytes: spilled,
    boundRuns,
    writerRuns,
    load: [l0, l1],
  }),
);
