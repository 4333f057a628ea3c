/**
 * Band data types (docs/semantics.md §7): integer-only predictions get the smallest integer type holding their
 * values (checked against an independent typed-array round-trip rule and GDAL's reported type), a
 * bytes_list feature is raw uint8, and any float feature makes every band Float32.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { bytesFeature, encodeExample, floatFeature, int64Feature, type Feature } from '../../../shared/tfrecord/example.js';
import { ingestImage } from '../../../shared/ingest/image.js';
import { formatMixer, type Mixer } from '../../../shared/mixer.js';
import { frameRecords, gzipSync } from '../../../shared/tfrecord/record.js';
import { needGdal, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir } from '../../support/rasters.js';
import { rng } from '../cog/cogcheck.js';

const [PW, PH, PPR, TOTAL] = [9, 7, 3, 6];
const mixer: Mixer = {
  projection: { crs: 'EPSG:4326', affine: { doubleMatrix: [0.1, 0, 20, 0, -0.1, 60] } },
  patchDimensions: [PW, PH],
  patchesPerRow: PPR,
  totalPatches: TOTAL,
};

/** Independent rule: the first type (by size, unsigned first) whose array keeps min and max unchanged. */
function expectedGdalType(min: number, max: number): string {
  const candidates: [string, { from(a: number[]): ArrayLike<number> }][] = [
    ['Byte', Uint8Array],
    ['UInt16', Uint16Array],
    ['Int16', Int16Array],
    ['UInt32', Uint32Array],
    ['Int32', Int32Array],
  ];
  for (const [name, T] of candidates) {
    const back = T.from([min, max]);
    if (back[0] === min && back[1] === max) return name;
  }
  return 'Float64';
}

async function ingestFeatures(dir: string, make: (i: number) => Map<string, Feature>): Promise<string> {
  const recs = Array.from({ length: TOTAL }, (_, i) => encodeExample(make(i)));
  const mixerPath = path.join(dir, 'p-mixer.json');
  await fs.writeFile(mixerPath, formatMixer(mixer));
  const a = path.join(dir, 'a.tfrecord.gz');
  const b = path.join(dir, 'b.tfrecord');
  await fs.writeFile(a, gzipSync(frameRecords(recs.slice(0, 2))));
  await fs.writeFile(b, frameRecords(recs.slice(2)));
  const out = path.join(dir, `out-${Math.floor(Math.random() * 1e9)}.tif`);
  await ingestImage({ files: [a, b], mixer: mixerPath, out });
  return out;
}

/** The mosaic GDAL should read for per-patch values `v(i)` (patch-sized, row-major). */
function mosaic(v: (i: number) => ArrayLike<number>): Float64Array {
  const W = PPR * PW;
  const out = new Float64Array(W * (TOTAL / PPR) * PH);
  for (let i = 0; i < TOTAL; i++) {
    const p = v(i);
    const r = Math.floor(i / PPR);
    const c = i % PPR;
    for (let y = 0; y < PH; y++) for (let x = 0; x < PW; x++) out[(r * PH + y) * W + c * PW + x] = p[y * PW + x];
  }
  return out;
}

const RANGES: [number, number][] = [
  [0, 200],
  [0, 255],
  [0, 256],
  [-1, 100],
  [-128, 127],
  [-40000, 3],
  [0, 70000],
  [-5, 70000],
  [0, 4294967295],
  [-2147483648, 2147483647],
  [0, 2 ** 40],
  [-(2 ** 35), 5],
];

test('integer-only predictions: smallest type holding the values, identical values in GDAL', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-ingest-types-');
  try {
    for (const [k, [lo, hi]] of RANGES.entries()) {
      const rand = rng(500 + k);
      // Values spread over [lo, hi], with both ends present somewhere.
      const vals = Array.from({ length: TOTAL }, (_, i) =>
        Array.from({ length: PW * PH }, (_, j) => (i === 1 && j === 3 ? lo : i === 4 && j === 10 ? hi : lo + Math.floor(rand() * (hi - lo + 1)))),
      );
      const out = await ingestFeatures(dir, (i) => new Map([['v', int64Feature(vals[i])]]));
      const info = JSON.parse((await run('gdalinfo', ['-json', out])).stdout.toString());
      assert.equal(info.bands[0].type, expectedGdalType(lo, hi), `range [${lo}, ${hi}]`);
      const g = await readRasterWithGdal(out);
      assert.deepEqual(
        g.bands[0],
        mosaic((i) => vals[i]),
        `values for range [${lo}, ${hi}]`,
      );
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('bytes_list is raw uint8; a float feature makes every band Float32', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-ingest-types-');
  try {
    const rand = rng(8);
    const bytes = Array.from({ length: TOTAL }, () => Uint8Array.from({ length: PW * PH }, () => Math.floor(rand() * 256)));
    const ints = Array.from({ length: TOTAL }, () => Array.from({ length: PW * PH }, () => Math.floor(rand() * 1000) - 500));
    const floats = Array.from({ length: TOTAL }, () => Float32Array.from({ length: PW * PH }, () => rand() * 2 - 1));
    // EE's native bytes: one bytes_list entry per patch; also split in two entries to test concatenation.
    const onlyBytes = await ingestFeatures(
      dir,
      (i) => new Map([['mask', bytesFeature(i % 2 ? [bytes[i]] : [bytes[i].subarray(0, 20), bytes[i].subarray(20)])]]),
    );
    let info = JSON.parse((await run('gdalinfo', ['-json', onlyBytes])).stdout.toString());
    assert.equal(info.bands[0].type, 'Byte');
    assert.deepEqual(
      (await readRasterWithGdal(onlyBytes)).bands[0],
      mosaic((i) => bytes[i]),
    );

    const mixed = await ingestFeatures(
      dir,
      (i) =>
        new Map<string, Feature>([
          ['mask', bytesFeature([bytes[i]])],
          ['cls', int64Feature(ints[i])],
          ['p', floatFeature(floats[i])],
        ]),
    );
    info = JSON.parse((await run('gdalinfo', ['-json', mixed])).stdout.toString());
    assert.deepEqual(
      info.bands.map((b: { type: string }) => b.type),
      ['Float32', 'Float32', 'Float32'],
    );
    const g = await readRasterWithGdal(mixed);
    assert.deepEqual(g.bandNames, ['mask', 'cls', 'p']);
    assert.deepEqual(
      g.bands[0],
      mosaic((i) => bytes[i]),
    );
    assert.deepEqual(
      g.bands[1],
      mosaic((i) => ints[i]),
    );
    assert.deepEqual(
      g.bands[2],
      mosaic((i) => floats[i]),
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
