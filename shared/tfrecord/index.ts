/**
 * `geotfr/tfrecord`: the TFRecord and tf.train.Example codec alone (docs/codec.md). Nothing reachable
 * from here imports a dependency: only node: built-ins, this folder, the project's error type and
 * its options and limits tables (test/package/graph.test.ts checks the import graph). The native CRC-32C (@node-rs/crc32) is
 * loaded through a guarded require, with a JS fallback.
 */
export { crc32c, crc32cImplementation, maskedCrc32c } from './crc32c.js';
export {
  bytesFeature,
  decodeExample,
  decodeSequenceExample,
  encodeExample,
  encodeExampleInto,
  encodeFeatureEntry,
  encodeSequenceExample,
  exampleEncodedSize,
  exampleSize,
  exampleSizeFromFeaturesBody,
  floatAlignmentShift,
  floatEntryPrefix,
  floatFeature,
  floatFeatureEntrySize,
  int64Feature,
  writeExampleHead,
  type DecodeOptions,
  type Feature,
  type FeatureKind,
  type Features,
  type SequenceExample,
} from './example.js';
export {
  framedSize,
  frameRecords,
  headerCrc,
  headerLength,
  RECORD_FOOTER_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_OVERHEAD_BYTES,
  recordFooter,
  recordHeader,
  storedFooterCrc,
  storedHeaderCrc,
  writeRecordFooter,
  writeRecordHeader,
} from './framing.js';
export {
  fileSource,
  gzipSync,
  parseRecordsSync,
  readRecordFile,
  readRecords,
  RecordWriter,
  type ByteSource,
  type ReadRecordsOptions,
  type RecordWriterOptions,
  type TFRecord,
} from './record.js';
export { FeatureField, fieldNumberOf, fieldTag, int64VarintSize, ldSize, Tag, varintSize, WireType, wireTypeOf, writeVarint } from './wire.js';
export { GeotfrError, type ErrorCode } from '../errors.js';
