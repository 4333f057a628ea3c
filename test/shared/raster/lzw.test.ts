/**
 * The capped LZW decoder (shared/raster/lzw-decoder.ts) against GDAL, which wrote the files: random
 * bytes (dictionary resets), long runs (long strings), predictor 2 on 16-bit samples, a strip that
 * fills the 4,096-code dictionary several times; and hand-made streams for the cases libtiff never
 * writes (a full dictionary without a reset, the KwKwK code, a code not yet defined).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { openImage } from '../../../shared/raster/open.js';
import { lzwDecode } from '../../../shared/raster/lzw-decoder.js';
import { mulberry32 } from '../../support/random.js';
import { lzwBomb, lzwCodes } from '../limits/tiff.js';
import { needGdal } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff, type GeoTiffSpec } from '../../support/rasters.js';

test('LZW tiles and strips GDAL wrote read back as GDAL reads them', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-lzw-');
  try {
    const r = mulberry32(7);
    const base = { affine: [1, 0, 0, 0, -1, 0] as GeoTiffSpec['affine'], crs: 'EPSG:32633', compress: 'LZW' as const };
    const cases: Record<string, GeoTiffSpec> = {
      random: {
        ...base,
        width: 512,
        height: 512,
        type: 'uint8',
        bands: [Float64Array.from({ length: 512 * 512 }, () => Math.floor(r() * 256))],
        blockSize: 512,
      },
      runs: {
        ...base,
        width: 300,
        height: 200,
        type: 'uint8',
        bands: [Float64Array.from({ length: 300 * 200 }, (_, i) => Math.floor(i / 977) % 3)],
        blockSize: 256,
      },
      predictor: {
        ...base,
        width: 200,
        height: 150,
        type: 'uint16',
        bands: [Float64Array.from({ length: 200 * 150 }, (_, i) => (i * 37) % 65536), Float64Array.from({ length: 200 * 150 }, () => Math.floor(r() * 65536))],
        blockSize: 64,
        predictor: 2,
      },
      zeros: { ...base, width: 4096, height: 2048, type: 'uint8', bands: [new Float64Array(4096 * 2048)], rowsPerStrip: 2048 },
    };
    for (const [name, spec] of Object.entries(cases)) {
      const file = path.join(dir, `${name}.tif`);
      await writeGeoTiff(file, spec);
      const gdal = await readRasterWithGdal(file);
      const src = await openImage(file);
      try {
        const win = await src.readWindow(0, 0, spec.width, spec.height);
        gdal.bands.forEach((b, i) => assert.deepEqual(Array.from(win.values[i]!), Array.from(b), `${name}: band ${i + 1}`));
      } finally {
        await src.close();
      }
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('hand-made LZW: KwKwK, a full dictionary without a reset, the output cap, undefined codes', () => {
  // Clear, 'a', 258 (= "aa", the code being defined), 259 (= "aaa"), EOI: "a" + "aa" + "aaa".
  assert.deepEqual(
    Array.from(
      lzwDecode(
        lzwCodes([
          [256, 9],
          [97, 9],
          [258, 9],
          [259, 9],
          [257, 9],
        ]),
        100,
      ),
    ),
    Array(6).fill(97),
  );
  // A full dictionary, then its longest string (code 4095) again without a reset (see lzwBomb).
  const { data: input, bytes: expected } = lzwBomb(7_400_000);
  const out = lzwDecode(input, expected);
  assert.equal(out.length, expected);
  assert.ok(out.every((v) => v === 0));
  assert.throws(() => lzwDecode(input, expected - 1), /LZW data decodes to more than the block's \d+ decoded bytes/);
  assert.throws(
    () =>
      lzwDecode(
        lzwCodes([
          [256, 9],
          [97, 9],
          [300, 9],
        ]),
        100,
      ),
    /LZW code 300 is not defined yet/,
  );
});
