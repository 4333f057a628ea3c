/**
 * Codec benchmark (issue 2): Example encode/decode and TFRecord framing+CRC, side by side with
 * protobufjs and TensorFlow's Python writer/parser on the same data in one run; plus node:zlib vs pako
 * gzip at level 6 on raster-like float32 bytes (the choice recorded in the README).
 *
 * Run: `npx tsc -p . && node dist/bench/codec.js [--runs N] [--no-tf]`. Prints a markdown table and
 * one JSON line. Figures are MB/s (10^6 bytes of serialized Example, framed stream, or raw input),
 * medians over N runs of at least 0.4 s each.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import pako from 'pako';
import protobuf from 'protobufjs';
import { crc32c, crc32cImplementation } from '../shared/tfrecord/crc32c.js';
import { decodeExample, encodeExample, encodeExampleInto, floatFeature, type Features } from '../shared/tfrecord/example.js';
import { RecordWriter, frameRecords, parseRecordsSync, readRecords } from '../shared/tfrecord/record.js';
import { repoRoot } from '../test/support/oracles.js';
import { median } from './stats.js';

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 5;
const WITH_TF = !args.includes('--no-tf');
const MIN_SECS = 0.4;

// ------------------------------------------------------------------------------------------------
// Data: 8 bands x 256 x 256 float32, raster-like (smooth fields plus noise, like reflectances).

const BANDS = 8;
const N = 65_536;
const W = 256;
const names = Array.from({ length: BANDS }, (_, i) => `B${i + 1}`);
let seed = 12345;
const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const bands = names.map((_, b) => {
  const v = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const x = i % W;
    const y = Math.floor(i / W);
    v[i] = 0.2 + 0.1 * Math.sin((x + 13 * b) / 23) * Math.cos(y / 31) + 0.01 * rand();
  }
  return v;
});
const features: Features = new Map(names.map((n, i) => [n, floatFeature(bands[i])]));
const payload = encodeExample(features);

// ------------------------------------------------------------------------------------------------

/** MB/s of `bytesPerCall`, median over RUNS runs of at least MIN_SECS each. */
function rate(fn: () => unknown, bytesPerCall: number): number {
  const out: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let n = 0;
    const t0 = performance.now();
    let dt = 0;
    do {
      fn();
      n++;
      dt = (performance.now() - t0) / 1000;
    } while (dt < MIN_SECS);
    out.push((bytesPerCall * n) / dt / 1e6);
  }
  return median(out);
}

async function rateAsync(fn: () => Promise<unknown>, bytesPerCall: number): Promise<number> {
  const out: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    let n = 0;
    const t0 = performance.now();
    let dt = 0;
    do {
      await fn();
      n++;
      dt = (performance.now() - t0) / 1000;
    } while (dt < MIN_SECS);
    out.push((bytesPerCall * n) / dt / 1e6);
  }
  return median(out);
}

let sink = 0; // keeps results alive so nothing is optimised away

// Example encode / decode
const pbRoot = protobuf.loadSync(path.join(repoRoot, 'proto', 'example.proto'));
const PbExample = pbRoot.lookupType('tensorflow.Example');
const pbMsg = PbExample.fromObject({ features: { feature: Object.fromEntries(names.map((n, i) => [n, { floatList: { value: Array.from(bands[i]) } }])) } });
if (!Buffer.from(PbExample.encode(pbMsg).finish()).equals(payload)) throw new Error('protobufjs and geotfr disagree: the benchmark data is not comparable');

const results: Record<string, number> = {};
results.encode_geotfr = rate(() => (sink += encodeExample(features).length), payload.length);
results.encode_protobufjs = rate(() => (sink += PbExample.encode(pbMsg).finish().length), payload.length);

results.encode_geotfr_into = (() => {
  const out = Buffer.allocUnsafe(payload.length);
  return rate(() => (sink += encodeExampleInto(features, out)), payload.length);
})();

