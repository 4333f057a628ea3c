/**
 * Benchmark for issue 4: whole-process wall time and peak RSS of `geotfr ingest-image` against a
 * Python ingest written the usual way (bench/python/ingest_tf_gdal.py: tf.data parse → numpy mosaic →
 * GDAL COG driver with DEFLATE), in the same run, on the same files:
 * 256 predictions of 256×256 × 3 float bands in 4 gzip files (a 4096×4096 mosaic), then 4× the
 * patches (4096×16384, same width) for geotfr's peak RSS, which must stay ≤ 1.3× the smaller run's.
 *
 * usage: node DIST/bench/ingest.js [--runs 3] [--patches 256] [--keep DIR]
 * Peak RSS is the largest ru_maxrss among the measured process and its children (Python's
 * resource.getrusage(RUSAGE_CHILDREN) around the command), so gdal_translate counts for the baseline.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeExample, floatFeature, type Feature } from '../shared/tfrecord/example.js';
import { formatMixer, type Mixer } from '../shared/mixer.js';
import { RecordWriter } from '../shared/tfrecord/record.js';
import { cliPath, repoRoot } from '../test/support/oracles.js';
import { median } from './stats.js';

const venvPython = path.join(repoRoot, '.venv', 'bin', 'python');
const baseline = path.join(repoRoot, 'bench', 'python', 'ingest_tf_gdal.py');

const PATCH = 256;
const PPR = 16;
const BANDS = ['water', 'forest', 'urban'];
const FILES = 4;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

/** Writes `total` patches of smooth "probability" fields plus noise (like a model's softmax output). */
async function makePredictions(dir: string, total: number): Promise<{ mixer: string; files: string[] }> {
  await fs.mkdir(dir, { recursive: true });
  const mixer: Mixer = {
    projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, 500000, 0, -10, 4200000] } },
    patchDimensions: [PATCH, PATCH],
    patchesPerRow: PPR,
    totalPatches: total,
  };
  const mixerPath = path.join(dir, 'pred-mixer.json');
  await fs.writeFile(mixerPath, formatMixer(mixer));
  const files: string[] = [];
  const per = Math.ceil(total / FILES);
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296;
  for (let f = 0; f < FILES; f++) {
    const file = path.join(dir, `pred-${String(f).padStart(5, '0')}.tfrecord.gz`);
    files.push(file);
    const sink = createWriteStream(file);
    const w = new RecordWriter(sink, { compressed: true, compressionLevel: 1 });
    for (let i = f * per; i < Math.min(total, (f + 1) * per); i++) {
      const r = Math.floor(i / PPR);
      const c = i % PPR;
      const feats = BANDS.map((name, b) => {
        const v = new Float32Array(PATCH * PATCH);
        for (let y = 0; y < PATCH; y++) {
          const gy = r * PATCH + y;
          for (let x = 0; x < PATCH; x++) {
            const gx = c * PATCH + x;
            const s = 0.5 + 0.45 * Math.sin(gx / (60 + 20 * b)) * Math.cos(gy / (45 + 15 * b));
            v[y * PATCH + x] = Math.min(1, Math.max(0, s + 0.02 * (rand() - 0.5)));
          }
        }
        return [name, floatFeature(v)] as [string, Feature];
      });
      await w.write(encodeExample(feats));
    }
    await w.close();
  }
  return { mixer: mixerPath, files };
}

interface Measured {
  seconds: number;
  maxRssMB: number;
}

