/**
 * What an image export writes is capped, not only its region (docs/limits.md): maxPixels counts the
 * region, while kernel margins, patch size and tensor depths multiply the values written. The caps
 * are checked from the grid's arithmetic before the encoder sizes a record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GeotfrError } from '../../../shared/errors.js';
import { planFromSource } from '../../../shared/export/plan.js';
import { parseImageExportRequest } from '../../../shared/export/request.js';
import type { BandInfo, PixelGrid } from '../../../shared/raster/types.js';
import { listFiles } from '../../support/files.js';
import { tempDir } from '../../support/rasters.js';
import { RSS_BOUND_MIB, geotfrMeasured } from './measure.js';
import { tinyGeoTiff } from './tiff.js';

test('kernelSize 8001 on a 64×64 image: LIMIT naming formatOptions.kernelSize, before anything is allocated, no output', async (t) => {
  const dir = await tempDir('geotfr-limits-kernel-');
  try {
    const image = path.join(dir, 'small.tif');
    const tile = Buffer.from(new Float32Array(64 * 64).fill(1).buffer);
    await fs.writeFile(image, tinyGeoTiff({ width: 64, height: 64, tileWidth: 64, tileHeight: 64, compression: 1, tile }));
    const out = path.join(dir, 'out');
    const req = path.join(dir, 'req.json');
    await fs.writeFile(
      req,
      JSON.stringify({ image, bucket: out, fileNamePrefix: 'p', formatOptions: { patchDimensions: [64, 64], kernelSize: [8001, 8001] } }),
    );
    const r = await geotfrMeasured(['export-image', req]);
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /LIMIT: field formatOptions\.kernelSize: a patch of 65,028,096 values \(8064×8064 tile .* × 1 value\(s\) per pixel\) exceeds the maxValuesPerPatch limit of 8,388,608/,
    );
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(out, { dirs: true }), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

const source: PixelGrid = { crs: 'EPSG:4326', affine: [0.01, 0, 10, 0, -0.01, 50], width: 4096, height: 4096 };
const scalar: BandInfo[] = [{ name: 'b1', type: 'float32', depth: 1 }];

function refused(request: Record<string, unknown>, bands: BandInfo[], limit: string, field: string): void {
  const req = parseImageExportRequest({ image: 'x.tif', bucket: 'out', ...request });
  assert.throws(
    () => planFromSource(req, source, bands),
    (e: unknown) => {
      assert.ok(e instanceof GeotfrError, String(e));
      assert.equal(e.code, 'LIMIT', e.message);
      assert.equal(e.context.field, field, e.message);
      assert.match(e.message, new RegExp(`exceeds the ${limit} limit`));
      return true;
    },
  );
}

test('values per patch: the field that dominates is named (kernel, tensor depths, patch size)', () => {
  refused({ formatOptions: { patchDimensions: [1, 1], kernelSize: [4001, 4001] } }, scalar, 'maxValuesPerPatch', 'formatOptions.kernelSize');
  const arrayBand: BandInfo[] = [{ name: 'v', type: 'float32', depth: 3 }];
  refused({ formatOptions: { patchDimensions: [256, 256], tensorDepths: { v: 1_000_000 } } }, arrayBand, 'maxValuesPerPatch', 'formatOptions.tensorDepths');
  refused({ formatOptions: { patchDimensions: [4096, 4096] } }, scalar, 'maxValuesPerPatch', 'formatOptions.patchDimensions');
  // sequenceData writes a patch as one SequenceExample per pixel: the same values, the same cap.
  refused(
    { formatOptions: { patchDimensions: [1, 1], kernelSize: [4001, 4001], sequenceData: true } },
    scalar,
    'maxValuesPerPatch',
    'formatOptions.kernelSize',
  );
  // Just within the cap plans (8,388,608 = 2048 × 4096 values).
  const ok = planFromSource(parseImageExportRequest({ image: 'x.tif', bucket: 'out', formatOptions: { patchDimensions: [2048, 4096] } }), source, scalar);
  assert.equal(ok.totalPatches, 2);
});

test('values per export: maxValuesPerExport, changed through its environment variable', () => {
  const before = process.env.GEOTFR_MAX_VALUES_PER_EXPORT;
  process.env.GEOTFR_MAX_VALUES_PER_EXPORT = String(1_000_000);
  try {
    // 4096² region in 256² patches: 256 patches × 320² values ≈ 26 M values with a 65-px kernel
    // (mostly the region's own pixels), 256 × 512² ≈ 67 M with a 257-px one (mostly margins).
    refused({ formatOptions: { patchDimensions: [256, 256], kernelSize: [65, 65] } }, scalar, 'maxValuesPerExport', 'region');
    refused({ formatOptions: { patchDimensions: [256, 256], kernelSize: [257, 257] } }, scalar, 'maxValuesPerExport', 'formatOptions.kernelSize');
    process.env.GEOTFR_MAX_VALUES_PER_EXPORT = 'lots';
    const req = parseImageExportRequest({ image: 'x.tif', bucket: 'out', formatOptions: { patchDimensions: [256, 256] } });
    assert.throws(() => planFromSource(req, source, scalar), /GEOTFR_MAX_VALUES_PER_EXPORT must be a positive integer/);
  } finally {
    if (before === undefined) delete process.env.GEOTFR_MAX_VALUES_PER_EXPORT;
    else process.env.GEOTFR_MAX_VALUES_PER_EXPORT = before;
  }
});
