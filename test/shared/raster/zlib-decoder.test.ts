/**
 * The node:zlib DEFLATE tile decoder (shared/raster/zlib-decoder.ts) hands a whole decoded block on
 * in zlib's own output buffer, which is a byte longer than the block: readers must still see
 * exactly the block's samples, and a tile that inflates to less than its block must still be
 * refused as short, whatever that spare byte holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as zlib from 'node:zlib';
import { openImage } from '../../../shared/raster/open.js';
import { tempDir } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';
import { tinyGeoTiff } from '../limits/tiff.js';

const SIDE = 48;

async function readTile(dir: string, name: string, samples: Float32Array): Promise<Float64Array> {
  const file = path.join(dir, name);
  const tile = zlib.deflateSync(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength));
  await fs.writeFile(file, tinyGeoTiff({ width: SIDE, height: SIDE, tileWidth: SIDE, tileHeight: SIDE, compression: 8, tile }));
  const src = await openImage(file);
  try {
    return (await src.readWindow(0, 0, SIDE, SIDE)).values[0] as Float64Array;
  } finally {
    await src.close();
  }
}

test('a DEFLATE tile inflating to exactly its block reads back sample for sample (random tiles)', async () => {
  const dir = await tempDir('geotfr-zlib-decoder-');
  try {
    for (let seed = 1; seed <= 4; seed++) {
      const next = mulberry32(seed);
      // Smooth rows with noise and a few repeated runs: compressible, like imagery.
      const v = Float32Array.from({ length: SIDE * SIDE }, (_, i) => (next() < 0.1 ? 0 : Math.sin(i / (7 + seed)) * 1000 + next()));
      const got = await readTile(dir, `full-${seed}.tif`, v);
      assert.equal(got.length, SIDE * SIDE);
      assert.deepEqual(Array.from(got), Array.from(v), `seed ${seed}`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a DEFLATE tile inflating to less than its block is refused as short, naming the tile', async () => {
  const dir = await tempDir('geotfr-zlib-decoder-');
  try {
    // One sample short, and a row short: neither may pass for a whole block.
    for (const missing of [1, SIDE]) {
      const v = Float32Array.from({ length: SIDE * SIDE - missing }, (_, i) => i);
      await assert.rejects(
        readTile(dir, `short-${missing}.tif`, v),
        (err: Error) => {
          assert.match(err.message, new RegExp(`tile \\(0, 0\\) decodes to ${SIDE * SIDE - missing} samples, expected ${SIDE * SIDE}`));
          return true;
        },
        `${missing} samples short`,
      );
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
