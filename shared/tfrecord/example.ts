/**
 * tf.train.Example / SequenceExample codec (proto/example.proto), hand-written for speed.
 *
 * Encoding is canonical: fields in order, map entries key (1) then value (2), minimal varints,
 * packed float and int64 lists, features in the order given (docs/semantics.md §4: band order, which reproduces
 * Earth Engine's bytes). protobufjs produces identical bytes and is the reference in tests.
 *
 * Decoding accepts everything protobuf allows: packed and unpacked repeated scalars (even mixed),
 * unknown fields, and duplicate map keys (the last value wins, keeping the first position).
 * Decoded float lists are zero-copy views of the input where alignment allows: copy them if the
 * input buffer is reused.
 */
import { GeotfrError, type ErrorContext } from '../errors.js';
import { FeatureField, fieldNumberOf, int64VarintSize, ldSize, Tag, WireType, wireTypeOf, writeVarint } from './wire.js';

export type Feature = { kind: 'float_list'; value: Float32Array } | { kind: 'int64_list'; value: BigInt64Array } | { kind: 'bytes_list'; value: Uint8Array[] };
export type FeatureKind = Feature['kind'];

/** Ordered features (Map keeps insertion order, which is the encoding order). */
export type Features = Map<string, Feature>;

export interface SequenceExample {
  context: Features;
  featureLists: Map<string, Feature[]>;
}

export const floatFeature = (v: Float32Array | ArrayLike<number>): Feature => ({
  kind: 'float_list',
  value: v instanceof Float32Array ? v : Float32Array.from(v),
});
export const int64Feature = (v: BigInt64Array | ArrayLike<number | bigint>): Feature => ({
  kind: 'int64_list',
  value: v instanceof BigInt64Array ? v : BigInt64Array.from(Array.from(v as ArrayLike<number | bigint>, (x) => BigInt(x))),
});
export const bytesFeature = (v: Array<Uint8Array | string>): Feature => ({
  kind: 'bytes_list',
  value: v.map((x) => (typeof x === 'string' ? Buffer.from(x, 'utf8') : x)),
});

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const textEncoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Sizes: the one derivation of the Example layout (the encoder, the float framer of
// export/floatframes.ts and the table encoder all size and place fields through these).

const ld = ldSize;

/** Payload of a packed float or int64 list (the values, without tag and length); 0 for bytes lists. */
function packedSize(f: Feature): number {
  switch (f.kind) {
    case 'float_list':
      return f.value.length * 4;
    case 'int64_list': {
      let n = 0;
      for (let i = 0; i < f.value.length; i++) n += int64VarintSize(f.value[i]);
      return n;
    }
    case 'bytes_list':
      return 0;
  }
}

/** Size of a FloatList / Int64List / BytesList body; `packed` is `packedSize(f)`. */
function listBodySize(f: Feature, packed: number): number {
  if (f.kind !== 'bytes_list') return packed ? ld(packed) : 0;
  let n = 0;
  for (const b of f.value) n += ld(b.length);
  return n;
}

/** Sizes of the nested messages of one `Features` map entry, as the encoder writes them. */
interface EntrySizes {
  /** Packed values (float/int64 lists; 0 for bytes lists). */
  packed: number;
  /** FloatList / Int64List / BytesList body. */
  listBody: number;
  /** Feature body (the oneof field holding the list). */
  featureBody: number;
  /** MapEntry body (key, then value). */
  entryBody: number;
}

function entrySizes(keyBytes: number, packed: number, listBody: number): EntrySizes {
  const featureBody = ld(listBody);
  return { packed, listBody, featureBody, entryBody: ld(keyBytes) + ld(featureBody) };
}

/** Exact serialized size of one `Features` map entry (tag and length included) holding `count` float values under a feature name of `nameBytes` UTF-8 bytes. Fixed for float features (docs/semantics.md §5: shard plans up front). */
export function floatFeatureEntrySize(nameBytes: number, count: number): number {
  return ld(entrySizes(nameBytes, count * 4, count ? ld(count * 4) : 0).entryBody);
}

/** Exact size of a serialized Example whose Features body is `featuresBodyBytes`. */
export function exampleSizeFromFeaturesBody(featuresBodyBytes: number): number {
  return ld(featuresBodyBytes);
}

// ---------------------------------------------------------------------------------------------
// Encoder

class Writer {
  pos: number;
  readonly buf: Uint8Array;
  constructor(sizeOrBuffer: number | Uint8Array, offset = 0) {
    this.buf = typeof sizeOrBuffer === 'number' ? Buffer.allocUnsafe(sizeOrBuffer) : sizeOrBuffer;
    this.pos = offset;
  }
  varint(n: number): void {
    this.pos = writeVarint(this.buf, this.pos, n);
  }
  /** A length-delimited field's tag and length (the body follows). */
  field(tag: number, bodyBytes: number): void {
    this.buf[this.pos++] = tag;
    this.pos = writeVarint(this.buf, this.pos, bodyBytes);
  }
  varint64(v: bigint): void {
    if (v >= 0n && v < 0x80000000n) {
      this.varint(Number(v));
      return;
    }
    let u = BigInt.asUintN(64, v);
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }
  bytes(src: Uint8Array): void {
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }
  floats(v: Float32Array): void {
    if (LITTLE_ENDIAN) {
      this.buf.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), this.pos);
      this.pos += v.byteLength;
    } else {
      const dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      for (let i = 0; i < v.length; i++, this.pos += 4) dv.setFloat32(this.pos, v[i], true);
    }
  }
}

