/**
 * Predictions written by TensorFlow (int64 class and float probability features, patch-sized and
 * tile-sized, spread unevenly over plain and gzip files, one of them empty) ingest into a COG that
 * GDAL reads with the mixer's size, transform and EPSG CRS, the first record's band names and order,
 * identical values, the expected sample type, and LAYOUT=COG (plus GDAL's COG validator).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeExample } from '../../../shared/tfrecord/example.js';
import { formatMixer, type Affine, type Mixer } from '../../../shared/mixer.js';
import { readRecordFile } from '../../../shared/tfrecord/record.js';
import { ingestImage } from '../../../shared/ingest/image.js';
import { geotfr, needGdal, needTensorFlow, python, run } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir } from '../../support/rasters.js';
import { validateCog } from '../cog/cogcheck.js';

/** Writes predictions with tf.io.TFRecordWriter and the expected mosaic (float64, band-sequential). */
const WRITE_PREDICTIONS = String.raw`
import sys, json
import numpy as np
import tensorflow as tf
cfg = json.loads(sys.argv[1])
rng = np.random.default_rng(cfg['seed'])
pw, ph = cfg['patch']; ppr = cfg['ppr']; total = cfg['total']
kx, ky = cfg['kernel']; mx, my = kx // 2, ky // 2
tw, th = pw + 2 * mx, ph + 2 * my
H, W = (total // ppr) * ph, ppr * pw
mos = {f['name']: np.zeros((H, W)) for f in cfg['features']}
i = 0
for path, count, gz in cfg['files']:
    with tf.io.TFRecordWriter(path, options='GZIP' if gz else None) as w:
        for _ in range(count):
            r, c = divmod(i, ppr)
            feats = {}
            for f in cfg['features']:
                h, ww = (th, tw) if f['size'] == 'tile' else (ph, pw)
                if f['kind'] == 'int':
                    a = rng.integers(f['lo'], f['hi'] + 1, size=(h, ww), dtype=np.int64)
                    feats[f['name']] = tf.train.Feature(int64_list=tf.train.Int64List(value=a.ravel().tolist()))
                else:
                    a = rng.random((h, ww), dtype=np.float32)
                    feats[f['name']] = tf.train.Feature(float_list=tf.train.FloatList(value=a.ravel().tolist()))
                core = a[my:my + ph, mx:mx + pw] if f['size'] == 'tile' else a
                mos[f['name']][r * ph:(r + 1) * ph, c * pw:(c + 1) * pw] = core
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
            i += 1
np.stack([mos[f['name']] for f in cfg['features']]).astype('<f8').tofile(cfg['expected'])
print(i)
`;

interface Case {
  name: string;
  crs: string;
  affine: Affine;
  patch: [number, number];
  ppr: number;
  total: number;
  kernel: [number, number];
  features: { name: string; kind: 'int' | 'float'; size: 'patch' | 'tile'; lo?: number; hi?: number }[];
  /** [records, gzip] per file, uneven, with an empty one. */
  split: [number, boolean][];
  kernelVia: 'option' | 'manifest' | 'cli';
  gdalType: string;
}

const CASES: Case[] = [
  {
    name: 'geographic EPSG:4326, int64 class + float probability (patch and tile), --kernel-size via the CLI',
    crs: 'EPSG:4326',
    affine: [0.05, 0, -105, 0, -0.05, 20],
    patch: [24, 16],
    ppr: 5,
    total: 15,
    kernel: [5, 4],
    features: [
      { name: 'class', kind: 'int', size: 'patch', lo: 0, hi: 4 },
      { name: 'probability', kind: 'float', size: 'tile' },
      { name: 'prob_patch', kind: 'float', size: 'patch' },
    ],
    split: [
      [3, false],
      [6, true],
      [0, true],
      [1, false],
      [5, true],
    ],
    kernelVia: 'cli',
    gdalType: 'Float32',
  },
  {
    name: 'projected UTM EPSG:32633, int64 only (tile-sized, negative values → Int16), kernel from the export manifest',
    crs: 'EPSG:32633',
    affine: [10, 0, 500000, 0, -10, 4100000],
    patch: [20, 20],
    ppr: 3,
    total: 12,
    kernel: [8, 8],
    features: [
      { name: 'label', kind: 'int', size: 'tile', lo: -300, hi: 300 },
      { name: 'count', kind: 'int', size: 'patch', lo: 0, hi: 9 },
    ],
    split: [
      [5, true],
      [2, false],
      [5, true],
    ],
    kernelVia: 'manifest',
    gdalType: 'Int16',
  },
  {
    name: 'projected, uint8-range int64 classes, patch-sized only, library call with kernelSize option',
    crs: 'EPSG:32610',
    affine: [30, 0, 600000, 0, -30, 5000000],
    patch: [32, 32],
    ppr: 20,
    total: 40,
    kernel: [1, 1],
    features: [{ name: 'landcover', kind: 'int', size: 'patch', lo: 0, hi: 200 }],
    split: [
      [13, true],
      [27, false],
    ],
    kernelVia: 'option',
    gdalType: 'Byte',
  },
];

