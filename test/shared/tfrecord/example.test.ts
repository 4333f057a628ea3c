/**
 * The hand-written Example/SequenceExample codec against protobufjs (proto/example.proto) as the
 * reference, and against Earth Engine's real shard (docs/semantics.md §4: band order reproduces EE's bytes).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import {
  bytesFeature,
  decodeExample,
  decodeSequenceExample,
  encodeExample,
  encodeExampleInto,
  exampleEncodedSize,
  encodeSequenceExample,
  exampleSizeFromFeaturesBody,
  floatFeature,
  floatFeatureEntrySize,
  int64Feature,
  type Feature,
  type Features,
} from '../../../shared/tfrecord/example.js';
import { frameRecords, readRecordFile } from '../../../shared/tfrecord/record.js';
import { GeotfrError } from '../../../shared/errors.js';
import { eeRealDir, needEeFixtures, repoRoot } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

const protoPath = path.join(repoRoot, 'proto', 'example.proto');
const root = protobuf.loadSync(protoPath);
const PbExample = root.lookupType('tensorflow.Example');
const PbSequenceExample = root.lookupType('tensorflow.SequenceExample');
// The same schema with unpacked repeated scalars: what older writers (and proto2 defaults) emit.
const unpackedRoot = protobuf.parse(readFileSync(protoPath, 'utf8').replace(/\[packed = true\]/g, '[packed = false]')).root;
const PbExampleUnpacked = unpackedRoot.lookupType('tensorflow.Example');

/** Seeded PRNG (mulberry32): failures reproduce from the seed in the test name. */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: <T>(xs: readonly T[]) => xs[int(0, xs.length - 1)] };
}
type Rng = ReturnType<typeof rng>;

// Names avoid integer-like strings: JavaScript objects (protobufjs' map representation) put those first.
const NAMES = ['B2', 'B3', 'ndvi', 'élévation', '名前', 'a b', "x'y", '', 'longitude', 'emoji_🌍', 'constant', 'cos_1'];
const INT64_EDGES = [0n, 1n, -1n, 127n, 128n, -128n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)];

function randomFeature(r: Rng): Feature {
  const n = r.int(0, 40);
  switch (r.int(0, 2)) {
    case 0: {
      const v = new Float32Array(n);
      const dv = new DataView(v.buffer);
      // Random bit patterns cover subnormals, infinities and -0; NaNs are canonical so values compare.
      for (let i = 0; i < n; i++) dv.setUint32(i * 4, Math.floor(r.next() * 2 ** 32), true);
      for (let i = 0; i < n; i++) if (Number.isNaN(v[i])) v[i] = NaN;
      return floatFeature(v);
    }
    case 1: {
      const v = new BigInt64Array(n);
      for (let i = 0; i < n; i++)
        v[i] = r.next() < 0.3 ? r.pick(INT64_EDGES) : BigInt.asIntN(64, (BigInt(r.int(0, 2 ** 32 - 1)) << 32n) | BigInt(r.int(0, 2 ** 32 - 1)));
      return int64Feature(v);
    }
    default:
      return bytesFeature(Array.from({ length: r.int(0, 5) }, () => Uint8Array.from({ length: r.int(0, 30) }, () => r.int(0, 255))));
  }
}

function randomFeatures(r: Rng, max = 6): Features {
  const m: Features = new Map();
  const count = r.int(0, max);
  for (let i = 0; i < count; i++) m.set(r.pick(NAMES), randomFeature(r));
  return m;
}

/** protobufjs' plain-object form of a Feature. */
function pbFeature(f: Feature): object {
  if (f.kind === 'float_list') return { floatList: { value: Array.from(f.value) } };
  if (f.kind === 'int64_list') return { int64List: { value: Array.from(f.value, String) } };
  return { bytesList: { value: f.value } };
}
const pbFeatures = (m: Features) => ({ feature: Object.fromEntries([...m].map(([k, f]) => [k, pbFeature(f)])) });

