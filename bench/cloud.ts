/**
 * Cloud pipeline benchmark (issue 6): an 8192×8192, 8-band export through the local stack (real
 * Pub/Sub emulator, GCS JSON API server, functions) with 1, 2 and 4 shard workers (function
 * instances, one shard at a time each), against the embedded runner (`runImageExport`, as
 * `geotfr export-image` runs it) on the same request in the same run.
 *
 * Run: `npx tsc -p . && node dist/bench/cloud.js [--size 8192] [--bands 8] [--workers 1,2,4] [--runs 1] [--max-file-mib 64] [--no-baseline]`
 * Prints a markdown table and one JSON line. Throughput is uncompressed framed MB (10^6 bytes) of
 * TFRecord per wall second, from the request being published to the job's status turning `done`;
 * per-shard seconds are the workers' own timings from the job's shard markers (median, max).
 */
import { promises as fs, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { PubSub } from '@google-cloud/pubsub';
import { writeGeoTiff } from '../test/support/rasters.js';
import { median } from './stats.js';
import { startStack } from '../test/stack/stack.js';
import type { JobStatus } from '../shared/jobs/status.js';
import type { ShardMark } from '../shared/jobs/store.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const SIZE = Number(arg('--size', '8192'));
const BANDS = Number(arg('--bands', '8'));
const WORKERS = arg('--workers', '1,2,4').split(',').map(Number);
const RUNS = Number(arg('--runs', '1'));
const PATCH = 256;
/** 64 MiB files by default: 32 patches (8 bands × 256² float32 = 2 MiB each) per shard, 32 shards at 8192². */
const MAX_FILE = Number(arg('--max-file-mib', '64')) * 2 ** 20;
const BASELINE = !args.includes('--no-baseline');
const work = path.join(tmpdir(), 'geotfr-bench-cloud');

/** A uint16 source that compresses like imagery (smooth field + noise), cached between runs. */
async function source(): Promise<string> {
  const file = path.join(work, `src-${SIZE}x${SIZE}x${BANDS}.tif`);
  if (existsSync(file)) return file;
  await fs.mkdir(work, { recursive: true });
  process.stderr.write(`making ${file} with GDAL...\n`);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
  const bands = Array.from({ length: BANDS }, (_, b) => {
    const a = new Uint16Array(SIZE * SIZE);
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++) a[y * SIZE + x] = 1000 + Math.round(800 * Math.sin((x + b * 97) / 300) * Math.cos(y / 410) + 200 * rnd());
    return a;
  });
  await writeGeoTiff(file + '.tmp.tif', {
    width: SIZE,
    height: SIZE,
    bands,
    type: 'uint16',
    affine: [10, 0, 400000, 0, -10, 5000000],
    crs: 'EPSG:32633',
    layout: 'COG',
    blockSize: 512,
    compress: 'DEFLATE',
  });
  await fs.rename(file + '.tmp.tif', file);
  return file;
}

interface Row {
  mode: string;
  workers: number;
  seconds: number;
  mbPerSec: number;
  shards: number;
  shardSecondsMedian: number;
  shardSecondsMax: number;
  bytesFramed: number;
  bytesStored: number;
  load: number;
}

