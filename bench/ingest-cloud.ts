/**
 * Distributed ingest benchmark (docs/semantics.md §13): a SIZE×SIZE × BANDS float32 prediction set
 * (256² patches in plain TFRecord files) through the local stack — real Pub/Sub emulator, GCS JSON
 * API server with compose, functions — with 1, 2 and 4 strip workers (child processes, one strip at a
 * time each), beside the embedded run (`ingestImage`, as `geotfr ingest-image` runs it) on the same
 * files in the same run. The COGs are checked byte-identical.
 *
 * Run: `npx tsc -p . && node dist/bench/ingest-cloud.js [--size 4096] [--bands 3] [--workers 1,2,4] [--strip-tile-rows 1] [--pin]`
 *
 * `--pin` (Linux, two or more cores) adds the comparison a deployment makes, one vCPU per instance
 * with storage and queue elsewhere: `geotfr ingest-image` pinned to core 0 (`taskset`), then the stack
 * with one strip worker pinned to core 0 and everything else (this process's GCS server, the Pub/Sub
 * emulator, the other functions) on the other cores.
 * Throughput is uncompressed pixel MB (10^6 bytes of float32 samples) per second: wall (request
 * POSTed → status `done`) and per worker (each strip's pixels over its own seconds, from the strip
 * markers: what one instance sustains, against the embedded single process).
 */
import { execFileSync } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { median } from './stats.js';
import { cliPath } from '../test/support/oracles.js';
import { startStack } from '../test/stack/stack.js';
import { encodeExample, floatFeature, type Feature } from '../shared/tfrecord/example.js';
import { frameRecords } from '../shared/tfrecord/record.js';
import { formatMixer } from '../shared/mixer.js';
import type { IngestStatus, StripMark } from '../shared/jobs/ingest-strips.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const SIZE = Number(arg('--size', '4096'));
const BANDS = Number(arg('--bands', '3'));
const WORKERS = arg('--workers', '1,2,4').split(',').map(Number);
const STRIP_TILE_ROWS = Number(arg('--strip-tile-rows', '1'));
const PIN = args.includes('--pin');
const PATCH = 256;
const PPR = SIZE / PATCH;
const TOTAL = PPR * PPR;
const FILES = 4;
const work = path.join(tmpdir(), 'geotfr-bench-ingest-cloud');
const pixelBytes = SIZE * SIZE * BANDS * 4;

/** Smooth-ish predictions (they compress like model output), written once and cached. */
async function predictions(): Promise<{ files: string[]; mixer: string }> {
  const dir = path.join(work, `p-${SIZE}x${BANDS}`);
  const files = Array.from({ length: FILES }, (_, i) => path.join(dir, `p-${String(i).padStart(5, '0')}.tfrecord`));
  const mixer = path.join(dir, 'p-mixer.json');
  if (existsSync(mixer)) return { files, mixer };
  await fs.mkdir(dir, { recursive: true });
  const per = TOTAL / FILES;
  for (let f = 0; f < FILES; f++) {
    const recs: Buffer[] = [];
    for (let i = f * per; i < (f + 1) * per; i++) {
      const feats = new Map<string, Feature>();
      for (let b = 0; b < BANDS; b++)
        feats.set(`b${b}`, floatFeature(Float32Array.from({ length: PATCH * PATCH }, (_, j) => Math.sin((i * 31 + j) / 997 + b) * Math.cos(j / 4111))));
      recs.push(encodeExample(feats));
    }
    await fs.writeFile(files[f]!, frameRecords(recs));
  }
  await fs.writeFile(
    mixer,
    formatMixer({
      projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, 400000, 0, -10, 5000000] } },
      patchDimensions: [PATCH, PATCH],
      patchesPerRow: PPR,
      totalPatches: TOTAL,
    }),
  );
  return { files, mixer };
}

