/** The in-place float framer writes exactly the canonical encoder's framed bytes (random layouts, masks, collapse, arrays). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frameRecords } from '../../../shared/tfrecord/record.js';
import { makeGrid } from '../../../shared/export/grid.js';
import { makeLayout } from '../../../shared/export/layout.js';
import { PatchEncoder } from '../../../shared/export/patch.js';
import { FloatFramer } from '../../../shared/export/floatframes.js';
import { parseImageExportRequest } from '../../../shared/export/request.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { MemSource, rng } from './memsource.js';

test('FloatFramer bytes = encodeExample + frameRecords', async () => {
  const types: SampleType[] = ['float32', 'int16', 'uint8', 'float64'];
  for (let seed = 1; seed <= 30; seed++) {
    const next = rng(seed);
    const W = 10 + Math.floor(next() * 70);
    const H = 10 + Math.floor(next() * 40);
    const nb = 1 + Math.floor(next() * 4);
    const bands = Array.from({ length: nb }, (_, i) => {
      const depth = next() < 0.3 ? 2 + Math.floor(next() * 3) : 1;
      const data = Float64Array.from({ length: depth * W * H }, () => (next() < 0.2 ? NaN : Math.round(next() * 200)));
      // Long names make multi-byte varints likely.
      return { name: `band_${i}_${'x'.repeat(Math.floor(next() * 200))}`, type: types[Math.floor(next() * types.length)], data, depth };
    });
    const src = new MemSource(W, H, bands);
    const tensorDepths = Object.fromEntries(bands.filter((b) => b.depth > 1).map((b) => [b.name, 1 + Math.floor(next() * 5)]));
    const pw = 2 + Math.floor(next() * 8);
    const ph = 2 + Math.floor(next() * 8);
    const req = parseImageExportRequest({
      image: 'm',
      bucket: '/tmp/x',
      formatOptions: {
        patchDimensions: [pw, ph],
        kernelSize: [1 + Math.floor(next() * 6), 1 + Math.floor(next() * 6)],
        defaultValue: next() * 100 - 50,
        tensorDepths,
        collapseBands: next() < 0.3,
      },
    });
    const fo = req.formatOptions;
    const grid = makeGrid(src.grid, { x0: 0, y0: 0, width: W, height: H }, fo.patchDimensions, fo.kernelSize);
    const layout = makeLayout(src.bands, fo);
    const enc = new PatchEncoder(grid, layout, fo);
    const framer = new FloatFramer(grid, layout, fo.collapseBands);
    assert.equal(framer.recordBytes, enc.maxRecordBytes());
    const count = grid.patchesPerRow;
    const win = await src.readWindow(-grid.marginX, -grid.marginY, count * pw + 2 * grid.marginX, grid.tileHeight);
    const records = enc.encodeRow(win, count).flatMap((r) => r!);
    // The planner's size, counted from the layout, is every encoded record's length.
    for (const r of records) assert.equal(r.length, enc.maxRecordBytes(), `seed ${seed}: record length`);
    const generic = frameRecords(records);
    const offsets = Array.from({ length: count }, (_, p) => p * pw);
    const fast = framer.frame(win, offsets);
    assert.ok(fast.equals(generic), `seed ${seed}`);
    // The float32 byte-copy path (MemSource returns float64): values are integers 0..200 or NaN, exact in float32.
    const fast32 = framer.frame({ ...win, values: win.values.map((v) => Float32Array.from(v)) }, offsets);
    assert.ok(fast32.equals(generic), `seed ${seed} (float32 window)`);
    // Framed into a reused buffer (what a compressed chunk does): its old bytes, here 0xa5, all overwritten.
    const scratch = Buffer.alloc(generic.length + 17, 0xa5);
    const into = framer.frame(win, offsets, scratch);
    assert.ok(into.equals(generic) && into.buffer === scratch.buffer && into.byteOffset === scratch.byteOffset, `seed ${seed} (into a scratch buffer)`);
    assert.throws(() => framer.frame(win, offsets, scratch.subarray(0, generic.length - 1)), /frame buffer/);
  }
});