for (const [ci, c] of CASES.entries()) {
  test(`ingest TensorFlow predictions: ${c.name}`, async (t) => {
    if (!needTensorFlow(t) || !needGdal(t)) return;
    const dir = await tempDir('geotfr-ingest-tf-');
    try {
      const files = c.split.map(([n, gz], i) => [path.join(dir, 'preds', `part-${i}.tfrecord${gz ? '.gz' : ''}`), n, gz] as const);
      await fs.mkdir(path.join(dir, 'preds'));
      const expected = path.join(dir, 'expected.f64');
      const cfg = { seed: 42 + ci, patch: c.patch, ppr: c.ppr, total: c.total, kernel: c.kernel, features: c.features, files, expected };
      assert.equal((await python(WRITE_PREDICTIONS, [JSON.stringify(cfg)])).trim(), String(c.total));

      const mixer: Mixer = {
        projection: { crs: c.crs, affine: { doubleMatrix: c.affine } },
        patchDimensions: c.patch,
        patchesPerRow: c.ppr,
        totalPatches: c.total,
      };
      const mixerPath = path.join(dir, 'export', 'run1', 'patches-mixer.json');
      await fs.mkdir(path.dirname(mixerPath), { recursive: true });
      await fs.writeFile(mixerPath, formatMixer(mixer));
      if (c.kernelVia === 'manifest') {
        // The export's manifest at the bucket root (dir/export), keyed by the file name prefix.
        const manifest = path.join(dir, 'export', '.geotfr', 'manifests', 'run1', 'patches.json');
        await fs.mkdir(path.dirname(manifest), { recursive: true });
        await fs.writeFile(
          manifest,
          JSON.stringify({ version: 1, fileNamePrefix: 'run1/patches', patchDimensions: c.patch, kernelSize: c.kernel, totalPatches: c.total }),
        );
      }
      const out = path.join(dir, 'out', 'prediction.tif');
      const inputs = files.map((f) => f[0]);
      if (c.kernelVia === 'cli') {
        const r = await geotfr(['ingest-image', '--mixer', mixerPath, '--out', out, '--kernel-size', c.kernel.join(','), ...inputs], {
          env: { GEOTFR_PROGRESS: '0' },
        });
        assert.equal(r.code, 0, r.stderr);
        const summary = JSON.parse(r.stdout.toString());
        assert.equal(summary.patches, c.total);
        assert.equal(summary.kernelFrom, 'option');
      } else {
        const s = await ingestImage({ files: inputs, mixer: mixerPath, out, kernelSize: c.kernelVia === 'option' ? c.kernel : undefined });
        assert.equal(s.kernelFrom, c.kernelVia);
        assert.deepEqual(s.kernelSize, c.kernel);
      }

      // Band order: the first record's feature order as serialized by TensorFlow.
      let firstOrder: string[] = [];
      for await (const r of readRecordFile(inputs.find((_, i) => c.split[i][0] > 0)!)) {
        firstOrder = [...decodeExample(r.data).keys()];
        break;
      }
      const g = await readRasterWithGdal(out);
      const [pw, ph] = c.patch;
      assert.equal(g.width, c.ppr * pw);
      assert.equal(g.height, (c.total / c.ppr) * ph);
      assert.deepEqual(g.affine, c.affine);
      assert.equal(g.crs, c.crs);
      assert.equal(g.layout, 'COG');
      assert.deepEqual(g.bandNames, firstOrder);
      const info = JSON.parse((await run('gdalinfo', ['-json', out])).stdout.toString());
      assert.deepEqual(
        info.bands.map((b: { type: string }) => b.type),
        firstOrder.map(() => c.gdalType),
      );
      const raw = await fs.readFile(expected);
      const n = g.width * g.height;
      for (const [b, name] of firstOrder.entries()) {
        const fi = c.features.findIndex((f) => f.name === name);
        const want = new Float64Array(raw.buffer.slice(raw.byteOffset + fi * n * 8, raw.byteOffset + (fi + 1) * n * 8));
        assert.deepEqual(g.bands[b], want, `band ${name}`);
      }
      await validateCog(out);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}
