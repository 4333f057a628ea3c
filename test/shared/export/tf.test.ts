/**
 * Cross-implementation proof (issue 3): GDAL writes random rasters, `geotfr export-image` (the real
 * CLI, worker threads, openImage) exports them, TensorFlow parses every shard with the shapes an EE
 * user writes (`FixedLenFeature([th, tw])`, `[D, th, tw]`, SequenceExample specs), and the values must
 * equal an independent oracle: numpy over the GDAL-read source (`gdal_translate -of ENVI`) with the
 * region snapping, margins, masks, defaults (truncated + clamped) and maskedThreshold applied in numpy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { geotfr, needGdal, needTensorFlow, python } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { rng } from './memsource.js';

/** The oracle: numpy + GDAL CLI for the expected tensors, TensorFlow for parsing our files. */
const ORACLE = String.raw`
import json, subprocess, tempfile, os, math
import numpy as np
import tensorflow as tf
info = json.loads(subprocess.check_output(['gdalinfo', '-json', cfg['src']]))
c, a, b, f, d, e = info['geoTransform']
W, H = info['size']
nb = len(info['bands'])
tmp = tempfile.mkdtemp()
subprocess.check_call(['gdal_translate', '-q', '-of', 'ENVI', '-co', 'INTERLEAVE=BSQ', '-ot', 'Float64', cfg['src'], os.path.join(tmp, 'a.bin')])
arr = np.fromfile(os.path.join(tmp, 'a.bin'), dtype='<f8').reshape(nb, H, W)
valid = np.ones((nb, H, W), bool)
for i, band in enumerate(info['bands']):
    if band.get('metadata', {}).get('IMAGE_STRUCTURE', {}).get('PIXELTYPE') == 'SIGNEDBYTE':
        arr[i] = np.where(arr[i] > 127, arr[i] - 256, arr[i])  # GDAL < 3.7 reads int8 as Byte
    nd = band.get('noDataValue')
    valid[i] = ~np.isnan(arr[i]) if nd is None else (arr[i] != nd)
if cfg['bbox'] is None:
    x0, y0, x1, y1 = 0, 0, W, H
else:
    xmin, ymin, xmax, ymax = cfg['bbox']
    x0 = math.floor((xmin - c) / a + 1e-6); x1 = math.ceil((xmax - c) / a - 1e-6)
    y0 = math.floor((ymax - f) / e + 1e-6); y1 = math.ceil((ymin - f) / e - 1e-6)
pw, ph = cfg['patch']; kx, ky = cfg['kernel']
mx, my = kx // 2, ky // 2
tw, th = pw + 2 * mx, ph + 2 * my
ppr, rows = (x1 - x0) // pw, (y1 - y0) // ph
rng = {'uint8': (0, 255), 'int8': (-128, 127), 'int16': (-32768, 32767), 'uint16': (0, 65535)}.get(cfg['type'])
dv = cfg['defaultValue']
fill = dv if rng is None else min(rng[1], max(rng[0], math.trunc(dv)))
# Pad the image with masked pixels so every tile slices out of it.
P = max(mx, my) + max(pw, ph) + 2
pad = np.full((nb, H + 2 * P, W + 2 * P), np.nan); pad[:, P:P + H, P:P + W] = arr
vpad = np.zeros((nb, H + 2 * P, W + 2 * P), bool); vpad[:, P:P + H, P:P + W] = valid
names = cfg['names']
expected = []
for r in range(rows):
    for col in range(ppr):
        xs = x0 + col * pw - mx + P; ys = y0 + r * ph - my + P
        v = pad[:, ys:ys + th, xs:xs + tw]; ok = vpad[:, ys:ys + th, xs:xs + tw]
        core = ok[:, my:my + ph, mx:mx + pw].all(axis=0)
        if cfg['maskedThreshold'] < 1 and (1 - core.mean()) > cfg['maskedThreshold']:
            continue
        expected.append(np.where(ok, v, fill).astype(np.float32))
spec = {n: tf.io.FixedLenFeature([th, tw], tf.float32) for n in names}
ds = tf.data.TFRecordDataset(cfg['files'], compression_type='GZIP' if cfg['compressed'] else '')
got = [tf.io.parse_single_example(rec, spec) for rec in ds]
assert len(got) == len(expected), f'{len(got)} records, expected {len(expected)}'
for k, (g, x) in enumerate(zip(got, expected)):
    for i, n in enumerate(names):
        gv = g[n].numpy()
        if not np.array_equal(gv, x[i]):
            bad = np.argwhere(gv != x[i])[0]
            raise SystemExit(f'record {k} band {n} at {bad.tolist()}: got {gv[tuple(bad)]}, want {x[i][tuple(bad)]}')
if cfg['mixer']:
    m = json.load(open(cfg['mixer']))
    assert m['patchesPerRow'] == ppr and m['totalPatches'] == ppr * rows, m
    assert abs(m['projection']['affine']['doubleMatrix'][2] - (c + a * x0)) < 1e-6
    assert abs(m['projection']['affine']['doubleMatrix'][5] - (f + e * y0)) < 1e-6
result = {'records': len(got), 'ppr': int(ppr), 'rows': int(rows)}
`;