const kindTag = (kind: FeatureKind): number => (kind === 'bytes_list' ? Tag.bytesList : kind === 'float_list' ? Tag.floatList : Tag.int64List);

/**
 * Writes a Feature's oneof field and, for float and int64 lists, the packed field's tag and length:
 * everything before the values.
 */
function writeFeatureHead(w: Writer, kind: FeatureKind, s: EntrySizes): void {
  w.field(kindTag(kind), s.listBody);
  if (kind !== 'bytes_list' && s.packed) w.field(Tag.values, s.packed);
}

/** Writes a Feature body's values after `writeFeatureHead`. */
function writeFeatureValues(w: Writer, f: Feature, packed: number): void {
  switch (f.kind) {
    case 'float_list':
      if (packed) w.floats(f.value);
      return;
    case 'int64_list':
      // One packed field of varints (negatives take 10 bytes).
      for (let i = 0; i < f.value.length; i++) w.varint64(f.value[i]);
      return;
    case 'bytes_list':
      for (const b of f.value) {
        w.field(Tag.values, b.length);
        w.bytes(b);
      }
      return;
  }
}

/** Writes a Feature body (oneof field, then values). */
function writeFeature(w: Writer, f: Feature, s: EntrySizes): void {
  writeFeatureHead(w, f.kind, s);
  writeFeatureValues(w, f, s.packed);
}

/** Writes a `Features` map entry up to its values: entry tag and length, key, value tag and length, feature head. */
function writeEntryHead(w: Writer, key: Uint8Array, kind: FeatureKind, s: EntrySizes): void {
  w.field(Tag.mapEntry, s.entryBody);
  w.field(Tag.mapKey, key.length);
  w.bytes(key);
  w.field(Tag.mapValue, s.featureBody);
  writeFeatureHead(w, kind, s);
}

/**
 * The bytes of a float feature's `Features` map entry that precede its `count` values (the values
 * follow as little-endian float32). For framers that write the values straight into their buffers:
 * the entry is `prefix + 4 * count` bytes, identical to what `encodeExample` writes.
 */
export function floatEntryPrefix(name: string | Uint8Array, count: number): Buffer {
  const key = typeof name === 'string' ? textEncoder.encode(name) : name;
  const packed = count * 4;
  const s = entrySizes(key.length, packed, packed ? ld(packed) : 0);
  const w = new Writer(ld(s.entryBody) - packed);
  writeEntryHead(w, key, 'float_list', s);
  return w.buf as Buffer;
}

/** One serialized `Features` map entry (tag and length included), as `encodeExample` writes it. */
export function encodeFeatureEntry(name: string, feature: Feature): Buffer {
  const { plans, body } = planFeatures([[name, feature]]);
  const w = new Writer(body);
  writeFeatures(w, plans);
  return w.buf as Buffer;
}

/** Size of a serialized Example whose `Features` map entries add up to `featuresBody` bytes. */
export const exampleSize = (featuresBody: number): number => ld(featuresBody);

/** Writes an Example's head (the `features` field's tag and length) at `pos`; the entries follow. Returns the position after it. */
export function writeExampleHead(buf: Uint8Array, pos: number, featuresBody: number): number {
  buf[pos] = Tag.features;
  return writeVarint(buf, pos + 1, featuresBody);
}

