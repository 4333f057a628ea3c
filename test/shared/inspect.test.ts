/**
 * `inspect` statistics and parse spec (docs/semantics.md §9). The printed parse spec is executed by TensorFlow on
 * the same files, as a user would paste it, and must return every record's values.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RecordWriter } from '../../shared/tfrecord/record.js';
import { bytesFeature, encodeExample, encodeSequenceExample, floatFeature, int64Feature, type Feature, type Features } from '../../shared/tfrecord/example.js';
import { formatReport, inspectFiles, parseSpec, pyString, specShape, type FeatureSummary } from '../../shared/inspect.js';
import { runImageExport } from '../../shared/export/run.js';
import { MemSource } from './export/memsource.js';
import { GeotfrError } from '../../shared/errors.js';
import { eeRealDir, needEeFixtures, needTensorFlow, python, repoRoot } from '../support/oracles.js';
import { mulberry32 } from '../support/random.js';

function rng(seed: number) {
  const next = mulberry32(seed);
  return { next, int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)) };
}

async function writeFile(file: string, payloads: Uint8Array[], compressed = false): Promise<void> {
  const w = new RecordWriter(createWriteStream(file), { compressed });
  for (const p of payloads) await w.write(p);
  await w.close();
}

const floats = (r: ReturnType<typeof rng>, n: number) => floatFeature(Float32Array.from({ length: n }, () => r.next() * 100 - 50));

/** Examples covering every case inspect distinguishes. `opt` first appears in record 1. */
function exampleRecords(seed: number): Features[] {
  const r = rng(seed);
  return Array.from({ length: 6 }, (_, i) => {
    const m: Features = new Map();
    m.set('B2', floats(r, 256)); // 16 x 16
    m.set('élévation', floats(r, 100)); // 10 x 10
    m.set('label', int64Feature([BigInt(r.int(-5, 5))]));
    m.set("it's", bytesFeature([`name ${i}`]));
    m.set('ts', floats(r, i === 2 ? 0 : r.int(1, 7))); // varies, empty once
    if (i % 2 === 1) m.set('opt', int64Feature([1n, 2n, BigInt(i)]));
    m.set('flat', floats(r, 7));
    return m;
  });
}

/** Reference statistics straight from the data. */
function expectedStats(records: Features[]): Map<string, { type: string; first: number; min: number; max: number; count: number }> {
  const out = new Map<string, { type: string; first: number; min: number; max: number; count: number }>();
  for (const rec of records)
    for (const [k, f] of rec) {
      const s = out.get(k);
      if (!s) out.set(k, { type: f.kind, first: f.value.length, min: f.value.length, max: f.value.length, count: 1 });
      else Object.assign(s, { min: Math.min(s.min, f.value.length), max: Math.max(s.max, f.value.length), count: s.count + 1 });
    }
  return out;
}

function enc(f: Feature): string | string[] {
  if (f.kind === 'float_list') return Buffer.from(f.value.buffer, f.value.byteOffset, f.value.byteLength).toString('hex');
  if (f.kind === 'int64_list') return Array.from(f.value, String);
  return f.value.map((b) => Buffer.from(b).toString('hex'));
}

