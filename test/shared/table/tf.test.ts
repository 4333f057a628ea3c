/**
 * Table export against TensorFlow (issue 5): the output parses with the specs an EE user writes
 * (`FixedLenFeature([1], tf.float32)` for scalars, `[3, 2]` for a nested array, `[]` of tf.string),
 * values exact in float32, selectors honoured in order, and EE's `neighborhoodToArray` + `sampleRegions`
 * shape (a 16×16 patch per point and band) parses as `FixedLenFeature([16, 16])`.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runTableExport } from '../../../shared/table/export.js';
import { readRecordFile } from '../../../shared/tfrecord/record.js';
import { decodeExample } from '../../../shared/tfrecord/example.js';
import { needTensorFlow } from '../../support/oracles.js';
import { flat, randomFloat, randomText, rng, tfParse, tmp } from './helpers.js';

const f32 = (v: number) => Math.fround(v);

test('TensorFlow parses scalars as [1], nested arrays as [3, 2] and strings as []; values exact; selectors in order', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = tmp();
  const r = rng(5);
  const features = Array.from({ length: 40 }, () => ({
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [r() * 360 - 180, r() * 180 - 90] },
    properties: {
      elev: randomFloat(r),
      landcover: Math.floor(r() * 17),
      name: randomText(r),
      flag: r() < 0.5,
      arr: Array.from({ length: 3 }, () => Array.from({ length: 2 }, () => randomFloat(r))),
      unused: 'left out by selectors',
    },
  }));
  writeFileSync(path.join(dir, 'points.geojson'), JSON.stringify({ type: 'FeatureCollection', features }, null, 2));
  const selectors = ['name', 'arr', 'elev', 'flag', 'landcover'];
  const summary = await runTableExport({
    collection: path.join(dir, 'points.geojson'),
    bucket: path.join(dir, 'out'),
    fileNamePrefix: 'train/points',
    fileFormat: 'TFRecord',
    selectors,
    geometry: 'lonlat',
  });
  assert.equal(summary.features, features.length);
  assert.equal(summary.file, path.join(dir, 'out', 'train', 'points.tfrecord.gz'));
  assert.deepEqual(
    summary.columns.map((c) => [c.name, c.spec]),
    [
      ['name', 'tf.io.FixedLenFeature([], tf.string)'],
      ['arr', 'tf.io.FixedLenFeature([3, 2], tf.float32)'],
      ['elev', 'tf.io.FixedLenFeature([1], tf.float32)'],
      ['flag', 'tf.io.FixedLenFeature([1], tf.float32)'],
      ['landcover', 'tf.io.FixedLenFeature([1], tf.float32)'],
      ['longitude', 'tf.io.FixedLenFeature([1], tf.float32)'],
      ['latitude', 'tf.io.FixedLenFeature([1], tf.float32)'],
    ],
  );

  // Feature order within each record: selectors order, then the geometry features.
  let n = 0;
  for await (const rec of readRecordFile(summary.file)) {
    assert.deepEqual([...decodeExample(rec.data).keys()], [...selectors, 'longitude', 'latitude']);
    n++;
  }
  assert.equal(n, features.length);

  const parsed = await tfParse(summary.file, {
    name: { shape: [], type: 'string' },
    arr: { shape: [3, 2], type: 'float' },
    elev: { shape: [1], type: 'float' },
    flag: { shape: [1], type: 'float' },
    landcover: { shape: [1], type: 'float' },
    longitude: { shape: [1], type: 'float' },
    latitude: { shape: [1], type: 'float' },
  });
  assert.equal(parsed.length, features.length);
  parsed.forEach((row, i) => {
    const p = features[i].properties;
    assert.equal(row.name, p.name, `record ${i} name`);
    assert.deepEqual(row.arr, { shape: [3, 2], values: flat(p.arr).map(f32) }, `record ${i} arr`);
    assert.deepEqual(row.elev, { shape: [1], values: [f32(p.elev)] });
    assert.deepEqual(row.flag, { shape: [1], values: [p.flag ? 1 : 0] });
    assert.deepEqual(row.landcover, { shape: [1], values: [p.landcover] });
    assert.deepEqual(row.longitude, { shape: [1], values: [f32(features[i].geometry.coordinates[0])] });
    assert.deepEqual(row.latitude, { shape: [1], values: [f32(features[i].geometry.coordinates[1])] });
  });
});

test('a table of 16×16 patches per point (neighborhoodToArray + sampleRegions) parses as FixedLenFeature([16, 16])', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = tmp();
  const r = rng(16);
  const bands = ['B2', 'B3', 'B4', 'B8'];
  const rows = Array.from({ length: 25 }, () => {
    const properties: Record<string, unknown> = {};
    for (const b of bands) properties[b] = Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => Math.round(r() * 10000) / 10000));
    properties.label = Math.floor(r() * 10);
    return { type: 'Feature', geometry: { type: 'Point', coordinates: [r(), r()] }, properties };
  });
  writeFileSync(path.join(dir, 'patches.geojsonl'), rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const summary = await runTableExport({
    collection: path.join(dir, 'patches.geojsonl'),
    bucket: path.join(dir, 'out'),
    fileNamePrefix: 'patches',
    fileFormat: 'TFRecord',
  });
  assert.equal(summary.format, 'ndjson');
  assert.deepEqual(
    summary.columns.map((c) => c.spec),
    [...bands.map(() => 'tf.io.FixedLenFeature([16, 16], tf.float32)'), 'tf.io.FixedLenFeature([1], tf.float32)'],
  );
  const spec = Object.fromEntries([...bands.map((b) => [b, { shape: [16, 16], type: 'float' as const }]), ['label', { shape: [1], type: 'float' as const }]]);
  const parsed = await tfParse(summary.file, spec);
  assert.equal(parsed.length, rows.length);
  parsed.forEach((row, i) => {
    for (const b of bands) assert.deepEqual(row[b], { shape: [16, 16], values: flat(rows[i].properties[b]).map(f32) }, `record ${i} band ${b}`);
    assert.deepEqual(row.label, { shape: [1], values: [rows[i].properties.label] });
  });
});

test('CSV input: numeric columns parse as float32 scalars and text columns as strings, with TensorFlow', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = tmp();
  const r = rng(7);
  const rows = Array.from({ length: 30 }, () => ({ id: Math.floor(r() * 1e6), ndvi: randomFloat(r), klass: randomText(r) }));
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(path.join(dir, 'table.csv'), 'id,ndvi,klass\r\n' + rows.map((x) => `${x.id},${x.ndvi},${q(x.klass)}`).join('\r\n') + '\r\n');
  const summary = await runTableExport({ collection: path.join(dir, 'table.csv'), bucket: path.join(dir, 'out'), fileNamePrefix: 'csv' });
  const parsed = await tfParse(summary.file, { id: { shape: [1], type: 'float' }, ndvi: { shape: [1], type: 'float' }, klass: { shape: [], type: 'string' } });
  assert.deepEqual(
    parsed,
    rows.map((x) => ({ id: { shape: [1], values: [f32(x.id)] }, ndvi: { shape: [1], values: [f32(x.ndvi)] }, klass: x.klass })),
  );
});