interface EntryPlan extends EntrySizes {
  key: Uint8Array;
  feature: Feature;
}

function planFeatures(features: Iterable<[string, Feature]>): { plans: EntryPlan[]; body: number } {
  const plans: EntryPlan[] = [];
  let body = 0;
  for (const [name, feature] of features) {
    const key = textEncoder.encode(name);
    const packed = packedSize(feature);
    const s = entrySizes(key.length, packed, listBodySize(feature, packed));
    // Fields copied one by one, not spread: this runs per feature of every record (tables: ~10 per 200 bytes).
    plans.push({ key, feature, packed, listBody: s.listBody, featureBody: s.featureBody, entryBody: s.entryBody });
    body += ld(s.entryBody);
  }
  return { plans, body };
}

function writeFeatures(w: Writer, plans: EntryPlan[]): void {
  for (const p of plans) {
    writeEntryHead(w, p.key, p.feature.kind, p);
    writeFeatureValues(w, p.feature, p.packed);
  }
}

type FeatureInput = Features | Iterable<[string, Feature]> | Record<string, Feature>;

function entries(f: FeatureInput): Iterable<[string, Feature]> {
  if (f instanceof Map || Symbol.iterator in (f as object)) return f as Iterable<[string, Feature]>;
  return Object.entries(f as Record<string, Feature>);
}

/**
 * Serializes a tf.train.Example with features in the given order. The `features` field is always
 * written, even when empty (`0a 00`), as TensorFlow's `tf.train.Example(features=...)` and protobufjs
 * do, so the size is exactly `exampleSizeFromFeaturesBody(body)`.
 */
export function encodeExample(features: FeatureInput): Buffer {
  const { plans, body } = planFeatures(entries(features));
  const w = new Writer(ld(body));
  w.field(Tag.features, body);
  writeFeatures(w, plans);
  return w.buf as Buffer;
}

/** Exact serialized size of `encodeExample(features)`, without encoding. */
export function exampleEncodedSize(features: FeatureInput): number {
  return ld(planFeatures(entries(features)).body);
}

/**
 * Serializes an Example into `out` at `offset` (same bytes as `encodeExample`) and returns the number
 * of bytes written. For hot loops: reusing one output buffer avoids allocating (and page-faulting)
 * fresh memory per record, which dominates the cost for megabyte-sized patches.
 * Throws a RangeError if `out` is too small (check with `exampleEncodedSize`).
 */
export function encodeExampleInto(features: FeatureInput, out: Uint8Array, offset = 0): number {
  const { plans, body } = planFeatures(entries(features));
  const size = ld(body);
  if (offset < 0 || out.length - offset < size) throw new RangeError(`encodeExampleInto: needs ${size} bytes at offset ${offset}, buffer has ${out.length}`);
  const w = new Writer(out, offset);
  w.field(Tag.features, body);
  writeFeatures(w, plans);
  return w.pos - offset;
}

/**
 * Serializes a tf.train.SequenceExample (context features, then feature lists, each in the given order).
 * Submessage presence follows the input: `context` / `featureLists` are written (even when empty) if
 * given, and omitted if undefined, matching protobufjs and TensorFlow for the same message.
 */
export function encodeSequenceExample(seq: { context?: FeatureInput; featureLists?: Map<string, Feature[]> | Iterable<[string, Feature[]]> }): Buffer {
  const ctx = planFeatures(entries(seq.context ?? []));
  const lists: { key: Uint8Array; feats: Feature[]; sizes: EntrySizes[]; listMsg: number; entryBody: number }[] = [];
  let listsBody = 0;
  for (const [name, feats] of seq.featureLists ?? []) {
    const key = textEncoder.encode(name);
    // Each Feature of a FeatureList is sized like a map entry's value (its key does not count).
    const sizes = feats.map((f) => {
      const packed = packedSize(f);
      return entrySizes(0, packed, listBodySize(f, packed));
    });
    let listMsg = 0;
    for (const fs of sizes) listMsg += ld(fs.featureBody);
    const entryBody = ld(key.length) + ld(listMsg);
    lists.push({ key, feats, sizes, listMsg, entryBody });
    listsBody += ld(entryBody);
  }
  const hasCtx = seq.context !== undefined;
  const hasLists = seq.featureLists !== undefined;
  const total = (hasCtx ? ld(ctx.body) : 0) + (hasLists ? ld(listsBody) : 0);
  const w = new Writer(total);
  if (hasCtx) {
    w.field(Tag.features, ctx.body);
    writeFeatures(w, ctx.plans);
  }
  if (hasLists) {
    w.field(Tag.featureLists, listsBody);
    for (const l of lists) {
      w.field(Tag.mapEntry, l.entryBody);
      w.field(Tag.mapKey, l.key.length);
      w.bytes(l.key);
      w.field(Tag.mapValue, l.listMsg);
      l.feats.forEach((f, i) => {
        w.field(Tag.listFeature, l.sizes[i].featureBody);
        writeFeature(w, f, l.sizes[i]);
      });
    }
  }
  return w.buf as Buffer;
}

