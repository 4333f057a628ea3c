/**
 * Wide tables (docs/limits.md, maxColumns, maxNameChars): a one-row CSV with 200,000 columns, a
 * GeoJSON feature with more properties than the limit, TFRecords with more distinct feature names
 * than it, and over-long names: each a LIMIT error naming the limit, bounded memory, no output, no
 * giant summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { encodeExample } from '../../../shared/tfrecord/example.js';
import { frameRecords } from '../../../shared/tfrecord/record.js';
import { listFiles } from '../../support/files.js';
import { tempDir } from '../../support/rasters.js';
import { RSS_BOUND_MIB, geotfrMeasured } from './measure.js';

async function exportTable(dir: string, collection: string, env: NodeJS.ProcessEnv = {}) {
  const out = path.join(dir, 'out');
  const req = path.join(dir, 'req.json');
  await fs.writeFile(req, JSON.stringify({ collection, bucket: out, fileNamePrefix: 't', fileFormat: 'TFRecord' }));
  return { ...(await geotfrMeasured(['export-table', req], { env, cwd: dir })), out };
}

test('a one-row CSV with 200,000 columns: LIMIT maxColumns at line 1, bounded memory, no output and no summary', async (t) => {
  const dir = await tempDir('geotfr-limits-csv-');
  try {
    const n = 200_000;
    const csv = path.join(dir, 'wide.csv');
    await fs.writeFile(csv, Array.from({ length: n }, (_, i) => `c${i}`).join(',') + '\n' + Array.from({ length: n }, () => '1').join(',') + '\n');
    const r = await exportTable(dir, csv);
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB, stdout ${r.stdout.length} bytes`);
    assert.notEqual(r.code, 0, r.stderr.slice(0, 500));
    assert.match(
      r.stderr,
      /LIMIT: .*wide\.csv: the CSV record at line 1, with more than 16384 fields, exceeds the maxColumns limit of 16,384 \(set GEOTFR_MAX_COLUMNS/,
    );
    assert.equal(r.stdout.length, 0, 'no summary');
    assert.ok(r.stderr.length < 4096, `a short message, not the columns (${r.stderr.length} bytes)`);
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(r.out), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a column name longer than maxNameChars: LIMIT, so the summary (a line per column) stays small', async () => {
  const dir = await tempDir('geotfr-limits-names-');
  try {
    const csv = path.join(dir, 'long.csv');
    await fs.writeFile(csv, `a,${'n'.repeat(5000)}\n1,2\n`);
    const r = await exportTable(dir, csv);
    assert.notEqual(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /LIMIT: .*long\.csv: the name of property "n{40}…" \(5000 characters\) exceeds the maxNameChars limit of 1,024 \(set GEOTFR_MAX_NAME_CHARS/,
    );
    assert.deepEqual(await listFiles(r.out), [], 'no output');
    const file = path.join(dir, 'in.tfrecord');
    await fs.writeFile(file, frameRecords([encodeExample([['x'.repeat(2000), { kind: 'float_list', value: new Float32Array([1]) }]])]));
    const t = await geotfrMeasured(['ingest-table', '--out', path.join(r.out, 't.geojson'), file], { cwd: dir });
    assert.notEqual(t.code, 0, t.stderr);
    assert.match(t.stderr, /LIMIT: feature name "x{40}…" \(2000 characters\) exceeds the maxNameChars limit of 1,024/);
    assert.deepEqual(await listFiles(r.out), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('GeoJSON properties per feature and across features: maxColumns, changed through GEOTFR_MAX_COLUMNS', async () => {
  const dir = await tempDir('geotfr-limits-geojson-');
  try {
    const props = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, 1]));
    const feature = (p: Record<string, unknown>) => ({ type: 'Feature', geometry: { type: 'Point', coordinates: [1, 2] }, properties: p });
    const wide = path.join(dir, 'wide.geojson');
    await fs.writeFile(wide, JSON.stringify({ type: 'FeatureCollection', features: [feature(props(Array.from({ length: 101 }, (_, i) => `p${i}`)))] }));
    // Within the limit per feature, over it together: 11 features of 10 new properties each.
    const many = path.join(dir, 'many.geojsonl');
    await fs.writeFile(
      many,
      Array.from({ length: 11 }, (_, f) => JSON.stringify(feature(props(Array.from({ length: 10 }, (_, i) => `f${f}_${i}`))))).join('\n') + '\n',
    );
    for (const [file, nth] of [
      [wide, 101],
      [many, 101],
    ] as const) {
      const r = await exportTable(dir, file, { GEOTFR_MAX_COLUMNS: '100' });
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`LIMIT: .*${path.basename(file)}: distinct property number ${nth} \\(".*"\\) exceeds the maxColumns limit of 100`),
        r.stderr,
      );
      assert.deepEqual(await listFiles(r.out), [], 'no output');
    }
    // At the limit it exports.
    const r = await exportTable(dir, wide, { GEOTFR_MAX_COLUMNS: '101' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.toString()).columns.length, 101);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('ingest-table: more distinct feature names than maxColumns is refused for CSV and GeoJSON output, no output', async () => {
  const dir = await tempDir('geotfr-limits-ingest-table-');
  try {
    const file = path.join(dir, 'in.tfrecord');
    await fs.writeFile(
      file,
      frameRecords(Array.from({ length: 11 }, (_, i) => encodeExample([[`f${i}`, { kind: 'float_list', value: new Float32Array([i]) }]]))),
    );
    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    for (const name of ['t.csv', 't.geojson']) {
      const r = await geotfrMeasured(['ingest-table', '--out', path.join(out, name), file], { env: { GEOTFR_MAX_COLUMNS: '10' }, cwd: dir });
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /LIMIT: distinct feature name number 11 \(each is an output column\) exceeds the maxColumns limit of 10/, `${name}: ${r.stderr}`);
      assert.deepEqual(await listFiles(out), [], `${name}: no output`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
