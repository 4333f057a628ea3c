/**
 * TFRecord framing, the one place it is written down:
 * `uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)`, all
 * little-endian (tensorflow/core/lib/io/record_writer.cc; docs/codec.md). The streaming writer and
 * readers (record.ts), the table batcher (table/framer.ts) and the float framer
 * (export/floatframes.ts) all frame and check records through these functions.
 */
import { maskedCrc32c } from './crc32c.js';

/** Length (8) + its masked CRC (4). */
export const RECORD_HEADER_BYTES = 12;
/** Masked CRC of the data. */
export const RECORD_FOOTER_BYTES = 4;
export const RECORD_OVERHEAD_BYTES = RECORD_HEADER_BYTES + RECORD_FOOTER_BYTES;

/** Framed size of a record with `payloadBytes` of data. */
export function framedSize(payloadBytes: number): number {
  return payloadBytes + RECORD_OVERHEAD_BYTES;
}

/** Writes the 12-byte header for a payload of `length` bytes at `at`. */
export function writeRecordHeader(buf: Uint8Array, at: number, length: number): void {
  putU32le(buf, at, length >>> 0);
  putU32le(buf, at + 4, Math.floor(length / 2 ** 32));
  putU32le(buf, at + 8, maskedCrc32c(buf.subarray(at, at + 8)));
}

/** Writes the 4-byte footer at `payloadAt + length`: the masked CRC of the `length` payload bytes at `payloadAt`. */
export function writeRecordFooter(buf: Uint8Array, payloadAt: number, length: number): void {
  putU32le(buf, payloadAt + length, maskedCrc32c(buf.subarray(payloadAt, payloadAt + length)));
}

/** The 12-byte header (length + its masked CRC) for a payload of `length` bytes. */
export function recordHeader(length: number): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  writeRecordHeader(h, 0, length);
  return h;
}

/** The 4-byte footer (masked CRC of the payload). */
export function recordFooter(payload: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(RECORD_FOOTER_BYTES);
  putU32le(f, 0, maskedCrc32c(payload));
  return f;
}

/** Frames payloads into one buffer (in-memory convenience for tests and small files). */
export function frameRecords(payloads: Iterable<Uint8Array>): Buffer {
  const parts: Uint8Array[] = [];
  for (const p of payloads) parts.push(recordHeader(p.length), p, recordFooter(p));
  return Buffer.concat(parts);
}

/** The data length stored in the header at `at` (a double: exact up to 2^53). */
export function headerLength(b: Uint8Array, at: number): number {
  return u32le(b, at + 4) * 2 ** 32 + u32le(b, at);
}

/** The masked CRC stored in the header at `at`. */
export const storedHeaderCrc = (b: Uint8Array, at: number): number => u32le(b, at + 8);

/** The masked CRC of the header's length bytes at `at`, as it should be stored. */
export const headerCrc = (b: Uint8Array, at: number): number => maskedCrc32c(b.subarray(at, at + 8));

/** The masked CRC stored in the footer after `length` payload bytes at `payloadAt`. */
export const storedFooterCrc = (b: Uint8Array, payloadAt: number, length: number): number => u32le(b, payloadAt + length);

/** Little-endian uint32 at `o` (no DataView per record on the streaming path). */
export const u32le = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

function putU32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}