/** Runs a command under Python's getrusage(RUSAGE_CHILDREN) to get wall time and peak RSS. */
function measure(cmd: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  const wrapper = [
    'import json, resource, subprocess, sys, time',
    't = time.perf_counter()',
    'r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)',
    'dt = time.perf_counter() - t',
    'if r.returncode: sys.exit(f"command failed ({r.returncode}): {sys.argv[1:]}")',
    'print(json.dumps({"seconds": dt, "maxRssMB": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))',
  ].join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn(existsSync(venvPython) ? venvPython : 'python3', ['-c', wrapper, ...cmd], {
      env: { ...process.env, GEOTFR_PROGRESS: '0', TF_CPP_MIN_LOG_LEVEL: '3', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`${cmd.join(' ')} failed (${code})`))));
  });
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '3'));
  const patches = Number(arg('patches', '256'));
  const keep = arg('keep', '');
  const work = keep || (await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-bench-ingest-')));
  try {
    process.stderr.write(`generating ${patches} and ${4 * patches} predictions in ${work}\n`);
    const small = await makePredictions(path.join(work, 'small'), patches);
    const large = await makePredictions(path.join(work, 'large'), 4 * patches);
    const geo: Measured[] = [];
    const py: Measured[] = [];
    const geoLarge: Measured[] = [];
    const outTif = path.join(work, 'geotfr.tif');
    const outTif4x = path.join(work, 'geotfr4x.tif');
    const pyTif = path.join(work, 'python.tif');
    // Each command starts on a clean slate: its output removed and the previous command's writes
    // flushed (`sync`) before the clock starts, so neither tool pays for the other's (or its own
    // previous run's) page-cache writeback or the freeing of a replaced output.
    const fresh = async (out: string) => {
      await fs.rm(out, { force: true });
      spawnSync('sync');
    };
    for (let i = 0; i < runs; i++) {
      // Alternate the two so background load hits both alike.
      await fresh(outTif);
      geo.push(await measure([process.execPath, cliPath, 'ingest-image', '--mixer', small.mixer, '--out', outTif, ...small.files]));
      await fresh(pyTif);
      py.push(await measure([existsSync(venvPython) ? venvPython : 'python3', baseline, small.mixer, pyTif, BANDS.join(','), ...small.files]));
      await fresh(outTif4x);
      geoLarge.push(await measure([process.execPath, cliPath, 'ingest-image', '--mixer', large.mixer, '--out', outTif4x, ...large.files]));
      process.stderr.write(
        `run ${i + 1}/${runs}: geotfr ${geo[i].seconds.toFixed(2)} s, python ${py[i].seconds.toFixed(2)} s, geotfr 4× ${geoLarge[i].seconds.toFixed(2)} s\n`,
      );
    }
    const sizes = await Promise.all([fs.stat(outTif), fs.stat(pyTif), fs.stat(outTif4x)]);
    const r = {
      patches,
      mosaic: `${PPR * PATCH}×${(patches / PPR) * PATCH}×${BANDS.length} float32`,
      runs,
      cpus: os.cpus().length,
      geotfr: { seconds: median(geo.map((m) => m.seconds)), maxRssMB: median(geo.map((m) => m.maxRssMB)) },
      python: { seconds: median(py.map((m) => m.seconds)), maxRssMB: median(py.map((m) => m.maxRssMB)) },
      geotfr4x: { seconds: median(geoLarge.map((m) => m.seconds)), maxRssMB: median(geoLarge.map((m) => m.maxRssMB)) },
      // Same pixels, same tiling, DEFLATE level 6 and overviews in both: geotfr with predictor 3 (zlib's
      // Z_RLE strategy), the baseline with GDAL's COG default (no predictor, default strategy).
      outputBytes: { geotfr: sizes[0].size, python: sizes[1].size, geotfr4x: sizes[2].size },
    };
    const speedup = r.python.seconds / r.geotfr.seconds;
    const rssRatio = r.geotfr4x.maxRssMB / r.geotfr.maxRssMB;
    console.log(
      [
        `| ingest ${r.mosaic} (${patches} patches, ${FILES} gzip files) | wall s (median of ${runs}) | peak RSS MB |`,
        '|---|---|---|',
        `| geotfr ingest-image | ${r.geotfr.seconds.toFixed(2)} | ${r.geotfr.maxRssMB.toFixed(0)} |`,
        `| Python tf.data → numpy → gdal_translate -of COG | ${r.python.seconds.toFixed(2)} | ${r.python.maxRssMB.toFixed(0)} |`,
        `| geotfr ingest-image, 4× patches | ${r.geotfr4x.seconds.toFixed(2)} | ${r.geotfr4x.maxRssMB.toFixed(0)} |`,
        '',
        `output: geotfr ${(r.outputBytes.geotfr / 1e6).toFixed(0)} MB (DEFLATE 6, predictor 3), Python/GDAL ${(r.outputBytes.python / 1e6).toFixed(0)} MB (DEFLATE 6, no predictor: GDAL's COG default)`,
        `speedup ${speedup.toFixed(2)}× (target ≥ 4×, issue 14); peak RSS 4×/1× ${rssRatio.toFixed(2)} (target ≤ 1.3)`,
      ].join('\n'),
    );
    console.log(JSON.stringify({ ...r, speedup, rssRatio }));
    if (speedup < 4 || rssRatio > 1.3) process.exitCode = 1;
  } finally {
    if (!keep) await fs.rm(work, { recursive: true, force: true });
  }
}

await main();
