/**
 * Cross-implementation proof for patch export (docs/semantics.md §12): GDAL writes rasters with nodata
 * holes, the real CLI (`geotfr export-patches`, worker threads) cuts patches around points, and
 * TensorFlow parses every record with the specs an EE user writes (`FixedLenFeature([ky, kx])`,
 * `[D, ky, kx]` for array bands). Every value must equal numpy slicing of the GDAL-read source
 * (`gdal_translate -of ENVI`), with the containing pixel, the floor(K/2) placement, masks, fills
 * (truncated and clamped for integer bands) and dropNulls computed in numpy, independently. The
 * parse spec `geotfr inspect` prints for the files (shapes from the patch manifest) must be that spec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { geotfr, needGdal, needTensorFlow, python } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

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
    nd = band.get('noDataValue')
    valid[i] = ~np.isnan(arr[i]) if nd is None else (arr[i] != nd)
kx, ky = cfg['kernel']
P = max(kx, ky) + 2
pad = np.zeros((nb, H + 2 * P, W + 2 * P)); pad[:, P:P + H, P:P + W] = arr
vpad = np.zeros((nb, H + 2 * P, W + 2 * P), bool); vpad[:, P:P + H, P:P + W] = valid
expected = []
for k, (x, y) in enumerate(cfg['points']):
    col = math.floor((x - c) / a + 1e-6); row = math.floor((y - f) / e + 1e-6)
    inside = 0 <= col < W and 0 <= row < H
    if cfg['dropNulls'] and not inside:
        continue
    x0 = col - kx // 2 + P; y0 = row - ky // 2 + P
    feats = {}
    centre_ok = True
    for band in cfg['bands']:
        src = band['sources']
        v = pad[src, y0:y0 + ky, x0:x0 + kx]
        ok = vpad[src, y0:y0 + ky, x0:x0 + kx].all(axis=0)
        centre_ok = centre_ok and bool(ok[ky // 2, kx // 2])
        vals = np.where(ok[None], v, band['fill'])
        if band['depth'] > len(src):
            vals = np.concatenate([vals, np.full((band['depth'] - len(src), ky, kx), band['fill'])])
        feats[band['name']] = vals.astype(np.float32) if band['array'] else vals[0].astype(np.float32)
    if cfg['dropNulls'] and not centre_ok:
        continue
    if cfg['label']:
        feats['label'] = np.float32(cfg['labels'][k])
    if cfg['geometries']:
        feats['longitude'] = np.float32(c + a * (col + 0.5))
        feats['latitude'] = np.float32(f + e * (row + 0.5))
    expected.append(feats)
spec = {}
for band in cfg['bands']:
    spec[band['name']] = tf.io.FixedLenFeature([band['depth'], ky, kx] if band['array'] else [ky, kx], tf.float32)
if cfg['label']:
    spec['label'] = tf.io.FixedLenFeature([1], tf.float32)
if cfg['geometries']:
    spec['longitude'] = tf.io.FixedLenFeature([1], tf.float32)
    spec['latitude'] = tf.io.FixedLenFeature([1], tf.float32)
got = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(cfg['files'], compression_type='GZIP')]
# The spec geotfr inspect prints for these files (shapes from the patch manifest) is the user's spec.
ns = {'tf': tf}
exec(cfg['inspectSpec'].split('\nparsed =')[0], ns)
for n, want in spec.items():
    have = ns['features'][n]
    assert list(have.shape) == list(want.shape) and have.dtype == want.dtype, f'inspect gives {n}: {have}, the user writes {want}'
for r in tf.data.TFRecordDataset(cfg['files'], compression_type='GZIP').take(3):
    tf.io.parse_single_example(r, ns['features'])
assert len(got) == len(expected), f'{len(got)} records, expected {len(expected)}'
for k, (g, x) in enumerate(zip(got, expected)):
    for n, want in x.items():
        have = g[n].numpy().reshape(np.shape(want))
        if not np.array_equal(have, want):
            bad = np.argwhere(have != want)[0] if np.ndim(want) else []
            raise SystemExit(f'record {k} feature {n} at {list(map(int, bad))}: got {have[tuple(bad)]}, want {np.asarray(want)[tuple(bad)]}')
result = {'records': len(got)}
`;

const DRIVER = String.raw`
import json, sys
body = sys.stdin.read()
for cfg in json.loads(sys.argv[1]):
    g = {'cfg': cfg}
    exec(body, g)
    print(json.dumps(g['result']))
`;

interface Case {
  name: string;
  cfg: Record<string, unknown>;
  records: number;
}

/** A raster with smooth values, a nodata blob and scattered nodata pixels, written by GDAL. */
async function raster(
  file: string,
  o: {
    W: number;
    H: number;
    nb: number;
    type: 'float32' | 'uint8' | 'int16';
    nodata: number;
    affine: [number, number, number, number, number, number];
    crs: string;
    seed: number;
  },
) {
  const next = mulberry32(o.seed);
  const bands = Array.from({ length: o.nb }, (_, b) =>
    Float64Array.from({ length: o.W * o.H }, (_, i) => {
      const x = i % o.W,
        y = Math.floor(i / o.W);
      if ((x - o.W / 3) ** 2 + (y - o.H / 2) ** 2 < (o.W / 9) ** 2 || next() < 0.03) return o.nodata;
      if (o.type === 'float32') return Math.fround(Math.sin(x / 5 + b) * 100 + next());
      const hi = o.type === 'uint8' ? 250 : 30000;
      return 1 + Math.floor(next() * hi);
    }),
  );
  await writeGeoTiff(file, {
    width: o.W,
    height: o.H,
    bands,
    type: o.type,
    nodata: o.nodata,
    affine: o.affine,
    crs: o.crs,
    layout: 'GTiff',
    blockSize: 32,
    compress: 'DEFLATE',
  });
}

