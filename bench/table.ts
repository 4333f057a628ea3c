/**
 * Table export benchmark (issue 5): 1 million points with 10 numeric properties, whole-process
 * `geotfr export-table` against `bench/python/table_tf.py` (json/csv → tf.train.Example →
 * TFRecordWriter, gzip) on the same inputs in the same run, plus peak RSS at 250k vs 1M rows to show
 * memory does not grow with the table.
 *
 *   npx tsc -p . --outDir dist && node dist/bench/table.js [--rows 1000000] [--repeats 3] [--python-repeats 1] [--formats ndjson,csv]
 *
 * Inputs are generated once into $GEOTFR_BENCH_DIR (default: a directory under the OS temp dir) and
 * reused by later runs. Reports medians; peak RSS is the child's VmHWM, sampled every 20 ms.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { cliPath, repoRoot } from '../test/support/oracles.js';
import { mulberry32 } from '../test/support/random.js';
import { median } from './stats.js';

const py = process.env.GEOTFR_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
const pyScript = path.join(repoRoot, 'bench', 'python', 'table_tf.py');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const rows = Number(arg('rows', '1000000'));
const repeats = Number(arg('repeats', '3'));
const pyRepeats = Number(arg('python-repeats', '1'));
const formats = arg('formats', 'ndjson,csv').split(',') as ('ndjson' | 'csv')[];
const dir = process.env.GEOTFR_BENCH_DIR ?? path.join(tmpdir(), 'geotfr-bench-table');
mkdirSync(dir, { recursive: true });

/** Writes `n` random points (seeded) with properties b0..b9 as NDJSON and CSV, once. */
async function generate(n: number): Promise<{ ndjson: string; csv: string }> {
  const nd = path.join(dir, `points-${n}.geojsonl`);
  const csv = path.join(dir, `points-${n}.csv`);
  if (existsSync(nd) && existsSync(csv)) return { ndjson: nd, csv };
  const r = mulberry32(12345);
  const w1 = createWriteStream(nd + '.tmp');
  const w2 = createWriteStream(csv + '.tmp');
  w2.write('longitude,latitude,' + Array.from({ length: 10 }, (_, k) => `b${k}`).join(',') + '\n');
  let b1: string[] = [];
  let b2: string[] = [];
  for (let i = 0; i < n; i++) {
    const lon = Math.round((r() * 360 - 180) * 1e6) / 1e6;
    const lat = Math.round((r() * 180 - 90) * 1e6) / 1e6;
    const vals = Array.from({ length: 10 }, () => Math.round(r() * 1e7) / 1e4);
    const props: Record<string, number> = {};
    vals.forEach((v, k) => (props[`b${k}`] = v));
    b1.push(JSON.stringify({ type: 'Feature', geometry: { type: 'Point', coordinates: [lon, lat] }, properties: props }));
    b2.push(`${lon},${lat},${vals.join(',')}`);
    if (b1.length === 10000 || i === n - 1) {
      if (!w1.write(b1.join('\n') + '\n')) await once(w1, 'drain');
      if (!w2.write(b2.join('\n') + '\n')) await once(w2, 'drain');
      b1 = [];
      b2 = [];
    }
  }
  w1.end();
  w2.end();
  await Promise.all([once(w1, 'finish'), once(w2, 'finish')]);
  renameSync(nd + '.tmp', nd);
  renameSync(csv + '.tmp', csv);
  return { ndjson: nd, csv };
}

interface Run {
  seconds: number;
  peakRssMB: number;
  stdout: string;
}

