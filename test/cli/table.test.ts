/**
 * `geotfr export-table` and `geotfr ingest-table` as a user runs them (issue 5): a one-line JSON
 * summary on stdout and exit 0 on success; every bad input (malformed JSON or CSV, a property changing
 * type, an unknown selector, an empty collection, unknown request keys, a corrupt TFRecord) gives a
 * message naming what and where, a non-zero exit, and no output file.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listFiles } from '../support/files.js';
import { geotfr } from '../support/oracles.js';
import { rng, tmp } from '../shared/table/helpers.js';

/** `count` good NDJSON point features (enough to push several 1 MiB batches through gzip). */
function goodLines(count: number, seed = 1): string[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ type: 'Feature', geometry: { type: 'Point', coordinates: [r(), r()] }, properties: { id: i, v: r(), name: `n${i}` } }),
  );
}

async function exportTable(dir: string, request: Record<string, unknown>) {
  const req = path.join(dir, 'request.json');
  writeFileSync(req, JSON.stringify({ bucket: path.join(dir, 'out'), fileNamePrefix: 'train', fileFormat: 'TFRecord', ...request }));
  return geotfr(['export-table', req], { env: { GEOTFR_PROGRESS: '1' } });
}

test('export-table then ingest-table: JSON summaries on stdout, progress on stderr, the same points back', async () => {
  const dir = tmp('cli');
  const lines = goodLines(3000);
  writeFileSync(path.join(dir, 'pts.geojsonl'), lines.join('\n') + '\n');
  const r = await exportTable(dir, { collection: path.join(dir, 'pts.geojsonl'), geometry: 'lonlat', selectors: ['name', 'id', 'v'] });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout.toString());
  assert.equal(s.features, 3000);
  assert.equal(s.file, path.join(dir, 'out', 'train.tfrecord.gz'));
  assert.match(r.stderr, /export-table: .*[\d.]+\/[\d.]+ MB read \(100%\) .* in /); // progress bar over the input's bytes
  assert.deepEqual(await listFiles(path.join(dir, 'out')), ['train.tfrecord.gz']);

  const out = path.join(dir, 'back.geojson');
  const i = await geotfr(['ingest-table', '--out', out, s.file]);
  assert.equal(i.code, 0, i.stderr);
  const summary = JSON.parse(i.stdout.toString());
  assert.deepEqual([summary.features, summary.points], [3000, 3000]);
  const fc = JSON.parse(readFileSync(out, 'utf8'));
  fc.features.forEach((f: { geometry: { coordinates: number[] }; properties: Record<string, unknown> }, k: number) => {
    const orig = JSON.parse(lines[k]);
    assert.deepEqual(Object.keys(f.properties), ['name', 'id', 'v']);
    assert.equal(f.properties.name, orig.properties.name);
    assert.equal(f.properties.id, orig.properties.id);
    assert.equal(Math.fround(f.properties.v as number), Math.fround(orig.properties.v));
    assert.deepEqual(f.geometry.coordinates.map(Math.fround), orig.geometry.coordinates.map(Math.fround));
  });

  // Custom x/y columns and CSV output.
  const csvOut = path.join(dir, 'back.csv');
  const c = await geotfr(['ingest-table', '--out', csvOut, '--x-column', 'v', '--y-column', 'id', s.file]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(readFileSync(csvOut, 'utf8').split('\n')[0], 'name,id,v,longitude,latitude');
  const g = await geotfr(['ingest-table', '--out', path.join(dir, 'xy.geojson'), '--x-column', 'v', '--y-column', 'id', s.file]);
  assert.equal(g.code, 0, g.stderr);
  const first = JSON.parse(readFileSync(path.join(dir, 'xy.geojson'), 'utf8')).features[1];
  assert.deepEqual(Object.keys(first.properties), ['name', 'longitude', 'latitude']);
  assert.equal(first.geometry.coordinates[1], 1);
});

