/**
 * How a plan cuts its shards into work chunks (`shardChunks`, docs/export.md "Layout"), over random
 * grids, patch and kernel sizes, band counts and file sizes: every patch of a shard exactly once, in
 * order, no chunk across a row; plain exports keep whole chunks, gzip exports make each shard's first
 * and last chunks a quarter of the others (at least one patch) so DEFLATE starts sooner and ends
 * sooner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFromSource, shardChunks, type ExportPlan } from '../../../shared/export/plan.js';
import { parseImageExportRequest } from '../../../shared/export/request.js';
import type { BandInfo, PixelGrid } from '../../../shared/raster/types.js';
import { rng } from './memsource.js';

function randomPlan(next: () => number, compressed: boolean): ExportPlan {
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const patch = [16, 32, 64, 128, 256][int(0, 4)]!;
  const kernel = [1, 8, 32, 33][int(0, 3)]!;
  // At least one whole patch (partial ones are dropped).
  const source: PixelGrid = { crs: 'EPSG:32633', affine: [30, 0, 500000, 0, -30, 4000000], width: int(patch, 6000), height: int(patch, 3000) };
  const bands: BandInfo[] = Array.from({ length: int(1, 12) }, (_, i) => ({ name: `B${i}`, type: 'float32', depth: 1 }));
  const patchBytes = (patch + kernel) ** 2 * 4 * bands.length;
  // From a few patches per file to everything in one.
  const maxFileSize = next() < 0.5 ? patchBytes * int(1, 40) + int(0, patchBytes) : 2 ** 30;
  const req = parseImageExportRequest({
    image: 'x.tif',
    bucket: 'out',
    formatOptions: { patchDimensions: [patch, patch], kernelSize: [kernel, kernel], compressed, maxFileSize },
  });
  return planFromSource(req, source, bands);
}

test('shard chunks: every patch once, in order, within rows; gzip shards start and end with quarter chunks', () => {
  const next = rng(2026);
  let rampedShards = 0;
  for (let trial = 0; trial < 300; trial++) {
    const compressed = trial % 2 === 1;
    const plan = randomPlan(next, compressed);
    const edge = compressed ? Math.ceil(plan.chunkPatches / 4) : plan.chunkPatches;
    const ctx = `trial ${trial}: ${plan.source.width}×${plan.source.height}, ${plan.patchesPerRow} patches per row, chunks of ${plan.chunkPatches}`;
    for (const shard of plan.shards) {
      const chunks = shardChunks(plan, shard.index);
      let p = shard.firstPatch;
      chunks.forEach((c, i) => {
        assert.equal(c.seq, i, ctx);
        assert.equal(c.shard, shard.index, ctx);
        assert.equal(c.firstPatch, p, `${ctx}: chunk ${i} starts where the previous one ended`);
        assert.equal(c.row * plan.patchesPerRow + c.col0, c.firstPatch, ctx);
        assert.ok(c.count >= 1 && c.col0 + c.count <= plan.patchesPerRow, `${ctx}: chunk ${i} stays within its row`);
        assert.ok(c.count <= plan.chunkPatches, ctx);
        p += c.count;
      });
      assert.equal(p, shard.firstPatch + shard.patchCount, `${ctx}: the chunks cover the shard`);
      // The ends are quarter chunks; the chunks between them are whole unless a row or the shard ends.
      assert.ok(chunks[0]!.count <= edge, ctx);
      if (chunks.length > 1) assert.ok(chunks.at(-1)!.count <= edge, ctx);
      for (const c of chunks.slice(1, -1)) {
        // A whole chunk, or cut short by its row's end, or the one the last chunk was split from.
        assert.ok(
          c.count === plan.chunkPatches || c.count === plan.patchesPerRow - c.col0 || c.seq === chunks.length - 2,
          `${ctx}: chunk ${c.seq} of ${c.count}`,
        );
      }
      if (compressed && edge < plan.chunkPatches && chunks.length > 2) rampedShards++;
    }
  }
  assert.ok(rampedShards > 20, `only ${rampedShards} shards had quarter chunks at their ends`);
});

test('shard chunks of a plain export are the plan’s whole chunks', () => {
  const next = rng(7);
  for (let trial = 0; trial < 100; trial++) {
    const plan = randomPlan(next, false);
    for (const shard of plan.shards)
      for (const c of shardChunks(plan, shard.index)) {
        const rowLeft = plan.patchesPerRow - c.col0;
        const shardLeft = shard.firstPatch + shard.patchCount - c.firstPatch;
        assert.equal(c.count, Math.min(plan.chunkPatches, rowLeft, shardLeft), `trial ${trial}, shard ${shard.index}, chunk ${c.seq}`);
      }
  }
});
