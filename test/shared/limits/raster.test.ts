/**
 * Raster memory bombs (docs/limits.md), each through the built CLI in a child process whose peak
 * RSS is measured: DEFLATE, LZW, ZSTD and LERC_DEFLATE tiles that decode far past their declared size,
 * JPEG and LERC tiles whose own headers state far more pixels than the tile, a tile declaring a size
 * over maxBlockBytes, and a sparse tile (byte count 0) declaring a large block, which must be read
 * as its fill without allocating that block.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { TiffFile } from '../../../shared/raster/geotiff.js';
import { LocalBlobStore } from '../../../shared/storage/local.js';
import { decodeExample } from '../../../shared/tfrecord/example.js';
import { readRecordFile } from '../../../shared/tfrecord/record.js';
import { listFiles } from '../../support/files.js';
import { tempDir } from '../../support/rasters.js';
import { RSS_BOUND_MIB, geotfrMeasured } from './measure.js';
import { compressedZeros, jpegHeader, lercHeader, lzwBomb, tinyGeoTiff, zstdZeros } from './tiff.js';

async function exportImage(dir: string, image: string, formatOptions: Record<string, unknown>) {
  const out = path.join(dir, 'out');
  const req = path.join(dir, 'req.json');
  await fs.writeFile(req, JSON.stringify({ image, bucket: out, fileNamePrefix: 'p', formatOptions: { compressed: false, ...formatOptions } }));
  const r = await geotfrMeasured(['export-image', req, '--workers', '2']);
  return { ...r, out };
}

test('a DEFLATE tile declaring 256 KiB that inflates to 512 MiB: BAD_INPUT naming the tile, bounded memory, no output', async (t) => {
  const dir = await tempDir('geotfr-limits-deflate-');
  try {
    const file = path.join(dir, 'bomb.tif');
    await fs.writeFile(
      file,
      tinyGeoTiff({ width: 256, height: 256, tileWidth: 256, tileHeight: 256, compression: 8, tile: await compressedZeros('deflate', 512 << 20) }),
    );
    assert.ok((await fs.stat(file)).size < 1 << 20, 'the bomb is small on disk');
    const r = await exportImage(dir, file, { patchDimensions: [64, 64] });
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /BAD_INPUT: .*bomb\.tif: cannot decode tile \(0, 0\) \(DEFLATE data inflates to more than the block's 262144 decoded bytes\)/);
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(r.out, { dirs: true }), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('an LZW tile declaring 256 KiB that decodes to 512 MiB: BAD_INPUT naming the tile, bounded memory, no output', async (t) => {
  const dir = await tempDir('geotfr-limits-lzw-');
  try {
    const file = path.join(dir, 'bomb.tif');
    const bomb = lzwBomb(512 << 20);
    await fs.writeFile(file, tinyGeoTiff({ width: 256, height: 256, tileWidth: 256, tileHeight: 256, compression: 5, tile: bomb.data }));
    assert.ok((await fs.stat(file)).size < 1 << 20, 'the bomb is small on disk');
    const r = await exportImage(dir, file, { patchDimensions: [64, 64] });
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(r.stderr, /BAD_INPUT: .*bomb\.tif: cannot decode tile \(0, 0\) \(LZW data decodes to more than the block's 262144 decoded bytes\)/);
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(r.out, { dirs: true }), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Tiles of 256² float32 (256 KiB) whose data decodes, or says it decodes, to far more: [what, tags, tile bytes, error]. */
const bombs: [string, Partial<Parameters<typeof tinyGeoTiff>[0]>, () => Promise<Uint8Array> | Uint8Array, string][] = [
  [
    'a ZSTD tile whose frame declares 512 MiB',
    { compression: 50000 },
    () => zstdZeros(512 << 20, true),
    "ZSTD data declares 536870912 decoded bytes, more than the block's 262144",
  ],
  [
    'a ZSTD tile whose frame runs to 512 MiB without saying so',
    { compression: 50000 },
    () => zstdZeros(512 << 20, false),
    "ZSTD data is corrupt or decodes to more than the block's 262144 decoded bytes",
  ],
  [
    'a JPEG tile whose frame header states 65500×65500',
    { compression: 7 },
    () => jpegHeader(65500, 65500),
    'JPEG data states 65500×65500 pixels, more than the 256×256 tile',
  ],
  [
    'a LERC tile whose blob states 65535×65535',
    { compression: 34887, lercParameters: [2, 0] },
    () => lercHeader(65535, 65535),
    'LERC blob states 65535×65535 pixels, more than the 256×256 tile',
  ],
  [
    'a LERC_DEFLATE tile inflating to 512 MiB',
    { compression: 34887, lercParameters: [2, 1] },
    () => compressedZeros('deflate', 512 << 20),
    'LERC_DEFLATE data inflates to more than 589824 bytes',
  ],
];
for (const [what, spec, tile, why] of bombs)
  test(`${what}: BAD_INPUT naming the tile, bounded memory, no output`, async (t) => {
    const dir = await tempDir('geotfr-limits-bomb-');
    try {
      const file = path.join(dir, 'bomb.tif');
      await fs.writeFile(file, tinyGeoTiff({ width: 256, height: 256, tileWidth: 256, tileHeight: 256, compression: 1, tile: await tile(), ...spec }));
      assert.ok((await fs.stat(file)).size < 1 << 20, 'the bomb is small on disk');
      const r = await exportImage(dir, file, { patchDimensions: [64, 64] });
      t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
      assert.notEqual(r.code, 0, r.stderr);
      assert.ok(r.stderr.includes(`bomb.tif: cannot decode tile (0, 0) (${why}`), r.stderr);
      assert.match(r.stderr, /BAD_INPUT: /);
      assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
      assert.deepEqual(await listFiles(r.out, { dirs: true }), [], 'no output');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

test('a 300-byte TIFF declaring one 16384² float tile: LIMIT maxBlockBytes at open, bounded memory, no output', async (t) => {
  const dir = await tempDir('geotfr-limits-block-');
  try {
    const file = path.join(dir, 'huge-tile.tif');
    await fs.writeFile(file, tinyGeoTiff({ width: 64, height: 64, tileWidth: 16384, tileHeight: 16384, compression: 1, tile: new Uint8Array(0) }));
    assert.ok((await fs.stat(file)).size < 400);
    const r = await exportImage(dir, file, { patchDimensions: [64, 64] });
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /LIMIT: .*huge-tile\.tif: a 16384×16384 tile of 1,073,741,824 decoded bytes exceeds the maxBlockBytes limit of 268,435,456 \(rewrite it in smaller blocks \(gdal_translate -co TILED=YES\), or set GEOTFR_MAX_BLOCK_BYTES/,
    );
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(r.out, { dirs: true }), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a sparse 8192² tile (within maxBlockBytes) reads as nodata without allocating the block', async (t) => {
  const dir = await tempDir('geotfr-limits-sparse-');
  try {
    const file = path.join(dir, 'sparse.tif');
    await fs.writeFile(file, tinyGeoTiff({ width: 64, height: 64, tileWidth: 8192, tileHeight: 8192, compression: 1, tile: new Uint8Array(0), nodata: '-1' }));
    // Masked pixels (nodata) are written as defaultValue (docs/semantics.md §4): 7 everywhere proves the fill was read.
    const r = await exportImage(dir, file, { patchDimensions: [32, 32], defaultValue: 7 });
    assert.equal(r.code, 0, r.stderr);
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB (a 256 MiB block was allocated?)`);
    let records = 0;
    for await (const rec of readRecordFile(path.join(r.out, 'p-00000.tfrecord'))) {
      const f = decodeExample(rec.data).get('b1');
      assert.ok(f?.kind === 'float_list' && f.value.length === 32 * 32, 'one 32×32 float band named b1');
      assert.ok(
        f.value.every((v) => v === 7),
        'every pixel is the fill',
      );
      records++;
    }
    assert.equal(records, 4);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a sparse block passes between threads as one sample (sharedBlock → blockProvider) and reads as its fill', async () => {
  const dir = await tempDir('geotfr-limits-sparse-shared-');
  try {
    await fs.writeFile(
      path.join(dir, 's.tif'),
      tinyGeoTiff({ width: 64, height: 64, tileWidth: 8192, tileHeight: 8192, compression: 1, tile: new Uint8Array(0), nodata: '-1' }),
    );
    const store = new LocalBlobStore(dir);
    const owner = await TiffFile.open(store, 's.tif', 's.tif', { sharedBlocks: true });
    const sab = await owner.sharedBlock(0, 0, 0);
    assert.equal(sab.byteLength, 4, 'one float32 sample, not 256 MiB');
    const reader = await TiffFile.open(store, 's.tif', 's.tif', { blockProvider: (bx, by, plane) => owner.sharedBlock(bx, by, plane) });
    const out = new Float64Array(10 * 10).fill(99);
    await reader.readSamples(30, 30, 10, 10, [0], [out]);
    assert.ok(
      out.every((v) => v === -1),
      'every pixel is the nodata fill',
    );
    await reader.close();
    await owner.close();
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