/** Our Feature from protobufjs' decoded object (longs as strings). */
function fromPb(o: any): Feature {
  if (o.int64List) return int64Feature((o.int64List.value ?? []).map((x: string) => BigInt(x)));
  if (o.bytesList) return bytesFeature((o.bytesList.value ?? []).map((b: Uint8Array) => new Uint8Array(b)));
  return floatFeature(o.floatList?.value ?? []);
}
const toObj = (msg: protobuf.Message) => msg.$type.toObject(msg, { longs: String, arrays: true, objects: true });

/** Canonical comparable form: kinds, exact float bits (NaN canonical), int64 and bytes as strings. */
function norm(f: Feature): [string, string[]] {
  if (f.kind === 'float_list') return [f.kind, Array.from(f.value, (x) => (Number.isNaN(x) ? 'NaN' : Object.is(x, -0) ? '-0' : String(x)))];
  if (f.kind === 'int64_list') return [f.kind, Array.from(f.value, String)];
  return [f.kind, f.value.map((b) => Buffer.from(b).toString('hex'))];
}
const normMap = (m: Features) => [...m].map(([k, f]) => [k, norm(f)]);

test('encodeExample is byte-identical to protobufjs on 400 random Examples (seed 1)', () => {
  const r = rng(1);
  for (let i = 0; i < 400; i++) {
    const feats = randomFeatures(r);
    const ours = encodeExample(feats);
    const ref = PbExample.encode(PbExample.fromObject({ features: pbFeatures(feats) })).finish();
    assert.deepEqual(Buffer.from(ours), Buffer.from(ref), `vector ${i}: ${JSON.stringify(normMap(feats)).slice(0, 300)}`);
    // Features in the order given, decoded back exactly.
    assert.deepEqual(normMap(decodeExample(ours)), normMap(feats), `vector ${i} round trip`);
  }
});

test('encodeExample: sizes are exact and the features field is always present (seed 2)', () => {
  assert.deepEqual([...encodeExample(new Map())], [0x0a, 0x00]);
  const r = rng(2);
  for (let i = 0; i < 50; i++) {
    const name = r.pick(NAMES);
    const n = r.int(0, 70000);
    const enc = encodeExample([[name, floatFeature(new Float32Array(n))]]);
    assert.equal(enc.length, exampleSizeFromFeaturesBody(floatFeatureEntrySize(Buffer.byteLength(name), n)), `name ${name} n ${n}`);
  }
});

test('decodeExample equals protobufjs decode on 400 random Examples, packed and unpacked (seed 3)', () => {
  const r = rng(3);
  for (let i = 0; i < 400; i++) {
    const feats = randomFeatures(r);
    for (const T of [PbExample, PbExampleUnpacked]) {
      const bytes = T.encode(T.fromObject({ features: pbFeatures(feats) })).finish();
      const ref = toObj(PbExample.decode(bytes)) as any;
      const refMap: Features = new Map(Object.entries(ref.features?.feature ?? {}).map(([k, v]) => [k, fromPb(v)]));
      const ours = decodeExample(bytes);
      assert.deepEqual(Object.fromEntries(normMap(ours)), Object.fromEntries(normMap(refMap)), `vector ${i} (${T === PbExample ? 'packed' : 'unpacked'})`);
      assert.deepEqual(normMap(ours), normMap(feats), `vector ${i}: order and values`);
    }
  }
});

test('unpacked encoding is really different bytes (the decoder test is not vacuous)', () => {
  const feats: Features = new Map([
    ['x', floatFeature([1, 2, 3])],
    ['y', int64Feature([-1n, 5n])],
  ]);
  const packed = PbExample.encode(PbExample.fromObject({ features: pbFeatures(feats) })).finish();
  const unpacked = PbExampleUnpacked.encode(PbExampleUnpacked.fromObject({ features: pbFeatures(feats) })).finish();
  assert.notDeepEqual(Buffer.from(packed), Buffer.from(unpacked));
  assert.ok(unpacked.includes(0x0d), 'unpacked floats use wire type 5 (tag 0x0d)');
  assert.deepEqual(normMap(decodeExample(unpacked)), normMap(feats));
});

