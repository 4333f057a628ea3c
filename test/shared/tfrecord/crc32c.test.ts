/** CRC-32C: RFC 3720 vectors, native vs pure-JS fallback, continuation, and TFRecord's mask. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, crc32cJs, crc32cImplementation, maskCrc, maskedCrc32c } from '../../../shared/tfrecord/crc32c.js';

test('CRC-32C check value and RFC 3720 B.4 vectors, native and JS', () => {
  const vectors: [Uint8Array, number][] = [
    [Buffer.from('123456789'), 0xe3069283],
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    [new Uint8Array(0), 0],
  ];
  for (const [data, want] of vectors) {
    assert.equal(crc32c(data), want);
    assert.equal(crc32cJs(data), want);
  }
  assert.equal(crc32cImplementation, 'native', 'the native @node-rs/crc32 should load on this platform');
});

test('native and JS agree on random data of every length 0..300 and at odd offsets; continuation works (seed 51)', () => {
  let s = 51;
  const buf = Buffer.alloc(70_000);
  for (let i = 0; i < buf.length; i++) buf[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  for (let n = 0; n <= 300; n++) {
    const d = buf.subarray(n % 7, (n % 7) + n);
    assert.equal(crc32cJs(d), crc32c(d), `length ${n}`);
  }
  assert.equal(crc32cJs(buf), crc32c(buf));
  for (const cut of [0, 1, 7, 8, 9, 4095, 65_536]) {
    assert.equal(crc32c(buf.subarray(cut), crc32c(buf.subarray(0, cut))), crc32c(buf), `native continuation at ${cut}`);
    assert.equal(crc32cJs(buf.subarray(cut), crc32cJs(buf.subarray(0, cut))), crc32c(buf), `JS continuation at ${cut}`);
  }
});

test("masked CRC is TensorFlow's: rotate right 15 plus 0xa282ead8", () => {
  for (const c of [0, 1, 0xffffffff, 0x12345678, 0xe3069283]) {
    const rot = ((c >>> 15) | (c << 17)) >>> 0;
    assert.equal(maskCrc(c), (rot + 0xa282ead8) >>> 0);
  }
  // TensorFlow 2.21's `tf.io.TFRecordWriter` writes an empty record as these 16 bytes
  // (length 0, masked CRC of the length, masked CRC of no data); the TF round-trip tests check the rest.
  const header = new Uint8Array(8);
  const frame = Buffer.concat([header, u32(maskedCrc32c(header)), u32(maskedCrc32c(new Uint8Array(0)))]);
  assert.equal(frame.toString('hex'), '000000000000000029039807d8ea82a2');
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