// ---------------------------------------------------------------------------------------------
// Decoder

const textDecoder = new TextDecoder('utf-8', { fatal: false });

class Reader {
  pos: number;
  /** Scratch memory for float lists that cannot be viewed in place (see floatsAt). */
  arena?: Buffer;
  arenaPos = 0;
  /** DecodeOptions.inPlace: misaligned floats may be moved down into already-parsed header bytes. */
  inPlace = false;
  /** End of the last returned view: in-place moves never touch bytes before it. */
  viewEnd = 0;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    readonly ctx: ErrorContext,
  ) {
    this.pos = start;
  }
  fail(msg: string): never {
    throw new GeotfrError('BAD_INPUT', `malformed protobuf: ${msg} at payload byte ${this.pos}`, this.ctx);
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      if (i < 8) result += (b & 0x7f) * mul; // beyond 2^56 precision is irrelevant for lengths and tags
      mul *= 128;
      if (b < 0x80) return result;
    }
    this.fail('varint longer than 10 bytes');
  }
  varint64(): bigint {
    // The first 7 bytes (49 bits) add up exactly in a double: one BigInt per value, not one per byte.
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return BigInt(n);
      mul *= 128;
    }
    let lo = BigInt(n);
    for (let shift = 49n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++];
      lo |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, lo);
    }
    this.fail('varint longer than 10 bytes');
  }
  length(): number {
    const n = this.varint();
    if (n > this.end - this.pos) this.fail(`length ${n} runs past the end of the message (${this.end - this.pos} bytes left)`);
    return n;
  }
  /** Skips the field whose tag was just read. */
  skip(tag: number): void {
    const wire = wireTypeOf(tag);
    switch (wire) {
      case WireType.Varint:
        this.varint();
        return;
      case WireType.Fixed64:
        if (this.end - this.pos < 8) this.fail('truncated fixed64');
        this.pos += 8;
        return;
      case WireType.LengthDelimited:
        this.pos += this.length();
        return;
      case WireType.Fixed32:
        if (this.end - this.pos < 4) this.fail('truncated fixed32');
        this.pos += 4;
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }
}

/**
 * Float32Array over `bytes` packed little-endian floats at `buf[start]`: a zero-copy view when the
 * position is 4-byte aligned, else a copy. Copies are carved from one uninitialised arena per
 * decoded message (sized by the bytes left in it), so a misaligned record costs one allocation and
 * a memcpy rather than a zero-filled allocation per feature (whether a record's floats are aligned
 * depends on varint sizes and name lengths, so it is a coin toss for real files).
 */