test('duplicate map keys and concatenated (merged) messages: last value wins, like protobufjs (seed 4)', () => {
  const r = rng(4);
  for (let i = 0; i < 200; i++) {
    const a = randomFeatures(r, 8);
    const b = randomFeatures(r, 8);
    // Concatenating two serialized messages is a protobuf merge: duplicate keys across them.
    const bytes = Buffer.concat([encodeExample(a), encodeExample(b)]);
    const ref = toObj(PbExample.decode(bytes)) as any;
    const refMap = new Map(Object.entries(ref.features?.feature ?? {}).map(([k, v]) => [k, fromPb(v)]));
    const ours = decodeExample(bytes);
    assert.deepEqual(Object.fromEntries(normMap(ours)), Object.fromEntries(normMap(refMap as Features)), `vector ${i}`);
    // First position kept, last value wins.
    const expected: Features = new Map(a);
    for (const [k, f] of b) expected.set(k, f);
    assert.deepEqual(normMap(ours), normMap(expected), `vector ${i}: order`);
  }
  // Mixed packed and unpacked floats inside one FloatList are concatenated, as protobuf requires.
  const msg = (tag: number, body: number[]) => [tag, body.length, ...body];
  const floatList = [...msg(0x0a, [0, 0, 0x80, 0x3f]), 0x0d, 0, 0, 0, 0x40, 0x0d, 0, 0, 0x40, 0x40]; // packed [1], then 2, 3 unpacked
  const mixed = Buffer.from(msg(0x0a, msg(0x0a, [...msg(0x0a, [0x78]), ...msg(0x12, msg(0x12, floatList))])));
  assert.deepEqual(normMap(decodeExample(mixed)), [['x', ['float_list', ['1', '2', '3']]]]);
  assert.deepEqual(toObj(PbExample.decode(mixed)), { features: { feature: { x: { floatList: { value: [1, 2, 3] } } } } });
});

test('encodeSequenceExample is byte-identical to protobufjs and decodes back (seed 5)', () => {
  const r = rng(5);
  for (let i = 0; i < 200; i++) {
    const context = randomFeatures(r);
    const featureLists = new Map<string, Feature[]>();
    for (let j = r.int(0, 4); j > 0; j--)
      featureLists.set(
        r.pick(NAMES),
        Array.from({ length: r.int(0, 5) }, () => randomFeature(r)),
      );
    const ours = encodeSequenceExample({ context, featureLists });
    const obj = {
      context: pbFeatures(context),
      featureLists: { featureList: Object.fromEntries([...featureLists].map(([k, fs]) => [k, { feature: fs.map(pbFeature) }])) },
    };
    const ref = PbSequenceExample.encode(PbSequenceExample.fromObject(obj)).finish();
    assert.deepEqual(Buffer.from(ours), Buffer.from(ref), `vector ${i}`);
    const back = decodeSequenceExample(ours);
    assert.deepEqual(normMap(back.context), normMap(context));
    assert.deepEqual(
      [...back.featureLists].map(([k, fs]) => [k, fs.map(norm)]),
      [...featureLists].map(([k, fs]) => [k, fs.map(norm)]),
      `vector ${i} lists`,
    );
    // protobufjs reads our bytes to the same values.
    const pb = toObj(PbSequenceExample.decode(ours)) as any;
    for (const [k, fs] of featureLists)
      assert.deepEqual(
        (pb.featureLists.featureList[k].feature ?? []).map((o: any) => norm(fromPb(o))),
        fs.map(norm),
      );
  }
  // Presence follows the input, as in protobufjs: nothing given, nothing written.
  assert.equal(encodeSequenceExample({}).length, 0);
  assert.deepEqual(
    Buffer.from(encodeSequenceExample({ context: new Map() })),
    Buffer.from(PbSequenceExample.encode(PbSequenceExample.fromObject({ context: {} })).finish()),
  );
});

