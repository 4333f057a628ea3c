/**
 * JPEG and LERC tiles (docs/limits.md: decoded only after their own headers are checked against the
 * tile) read as GDAL reads them: LERC, LERC_DEFLATE and LERC_ZSTD float32 losslessly (exactly equal,
 * pixel- and band-interleaved), RGB JPEG within GDAL's own rounding of the inverse DCT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openImage } from '../../../shared/raster/open.js';
import type { GeotfrError } from '../../../shared/errors.js';
import { needGdal, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

const W = 70;
const H = 45;

function bands(seed: number, nb: number, kind: 'float' | 'byte'): Float64Array[] {
  const next = mulberry32(seed);
  return Array.from({ length: nb }, (_, b) =>
    Float64Array.from({ length: W * H }, (_, i) => {
      const x = i % W,
        y = Math.floor(i / W);
      if (kind === 'byte') return Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin(x / 7 + b) * Math.cos(y / 9) + 10 * next())));
      return next() < 0.05 ? -9999 : Math.fround(Math.sin(x / 5 + b) * 100 + next());
    }),
  );
}

async function ours(file: string): Promise<Float64Array[]> {
  const src = await openImage(file);
  try {
    return (await src.readWindow(0, 0, W, H)).values as Float64Array[];
  } finally {
    await src.close();
  }
}

test('LERC, LERC_DEFLATE and LERC_ZSTD tiles read exactly as GDAL reads them', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-codecs-');
  try {
    for (const compress of ['LERC', 'LERC_DEFLATE', 'LERC_ZSTD'] as const)
      for (const interleave of ['PIXEL', 'BAND'] as const) {
        const file = path.join(dir, `${compress}-${interleave}.tif`);
        await writeGeoTiff(file, {
          width: W,
          height: H,
          bands: bands(3, 3, 'float'),
          type: 'float32',
          nodata: -9999,
          affine: [10, 0, 500000, 0, -10, 4000000],
          crs: 'EPSG:32633',
          layout: 'GTiff',
          blockSize: 32,
          compress,
          interleave,
        });
        const g = await readRasterWithGdal(file);
        const got = await ours(file);
        for (let b = 0; b < 3; b++)
          for (let i = 0; i < W * H; i++)
            if (g.bands[b]![i] !== -9999)
              assert.equal(got[b]![i], g.bands[b]![i], `${compress} ${interleave}: band ${b + 1} pixel (${i % W}, ${Math.floor(i / W)})`);
      }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('JPEG RGB tiles read as GDAL reads them (within 1 of its inverse DCT); YCbCr is refused', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-codecs-');
  try {
    const plain = path.join(dir, 'rgb.tif');
    await writeGeoTiff(plain, {
      width: W,
      height: H,
      bands: bands(4, 3, 'byte'),
      type: 'uint8',
      affine: [10, 0, 500000, 0, -10, 4000000],
      crs: 'EPSG:32633',
      layout: 'GTiff',
    });
    const jpeg = async (photometric: string) => {
      const file = path.join(dir, `jpeg-${photometric}.tif`);
      await run('gdal_translate', [
        '-q',
        '-co',
        'COMPRESS=JPEG',
        '-co',
        'TILED=YES',
        '-co',
        'BLOCKXSIZE=32',
        '-co',
        'BLOCKYSIZE=32',
        '-co',
        `PHOTOMETRIC=${photometric}`,
        plain,
        file,
      ]);
      return file;
    };
    const file = await jpeg('RGB');
    const g = await readRasterWithGdal(file);
    const got = await ours(file);
    let worst = 0;
    for (let b = 0; b < 3; b++) for (let i = 0; i < W * H; i++) worst = Math.max(worst, Math.abs(got[b]![i]! - g.bands[b]![i]!));
    t.diagnostic(`JPEG RGB: largest difference from GDAL ${worst}`);
    assert.ok(worst <= 1, `JPEG RGB: largest difference from GDAL ${worst}`);
    // YCbCr (GDAL's default for RGB JPEG) would need libjpeg's colour conversion and chroma upsampling to
    // match GDAL: refused, naming the way out, rather than exported as Y, Cb, Cr.
    await assert.rejects(openImage(await jpeg('YCBCR')), (e: GeotfrError) => {
      assert.equal(e.code, 'BAD_INPUT');
      assert.match(e.message, /jpeg-YCBCR\.tif: JPEG tiles in YCbCr \(PHOTOMETRIC=YCBCR\) are not supported; rewrite them with gdal_translate/);
      return true;
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