interface Row {
  mode: string;
  workers: number;
  seconds: number;
  mbPerSec: number;
  perWorkerMbPerSec: number;
  strips: number;
  load: number;
  /** Compared with the embedded run on one core (`--pin`), not on all cores. */
  oneCore?: boolean;
  /** Median strip's seconds reading + compressing, and writing its parts (strip markers' phaseSeconds). */
  buildSeconds?: number;
  uploadSeconds?: number;
}

async function embedded(p: { files: string[]; mixer: string }): Promise<{ row: Row; cog: Buffer }> {
  const { ingestImage } = await import('../shared/ingest/image.js');
  const out = path.join(work, 'embedded.tif');
  const l0 = loadavg()[0]!;
  const t0 = performance.now();
  await ingestImage({ files: p.files, mixer: p.mixer, out });
  const seconds = (performance.now() - t0) / 1000;
  const mb = pixelBytes / 1e6 / seconds;
  return {
    row: { mode: 'embedded (geotfr ingest-image)', workers: 1, seconds, mbPerSec: mb, perWorkerMbPerSec: mb, strips: 1, load: (l0 + loadavg()[0]!) / 2 },
    cog: await fs.readFile(out),
  };
}

/** `geotfr ingest-image` on core 0 only; its own `seconds` (process start excluded, as for a warm strip worker). */
function embeddedOneCore(p: { files: string[]; mixer: string }): Row {
  const out = path.join(work, 'embedded-1core.tif');
  const l0 = loadavg()[0]!;
  const stdout = execFileSync('taskset', ['-c', '0', process.execPath, cliPath, 'ingest-image', '--mixer', p.mixer, '--out', out, ...p.files], {
    env: { ...process.env, GEOTFR_PROGRESS: '0' },
    encoding: 'utf8',
  });
  const seconds = (JSON.parse(stdout) as { seconds: number }).seconds;
  const mb = pixelBytes / 1e6 / seconds;
  return {
    mode: 'embedded, one core (taskset -c 0)',
    oneCore: true,
    workers: 1,
    seconds,
    mbPerSec: mb,
    perWorkerMbPerSec: mb,
    strips: 1,
    load: (l0 + loadavg()[0]!) / 2,
  };
}

/** Pins every thread of `pid` to `cpus` (taskset -a). */
const pin = (pid: number, cpus: string) => execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
/** Processes whose command line matches `pattern` (pgrep -f), minus this one. */
const pids = (pattern: string): number[] => {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((n) => n !== process.pid);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
};

