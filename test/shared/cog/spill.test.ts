/**
 * Spill buffers sharing a pool (shared/cog/spill.ts): whatever the chunk sizes, the limit and the
 * interleaving of appends to several buffers, each buffer reads back exactly what was appended to
 * it, in order; the pool's memory is back within its limit whenever an append resolves; only the
 * overflow goes to disk; and a failed spill fails the reads instead of losing bytes silently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { SpillBuffer, SpillPool } from '../../../shared/cog/spill.js';
import { tempDir } from '../../support/rasters.js';
import { rng } from './cogcheck.js';

async function readBack(b: SpillBuffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  await b.pipeTo(
    new Writable({
      write(c, _e, cb) {
        parts.push(Buffer.from(c));
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

test('spill pool: random appends to several buffers read back intact, memory within the limit', async () => {
  const dir = await tempDir('geotfr-spill-');
  for (let trial = 0; trial < 25; trial++) {
    const rand = rng(1000 + trial);
    const limit = Math.floor(rand() * 40_000);
    const pool = new SpillPool(limit);
    const n = 1 + Math.floor(rand() * 4);
    const bufs = Array.from({ length: n }, (_, i) => new SpillBuffer(path.join(dir, `t${trial}`, `b${i}`), pool));
    const expected: number[][] = bufs.map(() => []);
    let maxChunk = 0;
    // Several writers appending concurrently, as a COG's levels do.
    await Promise.all(
      bufs.map(async (b, i) => {
        const count = Math.floor(rand() * 30);
        for (let k = 0; k < count; k++) {
          const len = Math.floor(rand() * 6000);
          maxChunk = Math.max(maxChunk, len);
          const chunk = new Uint8Array(len);
          for (let j = 0; j < len; j++) chunk[j] = (i * 53 + k * 7 + j) & 0xff;
          expected[i].push(...chunk);
          await b.append(chunk);
          assert.ok(pool.memBytes <= limit + maxChunk * n, `trial ${trial}: ${pool.memBytes} bytes in memory, limit ${limit}`);
        }
      }),
    );
    await pool.idle();
    assert.ok(pool.memBytes <= limit, `trial ${trial}: ${pool.memBytes} in memory after the appends, limit ${limit}`);
    for (let i = 0; i < n; i++) assert.deepEqual([...(await readBack(bufs[i]))], expected[i], `trial ${trial}, buffer ${i}`);
    for (const b of bufs) await b.dispose();
    for (let i = 0; i < n; i++) assert.equal(existsSync(path.join(dir, `t${trial}`, `b${i}`)), false, 'temporary file removed');
  }
});

test('spill pool: only the overflow is written to disk, from the buffer holding the most', async () => {
  const dir = await tempDir('geotfr-spill-');
  const pool = new SpillPool(100_000);
  const big = new SpillBuffer(path.join(dir, 'big'), pool);
  const small = new SpillBuffer(path.join(dir, 'small'), pool);
  for (let k = 0; k < 10; k++) await small.append(new Uint8Array(1000).fill(1));
  for (let k = 0; k < 12; k++) await big.append(new Uint8Array(10_000).fill(2)); // 130,000 in all
  await pool.idle();
  const bigFile = (await fs.stat(path.join(dir, 'big'))).size;
  // 30,000 over the limit plus the slack (an eighth of the limit), in whole chunks: 50,000 at most.
  assert.ok(bigFile >= 30_000 && bigFile <= 50_000, `spilled ${bigFile} bytes`);
  assert.equal(existsSync(path.join(dir, 'small')), false, 'the small buffer stays in memory');
  assert.equal((await readBack(big)).length, 120_000);
  assert.equal((await readBack(small)).length, 10_000);
  await big.dispose();
  await small.dispose();
});

test('spill pool: a spill that fails makes the reads fail rather than lose its bytes', async () => {
  const dir = await tempDir('geotfr-spill-');
  // The file's directory is a regular file: opening the spill file fails.
  await fs.writeFile(path.join(dir, 'blocker'), 'x');
  const pool = new SpillPool(10);
  const b = new SpillBuffer(path.join(dir, 'blocker', 'spill'), pool);
  await assert.rejects(b.append(new Uint8Array(100)));
  await assert.rejects(readBack(b));
  await b.dispose();
});