/** Runs the oracle (on stdin) once per case, in one Python process: TensorFlow starts once. */
const DRIVER = String.raw`
import json, sys
body = sys.stdin.read()
for cfg in json.loads(sys.argv[1]):
    g = {'cfg': cfg}
    exec(body, g)
    print(json.dumps(g['result']))
`;

const RANGE: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127], int16: [-32768, 32767], uint16: [0, 65535] };

test('TensorFlow parses random exports; values equal numpy over the GDAL-read source', async (t) => {
  if (!needGdal(t) || !needTensorFlow(t)) return;
  const types: SampleType[] = ['int8', 'uint8', 'int16', 'float32', 'float64'];
  const only = process.env.GEOTFR_TF_SEED ? Number(process.env.GEOTFR_TF_SEED) : undefined;
  const cases: { cfg: object; seed: number; patches: number; maskedThreshold: number; dir: string }[] = [];
  for (let seed = 1; seed <= 10; seed++) {
    if (only !== undefined && seed !== only) continue;
    const next = rng(1000 + seed);
    const type = types[seed % types.length];
    const W = 60 + Math.floor(next() * 90);
    const H = 50 + Math.floor(next() * 90);
    const nb = 1 + Math.floor(next() * 3);
    const nodata = RANGE[type] ? RANGE[type][0] + 3 : -9999;
    const bands = Array.from({ length: nb }, () => {
      const v = new Float64Array(W * H);
      for (let i = 0; i < v.length; i++) {
        // Smooth field plus noise, with nodata holes (blobs) and scattered pixels.
        const x = i % W;
        const y = Math.floor(i / W);
        const hole = (x - W / 3) ** 2 + (y - H / 2) ** 2 < (W / 8) ** 2 || next() < 0.05;
        if (hole) v[i] = nodata;
        else if (RANGE[type]) v[i] = Math.round(RANGE[type][0] + 4 + next() * (RANGE[type][1] - RANGE[type][0] - 8));
        else v[i] = Math.sin(x / 7) * 100 + next() * 10 - 5;
      }
      return v;
    });
    const dir = await tempDir('geotfr-tf-');
    const src = path.join(dir, 'src.tif');
    const affine: [number, number, number, number, number, number] = [30, 0, 300000, 0, -30, 5000000];
    await writeGeoTiff(src, {
      width: W,
      height: H,
      bands,
      type,
      nodata,
      affine,
      crs: 'EPSG:32618',
      layout: seed % 2 ? 'COG' : 'GTiff',
      blockSize: seed % 2 ? 32 : undefined,
      compress: 'DEFLATE',
    });
    const pw = 7 + Math.floor(next() * 20);
    const ph = 7 + Math.floor(next() * 20);
    const kernel = [1 + Math.floor(next() * 9), 1 + Math.floor(next() * 9)];
    // Regions: whole image, partly outside (left/top), interior (margins come from outside the region).
    const mode = seed % 3;
    let bbox: number[] | null = null;
    if (mode === 1) bbox = [300000 - 13 * 30 + 1e-7, 5000000 - (H - 5) * 30, 300000 + (W - 10) * 30, 5000000 + 9 * 30];
    if (mode === 2) bbox = [300000 + 11 * 30, 5000000 - (H - 12) * 30 - 1e-8, 300000 + (W - 9) * 30, 5000000 - 8 * 30];
    const defaultValue = [-3.7, 300, 0, -1e6, 12.25][seed % 5];
    const compressed = seed % 2 === 0;
    const maskedThreshold = seed % 4 === 3 ? 0.1 : 1;
    const request = {
      image: src,
      bucket: path.join(dir, 'out'),
      fileNamePrefix: 'tf/p',
      ...(bbox ? { region: bbox } : {}),
      formatOptions: { patchDimensions: [pw, ph], kernelSize: kernel, defaultValue, compressed, maskedThreshold, maxFileSize: 1 + Math.floor(next() * 20000) },
    };
    await fs.writeFile(path.join(dir, 'req.json'), JSON.stringify(request));
    const r = await geotfr(['export-image', path.join(dir, 'req.json'), '--workers', String(1 + (seed % 2))], { env: { GEOTFR_PROGRESS: '0' } });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.toString());
    assert.ok(summary.files >= 1);
    const files: string[] = summary.shards;
    const cfg = {
      src,
      bbox,
      patch: [pw, ph],
      kernel,
      type,
      defaultValue,
      maskedThreshold,
      compressed,
      files,
      names: bands.map((_, i) => `b${i + 1}`),
      mixer: maskedThreshold === 1 ? summary.mixer : null,
    };
    cases.push({ cfg, seed, patches: summary.patches, maskedThreshold, dir });
  }
  const out = (await python(DRIVER, [JSON.stringify(cases.map((c) => c.cfg))], ORACLE)).trim().split('\n');
  assert.equal(out.length, cases.length);
  cases.forEach((c, i) => {
    const res = JSON.parse(out[i]);
    assert.equal(res.records, c.patches, `seed ${c.seed}`);
    if (c.maskedThreshold === 1) assert.equal(res.records, res.ppr * res.rows);
  });
  if (only === undefined) for (const c of cases) await fs.rm(c.dir, { recursive: true, force: true });
});