// Decode: whether float lists can be viewed in place depends on where the payload sits (varint and
// name lengths), so both cases are timed: 4-byte aligned floats (zero-copy views) and misaligned
// (copied into one arena per record).
const placed = [0, 1, 2, 3].map((shift) => {
  const host = Buffer.alloc(payload.length + 4);
  payload.copy(host, shift);
  const view = host.subarray(shift, shift + payload.length);
  return { view, zeroCopy: (decodeExample(view).get('B1')!.value as Float32Array).buffer === host.buffer };
});
const alignedView = placed.find((p) => p.zeroCopy)!.view;
const recordView = placed.find((p) => !p.zeroCopy)!.view;
results.decode_geotfr_aligned = rate(() => (sink += decodeExample(alignedView).size), payload.length);
results.decode_geotfr = rate(() => (sink += decodeExample(recordView).size), payload.length);
// Misaligned with { inPlace: true } (floats moved within the record's own, warm memory). Each call
// first restores the record bytes (a 2 MB memcpy, counted in the figure).
results.decode_geotfr_inplace = (() => {
  const mis = placed.find((p) => !p.zeroCopy)!;
  const host = Buffer.alloc(payload.length + 4);
  const at = mis.view.byteOffset; // a misaligned shift (hosts are fresh ArrayBuffers at offset 0)
  const view = host.subarray(at, at + payload.length);
  return rate(() => {
    payload.copy(host, at);
    sink += decodeExample(view, {}, { inPlace: true }).size;
  }, payload.length);
})();
// Misaligned, then touching every value (a sum), for a figure that does not rest on views.
results.decode_geotfr_touch = rate(() => {
  let s = 0;
  for (const f of decodeExample(recordView).values()) {
    const v = f.value as Float32Array;
    for (let i = 0; i < v.length; i++) s += v[i];
  }
  sink += s;
}, payload.length);
// Baselines showing what the machine gives right now (load from other processes shows here).
results.memcpy_reused = (() => {
  const dst = Buffer.allocUnsafe(payload.length);
  return rate(() => (sink += payload.copy(dst)), payload.length);
})();
results.crc32c = rate(() => (sink += crc32c(payload)), payload.length);
results.memcpy_fresh = rate(() => (sink += payload.copy(Buffer.allocUnsafeSlow(payload.length))), payload.length);
results.decode_protobufjs = rate(() => (sink += Object.keys((PbExample.decode(recordView) as any).features.feature).length), payload.length);

// Framing + CRC: 16 records of the Example per stream.
const RECORDS = 16;
const payloads = Array.from({ length: RECORDS }, () => payload);
const framed = frameRecords(payloads);
const nullSink = () =>
  new Writable({
    highWaterMark: 1 << 22,
    write(_c, _e, cb) {
      cb();
    },
    writev(_c, cb) {
      cb();
    },
  });
results.frame_write_geotfr = await rateAsync(async () => {
  const w = new RecordWriter(nullSink());
  for (const p of payloads) await w.write(p);
  await w.close();
}, framed.length);
results.frame_read_geotfr_sync = rate(() => {
  for (const r of parseRecordsSync(framed)) sink += r.data.length;
}, framed.length);
const chunks: Buffer[] = [];
for (let i = 0; i < framed.length; i += 1 << 20) chunks.push(framed.subarray(i, i + (1 << 20)));
results.frame_read_geotfr_stream = await rateAsync(async () => {
  for await (const r of readRecords(chunks)) sink += r.data.length;
}, framed.length);

// gzip level 6 (docs/semantics.md §5) on raster-like float32 bytes (the framed stream: 32 MiB).
const gzInput = framed;
const gzNode = zlib.gzipSync(gzInput, { level: 6 });
const gzPako = pako.gzip(gzInput, { level: 6 });
const gzRuns = 3;
const rateFew = (fn: () => unknown, bytes: number) => {
  const out: number[] = [];
  for (let r = 0; r < gzRuns; r++) {
    const t0 = performance.now();
    fn();
    out.push(bytes / ((performance.now() - t0) / 1000) / 1e6);
  }
  return median(out);
};
results.gzip6_node = rateFew(() => (sink += zlib.gzipSync(gzInput, { level: 6 }).length), gzInput.length);
results.gzip6_pako = rateFew(() => (sink += pako.gzip(gzInput, { level: 6 }).length), gzInput.length);
results.gunzip_node = rateFew(() => (sink += zlib.gunzipSync(gzNode).length), gzInput.length);
results.gunzip_pako = rateFew(() => (sink += pako.ungzip(gzPako).length), gzInput.length);
const gzipRatio = { node: gzNode.length / gzInput.length, pako: gzPako.length / gzInput.length };