/** Points in raster coordinates: random, plus the four corners' pixels and a few outside the image. */
function points(next: () => number, n: number, W: number, H: number, affine: number[]): [number, number][] {
  const [a, , c, , e, f] = affine;
  const px: [number, number][] = [];
  for (let i = 0; i < n; i++) px.push([-2 + next() * (W + 4), -2 + next() * (H + 4)]);
  px.push([0.5, 0.5], [W - 0.5, 0.5], [0.5, H - 0.5], [W - 0.5, H - 0.5], [0.3, 0.7], [W - 0.1, H - 0.9]);
  // Keep clear of pixel edges: the oracle's floor and ours may otherwise round a boundary differently.
  return px.map(([x, y]) => [c + a * (Math.floor(x) + 0.1 + 0.8 * (x - Math.floor(x))), f + e * (Math.floor(y) + 0.1 + 0.8 * (y - Math.floor(y)))]);
}

test('TensorFlow parses patch exports; windows equal numpy slices of the GDAL-read source', async (t) => {
  if (!needGdal(t) || !needTensorFlow(t)) return;
  const dir = await tempDir('geotfr-ptf-');
  const cases: Case[] = [];
  const next = mulberry32(99);
  const runCli = async (name: string, request: object, workers: number) => {
    const req = path.join(dir, `${name}.json`);
    await fs.writeFile(req, JSON.stringify(request));
    const r = await geotfr(['export-patches', req, '--workers', String(workers)], { env: { GEOTFR_PROGRESS: '0' } });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    return JSON.parse(r.stdout.toString());
  };

  // 1–2: float32, UTM, points in a FeatureCollection with a crs member; even and odd kernels.
  const utm: [number, number, number, number, number, number] = [30, 0, 300000, 0, -30, 5000000];
  const f32 = path.join(dir, 'f32.tif');
  await raster(f32, { W: 97, H: 71, nb: 3, type: 'float32', nodata: -9999, affine: utm, crs: 'EPSG:32618', seed: 1 });
  const pts = points(next, 120, 97, 71, utm);
  const labels = pts.map((_, i) => i % 7);
  const fc = {
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32618' } },
    features: pts.map((p, i) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: p }, properties: { label: labels[i], note: `n${i}` } })),
  };
  await fs.writeFile(path.join(dir, 'pts.geojson'), JSON.stringify(fc));
  const f32Bands = [0, 1, 2].map((i) => ({ name: `b${i + 1}`, sources: [i], depth: 1, array: false, fill: Math.fround(-1.5) }));
  for (const [name, kernel, dropNulls, workers] of [
    ['even', [6, 4], true, 2],
    ['odd', [5, 7], false, 1],
    ['one', [1, 1], true, 0],
  ] as const) {
    const s = await runCli(
      name,
      {
        image: f32,
        points: path.join(dir, 'pts.geojson'),
        properties: ['label'],
        kernelSize: kernel,
        defaultValue: -1.5,
        dropNulls,
        bucket: path.join(dir, 'out'),
        fileNamePrefix: name,
      },
      workers,
    );
    if (dropNulls)
      assert.ok(s.dropped.outside > 0 && s.dropped.masked > 0, `${name}: the points include outside and masked ones: ${JSON.stringify(s.dropped)}`);
    cases.push({
      name,
      records: s.records,
      cfg: { src: f32, kernel, points: pts, dropNulls, bands: f32Bands, label: true, labels, geometries: false, files: s.shards },
    });
  }

  // 3: uint8 with an array band (2 sources padded to depth 4), defaultValue 300 → 255, CSV lon/lat on EPSG:4326, geometries, shards.
  const geo: [number, number, number, number, number, number] = [0.01, 0, 10, 0, -0.01, 50];
  const u8 = path.join(dir, 'u8.tif');
  await raster(u8, { W: 64, H: 48, nb: 3, type: 'uint8', nodata: 0, affine: geo, crs: 'EPSG:4326', seed: 2 });
  const gpts = points(next, 80, 64, 48, geo);
  await fs.writeFile(path.join(dir, 'pts.csv'), 'lon,lat,label\n' + gpts.map((p, i) => `${p[0]},${p[1]},${i % 5}`).join('\n') + '\n');
  const u8Bands = [
    { name: 's', sources: [0], depth: 1, array: false, fill: 255 },
    { name: 'ts', sources: [1, 2], depth: 4, array: true, fill: 255 },
  ];
  const image = {
    bands: [
      { name: 's', uri: u8, band: 1 },
      { name: 'ts', uri: u8, bands: [2, 3] },
    ],
  };
  const s3 = await runCli(
    'array',
    {
      image,
      points: path.join(dir, 'pts.csv'),
      xColumn: 'lon',
      yColumn: 'lat',
      kernelSize: [8, 8],
      tensorDepths: { ts: 4 },
      defaultValue: 300,
      geometries: true,
      maxFileSize: 20000,
      bucket: path.join(dir, 'out'),
      fileNamePrefix: 'arr/p',
    },
    2,
  );
  assert.ok(s3.files > 1, `maxFileSize makes several shards (${s3.files})`);
  assert.match(s3.shards[0], /arr\/p-00000\.tfrecord\.gz$/);
  assert.ok(s3.features.some((f: { name: string; spec: string }) => f.name === 'ts' && f.spec === 'tf.io.FixedLenFeature([4, 8, 8], tf.float32)'));
  cases.push({
    name: 'array',
    records: s3.records,
    cfg: {
      src: u8,
      kernel: [8, 8],
      points: gpts,
      dropNulls: true,
      bands: u8Bands,
      label: true,
      labels: gpts.map((_, i) => i % 5),
      geometries: true,
      files: s3.shards,
    },
  });

  for (const c of cases) {
    const r = await geotfr(['inspect', '--json', ...(c.cfg.files as string[])], { env: { GEOTFR_PROGRESS: '0' } });
    assert.equal(r.code, 0, `${c.name}: inspect: ${r.stderr}`);
    const report = JSON.parse(r.stdout.toString());
    assert.ok(report.manifest, `${c.name}: inspect finds the patch manifest`);
    c.cfg.inspectSpec = report.parseSpec;
  }
  const out = (await python(DRIVER, [JSON.stringify(cases.map((c) => c.cfg))], ORACLE)).trim().split('\n');
  assert.equal(out.length, cases.length);
  cases.forEach((c, i) => assert.equal(JSON.parse(out[i]!).records, c.records, c.name));
  await fs.rm(dir, { recursive: true, force: true });
});