const SHAPES = String.raw`
import json, sys
import numpy as np
import tensorflow as tf
cfg = json.loads(sys.argv[1])
th, tw, D = cfg['th'], cfg['tw'], cfg['depth']
out = {}
# Array band as [D, th, tw] next to a scalar [th, tw] band.
spec = {'s': tf.io.FixedLenFeature([th, tw], tf.float32), 'ts': tf.io.FixedLenFeature([D, th, tw], tf.float32)}
recs = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(cfg['examples'], compression_type='GZIP')]
out['examples'] = [{'s': r['s'].numpy().tolist(), 'ts': r['ts'].numpy().tolist()} for r in recs]
# collapseBands: [C, th, tw] named after the first band.
recs = [tf.io.parse_single_example(r, {'s': tf.io.FixedLenFeature([1 + D, th, tw], tf.float32)}) for r in tf.data.TFRecordDataset(cfg['collapsed'], compression_type='GZIP')]
out['collapsed'] = [r['s'].numpy().tolist() for r in recs]
# sequenceData: scalar → context [1]; array → FixedLenSequenceFeature([1]) of D steps.
seqs = []
for r in tf.data.TFRecordDataset(cfg['sequence'], compression_type='GZIP'):
    ctx, seq = tf.io.parse_single_sequence_example(r, context_features={'s': tf.io.FixedLenFeature([1], tf.float32)}, sequence_features={'ts': tf.io.FixedLenSequenceFeature([1], tf.float32)})
    seqs.append([ctx['s'].numpy().tolist(), seq['ts'].numpy().reshape(-1).tolist()])
out['sequence'] = seqs
print(json.dumps(out))
`;

