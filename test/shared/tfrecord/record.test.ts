/**
 * TFRecord framing against TensorFlow both ways (issue 2): TensorFlow writes (plain, gzip, empty,
 * zero-length, 1 B .. 16 MiB, Examples of every kind, SequenceExamples) and geotfr reads exactly;
 * geotfr writes (plain, gzip, concatenated gzip members) and TensorFlow reads the same values.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { RecordWriter, frameRecords, framedSize, gzipSync, parseRecordsSync, readRecordFile, readRecords } from '../../../shared/tfrecord/record.js';
import {
  bytesFeature,
  decodeExample,
  decodeSequenceExample,
  encodeExample,
  encodeSequenceExample,
  floatFeature,
  int64Feature,
  type Feature,
  type Features,
} from '../../../shared/tfrecord/example.js';
import { needTensorFlow, python, repoRoot } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

const pyScript = (name: string) => readFileSync(path.join(repoRoot, 'test', 'support', 'py', name), 'utf8');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const tmp = () => mkdtempSync(path.join(tmpdir(), 'geotfr-record-'));

function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const bytes = (n: number) => {
    const w = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < w.length; i++) w[i] = next() * 2 ** 32;
    return Buffer.from(w.buffer, 0, n);
  };
  return { next, int, bytes };
}
type Rng = ReturnType<typeof rng>;

/** The value encoding the Python helpers use: float32 LE hex, int64 decimal strings, bytes hex. */
type Enc = [string, string | string[]];
function enc(f: Feature): Enc {
  if (f.kind === 'float_list') return [f.kind, Buffer.from(f.value.buffer, f.value.byteOffset, f.value.byteLength).toString('hex')];
  if (f.kind === 'int64_list') return [f.kind, Array.from(f.value, String)];
  return [f.kind, f.value.map((b) => Buffer.from(b).toString('hex'))];
}
const encMap = (m: Features) => Object.fromEntries([...m].map(([k, f]) => [k, enc(f)]));

/** Reads a file with geotfr, feeding it in chunks of random sizes to exercise records spanning chunks. */
async function* chunked(buf: Buffer, r: Rng): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < buf.length; ) {
    const n = r.next() < 0.5 ? r.int(1, 17) : r.int(1, 1 << 16);
    yield buf.subarray(i, i + n);
    i += n;
  }
}