test('encodeExampleInto writes the same bytes at any offset; decode is exact at every alignment (seed 7)', () => {
  const r = rng(7);
  for (let i = 0; i < 200; i++) {
    const feats = randomFeatures(r, 8);
    feats.set('big', floatFeature(Float32Array.from({ length: r.int(0, 3000) }, () => r.next())));
    const ref = encodeExample(feats);
    assert.equal(exampleEncodedSize(feats), ref.length);
    const off = r.int(0, 7);
    const out = Buffer.alloc(ref.length + off + 3, 0xee);
    assert.equal(encodeExampleInto(feats, out, off), ref.length);
    assert.ok(out.subarray(off, off + ref.length).equals(ref), `vector ${i}`);
    assert.ok(out.subarray(0, off).every((b) => b === 0xee) && out.subarray(off + ref.length).every((b) => b === 0xee), 'nothing outside');
    assert.throws(() => encodeExampleInto(feats, new Uint8Array(ref.length - 1)), RangeError);
    // The payload at each of the four alignments: zero-copy views or arena copies, same values,
    // and decoded lists never overlap each other.
    for (let shift = 0; shift < 4; shift++) {
      const host = Buffer.alloc(ref.length + 4);
      ref.copy(host, shift);
      const dec = decodeExample(host.subarray(shift, shift + ref.length));
      assert.deepEqual(normMap(dec), normMap(feats), `vector ${i} shift ${shift}`);
      const floats = [...dec.values()].filter((f) => f.kind === 'float_list' && f.value.length).map((f) => f.value as Float32Array);
      floats.forEach((v, k) => v.fill(k + 1));
      floats.forEach((v, k) =>
        assert.ok(
          v.every((x) => x === k + 1),
          'lists do not alias',
        ),
      );
    }
  }
});

test('decode with inPlace: same values as a normal decode at every alignment, every float list a view, nothing aliased (seed 8)', () => {
  const r = rng(8);
  for (let i = 0; i < 300; i++) {
    // Canonical, unpacked and merged (concatenated) encodings, so the moves meet every layout.
    const a = randomFeatures(r, 8);
    a.set('big', floatFeature(Float32Array.from({ length: r.int(1, 2000) }, () => r.next())));
    const b = randomFeatures(r, 4);
    const T = i % 3 === 1 ? PbExampleUnpacked : PbExample;
    const one = Buffer.from(T.encode(T.fromObject({ features: pbFeatures(a) })).finish());
    const bytes = i % 3 === 2 ? Buffer.concat([one, encodeExample(b), encodeExample(a)]) : one;
    const want = normMap(decodeExample(bytes));
    for (let shift = 0; shift < 4; shift++) {
      const host = Buffer.alloc(bytes.length + 4);
      bytes.copy(host, shift);
      const dec = decodeExample(host.subarray(shift, shift + bytes.length), {}, { inPlace: true });
      assert.deepEqual(normMap(dec), want, `vector ${i} shift ${shift}`);
      if (T === PbExample && i % 3 === 0)
        for (const f of dec.values())
          if (f.kind === 'float_list' && f.value.length) assert.equal(f.value.buffer, host.buffer, `vector ${i} shift ${shift}: a view`);
      // Every returned list (floats, int64s, each bytes value) as raw bytes: fill each with its own mark.
      const lists: Uint8Array[] = [];
      for (const f of dec.values()) {
        if (f.kind === 'bytes_list') lists.push(...f.value);
        else lists.push(new Uint8Array(f.value.buffer, f.value.byteOffset, f.value.byteLength));
      }
      const marked = lists.filter((v) => v.length);
      marked.forEach((v, k) => v.fill((k % 255) + 1));
      marked.forEach((v, k) =>
        assert.ok(
          v.every((x) => x === (k % 255) + 1),
          `vector ${i}: lists do not alias`,
        ),
      );
    }
  }
});

