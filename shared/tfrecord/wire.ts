/**
 * Protobuf wire primitives for the tf.train messages (proto/example.proto): wire types, the field
 * tags the codec reads and writes, varint sizes and writes. Everything the Example codec and the
 * fast framers (export/floatframes.ts, table/encode.ts) need to agree on byte for byte lives here.
 */

/** Protobuf wire types (the low 3 bits of a tag). Groups (3, 4) are not used by tf.train. */
export enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

/** A field's tag: `field << 3 | wire` (every tag of proto/example.proto fits in one byte). */
export const fieldTag = (field: number, wire: WireType): number => field * 8 + wire;

/** The wire type of a tag. */
export const wireTypeOf = (tag: number): WireType => tag & 7;

/** The field number of a tag. */
export const fieldNumberOf = (tag: number): number => Math.floor(tag / 8);

/**
 * The tags of proto/example.proto, by message and field. Length-delimited unless named otherwise;
 * map fields are repeated `MapEntry { key = 1; value = 2 }` messages.
 */
export const Tag = {
  /** Example.features (1) and SequenceExample.context (1). */
  features: fieldTag(1, WireType.LengthDelimited),
  /** SequenceExample.feature_lists (2). */
  featureLists: fieldTag(2, WireType.LengthDelimited),
  /** Features.feature (1) and FeatureLists.feature_list (1): one map entry. */
  mapEntry: fieldTag(1, WireType.LengthDelimited),
  /** MapEntry.key (1). */
  mapKey: fieldTag(1, WireType.LengthDelimited),
  /** MapEntry.value (2). */
  mapValue: fieldTag(2, WireType.LengthDelimited),
  /** FeatureList.feature (1). */
  listFeature: fieldTag(1, WireType.LengthDelimited),
  /** Feature.bytes_list (1), Feature.float_list (2), Feature.int64_list (3): the oneof `kind`. */
  bytesList: fieldTag(1, WireType.LengthDelimited),
  floatList: fieldTag(2, WireType.LengthDelimited),
  int64List: fieldTag(3, WireType.LengthDelimited),
  /** BytesList.value (1), and FloatList.value / Int64List.value (1) packed. */
  values: fieldTag(1, WireType.LengthDelimited),
  /** FloatList.value (1) unpacked: one fixed32 per value. */
  floatValue: fieldTag(1, WireType.Fixed32),
  /** Int64List.value (1) unpacked: one varint per value. */
  int64Value: fieldTag(1, WireType.Varint),
} as const;

/** Feature's oneof field numbers (the `kind` of a Feature). */
export const FeatureField = { bytesList: 1, floatList: 2, int64List: 3 } as const;

/** Bytes taken by `n` as a varint (n ≥ 0, n < 2^53). */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let s = 4;
  n = Math.floor(n / 0x10000000);
  while (n > 0) {
    s++;
    n = Math.floor(n / 128);
  }
  return s;
}

/** Bytes taken by a signed int64 as a varint (two's complement: negatives take 10). */
export function int64VarintSize(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  let s = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    s++;
  }
  return s;
}

/** Size of a length-delimited field with a one-byte tag: tag + length varint + body. */
export const ldSize = (bodyBytes: number): number => 1 + varintSize(bodyBytes) + bodyBytes;

/** Writes `n` (0 ≤ n < 2^53) as a varint at `pos`; returns the position after it. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}