test('TensorFlow writes -> geotfr reads exactly (plain + gzip; empty; zero-length; 1 B..16 MiB; Examples; SequenceExamples)', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = tmp();
  try {
    const manifest = JSON.parse(await python(pyScript('tf_write.py'), [dir, '7'])).files as Record<
      string,
      { compressed: boolean; kind: string; sha256: string[]; expected: { context: Record<string, Enc>; lists?: Record<string, Enc[]> }[] | null }
    >;
    assert.equal(Object.keys(manifest).length, 10, 'plain and gzip of five files');
    assert.deepEqual(new Set(readdirSync(dir)), new Set(Object.keys(manifest)));
    const r = rng(7);
    for (const [name, m] of Object.entries(manifest)) {
      const file = path.join(dir, name);
      const bytes = readFileSync(file);
      assert.equal(bytes[0] === 0x1f && bytes[1] === 0x8b, m.compressed && bytes.length > 0, `${name}: gzip magic`);
      const got: Uint8Array[] = [];
      for await (const rec of readRecordFile(file)) got.push(Buffer.from(rec.data));
      assert.deepEqual(got.map(sha), m.sha256, `${name}: every record's bytes`);
      // The same bytes fed in random chunks (records and headers split across chunks).
      const again: string[] = [];
      for await (const rec of readRecords(chunked(bytes, r), { file: name })) again.push(sha(rec.data));
      assert.deepEqual(again, m.sha256, `${name}: chunked`);
      if (!m.compressed)
        assert.deepEqual(
          [...parseRecordsSync(bytes)].map((x) => sha(x.data)),
          m.sha256,
          `${name}: parseRecordsSync`,
        );
      if (m.kind === 'raw') continue;
      assert.ok(m.expected && m.expected.length === got.length);
      for (const [i, p] of got.entries()) {
        const seq = decodeSequenceExample(p, { file: name, record: i });
        // Map order in TensorFlow's serialization is not guaranteed: compare as objects.
        assert.deepEqual(encMap(seq.context), m.expected[i].context, `${name} record ${i} features`);
        if (m.kind === 'seq')
          assert.deepEqual(
            Object.fromEntries([...seq.featureLists].map(([k, fs]) => [k, fs.map(enc)])),
            m.expected[i].lists,
            `${name} record ${i} feature lists`,
          );
        else assert.equal(seq.featureLists.size, 0);
      }
    }
    // The fixtures really contain the promised cases.
    assert.deepEqual(manifest['empty.tfrecord'].sha256, []);
    assert.equal(readFileSync(path.join(dir, 'empty.tfrecord')).length, 0);
    assert.deepEqual(manifest['zero.tfrecord'].sha256, [sha(new Uint8Array(0))]);
    assert.equal(manifest['sizes.tfrecord'].sha256.length, 17);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------------
// geotfr writes -> TensorFlow reads

type Kind = Feature['kind'];
interface Col {
  name: string;
  type: Kind;
  fixed: number | null;
}

function feature(r: Rng, type: Kind, n: number): Feature {
  if (type === 'float_list') {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (r.next() - 0.5) * 10 ** r.int(-5, 8);
    if (n > 2) [v[0], v[1], v[2]] = [-0, Infinity, NaN];
    return floatFeature(v);
  }
  if (type === 'int64_list') {
    const v = new BigInt64Array(n);
    for (let i = 0; i < n; i++) v[i] = BigInt.asIntN(64, (BigInt(r.int(0, 2 ** 32 - 1)) << 32n) | BigInt(r.int(0, 2 ** 32 - 1)));
    if (n > 1) [v[0], v[1]] = [-(2n ** 63n), 2n ** 63n - 1n];
    return int64Feature(v);
  }
  // Bytes ending in NUL and empty strings must survive.
  return bytesFeature(Array.from({ length: n }, (_, i) => (i === 0 ? new Uint8Array([0x61, 0]) : r.bytes(r.int(0, 20)))));
}

function schema(r: Rng, prefix: string): Col[] {
  const types: Kind[] = ['float_list', 'int64_list', 'bytes_list'];
  const cols: Col[] = [];
  for (let i = 0; i < 6; i++) cols.push({ name: `${prefix}${i}_${['é', '名', 'b'][i % 3]}`, type: types[i % 3], fixed: i < 3 ? r.int(1, 40) : null });
  return cols;
}

/** Records for a schema; VarLen columns get random lengths (0 too) or are absent. */
function examples(r: Rng, cols: Col[], count: number): { feats: Features; tf: Record<string, Enc> }[] {
  return Array.from({ length: count }, () => {
    const feats: Features = new Map();
    const tf: Record<string, Enc> = {};
    for (const c of cols) {
      const absent = c.fixed === null && r.next() < 0.25;
      const f = feature(r, c.type, c.fixed ?? r.int(0, 12));
      if (!absent) feats.set(c.name, f);
      tf[c.name] = absent ? enc(feature(r, c.type, 0)) : enc(f);
    }
    return { feats, tf };
  });
}

async function writeWith(file: string, payloads: Uint8Array[], compressed: boolean): Promise<void> {
  const w = new RecordWriter(createWriteStream(file), { compressed });
  for (const p of payloads) await w.write(p);
  await w.close();
}

test('geotfr writes -> TensorFlow reads the same values (plain, gzip, concatenated gzip members, SequenceExamples, 1 B..16 MiB)', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = tmp();
  try {
    const r = rng(11);
    const jobs: any[] = [];
    const expect: { sha256: string[]; records: any[] | null }[] = [];

    const cols = schema(r, 'f');
    const exs = examples(r, cols, 40);
    const payloads = exs.map((e) => encodeExample(e.feats));
    const spec = Object.fromEntries(cols.map((c) => [c.name, { type: c.type, fixed: c.fixed }]));
    const exTf = exs.map((e) => ({ context: e.tf }));
    for (const [name, compressed] of [
      ['ex.tfrecord', false],
      ['ex.tfrecord.gz', true],
    ] as const) {
      await writeWith(path.join(dir, name), payloads, compressed);
      jobs.push({ path: path.join(dir, name), compression: compressed ? 'GZIP' : '', kind: 'example', features: spec });
      expect.push({ sha256: payloads.map(sha), records: exTf });
    }
    // Concatenated gzip members (e.g. pieces appended by `cat`), split in the middle of a record and
    // at different levels: one logical stream for both readers.
    const framed = frameRecords(payloads);
    const cut = Math.floor(framed.length / 2) + 5;
    writeFileSync(path.join(dir, 'cat.tfrecord.gz'), Buffer.concat([gzipSync(framed.subarray(0, cut)), gzipSync(framed.subarray(cut), 1)]));
    jobs.push({ path: path.join(dir, 'cat.tfrecord.gz'), compression: 'GZIP', kind: 'example', features: spec });
    expect.push({ sha256: payloads.map(sha), records: exTf });
    // TensorFlow stops silently at an *empty* member (checked with TF 2.21); geotfr reads through it,
    // and geotfr's writers never emit one (one gzip stream per file, docs/semantics.md §5).
    const withEmpty = Buffer.concat([gzipSync(framed.subarray(0, cut)), gzipSync(new Uint8Array(0)), gzipSync(framed.subarray(cut), 1)]);
    const ours: string[] = [];
    for await (const rec of readRecords([withEmpty])) ours.push(sha(rec.data));
    assert.deepEqual(ours, payloads.map(sha), 'geotfr reads concatenated gzip members, empty ones too');

    // SequenceExamples: context + lists with fixed and varying step lengths.
    const ctxCols = schema(r, 'c');
    const listCols: Col[] = [
      { name: 'ts', type: 'float_list', fixed: 3 },
      { name: 'ids', type: 'int64_list', fixed: null },
      { name: 'tok', type: 'bytes_list', fixed: 1 },
    ];
    const seqs = examples(r, ctxCols, 20).map((c) => {
      const lists = new Map<string, Feature[]>();
      const tfLists: Record<string, Enc[]> = {};
      for (const l of listCols) {
        const steps = Array.from({ length: r.int(0, 6) }, () => feature(r, l.type, l.fixed ?? r.int(0, 5)));
        lists.set(l.name, steps);
        tfLists[l.name] = steps.map(enc);
      }
      return { payload: encodeSequenceExample({ context: c.feats, featureLists: lists }), tf: { context: c.tf, lists: tfLists } };
    });
    for (const [name, compressed] of [
      ['seq.tfrecord', false],
      ['seq.tfrecord.gz', true],
    ] as const) {
      await writeWith(
        path.join(dir, name),
        seqs.map((s) => s.payload),
        compressed,
      );
      jobs.push({
        path: path.join(dir, name),
        compression: compressed ? 'GZIP' : '',
        kind: 'seq',
        features: Object.fromEntries(ctxCols.map((c) => [c.name, { type: c.type, fixed: c.fixed }])),
        lists: Object.fromEntries(listCols.map((c) => [c.name, { type: c.type, fixed: c.fixed }])),
      });
      expect.push({ sha256: seqs.map((s) => sha(s.payload)), records: seqs.map((s) => s.tf) });
    }

    // Raw records from 0 B and 1 B to 16 MiB, plain and gzip.
    const sizes = [0, 1, 2, 5, 127, 128, 16383, 16384, 65536, (1 << 20) + 1, 16 << 20];
    const raw = sizes.map((n) => r.bytes(n));
    for (const [name, compressed] of [
      ['sizes.tfrecord', false],
      ['sizes.tfrecord.gz', true],
    ] as const) {
      await writeWith(path.join(dir, name), raw, compressed);
      jobs.push({ path: path.join(dir, name), compression: compressed ? 'GZIP' : '', kind: 'raw' });
      expect.push({ sha256: raw.map(sha), records: null });
    }
    assert.equal(
      readFileSync(path.join(dir, 'sizes.tfrecord')).length,
      sizes.reduce((a, n) => a + framedSize(n), 0),
    );

    const out = JSON.parse(await python(pyScript('tf_read.py'), [], JSON.stringify({ files: jobs }))).files;
    assert.equal(out.length, jobs.length);
    for (const [i, job] of jobs.entries()) {
      const name = path.basename(job.path);
      assert.deepEqual(out[i].sha256, expect[i].sha256, `${name}: TensorFlow sees exactly our payloads`);
      if (expect[i].records) {
        assert.equal(out[i].records.length, expect[i].records!.length);
        for (const [j, rec] of out[i].records.entries()) assert.deepEqual(rec, expect[i].records![j], `${name} record ${j}: TensorFlow's parsed values`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------------
// Local properties (no oracle needed)

test('RecordWriter streams with backpressure and equals frameRecords; gzip level is honoured (seed 12)', async () => {
  const r = rng(12);
  const payloads = Array.from({ length: 200 }, () => r.bytes(r.int(0, 5000)));
  for (const compressed of [false, true]) {
    const chunks: Buffer[] = [];
    // A slow sink with a tiny buffer forces write() to wait for 'drain'.
    const sink = new Writable({
      highWaterMark: 64,
      write(c, _e, cb) {
        chunks.push(c);
        setImmediate(cb);
      },
    });
    const w = new RecordWriter(sink, { compressed, compressionLevel: 9 });
    for (const p of payloads) await w.write(p);
    await w.close();
    const body = Buffer.concat(chunks);
    const framed = frameRecords(payloads);
    assert.equal(w.records, payloads.length);
    assert.equal(w.bytesFramed, framed.length);
    assert.ok((compressed ? zlib.gunzipSync(body) : body).equals(framed));
    if (compressed) assert.equal(body[0], 0x1f);
  }
});

test('readRecords: offsets and indexes are exact, in plain and gzip streams (seed 13)', async () => {
  const r = rng(13);
  const payloads = Array.from({ length: 100 }, () => r.bytes(r.int(0, 3000)));
  const framed = frameRecords(payloads);
  for (const buf of [framed, gzipSync(framed)]) {
    let offset = 0;
    let i = 0;
    const src = new PassThrough();
    src.end(buf);
    for await (const rec of readRecords(src)) {
      assert.equal(rec.index, i);
      assert.equal(rec.offset, offset);
      assert.ok(Buffer.from(rec.data).equals(payloads[i]));
      offset += framedSize(payloads[i].length);
      i++;
    }
    assert.equal(i, payloads.length);
  }
});

test('records copied out of spanning chunks are placed so their float lists decode as aligned views (seed 14)', async () => {
  const r = rng(14);
  const names = ['B1', 'B2', 'B3', 'B4'];
  const payloads = Array.from({ length: 6 }, () =>
    encodeExample(names.map((n) => [n, floatFeature(Float32Array.from({ length: 5000 + r.int(0, 3) * 4 }, () => r.next()))] as [string, Feature])),
  );
  const framed = frameRecords(payloads);
  let views = 0;
  // 1,000-byte chunks: every record spans chunks, so the reader copies (and places) each one.
  const pieces = Array.from({ length: Math.ceil(framed.length / 1000) }, (_, i) => framed.subarray(i * 1000, (i + 1) * 1000));
  for await (const rec of readRecords(pieces)) {
    assert.ok(Buffer.from(rec.data).equals(payloads[rec.index]));
    const dec = [...decodeExample(rec.data).values()];
    views += dec.filter((f) => (f.value as Float32Array).buffer === rec.data.buffer).length;
  }
  assert.equal(views, payloads.length * names.length, 'every float list is a zero-copy view');
});

test('reuseBuffer: records spanning chunks come out exact, assembled in one reused buffer (seed 15)', async () => {
  const r = rng(15);
  const payloads = Array.from({ length: 40 }, () => r.bytes(r.int(2000, 9000)));
  const framed = frameRecords(payloads);
  // gzip: through the inflater's chunks; plain: 1,000-byte chunks, so every record spans chunks.
  const pieces = Array.from({ length: Math.ceil(framed.length / 1000) }, (_, i) => framed.subarray(i * 1000, (i + 1) * 1000));
  for (const src of [[gzipSync(framed)], pieces]) {
    const hosts = new Set<ArrayBufferLike>();
    let i = 0;
    for await (const rec of readRecords(src, { reuseBuffer: true })) {
      assert.ok(Buffer.from(rec.data).equals(payloads[i]), `record ${i}`);
      hosts.add(rec.data.buffer);
      i++;
    }
    assert.equal(i, payloads.length);
    // The scratch buffer only grows when a record longer than all before it arrives.
    if (src === pieces) assert.ok(hosts.size <= 8, `${hosts.size} distinct buffers for ${payloads.length} records`);
  }
});