test('TensorFlow shapes for array bands ([D, th, tw]), collapseBands and SequenceExamples', async (t) => {
  if (!needGdal(t) || !needTensorFlow(t)) return;
  const W = 12;
  const H = 9;
  const next = rng(7);
  const dir = await tempDir('geotfr-tfshape-');
  const src = path.join(dir, 'ts.tif');
  const bands = Array.from({ length: 4 }, () => Float64Array.from({ length: W * H }, () => Math.round(next() * 1000) / 8));
  bands[0][5] = -1; // nodata in the scalar band
  await writeGeoTiff(src, { width: W, height: H, bands, type: 'float32', nodata: -1, affine: [1, 0, 0, 0, -1, 0], crs: 'EPSG:3857' });
  const D = 5; // 3 source values padded to 5
  const image = {
    bands: [
      { name: 's', uri: src, band: 1 },
      { name: 'ts', uri: src, bands: [2, 3, 4] },
    ],
  };
  const fo = { patchDimensions: [4, 3], kernelSize: [3, 3], defaultValue: -7, tensorDepths: { ts: D } };
  const exp = async (prefix: string, extra: object) => {
    const req = path.join(dir, `${prefix}.json`);
    await fs.writeFile(req, JSON.stringify({ image, bucket: path.join(dir, 'out'), fileNamePrefix: prefix, formatOptions: { ...fo, ...extra } }));
    const r = await geotfr(['export-image', req], { env: { GEOTFR_PROGRESS: '0' } });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.toString()).shards as string[];
  };
  const th = 5;
  const tw = 6;
  const res = JSON.parse(
    await python(SHAPES, [
      JSON.stringify({
        th,
        tw,
        depth: D,
        examples: await exp('e', {}),
        collapsed: await exp('c', { collapseBands: true }),
        sequence: await exp('s', { sequenceData: true }),
      }),
    ]),
  );
  // Expected straight from the source arrays (margins outside the image and nodata → -7, depth padding → -7).
  const px = (band: number, x: number, y: number) => {
    if (x < 0 || y < 0 || x >= W || y >= H) return -7;
    if (band === 0) return bands[0][y * W + x] === -1 ? -7 : Math.fround(bands[0][y * W + x]);
    return band > 3 ? -7 : Math.fround(bands[band][y * W + x]);
  };
  assert.equal(res.examples.length, 3 * 3);
  for (let p = 0; p < 9; p++) {
    const ox = (p % 3) * 4 - 1;
    const oy = Math.floor(p / 3) * 3 - 1;
    for (let y = 0; y < th; y++)
      for (let x = 0; x < tw; x++) {
        assert.equal(res.examples[p].s[y][x], px(0, ox + x, oy + y));
        assert.equal(res.collapsed[p][0][y][x], px(0, ox + x, oy + y));
        for (let d = 0; d < D; d++) {
          assert.equal(res.examples[p].ts[d][y][x], px(1 + d, ox + x, oy + y), `patch ${p} depth ${d} px ${x},${y}`);
          assert.equal(res.collapsed[p][1 + d][y][x], px(1 + d, ox + x, oy + y));
        }
        const [ctx, seq] = res.sequence[p * th * tw + y * tw + x];
        assert.deepEqual(ctx, [px(0, ox + x, oy + y)]);
        assert.deepEqual(
          seq,
          Array.from({ length: D }, (_, d) => px(1 + d, ox + x, oy + y)),
        );
      }
  }
  await fs.rm(dir, { recursive: true, force: true });
});