async function cloudRun(src: string, workers: number, run: number): Promise<Row> {
  const dir = await fs.mkdtemp(path.join(work, 'gcs-'));
  const stack = await startStack({ workers, dir, env: { GEOTFR_LOG_LEVEL: 'WARNING' } });
  try {
    const storage = new Storage({ projectId: stack.projectId, apiEndpoint: stack.storageHost });
    const bucket = storage.bucket(stack.bucket);
    // Sources live in their own bucket, as infra/ deploys it (the planner and workers may read only that one).
    await storage.bucket(stack.buckets.sources).upload(src, { destination: 'src/scene.tif' });
    const pubsub = new PubSub({ projectId: stack.projectId });
    const jobId = `bench-${workers}-${run}`;
    const request = {
      image: `gs://${stack.buckets.sources}/src/scene.tif`,
      bucket: stack.bucket,
      fileNamePrefix: `bench/${jobId}/p`,
      formatOptions: { patchDimensions: [PATCH, PATCH], maxFileSize: MAX_FILE },
    };
    const l0 = loadavg()[0]!;
    const t0 = performance.now();
    await pubsub.topic(stack.requestTopic).publishMessage({ json: request, attributes: { jobId } });
    let status: JobStatus | undefined;
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const f = bucket.file(`.geotfr/jobs/${jobId}/status.json`);
      const [exists] = await f.exists();
      if (!exists) continue;
      status = JSON.parse((await f.download())[0].toString()) as JobStatus;
      if (status.state === 'done' || status.state === 'failed') break;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (status.state !== 'done') throw new Error(`bench job failed: ${JSON.stringify(status.errors)}`);
    const [markFiles] = await bucket.getFiles({ prefix: `.geotfr/jobs/${jobId}/shards/` });
    const marks = await Promise.all(markFiles.map(async (f) => JSON.parse((await f.download())[0].toString()) as ShardMark));
    const [planBuf] = await bucket.file(`.geotfr/jobs/${jobId}/plan.json`).download();
    const plan = JSON.parse(planBuf.toString()) as { shards: { bytesFramed: number }[] };
    const framed = plan.shards.reduce((a, s) => a + s.bytesFramed, 0);
    await pubsub.close();
    return {
      mode: 'stack',
      workers,
      seconds,
      mbPerSec: framed / 1e6 / seconds,
      shards: marks.length,
      shardSecondsMedian: median(marks.map((m) => m.seconds)),
      shardSecondsMax: Math.max(...marks.map((m) => m.seconds)),
      bytesFramed: framed,
      bytesStored: status.bytes,
      load: (l0 + loadavg()[0]!) / 2,
    };
  } finally {
    await stack.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function baselineRun(src: string, run: number): Promise<Row> {
  const { runImageExport } = await import('../shared/export/run.js');
  const out = await fs.mkdtemp(path.join(work, 'local-'));
  try {
    const l0 = loadavg()[0]!;
    const t0 = performance.now();
    const s = await runImageExport(
      { image: src, bucket: out, fileNamePrefix: `p${run}`, formatOptions: { patchDimensions: [PATCH, PATCH], maxFileSize: MAX_FILE } },
      { workers: cpus().length },
    );
    const seconds = (performance.now() - t0) / 1000;
    return {
      mode: 'embedded (geotfr export-image)',
      workers: cpus().length,
      seconds,
      mbPerSec: s.bytesFramed / 1e6 / seconds,
      shards: s.files,
      shardSecondsMedian: NaN,
      shardSecondsMax: NaN,
      bytesFramed: s.bytesFramed,
      bytesStored: s.bytes,
      load: (l0 + loadavg()[0]!) / 2,
    };
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
}

const src = await source();
process.env.GEOTFR_PROGRESS = '0';
const rows: Row[] = [];
for (let r = 0; r < RUNS; r++) {
  if (BASELINE) {
    rows.push(await baselineRun(src, r));
    process.stderr.write(`baseline run ${r}: ${rows.at(-1)!.seconds.toFixed(1)} s\n`);
  }
  for (const w of WORKERS) {
    rows.push(await cloudRun(src, w, r));
    process.stderr.write(`stack, ${w} worker(s), run ${r}: ${rows.at(-1)!.seconds.toFixed(1)} s\n`);
  }
}
// Medians per configuration over the runs.
const keys = [...new Set(rows.map((r) => `${r.mode}|${r.workers}`))];
const summary = keys.map((k) => {
  const rs = rows.filter((r) => `${r.mode}|${r.workers}` === k);
  return {
    ...rs[0]!,
    seconds: median(rs.map((r) => r.seconds)),
    mbPerSec: median(rs.map((r) => r.mbPerSec)),
    shardSecondsMedian: median(rs.map((r) => r.shardSecondsMedian)),
    shardSecondsMax: median(rs.map((r) => r.shardSecondsMax)),
    load: median(rs.map((r) => r.load)),
    runs: rs.length,
  };
});
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
console.log(`\n${SIZE}×${SIZE}×${BANDS} export, ${PATCH}² patches, ${MAX_FILE / 2 ** 20} MiB files, gzip; ${cpus().length} cores; medians of ${RUNS} run(s)\n`);
console.log('| mode | workers | wall s | framed MB/s | shards | per-shard s (median / max) | stored MB | load avg |');
console.log('|---|---|---|---|---|---|---|---|');
for (const s of summary)
  console.log(
    `| ${s.mode} | ${s.workers} | ${fmt(s.seconds)} | ${fmt(s.mbPerSec)} | ${s.shards} | ${fmt(s.shardSecondsMedian, 2)} / ${fmt(s.shardSecondsMax, 2)} | ${fmt(s.bytesStored / 1e6, 0)} | ${fmt(s.load, 1)} |`,
  );
console.log(JSON.stringify({ bench: 'cloud', size: SIZE, bands: BANDS, patch: PATCH, maxFileSize: MAX_FILE, runs: RUNS, rows: summary }));
process.exit(0);
