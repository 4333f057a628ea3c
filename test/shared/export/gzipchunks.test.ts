/** Chunked gzip (pigz-style, one member): CRC combination and streams that zlib and gunzip accept. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import { GZIP_HEADER, GzipTrailer, crc32Combine, deflateChunk, deflateChunkAsync, outputChunkBytes } from '../../../shared/export/gzipchunks.js';
import { rng } from './memsource.js';

test('crc32Combine(crc(A), crc(B), |B|) = crc(A‖B)', () => {
  const next = rng(3);
  for (let k = 0; k < 50; k++) {
    const a = Buffer.from(Array.from({ length: Math.floor(next() * 5000) }, () => Math.floor(next() * 256)));
    const b = Buffer.from(Array.from({ length: Math.floor(next() * 5000) }, () => Math.floor(next() * 256)));
    assert.equal(crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length), zlib.crc32(Buffer.concat([a, b])));
  }
});

test('independently deflated chunks form one gzip member that gunzip verifies', () => {
  const next = rng(4);
  for (const level of [1, 6, 9]) {
    const chunks = Array.from({ length: 1 + Math.floor(next() * 6) }, (_, i) => {
      const f = new Float32Array(Math.floor(next() * 40000) + (i === 0 ? 0 : 1));
      for (let j = 0; j < f.length; j++) f[j] = Math.sin(j / 50) * 100 + (next() < 0.1 ? next() : 0);
      return Buffer.from(f.buffer);
    });
    const trailer = new GzipTrailer();
    const parts: Uint8Array[] = [GZIP_HEADER];
    for (const c of chunks) {
      const d = deflateChunk(c, level);
      trailer.add(d);
      parts.push(d.data);
    }
    parts.push(trailer.finish());
    const gz = Buffer.concat(parts);
    // gunzipSync verifies the trailer's CRC-32 and size.
    assert.ok(zlib.gunzipSync(gz).equals(Buffer.concat(chunks)));
    // One member only: inflating the raw stream consumes everything up to the trailer.
    assert.ok(zlib.inflateRawSync(gz.subarray(10, gz.length - 8)).equals(Buffer.concat(chunks)));
  }
});

test('deflateChunk and deflateChunkAsync: the bytes of zlib with its default 16 KiB output pieces, for chunks that fit its one buffer and chunks that do not', async () => {
  const next = rng(5);
  const opts = { memLevel: 9, finishFlush: zlib.constants.Z_SYNC_FLUSH };
  for (const level of [1, 6, 9]) {
    for (const n of [0, 1, 100, 5000, 70000, 300000]) {
      // Smooth floats (compressible) and random bytes (incompressible: output larger than input).
      const f = new Float32Array(Math.ceil(n / 4));
      for (let j = 0; j < f.length; j++) f[j] = Math.sin(j / 70) * 1000 + next();
      const smooth = Buffer.from(f.buffer, 0, n);
      const noise = Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
      for (const raw of [smooth, noise]) {
        const d = deflateChunk(raw, level);
        assert.ok(d.data.equals(zlib.deflateRawSync(raw, { level, ...opts })), `level ${level}, ${n} bytes`);
        assert.equal(d.crc, zlib.crc32(raw));
        // On libuv's pool, in one call with the sync flush: the same bytes, one buffer (no concatenation).
        const a = await deflateChunkAsync(raw, level);
        assert.ok(a.data.equals(d.data), `async: level ${level}, ${n} bytes: ${a.data.length} vs ${d.data.length}`);
        assert.equal(a.crc, d.crc);
        assert.equal(a.rawBytes, n);
      }
    }
  }
  // Incompressible input grows by stored-block overhead, within the one output buffer.
  const noise = Buffer.from(Array.from({ length: 200000 }, () => Math.floor(next() * 256)));
  const out = deflateChunk(noise, 6).data;
  assert.ok(out.length > noise.length && out.length <= outputChunkBytes(noise.length) && out.buffer.byteLength === outputChunkBytes(noise.length));
  // One that does not fit its buffer (forced through zlib with a too-small chunkSize) still gives the same bytes.
  assert.ok(zlib.deflateRawSync(noise, { level: 6, ...opts, chunkSize: 1024 }).equals(out));
});
