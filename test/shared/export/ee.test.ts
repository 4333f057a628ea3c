/**
 * Earth Engine's own shard (issue 3): rebuild a source raster holding the two tiles of EE's real
 * `…-00005.tfrecord` at their grid position (patches 10 and 11 = row 3, columns 1 and 2 of the 3×5
 * grid in EE's mixer; kernel 60 → margin 30, tiles 316), export it with EE's options (patch 256,
 * kernel 60, defaultValue -9999, uncompressed, two records per shard), and get shard -00005 and the
 * mixer byte-identical to Earth Engine's.
 *
 * Pixels EE wrote as -9999 are nodata in the source (masked → defaultValue -9999 reproduces them);
 * the image extends 32 px right of the region so patch 11's right margin holds EE's valid data there
 * (docs/semantics.md §3 Decision: margins read real pixels beyond the region).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeExample } from '../../../shared/tfrecord/example.js';
import { parseMixer } from '../../../shared/mixer.js';
import { fileSource, readRecords } from '../../../shared/tfrecord/record.js';
import { eeRealDir, geotfr, needEeFixtures, needGdal } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';

const SHARD = 'TEST_coeff_output_SIF_C_S_Amer-00005.tfrecord';
const MIXER = 'TEST_coeff_output_SIF_C_S_Amer-mixer.json';

test("Earth Engine's real shard -00005 and mixer are reproduced byte for byte", async (t) => {
  if (!needEeFixtures(t) || !needGdal(t)) return;
  const eeShard = await fs.readFile(path.join(eeRealDir, SHARD));
  const eeMixerText = await fs.readFile(path.join(eeRealDir, MIXER), 'utf8');
  const mixer = parseMixer(eeMixerText, MIXER);
  const [pw, ph] = mixer.patchDimensions;
  const margin = 30;
  const tile = pw + 2 * margin;
  const names = ['constant', 'sin_1', 'cos_1', 'sin_2', 'cos_2'];

  const recs: Map<string, Float32Array>[] = [];
  for await (const r of readRecords(fileSource(path.join(eeRealDir, SHARD)), { file: SHARD })) {
    const f = decodeExample(r.data);
    assert.deepEqual([...f.keys()], names);
    recs.push(new Map([...f].map(([k, v]) => [k, Float32Array.from(v.value as Float32Array)])));
  }
  assert.equal(recs.length, 2);

  // The grid: 3 patches per row, 5 rows; the image is 32 px wider than the region (right margin data).
  const W = mixer.patchesPerRow * pw + 32;
  const H = (mixer.totalPatches / mixer.patchesPerRow) * ph;
  const bands = names.map(() => new Float32Array(W * H).fill(-9999));
  const placed = names.map(() => new Uint8Array(W * H));
  [10, 11].forEach((patch, k) => {
    const x0 = (patch % mixer.patchesPerRow) * pw - margin;
    const y0 = Math.floor(patch / mixer.patchesPerRow) * ph - margin;
    names.forEach((n, b) => {
      const v = recs[k].get(n)!;
      assert.equal(v.length, tile * tile);
      for (let y = 0; y < tile; y++)
        for (let x = 0; x < tile; x++) {
          const i = (y0 + y) * W + x0 + x;
          const val = v[y * tile + x];
          // Where the two tiles overlap they must agree (they are the same image pixels).
          if (placed[b][i]) assert.equal(bands[b][i], val, `tiles disagree at ${x0 + x},${y0 + y} band ${n}`);
          bands[b][i] = val;
          placed[b][i] = 1;
        }
    });
  });

  const dir = await tempDir('geotfr-ee-');
  const src = path.join(dir, 'ee-source.tif');
  await writeGeoTiff(src, {
    width: W,
    height: H,
    bands,
    type: 'float32',
    nodata: -9999,
    affine: mixer.projection.affine.doubleMatrix,
    crs: mixer.projection.crs,
    bandNames: names,
    layout: 'COG',
    blockSize: 256,
    compress: 'DEFLATE',
  });
  const request = {
    image: src,
    bucket: path.join(dir, 'out'),
    fileNamePrefix: 'TEST_coeff_output_SIF_C_S_Amer',
    region: [
      mixer.projection.affine.doubleMatrix[2],
      mixer.projection.affine.doubleMatrix[5] + H * mixer.projection.affine.doubleMatrix[4],
      mixer.projection.affine.doubleMatrix[2] + mixer.patchesPerRow * pw * mixer.projection.affine.doubleMatrix[0],
      mixer.projection.affine.doubleMatrix[5],
    ],
    formatOptions: { patchDimensions: [pw, ph], kernelSize: [60, 60], defaultValue: -9999, compressed: false, maxFileSize: eeShard.length },
  };
  await fs.writeFile(path.join(dir, 'req.json'), JSON.stringify(request));
  const r = await geotfr(['export-image', path.join(dir, 'req.json')], { env: { GEOTFR_PROGRESS: '0' } });
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.toString());
  assert.equal(summary.files, 8);
  assert.equal(summary.patches, 15);
  const ours = await fs.readFile(path.join(dir, 'out', SHARD));
  assert.equal(ours.length, eeShard.length);
  assert.ok(ours.equals(eeShard), 'shard -00005 differs from Earth Engine’s');
  const ourMixer = await fs.readFile(path.join(dir, 'out', MIXER), 'utf8');
  assert.equal(ourMixer, eeMixerText);
  await fs.rm(dir, { recursive: true, force: true });
});