function floatsAt(r: Reader, start: number, bytes: number): Float32Array {
  const buf = r.buf;
  const off = buf.byteOffset + start;
  if (LITTLE_ENDIAN && off % 4 === 0) {
    r.viewEnd = start + bytes;
    return new Float32Array(buf.buffer, off, bytes / 4);
  }
  const k = off % 4;
  if (LITTLE_ENDIAN && r.inPlace && start - k >= r.viewEnd) {
    // The k bytes before the floats are tags and lengths already parsed (at least 2 bytes of packed
    // field header precede any float data), and no view handed out covers them: move the floats
    // down onto them. Warm-memory memmove instead of a fresh allocation; the input's bytes change.
    buf.copyWithin(start - k, start, start + bytes);
    r.viewEnd = start - k + bytes;
    return new Float32Array(buf.buffer, off - k, bytes / 4);
  }
  if (!LITTLE_ENDIAN) {
    const out = new Float32Array(bytes / 4);
    const dv = new DataView(buf.buffer, off, bytes);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  if (!r.arena || r.arena.length - r.arenaPos < bytes) {
    // Every later float list lies within [start, end), so this is enough for the rest of the message.
    r.arena = Buffer.allocUnsafeSlow(Math.max(bytes, r.end - start));
    r.arenaPos = 0;
  }
  const at = r.arenaPos;
  r.arena.set(buf.subarray(start, start + bytes), at);
  r.arenaPos = at + bytes; // stays a multiple of 4
  return new Float32Array(r.arena.buffer, r.arena.byteOffset + at, bytes / 4);
}

function concatFloats(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function decodeFeature(r: Reader, end: number): Feature {
  let feature: Feature | undefined;
  while (r.pos < end) {
    const tag = r.varint();
    const field = fieldNumberOf(tag);
    if (wireTypeOf(tag) !== WireType.LengthDelimited || field < FeatureField.bytesList || field > FeatureField.int64List) {
      r.skip(tag);
      continue;
    }
    const len = r.length();
    const listEnd = r.pos + len;
    // oneof: the last kind seen wins; repeated occurrences of the same list merge (protobuf semantics).
    if (field === FeatureField.floatList) {
      const parts: Float32Array[] = feature?.kind === 'float_list' ? [feature.value] : [];
      while (r.pos < listEnd) {
        const t = r.varint();
        if (t === Tag.values) {
          const n = r.length();
          if (n % 4) r.fail(`packed float list of ${n} bytes is not a multiple of 4`);
          parts.push(floatsAt(r, r.pos, n));
          r.pos += n;
        } else if (t === Tag.floatValue) {
          if (listEnd - r.pos < 4) r.fail('truncated float');
          parts.push(floatsAt(r, r.pos, 4).slice());
          r.pos += 4;
        } else r.skip(t);
      }
      feature = { kind: 'float_list', value: parts.length ? concatFloats(parts) : new Float32Array(0) };
    } else if (field === FeatureField.int64List) {
      const vals: bigint[] = feature?.kind === 'int64_list' ? Array.from(feature.value) : [];
      while (r.pos < listEnd) {
        const t = r.varint();
        if (t === Tag.values) {
          const n = r.length();
          const stop = r.pos + n;
          while (r.pos < stop) vals.push(r.varint64());
          if (r.pos !== stop) r.fail('packed int64 list overruns its length');
        } else if (t === Tag.int64Value) vals.push(r.varint64());
        else r.skip(t);
      }
      feature = { kind: 'int64_list', value: BigInt64Array.from(vals) };
    } else {
      const vals: Uint8Array[] = feature?.kind === 'bytes_list' ? feature.value : [];
      while (r.pos < listEnd) {
        const t = r.varint();
        if (t === Tag.values) {
          const n = r.length();
          vals.push(r.buf.subarray(r.pos, r.pos + n));
          r.viewEnd = r.pos + n; // a view: in-place float moves must not reach it
          r.pos += n;
        } else r.skip(t);
      }
      feature = { kind: 'bytes_list', value: vals };
    }
    if (r.pos !== listEnd) r.fail('list overruns its length');
  }
  // A Feature with no kind set: TensorFlow treats it as an empty list; we report it as an empty float list.
  return feature ?? { kind: 'float_list', value: new Float32Array(0) };
}

/** Decodes one map entry (key=1, value=2), returning the key and the value's extent. */
function decodeEntry(r: Reader, end: number): { key: string; valueStart: number; valueEnd: number } {
  let key = '';
  let valueStart = -1;
  let valueEnd = -1;
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === Tag.mapKey) {
      const n = r.length();
      key = textDecoder.decode(r.buf.subarray(r.pos, r.pos + n));
      r.pos += n;
    } else if (tag === Tag.mapValue) {
      const n = r.length();
      valueStart = r.pos;
      valueEnd = r.pos + n;
      r.pos += n;
    } else r.skip(tag);
  }
  return { key, valueStart, valueEnd };
}

/**
 * Decodes the entries (key = 1, value = 2) of a map field up to `end` into `out`: a duplicate key's
 * last value wins and keeps the first position, an entry without a value gets `absent()`.
 */
function decodeMapInto<V>(r: Reader, end: number, out: Map<string, V>, value: (r: Reader, valueEnd: number) => V, absent: () => V): void {
  while (r.pos < end) {
    const tag = r.varint();
    if (tag !== Tag.mapEntry) {
      r.skip(tag);
      continue;
    }
    const len = r.length();
    const entryEnd = r.pos + len;
    const { key, valueStart, valueEnd } = decodeEntry(r, entryEnd);
    let v: V;
    if (valueStart < 0) v = absent();
    else {
      r.pos = valueStart;
      v = value(r, valueEnd);
    }
    out.set(key, v);
    r.pos = entryEnd;
  }
}