/** Runs a whole process, sampling its peak RSS (VmHWM) until it exits. */
async function measure(cmd: string, args: string[]): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GEOTFR_PROGRESS: '0', TF_CPP_MIN_LOG_LEVEL: '3' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      // exited between samples
    }
  }, 20);
  const [code] = await once(child, 'close');
  clearInterval(poll);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr}`);
  return { seconds: (performance.now() - t0) / 1000, peakRssMB: peak / 1024, stdout };
}

async function geotfrRun(input: string, prefix: string): Promise<Run> {
  const req = path.join(dir, `${prefix}.request.json`);
  writeFileSync(req, JSON.stringify({ collection: input, bucket: path.join(dir, 'out'), fileNamePrefix: prefix, fileFormat: 'TFRecord' }));
  const r = await measure(process.execPath, [cliPath, 'export-table', req]);
  const s = JSON.parse(r.stdout);
  if (s.features !== rowsOf(input)) throw new Error(`geotfr wrote ${s.features} features, expected ${rowsOf(input)}`);
  return r;
}
async function pythonRun(input: string, prefix: string): Promise<Run> {
  const r = await measure(py, [pyScript, input, path.join(dir, 'out', `${prefix}.py.tfrecord.gz`)]);
  const s = JSON.parse(r.stdout.trim().split('\n').pop()!);
  if (s.features !== rowsOf(input)) throw new Error(`python wrote ${s.features} features`);
  return r;
}
const rowsOf = (input: string) => Number(/points-(\d+)\./.exec(input)![1]);

const small = Math.round(rows / 4);
const t0 = performance.now();
const big = await generate(rows);
const quarter = await generate(small);
mkdirSync(path.join(dir, 'out'), { recursive: true });
console.error(
  `inputs in ${dir} (${((performance.now() - t0) / 1000).toFixed(1)} s): ${formats.map((f) => `${path.basename(big[f])} ${(statSync(big[f]).size / 1e6).toFixed(0)} MB`).join(', ')}`,
);

const results: Record<string, unknown>[] = [];
for (const f of formats) {
  const g: Run[] = [];
  const p: Run[] = [];
  const gq: Run[] = [];
  for (let i = 0; i < Math.max(repeats, pyRepeats); i++) {
    if (i < repeats) g.push(await geotfrRun(big[f], `bench-${f}`));
    if (i < pyRepeats) p.push(await pythonRun(big[f], `bench-${f}`));
    if (i < repeats) gq.push(await geotfrRun(quarter[f], `bench-${f}-q`));
    console.error(`${f} round ${i + 1}: geotfr ${g.at(-1)?.seconds.toFixed(1)} s, python ${p.at(-1)?.seconds.toFixed(1) ?? '-'} s`);
  }
  const gs = median(g.map((x) => x.seconds));
  const ps = median(p.map((x) => x.seconds));
  results.push({
    format: f,
    rows,
    geotfrSeconds: +gs.toFixed(2),
    pythonSeconds: +ps.toFixed(2),
    speedup: +(ps / gs).toFixed(1),
    geotfrRowsPerSecond: Math.round(rows / gs),
    geotfrPeakRssMB: +median(g.map((x) => x.peakRssMB)).toFixed(0),
    [`geotfrPeakRssMB_${small}`]: +median(gq.map((x) => x.peakRssMB)).toFixed(0),
    pythonPeakRssMB: +median(p.map((x) => x.peakRssMB)).toFixed(0),
    runs: { geotfr: g.map((x) => +x.seconds.toFixed(2)), python: p.map((x) => +x.seconds.toFixed(2)) },
  });
}
console.log('| input | rows | geotfr s | python s | speedup | geotfr peak RSS (1M / 250k) | python peak RSS |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results)
  console.log(
    `| ${r.format} | ${rows} | ${r.geotfrSeconds} | ${r.pythonSeconds} | ${r.speedup}× | ${r.geotfrPeakRssMB} / ${r[`geotfrPeakRssMB_${small}`]} MB | ${r.pythonPeakRssMB} MB |`,
  );
console.log(JSON.stringify({ bench: 'table', loadavg: loadavg().map((x) => +x.toFixed(1)), results }));
rmSync(path.join(dir, 'out'), { recursive: true, force: true });