test('inspectFiles: types, lengths, varying and missing features, first-seen order (seed 61)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-inspect-'));
  try {
    const recs = exampleRecords(61);
    const file = path.join(dir, 'ex.tfrecord');
    await writeFile(
      file,
      recs.map((m) => encodeExample(m)),
    );
    for (const files of [[file], [file, file]]) {
      const rep = await inspectFiles(files);
      const want = expectedStats(recs);
      assert.equal(rep.records, recs.length * files.length);
      assert.equal(rep.kind, 'Example');
      assert.deepEqual(Object.keys(rep.features), [...want.keys()], 'first-seen order');
      assert.deepEqual(Object.keys(rep.features).slice(0, 6), [...recs[0].keys()], 'first-record order');
      for (const [k, w] of want) {
        const s = rep.features[k];
        assert.deepEqual(
          [s.type, s.length, s.minLength, s.maxLength, s.varies, s.records],
          [w.type, w.first, w.min, w.max, w.min !== w.max, w.count * files.length],
          k,
        );
      }
      assert.deepEqual(rep.featureLists, {});
    }
    const spec = (await inspectFiles([file])).parseSpec;
    assert.match(
      spec,
      /'B2': tf\.io\.FixedLenFeature\(\[256\], tf\.float32\),  # flat: shape unknown/,
      'no manifest: 256 values are not guessed to be 16 x 16',
    );
    assert.match(spec, /'élévation': tf\.io\.FixedLenFeature\(\[100\], tf\.float32\)/);
    assert.match(spec, /'label': tf\.io\.FixedLenFeature\(\[1\], tf\.int64\)/);
    assert.match(spec, /'it\\'s': tf\.io\.FixedLenFeature\(\[\], tf\.string\)/);
    assert.match(spec, /'ts': tf\.io\.VarLenFeature\(tf\.float32\)/);
    assert.match(spec, /'opt': tf\.io\.VarLenFeature\(tf\.int64\)/);
    assert.match(spec, /'flat': tf\.io\.FixedLenFeature\(\[7\], tf\.float32\)/);

    // A feature whose kind changes between records is flagged.
    const mixed = path.join(dir, 'mixed.tfrecord');
    await writeFile(mixed, [encodeExample([['x', floatFeature([1])]]), encodeExample([['x', int64Feature([1n])]])]);
    const m = await inspectFiles([mixed]);
    assert.deepEqual(m.features.x.types, ['float_list', 'int64_list']);
    assert.match(m.parseSpec, /'x': tf\.io\.VarLenFeature/);

    // An empty file: zero records, nothing to parse.
    const empty = path.join(dir, 'empty.tfrecord');
    writeFileSync(empty, '');
    const e = await inspectFiles([empty]);
    assert.deepEqual([e.records, e.features], [0, {}]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('specShape never guesses from a length (issue 11 item 17), and pyString', () => {
  const s = (type: FeatureSummary['type'], length: number): FeatureSummary => ({
    type,
    length,
    minLength: length,
    maxLength: length,
    varies: false,
    records: 1,
  });
  // 4·128² = 256²: a square length is not a square patch.
  for (const L of [1, 2, 3, 4, 5, 8, 256 * 256, 99_856, 99_857]) assert.deepEqual(specShape(s('float_list', L)), [L]);
  assert.deepEqual(specShape({ ...s('float_list', 65536), shape: [4, 128, 128] }), [4, 128, 128]);
  assert.deepEqual(specShape(s('bytes_list', 1)), []);
  for (const name of ["a'b", 'a\\b', 'tab\there', '名前 🌍', '']) {
    const lit = pyString(name);
    assert.ok(lit.startsWith("'") && lit.endsWith("'"));
    assert.equal(
      JSON.parse(
        '"' +
          lit
            .slice(1, -1)
            .replace(/\\'/g, "'")
            .replace(/\\x([0-9a-f]{2})/g, '\\u00$1') +
          '"',
      ),
      name,
    );
  }
  assert.match(parseSpec({ kind: 'Example', features: {}, featureLists: {}, records: 0 }), /^features = \{\}/);
});

test('inspectFiles: SequenceExamples (gzip) report context and feature lists', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-inspect-'));
  try {
    const r = rng(62);
    const file = path.join(dir, 'seq.tfrecord.gz');
    const steps = [2, 5, 3];
    await writeFile(
      file,
      steps.map((n, i) =>
        encodeSequenceExample({
          context: [['id', int64Feature([BigInt(i)])]],
          featureLists: [
            ['ndvi', Array.from({ length: n }, () => floats(r, 1))],
            ['tok', Array.from({ length: n }, (_, j) => bytesFeature([`t${j}`]))],
          ],
        }),
      ),
      true,
    );
    const rep = await inspectFiles([file]);
    assert.equal(rep.kind, 'SequenceExample');
    assert.equal(rep.records, 3);
    assert.deepEqual(Object.keys(rep.features), ['id']);
    assert.deepEqual(Object.keys(rep.featureLists), ['ndvi', 'tok']);
    assert.deepEqual([rep.featureLists.ndvi.steps, rep.featureLists.ndvi.minSteps, rep.featureLists.ndvi.maxSteps], [2, 2, 5]);
    assert.deepEqual([rep.featureLists.ndvi.type, rep.featureLists.ndvi.length, rep.featureLists.ndvi.varies], ['float_list', 1, false]);
    assert.match(rep.parseSpec, /'ndvi': tf\.io\.FixedLenSequenceFeature\(\[1\], tf\.float32\)/);
    assert.match(rep.parseSpec, /'tok': tf\.io\.FixedLenSequenceFeature\(\[\], tf\.string\)/);
    assert.match(rep.parseSpec, /parse_single_sequence_example/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('inspectFiles: a corrupt file is a BAD_INPUT error naming file, record and offset', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-inspect-'));
  try {
    const file = path.join(dir, 'bad.tfrecord');
    const recs = exampleRecords(63);
    await writeFile(
      file,
      recs.map((m) => encodeExample(m)),
    );
    const bytes = readFileSync(file);
    const second = 16 + encodeExample(recs[0]).length;
    bytes[second + 20] ^= 4; // inside record 1's payload
    writeFileSync(file, bytes);
    await assert.rejects(
      inspectFiles([file]),
      (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && e.message.startsWith(`${file}, record 1, byte offset ${second}: data CRC mismatch`),
    );
    await assert.rejects(inspectFiles([path.join(dir, 'missing.tfrecord')]), (e: unknown) => e instanceof GeotfrError && e.code === 'NOT_FOUND');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the printed parse spec, pasted into TensorFlow, parses every record to the written values (Example + SequenceExample)', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-inspect-'));
  try {
    const recs = exampleRecords(64);
    const exFile = path.join(dir, 'ex.tfrecord.gz');
    await writeFile(
      exFile,
      recs.map((m) => encodeExample(m)),
      true,
    );
    const r = rng(65);
    const seqSteps = [2, 4, 1];
    const seqs = seqSteps.map((n, i) => ({
      context: new Map<string, Feature>([
        ['id', int64Feature([BigInt(i - 1)])],
        ['w', floats(r, 9)],
      ]),
      featureLists: new Map<string, Feature[]>([
        ['ndvi', Array.from({ length: n }, () => floats(r, 2))],
        ['tok', Array.from({ length: n }, (_, j) => bytesFeature([`t${j}\0`]))],
      ]),
    }));
    const seqFile = path.join(dir, 'seq.tfrecord');
    await writeFile(
      seqFile,
      seqs.map((s) => encodeSequenceExample(s)),
    );

    const exRep = await inspectFiles([exFile]);
    const seqRep = await inspectFiles([seqFile]);
    const script = readFileSync(path.join(repoRoot, 'test', 'support', 'py', 'tf_parse_spec.py'), 'utf8');
    const jobs = [
      { path: exFile, compression: 'GZIP', spec: exRep.parseSpec },
      { path: seqFile, compression: '', spec: seqRep.parseSpec },
    ];
    const out = JSON.parse(await python(script, [], JSON.stringify({ jobs }))).jobs;

    // Examples: fixed features come back in the flat shape, VarLen ones as their values (absent = empty).
    assert.equal(out[0].length, recs.length);
    for (const [i, got] of out[0].entries()) {
      assert.deepEqual(Object.keys(got).sort(), Object.keys(exRep.features).sort());
      for (const [name, s] of Object.entries(exRep.features)) {
        const f = recs[i].get(name);
        const values = f ? enc(f) : s.type === 'float_list' ? '' : [];
        assert.deepEqual(got[name].values, values, `record ${i} ${name}`);
        if (!got[name].sparse) assert.deepEqual(got[name].shape, specShape(s), `record ${i} ${name} shape`);
      }
    }
    // SequenceExamples: context and per-step values with the step count of each record.
    for (const [i, got] of out[1].entries()) {
      assert.deepEqual(got.id.values, enc(seqs[i].context.get('id')!));
      assert.deepEqual(got.w.shape, [9], 'nine values are not guessed to be 3 x 3');
      assert.deepEqual(got['seq:ndvi'].shape, [seqSteps[i], 2]);
      assert.deepEqual(got['seq:ndvi'].values, seqs[i].featureLists.get('ndvi')!.map(enc).join(''));
      assert.deepEqual(got['seq:tok'].shape, [seqSteps[i]]);
      assert.deepEqual(
        got['seq:tok'].values,
        seqs[i].featureLists.get('tok')!.flatMap((f) => enc(f) as string[]),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("inspectFiles on Earth Engine's real shard and a TensorFlow-written file", async (t) => {
  if (!needEeFixtures(t)) return;
  const shard = path.join(eeRealDir, 'TEST_coeff_output_SIF_C_S_Amer-00005.tfrecord');
  const rep = await inspectFiles([shard]);
  assert.equal(rep.records, 2);
  assert.deepEqual(Object.keys(rep.features), ['constant', 'sin_1', 'cos_1', 'sin_2', 'cos_2']);
  for (const s of Object.values(rep.features)) assert.deepEqual([s.type, s.length, s.varies, s.records], ['float_list', 99_856, false, 2]);
  // EE writes no manifest: the length is reported flat, and the spec says the shape is unknown.
  assert.equal(rep.manifest, null);
  assert.match(rep.parseSpec, /'constant': tf\.io\.FixedLenFeature\(\[99856\], tf\.float32\),  # flat: shape unknown/);
  const tfFile = path.join(eeRealDir, 'TESTINGTESTING.tfrecord');
  const both = await inspectFiles([shard, tfFile]);
  assert.equal(both.records, 4);
  assert.deepEqual(Object.keys(both.features), ['constant', 'sin_1', 'cos_1', 'sin_2', 'cos_2', 'asynch', 'asynch_n', 'asynch_R2']);
  assert.equal(both.features.asynch.records, 2);
  assert.match(both.parseSpec, /'asynch': tf\.io\.VarLenFeature\(tf\.float32\)/, 'missing from half the records');
});

test('shapes come from the export manifest, never from a square length; the export summary carries the spec (issue 11 item 17)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-inspect-'));
  try {
    // A 4-deep array band on 8×8 tiles holds 256 = 16² values: a guess would say [16, 16].
    const W = 16;
    const H = 8;
    const ts = new Float64Array(4 * W * H).map((_, i) => i % 97);
    const s = new Float64Array(W * H).map((_, i) => i);
    const src = new MemSource(W, H, [
      { name: 'ts', type: 'float32', data: ts, depth: 4 },
      { name: 's', type: 'float32', data: s },
    ]);
    const summary = await runImageExport(
      { image: 'm', bucket: dir, fileNamePrefix: 'x/p', formatOptions: { patchDimensions: [8, 8], tensorDepths: { ts: 4 } } },
      { open: async () => src },
    );
    const rep = await inspectFiles(summary.shards);
    assert.equal(rep.manifest, path.join(dir, '.geotfr/manifests/x/p.json'));
    assert.deepEqual(rep.features.ts.shape, [4, 8, 8]);
    assert.deepEqual(rep.features.s.shape, [8, 8]);
    assert.match(rep.parseSpec, /'ts': tf\.io\.FixedLenFeature\(\[4, 8, 8\], tf\.float32\),\n/);
    assert.match(rep.parseSpec, /'s': tf\.io\.FixedLenFeature\(\[8, 8\], tf\.float32\),\n/);
    // The summary's spec is the same, with the dataset opened as gzip.
    assert.match(summary.parseSpec, /^ds = tf\.data\.TFRecordDataset\(files, compression_type="GZIP"\)\n/);
    assert.match(summary.parseSpec, /'ts': tf\.io\.FixedLenFeature\(\[4, 8, 8\], tf\.float32\)/);

    // Without the manifest: flat lengths, and the report says the shape is unknown.
    rmSync(path.join(dir, '.geotfr'), { recursive: true, force: true });
    const bare = await inspectFiles(summary.shards);
    assert.equal(bare.manifest, null);
    assert.equal(bare.features.ts.shape, undefined);
    assert.match(bare.parseSpec, /'ts': tf\.io\.FixedLenFeature\(\[256\], tf\.float32\),  # flat: shape unknown/);
    assert.match(formatReport(bare), /ts +float_list +256 \(shape unknown\)/);

    if (!needTensorFlow(t)) return;
    // The summary's Python, pasted as is, reads the shards in those shapes.
    const py = `
import json, sys, tensorflow as tf
files = json.loads(sys.argv[1])
exec(sys.stdin.read())
print(json.dumps([{k: [int(d) for d in v.shape] for k, v in r.items()} for r in ds]))`;
    const shapes = JSON.parse(await python(py, [JSON.stringify(summary.shards)], summary.parseSpec));
    assert.deepEqual(shapes, [
      { s: [8, 8], ts: [4, 8, 8] },
      { s: [8, 8], ts: [4, 8, 8] },
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