async function stackRun(p: { files: string[]; mixer: string }, workers: number, want: Buffer, pinned = false): Promise<Row> {
  const dir = await fs.mkdtemp(path.join(work, 'gcs-'));
  const stack = await startStack({ stripWorkers: workers, dir, env: { GEOTFR_LOG_LEVEL: 'WARNING' } });
  const rest = `1-${availableParallelism() - 1}`;
  try {
    if (pinned) {
      const strip = pids('instance.js ingestStrip');
      if (strip.length !== 1) throw new Error(`--pin: expected one ingestStrip instance, found ${strip.length}`);
      for (const pid of [process.pid, ...pids('instance.js'), ...pids('pubsub-emulator')]) if (pid !== strip[0]) pin(pid, rest);
      pin(strip[0]!, '0');
    }
    const storage = new Storage({ projectId: stack.projectId, apiEndpoint: stack.storageHost });
    // Predictions in, the COG and the job state out: the predictions bucket, as infra/ deploys ingest.
    const bucket = storage.bucket(stack.buckets.predictions);
    for (const f of [...p.files, p.mixer]) await bucket.upload(f, { destination: `preds/${path.basename(f)}` });
    const jobId = `bench-${workers}`;
    const request = {
      files: p.files.map((f) => `gs://${stack.buckets.predictions}/preds/${path.basename(f)}`),
      mixer: `gs://${stack.buckets.predictions}/preds/${path.basename(p.mixer)}`,
      out: `gs://${stack.buckets.predictions}/out/${jobId}.tif`,
      stripTileRows: STRIP_TILE_ROWS,
    };
    const l0 = loadavg()[0]!;
    const t0 = performance.now();
    const res = await fetch(`${stack.functions.planIngest}/?jobId=${jobId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    if (res.status !== 202) throw new Error(`planIngest answered ${res.status}: ${await res.text()}`);
    let status: IngestStatus;
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const f = bucket.file(`.geotfr/jobs/${jobId}/status.json`);
      if (!(await f.exists())[0]) continue;
      status = JSON.parse((await f.download())[0].toString()) as IngestStatus;
      if (status.state === 'done' || status.state === 'failed') break;
    }
    const seconds = (performance.now() - t0) / 1000;
    if (status.state !== 'done') throw new Error(`bench job failed: ${JSON.stringify(status.errors)}`);
    const [cog] = await bucket.file(`out/${jobId}.tif`).download();
    if (!cog.equals(want)) throw new Error('the distributed COG differs from the embedded one');
    const [markFiles] = await bucket.getFiles({ prefix: `.geotfr/jobs/${jobId}/shards/` });
    const marks = await Promise.all(markFiles.map(async (f) => JSON.parse((await f.download())[0].toString()) as StripMark));
    // Each strip's own rows (not the patch rows it re-reads) over its own seconds.
    const stripPixels = pixelBytes / marks.length;
    return {
      mode: pinned ? 'stack, the strip worker on core 0, the rest on the others' : 'stack',
      oneCore: pinned,
      workers,
      seconds,
      mbPerSec: pixelBytes / 1e6 / seconds,
      perWorkerMbPerSec: median(marks.map((m) => stripPixels / 1e6 / m.seconds)),
      buildSeconds: median(marks.map((m) => m.phaseSeconds?.build ?? NaN)),
      uploadSeconds: median(marks.map((m) => m.phaseSeconds?.upload ?? NaN)),
      strips: marks.length,
      load: (l0 + loadavg()[0]!) / 2,
    };
  } finally {
    await stack.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

process.env.GEOTFR_PROGRESS = '0';
const p = await predictions();
const rows: Row[] = [];
const base = await embedded(p);
rows.push(base.row);
process.stderr.write(`embedded: ${base.row.seconds.toFixed(1)} s\n`);
for (const w of WORKERS) {
  rows.push(await stackRun(p, w, base.cog));
  process.stderr.write(`stack, ${w} strip worker(s): ${rows.at(-1)!.seconds.toFixed(1)} s\n`);
}
let oneCore: Row | undefined;
if (PIN) {
  if (availableParallelism() < 2) throw new Error('--pin needs two or more cores');
  oneCore = embeddedOneCore(p);
  rows.push(oneCore);
  rows.push(await stackRun(p, 1, base.cog, true));
  process.stderr.write(`pinned: embedded ${oneCore.seconds.toFixed(1)} s, stack ${rows.at(-1)!.seconds.toFixed(1)} s\n`);
}
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
console.log(
  `\n${SIZE}×${SIZE}×${BANDS} float32 ingest, ${TOTAL} patches of ${PATCH}² in ${FILES} plain files, strips of ${STRIP_TILE_ROWS} tile row(s); COGs byte-identical\n`,
);
console.log(
  '| mode | strip workers | wall s | pixel MB/s (wall) | per-worker MB/s (median strip) | per-worker / embedded | strip s: read + compress / upload | strips | load avg |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.mode} | ${r.workers} | ${fmt(r.seconds)} | ${fmt(r.mbPerSec)} | ${fmt(r.perWorkerMbPerSec)} | ${fmt(r.perWorkerMbPerSec / (r.oneCore && oneCore ? oneCore.mbPerSec : base.row.mbPerSec), 2)} | ${r.buildSeconds === undefined ? '–' : `${fmt(r.buildSeconds, 2)} / ${fmt(r.uploadSeconds!, 2)}`} | ${r.strips} | ${fmt(r.load)} |`,
  );
if (oneCore) console.log('\nThe pinned rows compare with the embedded run on one core; the others with the embedded run on all cores.');
console.log(JSON.stringify({ bench: 'ingest-cloud', size: SIZE, bands: BANDS, patch: PATCH, rows }));
process.exit(0);