test('malformed protobuf is a BAD_INPUT error naming the record, never a crash (seed 6)', () => {
  const r = rng(6);
  const good = encodeExample(randomFeatures(r, 8).set('z', floatFeature([1, 2, 3, 4])));
  for (let cut = 1; cut < good.length; cut++) {
    assert.throws(
      () => decodeExample(good.subarray(0, cut), { file: 'f.tfrecord', record: 7 }),
      (e) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && /f\.tfrecord, record 7: malformed protobuf/.test(e.message),
      `cut ${cut}`,
    );
  }
  // Random garbage: either decodes to something or fails cleanly, always quickly.
  for (let i = 0; i < 2000; i++) {
    const junk = Uint8Array.from({ length: r.int(0, 64) }, () => r.int(0, 255));
    try {
      decodeExample(junk);
      decodeSequenceExample(junk);
    } catch (e) {
      assert.ok(e instanceof GeotfrError && e.code === 'BAD_INPUT', `garbage ${i}: ${e}`);
    }
  }
});

// ------------------------------------------------------------------------------------------------
// Earth Engine's real shard (../shared/fixtures/ee-real, SOURCES.md)

const EE_SHARD = 'TEST_coeff_output_SIF_C_S_Amer-00005.tfrecord';
const EE_BANDS = ['constant', 'sin_1', 'cos_1', 'sin_2', 'cos_2'];

test("Earth Engine's real shard: 2 records x 5 float bands x 99,856 values in band order; re-encoding reproduces the file", async (t) => {
  if (!needEeFixtures(t)) return;
  const file = path.join(eeRealDir, EE_SHARD);
  const original = readFileSync(file);
  const payloads: Uint8Array[] = [];
  const decoded: Features[] = [];
  for await (const rec of readRecordFile(file)) {
    payloads.push(Buffer.from(rec.data));
    decoded.push(decodeExample(Buffer.from(rec.data), { file, record: rec.index }));
  }
  assert.equal(decoded.length, 2);
  for (const [i, ex] of decoded.entries()) {
    assert.deepEqual([...ex.keys()], EE_BANDS, `record ${i} band order`);
    for (const f of ex.values()) {
      assert.equal(f.kind, 'float_list');
      assert.equal(f.value.length, 99_856); // 316 x 316: 256 + 2*floor(60/2) (docs/semantics.md §1)
    }
  }
  // Record 0 is a fully masked patch (defaultValue -9999), still written.
  for (const f of decoded[0].values()) assert.ok((f.value as Float32Array).every((v) => v === -9999));
  // Record 1: 15,844 valid values per band, first at flat index 203; constant's valid range.
  for (const [name, f] of decoded[1]) {
    const v = f.value as Float32Array;
    const valid = v.filter((x) => x !== -9999);
    assert.equal(valid.length, 15_844, name);
    assert.equal(
      v.findIndex((x) => x !== -9999),
      203,
      name,
    );
  }
  const c = (decoded[1].get('constant')!.value as Float32Array).filter((x) => x !== -9999);
  assert.equal(Math.min(...c), Math.fround(-1.2677776));
  assert.equal(Math.max(...c), Math.fround(0.66655576));
  // Byte for byte: each payload and the whole framed file.
  const reencoded = decoded.map((ex) => encodeExample(ex));
  for (const [i, p] of reencoded.entries()) assert.ok(Buffer.from(p).equals(Buffer.from(payloads[i])), `record ${i} payload`);
  assert.ok(frameRecords(reencoded).equals(original), 'framed file byte for byte');
  // And protobufjs agrees with our decoding of EE's bytes.
  const pb = toObj(PbExample.decode(payloads[1])) as any;
  for (const name of EE_BANDS) assert.deepEqual(Float32Array.from(pb.features.feature[name].floatList.value), decoded[1].get(name)!.value);
});