const badNd = '{"type":"Feature","properties":{"id":1,,"v":2}}';
const badFc = '  {"type": "Feature", "properties": {"a": tru}}';
const badCases: { name: string; file: string; text: string; request?: Record<string, unknown>; exit: number; message: RegExp }[] = [
  {
    name: 'malformed NDJSON (line and column)',
    file: 'bad.geojsonl',
    text: [...goodLines(5000), badNd, ...goodLines(10)].join('\n'),
    exit: 1,
    // column of the second comma, 1-based
    message: new RegExp(`bad\\.geojsonl, record 5000: malformed JSON at line 5001, column ${badNd.indexOf(',,') + 2}: expected a property name`),
  },
  {
    name: 'malformed FeatureCollection (line and column)',
    file: 'bad.geojson',
    text: '{"type": "FeatureCollection",\n "features": [\n' + goodLines(4000).join(',\n') + ',\n' + badFc + '\n]}',
    exit: 1,
    message: new RegExp(`malformed GeoJSON at line 4003, column ${badFc.indexOf('tru') + 1}: unexpected "t"`),
  },
  {
    name: 'malformed CSV (line and column)',
    file: 'bad.csv',
    text: 'id,v\n' + Array.from({ length: 20000 }, (_, i) => `${i},${i / 7}`).join('\n') + '\n7,"unterminated\n8,9\n',
    exit: 1,
    message: /bad\.csv.*malformed CSV at line 20002, column 3: unterminated quoted field/,
  },
  {
    name: 'a property changing from number to string (property, feature, line)',
    file: 'types.csv',
    text: 'id,klass\n' + Array.from({ length: 9000 }, (_, i) => `${i},${i % 5}`).join('\n') + '\n9000,forest\n',
    exit: 1,
    message: /types\.csv, record 9000, field klass: feature 9000 \(line 9002\): property "klass" is string here but numeric in feature 0 \(line 2\)/,
  },
  {
    name: 'an array changing shape (property, feature, line)',
    file: 'shapes.geojsonl',
    text: ['{"type":"Feature","properties":{"a":[[1,2],[3,4],[5,6]]}}', '{"type":"Feature","properties":{"a":[[1,2,3],[4,5,6]]}}'].join('\n'),
    exit: 1,
    message: /feature 1 \(line 2\): property "a" has shape \[2, 3\] here but \[3, 2\] in feature 0 \(line 1\)/,
  },
  {
    name: 'an unknown selector',
    file: 'sel.geojsonl',
    text: goodLines(100).join('\n'),
    request: { selectors: ['id', 'elevation'] },
    exit: 2,
    message: /unknown selector "elevation": no feature in the collection has this property/,
  },
  {
    name: 'an empty collection',
    file: 'empty.geojson',
    text: '{"type": "FeatureCollection", "features": []}',
    exit: 1,
    message: /empty\.geojson: the collection has no features/,
  },
  {
    name: 'unknown request keys',
    file: 'ok.geojsonl',
    text: goodLines(3).join('\n'),
    request: { maxVertices: 5, foo: 1 },
    exit: 2,
    message: /Unknown table export options: maxVertices, foo/,
  },
  {
    name: 'geometry lonlat on non-points',
    file: 'lines.geojsonl',
    text: [...goodLines(2), '{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,0],[1,1]]},"properties":{"id":3}}'].join('\n'),
    request: { geometry: 'lonlat' },
    exit: 1,
    message: /feature 2 \(line 3\): "geometry": "lonlat" needs Point geometries, found a LineString/,
  },
];

for (const c of badCases) {
  test(`export-table rejects ${c.name}: exit ${c.exit}, clear message, no output file`, async () => {
    const dir = tmp('clibad');
    writeFileSync(path.join(dir, c.file), c.text);
    const r = await exportTable(dir, { collection: path.join(dir, c.file), ...c.request });
    assert.equal(r.code, c.exit, r.stderr);
    assert.match(r.stderr, c.message);
    assert.equal(r.stdout.length, 0);
    assert.deepEqual(await listFiles(path.join(dir, 'out')), [], 'no output file, no temporary left behind');
  });
}

test('export-table: a missing input is NOT_FOUND naming it', async () => {
  const dir = tmp('clibad');
  const r = await exportTable(dir, { collection: path.join(dir, 'nope.csv') });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /NOT_FOUND: .*nope\.csv: no such file/);
  assert.deepEqual(await listFiles(path.join(dir, 'out')), []);
});

test('ingest-table: a corrupt TFRecord fails naming file, record and offset, with no output file', async () => {
  const dir = tmp('clibad');
  writeFileSync(path.join(dir, 'pts.geojsonl'), goodLines(2000).join('\n'));
  const r = await exportTable(dir, { collection: path.join(dir, 'pts.geojsonl') });
  assert.equal(r.code, 0, r.stderr);
  const { file } = JSON.parse(r.stdout.toString());
  const { gunzipSync } = await import('node:zlib');
  const raw = gunzipSync(readFileSync(file));
  raw[raw.length - 1000] ^= 0x40; // flip a bit inside a late record
  writeFileSync(path.join(dir, 'corrupt.tfrecord'), raw);
  const out = path.join(dir, 'res', 'back.geojson');
  const i = await geotfr(['ingest-table', '--out', out, path.join(dir, 'corrupt.tfrecord')]);
  assert.equal(i.code, 1);
  assert.match(i.stderr, /corrupt\.tfrecord, record \d+, byte offset \d+: data CRC mismatch/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(await listFiles(path.join(dir, 'res')), []);
});