// TensorFlow's Python writer and parser on the same data, in this run.
let tf: Record<string, number | string> | { error: string } = { error: 'skipped (--no-tf)' };
if (WITH_TF) {
  const python = process.env.GEOTFR_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-bench-'));
  try {
    const raw = path.join(dir, 'bands.f32');
    writeFileSync(raw, Buffer.concat(bands.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))));
    const out = execFileSync(python, [path.join(repoRoot, 'bench', 'python', 'codec_tf.py'), raw, names.join(','), String(RUNS)], {
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', PYTHONWARNINGS: 'ignore' },
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 1 << 20,
    });
    tf = JSON.parse(out.toString());
    // TensorFlow's Python protobuf may order map entries differently; sizes must match.
    if ((tf as any).payloadBytes !== payload.length) throw new Error(`TensorFlow's Example is ${(tf as any).payloadBytes} bytes, ours ${payload.length}`);
  } catch (err) {
    tf = { error: (err as Error).message.split('\n')[0] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------

const f = (x: number | string | undefined) => (typeof x === 'number' ? Math.round(x).toLocaleString('en-US') : (x ?? 'n/a'));
const t = tf as Record<string, number>;
const rows: [string, string, number | undefined, number | undefined, number | undefined, string][] = [
  ['Example encode (new buffer per record)', '8 x 65,536 floats, 2 MB', results.encode_geotfr, results.encode_protobufjs, t.tf_example_encode, '≥ 1,000'],
  ['Example encode into a reused buffer', 'encodeExampleInto', results.encode_geotfr_into, undefined, undefined, '≥ 1,000'],
  ['Example decode, floats 4-byte aligned', 'zero-copy views', results.decode_geotfr_aligned, results.decode_protobufjs, t.tf_parse_decode, '≥ 3,000'],
  ['Example decode, floats misaligned', 'one arena copy per record', results.decode_geotfr, results.decode_protobufjs, t.tf_parse_decode, '≥ 3,000'],
  ['Example decode, misaligned, { inPlace: true }', 'incl. a 2 MB memcpy per call', results.decode_geotfr_inplace, undefined, undefined, '≥ 3,000'],
  ['Example decode + read every value', 'misaligned', results.decode_geotfr_touch, undefined, undefined, ''],
  ['protobuf parse only (TF: Example.FromString)', 'upb copies packed floats, no Python values', results.decode_geotfr, undefined, t.tf_proto_decode, ''],
  ['Framing + CRC write', '16 x 2 MB records, RecordWriter', results.frame_write_geotfr, undefined, t.tf_record_write, '≥ 2,000'],
  ['Framing + CRC read (sync)', 'parseRecordsSync', results.frame_read_geotfr_sync, undefined, t.tf_record_read, '≥ 2,000'],
  ['Framing + CRC read (stream)', 'readRecords, 1 MiB chunks', results.frame_read_geotfr_stream, undefined, undefined, '≥ 2,000'],
  ['baseline: memcpy 2 MB, reused / fresh memory', '', results.memcpy_reused, undefined, undefined, `fresh: ${f(results.memcpy_fresh)}`],
  ['baseline: CRC-32C alone', crc32cImplementation, results.crc32c, undefined, undefined, ''],
];
const lines = [
  `Codec benchmark: medians of ${RUNS} runs, MB/s; Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model.trim()}), load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}; CRC-32C ${crc32cImplementation}; TensorFlow ${'tensorflow' in t ? (t as any).tensorflow : `n/a (${(tf as any).error})`}`,
  '',
  '| job | data | geotfr | protobufjs | TensorFlow (Python) | target |',
  '|---|---|---:|---:|---:|---:|',
  ...rows.map(([job, data, g, p, tfv, target]) => `| ${job} | ${data} | ${f(g)} | ${f(p)} | ${f(tfv)} | ${target} |`),
  '',
  '| gzip, level 6, raster-like float32 (32 MiB) | node:zlib | pako |',
  '|---|---:|---:|',
  `| compress | ${f(results.gzip6_node)} | ${f(results.gzip6_pako)} |`,
  `| decompress | ${f(results.gunzip_node)} | ${f(results.gunzip_pako)} |`,
  `| compressed size | ${(100 * gzipRatio.node).toFixed(1)}% | ${(100 * gzipRatio.pako).toFixed(1)}% |`,
  '',
  'TensorFlow columns: encode = tf.train.Example(...) from numpy + SerializeToString; decode = tf.io.parse_single_example (eager);',
  'protobuf parse only = tf.train.Example.FromString; framing = tf.io.TFRecordWriter to a file / tf.data.TFRecordDataset.',
];
process.stdout.write(lines.join('\n') + '\n');
process.stdout.write(
  JSON.stringify({
    bench: 'codec',
    runs: RUNS,
    node: process.version,
    loadavg: loadavg(),
    crc32c: crc32cImplementation,
    payloadBytes: payload.length,
    geotfr: results,
    gzipRatio,
    tensorflow: tf,
    sink: sink > 0,
  }) + '\n',
);