const emptyFeature = (): Feature => ({ kind: 'float_list', value: new Float32Array(0) });

function decodeFeaturesInto(r: Reader, end: number, out: Features): void {
  decodeMapInto(r, end, out, decodeFeature, emptyFeature);
}

/** A FeatureList body: its repeated `feature` field. */
function decodeFeatureList(r: Reader, end: number): Feature[] {
  const feats: Feature[] = [];
  while (r.pos < end) {
    const tag = r.varint();
    if (tag !== Tag.listFeature) {
      r.skip(tag);
      continue;
    }
    const len = r.length();
    const featureEnd = r.pos + len;
    feats.push(decodeFeature(r, featureEnd));
    r.pos = featureEnd;
  }
  return feats;
}

/**
 * Where to place a serialized Example in memory so that most of its packed float bytes are 4-byte
 * aligned, and so decode as zero-copy views (see floatsAt): returns s in 0..3 such that copying the
 * payload to an address ≡ s (mod 4) aligns the largest number of float bytes. Used by the record
 * reader when it has to copy a record anyway. Walks only entry headers (cheap); returns 0 for
 * anything that does not parse as an Example (it is a hint, never an error).
 */
export function floatAlignmentShift(buf: Uint8Array): number {
  const weight = [0, 0, 0, 0];
  try {
    const r = new Reader(buf, 0, buf.length, {});
    while (r.pos < r.end) {
      const tag = r.varint();
      if (tag !== Tag.features) {
        r.skip(tag);
        continue;
      }
      const featuresEnd = r.pos + r.length();
      while (r.pos < featuresEnd) {
        if (r.varint() !== Tag.mapEntry) return 0;
        const entryEnd = r.pos + r.length();
        const { valueStart, valueEnd } = decodeEntry(r, entryEnd);
        // Feature { float_list (2) { packed value (1) } } written canonically: 12 len 0a len floats
        if (valueStart >= 0 && buf[valueStart] === Tag.floatList) {
          r.pos = valueStart + 1;
          r.length();
          if (r.pos < valueEnd && buf[r.pos] === Tag.values) {
            r.pos++;
            const n = r.length();
            weight[(4 - (r.pos % 4)) % 4] += n;
          }
        }
        r.pos = entryEnd;
      }
    }
  } catch {
    return 0;
  }
  let best = 0;
  for (let s = 1; s < 4; s++) if (weight[s] > weight[best]) best = s;
  return best;
}

export interface DecodeOptions {
  /**
   * Allow the decoder to realign misaligned float lists by moving them a few bytes down inside
   * `buf`, so every float list is a zero-copy view and nothing is allocated. `buf` no longer holds
   * the serialized message afterwards (hash or re-send it before). For readers that own the record
   * bytes (e.g. straight out of `readRecords`) and want maximum decode speed.
   */
  inPlace?: boolean;
}

/** Decodes a serialized tf.train.Example. `ctx` (file, record) is used in error messages. */
export function decodeExample(buf: Uint8Array, ctx: ErrorContext = {}, opts: DecodeOptions = {}): Features {
  const r = new Reader(buf, 0, buf.length, ctx);
  r.inPlace = opts.inPlace ?? false;
  const out: Features = new Map();
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag !== Tag.features) {
      r.skip(tag);
      continue;
    }
    const len = r.length();
    decodeFeaturesInto(r, r.pos + len, out);
  }
  return out;
}

/** Decodes a serialized tf.train.SequenceExample. */
export function decodeSequenceExample(buf: Uint8Array, ctx: ErrorContext = {}, opts: DecodeOptions = {}): SequenceExample {
  const r = new Reader(buf, 0, buf.length, ctx);
  r.inPlace = opts.inPlace ?? false;
  const context: Features = new Map();
  const featureLists = new Map<string, Feature[]>();
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === Tag.features) {
      const len = r.length();
      decodeFeaturesInto(r, r.pos + len, context);
    } else if (tag === Tag.featureLists) {
      const len = r.length();
      decodeMapInto(r, r.pos + len, featureLists, decodeFeatureList, () => []);
    } else r.skip(tag);
  }
  return { context, featureLists };
}
