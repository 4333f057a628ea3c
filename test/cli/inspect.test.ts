/** `geotfr inspect` through the built CLI (docs/semantics.md §9): report, --json, exit codes and error messages. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import { eeRealDir, geotfr, needEeFixtures, needTensorFlow, python, repoRoot } from '../support/oracles.js';

const EE_SHARD = () => path.join(eeRealDir, 'TEST_coeff_output_SIF_C_S_Amer-00005.tfrecord');

test("geotfr inspect --json on Earth Engine's real shard", async (t) => {
  if (!needEeFixtures(t)) return;
  const r = await geotfr(['inspect', '--json', EE_SHARD()], { env: { GEOTFR_PROGRESS: '1' } });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().split('\n').filter(Boolean);
  assert.equal(lines.length, 1, 'exactly one JSON line on stdout');
  const j = JSON.parse(lines[0]);
  assert.deepEqual(j.files, [EE_SHARD()]);
  assert.equal(j.records, 2);
  assert.deepEqual(Object.keys(j.features), ['constant', 'sin_1', 'cos_1', 'sin_2', 'cos_2'], 'band order, as in the file');
  for (const f of Object.values(j.features) as any[]) assert.deepEqual({ type: f.type, length: f.length }, { type: 'float_list', length: 99_856 });
});

test('geotfr inspect prints the readable report with the parse spec', async (t) => {
  if (!needEeFixtures(t)) return;
  const r = await geotfr(['inspect', EE_SHARD(), path.join(eeRealDir, 'TESTINGTESTING.tfrecord')]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.toString();
  assert.match(out, /^2 files, 4 records \(tf\.train\.Example\)/);
  assert.match(out, /constant +float_list +99856 \(shape unknown\)/);
  assert.match(out, /! asynch: missing from 2 of 4 records/);
  assert.match(out, /'constant': tf\.io\.VarLenFeature\(tf\.float32\)/, 'absent from some records: VarLen');
  const one = await geotfr(['inspect', EE_SHARD()]);
  assert.equal(one.code, 0, one.stderr);
  // EE wrote no export manifest: the shape is not guessed from the square length (issue 11 item 17).
  assert.match(
    one.stdout.toString(),
    /TensorFlow parse spec:\nfeatures = \{\n {4}'constant': tf\.io\.FixedLenFeature\(\[99856\], tf\.float32\),  # flat: shape unknown without the export manifest/,
  );
  assert.match(one.stdout.toString(), /! no export manifest found: shapes are unknown/);
});

test("geotfr inspect --json on a gzip file TensorFlow wrote: features in the bytes' first-record order, varying length flagged", async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-cli-inspect-'));
  try {
    const file = path.join(dir, 'tf.tfrecord.gz');
    await python(
      `
import sys, numpy as np, tensorflow as tf
f = lambda v: tf.train.Feature(float_list=tf.train.FloatList(value=v))
with tf.io.TFRecordWriter(sys.argv[1], tf.io.TFRecordOptions(compression_type='GZIP')) as w:
    for i, n in enumerate([3, 5, 3]):
        feats = {'B4': f(np.arange(64, dtype=np.float32)), 'B8': f(np.ones(64, np.float32)),
                 'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                 'ts': f(np.zeros(n, np.float32))}
        w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
`,
      [file],
    );
    const r = await geotfr(['inspect', '--json', file]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout.toString());
    assert.equal(j.records, 3);
    // The order is whatever TensorFlow serialized: protobufjs (independent decoder) tells us.
    const gz = await import('node:zlib');
    const framed = gz.gunzipSync(readFileSync(file));
    const first = framed.subarray(12, 12 + Number(framed.readBigUInt64LE(0)));
    const Example = protobuf.loadSync(path.join(repoRoot, 'proto', 'example.proto')).lookupType('tensorflow.Example');
    const order = Object.keys((Example.decode(first) as any).features.feature);
    assert.deepEqual(Object.keys(j.features), order);
    assert.deepEqual(new Set(order), new Set(['B4', 'B8', 'label', 'ts']));
    assert.deepEqual([j.features.B4.type, j.features.B4.length, j.features.B4.varies], ['float_list', 64, false]);
    assert.deepEqual([j.features.label.type, j.features.label.length], ['int64_list', 1]);
    assert.deepEqual([j.features.ts.varies, j.features.ts.minLength, j.features.ts.maxLength], [true, 3, 5]);
    assert.match(j.parseSpec, /'B4': tf\.io\.FixedLenFeature\(\[64\], tf\.float32\),  # flat: shape unknown/);
    assert.match(j.parseSpec, /'ts': tf\.io\.VarLenFeature\(tf\.float32\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('geotfr inspect: corrupt or missing input exits non-zero naming file, record and offset', async (t) => {
  if (!needEeFixtures(t)) return;
  const dir = mkdtempSync(path.join(tmpdir(), 'geotfr-cli-inspect-'));
  try {
    const bytes = readFileSync(EE_SHARD());
    const second = 16 + Number(bytes.readBigUInt64LE(0));
    const trunc = path.join(dir, 'trunc.tfrecord');
    writeFileSync(trunc, bytes.subarray(0, second + 1000));
    let r = await geotfr(['inspect', '--json', trunc]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0, 'no summary on failure');
    assert.match(
      r.stderr,
      new RegExp(`geotfr: BAD_INPUT: ${trunc.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, record 1, byte offset ${second}: truncated record`),
    );

    const flipped = Buffer.from(bytes);
    flipped[second + 5] ^= 0x10; // record 1's length
    const bad = path.join(dir, 'bad.tfrecord');
    writeFileSync(bad, flipped);
    r = await geotfr(['inspect', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`record 1, byte offset ${second}: length CRC mismatch`));

    r = await geotfr(['inspect', path.join(dir, 'nope.tfrecord')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /NOT_FOUND: .*nope\.tfrecord: no such file/);

    r = await geotfr(['inspect']);
    assert.equal(r.code, 2, 'usage error');
    assert.match(r.stderr, /BAD_REQUEST: inspect needs at least one file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
