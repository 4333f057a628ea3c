/**
 * Honest messages for a new user (issue 11 item 19): a directory where a file is expected says so,
 * and an output directory is refused before any work; a missing file shows the path it resolved
 * to; a lon/lat region that misses the image hints at swapped coordinates; an unknown selector lists
 * the table's properties; ingest-table warns when it finds no coordinates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { geotfr } from '../support/oracles.js';
import { listFiles, tempDir } from '../support/files.js';
import { runImageExport } from '../../shared/export/run.js';
import { GeotfrError } from '../../shared/errors.js';
import { RecordWriter } from '../../shared/tfrecord/record.js';
import { encodeExample, floatFeature } from '../../shared/tfrecord/example.js';
import { MemSource } from '../shared/export/memsource.js';
import { createWriteStream } from 'node:fs';

const env = { GEOTFR_PROGRESS: '0' };

async function tfrecord(file: string, rows: [string, number][][]): Promise<void> {
  const w = new RecordWriter(createWriteStream(file));
  for (const r of rows) await w.write(encodeExample(r.map(([k, v]) => [k, floatFeature(Float32Array.of(v))])));
  await w.close();
}

test('a directory where a file is expected: "is a directory", exit 2, checked before the work', async () => {
  const dir = tempDir('cli-msg');
  await fs.mkdir(path.join(dir, 'scene.tif'));
  await fs.writeFile(
    path.join(dir, 'req.json'),
    JSON.stringify({ image: 'scene.tif', bucket: './out', fileNamePrefix: 'p', formatOptions: { patchDimensions: [8, 8] } }),
  );
  const img = await geotfr(['export-image', 'req.json'], { cwd: dir, env });
  assert.equal(img.code, 2, img.stderr);
  assert.match(img.stderr, /BAD_REQUEST: scene\.tif: is a directory, expected a raster \(.*scene\.tif\)/);

  const ins = await geotfr(['inspect', 'scene.tif'], { cwd: dir, env });
  assert.equal(ins.code, 2, ins.stderr);
  assert.match(ins.stderr, /is a directory, expected a file/);

  // --out is a directory: refused at once, before the (here missing) inputs are even read.
  await fs.mkdir(path.join(dir, 'pred.tif'));
  const ing = await geotfr(['ingest-image', '--mixer', 'none-mixer.json', '--out', 'pred.tif', 'x.tfrecord'], { cwd: dir, env });
  assert.equal(ing.code, 2, ing.stderr);
  assert.match(ing.stderr, /BAD_REQUEST: pred\.tif, field out: is a directory, expected a file to write/);
  const tab = await geotfr(['ingest-table', '--out', 'pred.tif.csv', 'x.tfrecord'], { cwd: dir, env, allowFail: true });
  assert.match(tab.stderr, /NOT_FOUND/);
  await fs.mkdir(path.join(dir, 't.geojson'));
  await tfrecord(path.join(dir, 'x.tfrecord'), [
    [
      ['longitude', 1],
      ['latitude', 2],
    ],
  ]);
  const tab2 = await geotfr(['ingest-table', '--out', 't.geojson', 'x.tfrecord'], { cwd: dir, env });
  assert.equal(tab2.code, 2, tab2.stderr);
  assert.match(tab2.stderr, /t\.geojson, field out: is a directory/);
  assert.deepEqual(await listFiles(path.join(dir, 't.geojson'), { dirs: true }), []);
});

test('a missing file shows the path it resolved to', async () => {
  const dir = tempDir('cli-msg');
  await fs.writeFile(
    path.join(dir, 'req.json'),
    JSON.stringify({ image: 'nope.tif', bucket: './out', fileNamePrefix: 'p', formatOptions: { patchDimensions: [8, 8] } }),
  );
  const r = await geotfr(['export-image', 'req.json'], { cwd: dir, env });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(`NOT_FOUND: nope\\.tif: raster not found \\(resolved to ${path.join(dir, 'nope.tif').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`),
  );
  const m = await geotfr(['ingest-image', '--mixer', 'p-mixer.json', '--out', 'o.tif', 'x.tfrecord'], { cwd: dir, env });
  assert.match(m.stderr, /NOT_FOUND: p-mixer\.json, field mixer: mixer not found \(resolved to \/.*p-mixer\.json\)/);
});

test('a lon/lat region given as [lat, lon] hints at the swap', async () => {
  const dir = tempDir('cli-msg');
  // An EPSG:4326 image over lon 10..10.64, lat 49.36..50.
  const src = new MemSource(64, 64, [{ name: 'b', type: 'float32', data: new Float64Array(64 * 64) }], [0.01, 0, 10, 0, -0.01, 50], 'EPSG:4326');
  const open = async () => src;
  const swapped = {
    type: 'Polygon',
    coordinates: [
      [
        [49.5, 10.1],
        [49.9, 10.1],
        [49.9, 10.5],
        [49.5, 10.5],
        [49.5, 10.1],
      ],
    ],
  };
  const req = (region: unknown) => ({ image: 'm', bucket: dir, fileNamePrefix: 'p', region, formatOptions: { patchDimensions: [8, 8] } });
  await assert.rejects(runImageExport(req(swapped), { open }), (e: GeotfrError) => {
    assert.equal(e.code, 'BAD_REQUEST');
    assert.match(e.message, /does not intersect the image .*coordinates are \[lon, lat\] \(x first\): with the two swapped, the region would intersect/);
    return true;
  });
  // A region that misses either way gets no such hint.
  const far = {
    type: 'Polygon',
    coordinates: [
      [
        [100, 10],
        [101, 10],
        [101, 11],
        [100, 11],
        [100, 10],
      ],
    ],
  };
  await assert.rejects(runImageExport(req(far), { open }), (e: GeotfrError) => /does not intersect/.test(e.message) && !/swapped/.test(e.message));
  // And the right order works.
  const right = {
    type: 'Polygon',
    coordinates: [
      [
        [10.1, 49.5],
        [10.5, 49.5],
        [10.5, 49.9],
        [10.1, 49.9],
        [10.1, 49.5],
      ],
    ],
  };
  assert.ok((await runImageExport(req(right), { open })).patches > 0);
});

test('an unknown selector lists the properties; ingest-table warns when no record has coordinates', async () => {
  const dir = tempDir('cli-msg');
  await fs.writeFile(
    path.join(dir, 't.geojson'),
    JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', geometry: null, properties: { elev: 1, landcover: 3 } }] }),
  );
  await fs.writeFile(path.join(dir, 'req.json'), JSON.stringify({ collection: 't.geojson', bucket: './out', fileNamePrefix: 't', selectors: ['elevation'] }));
  const r = await geotfr(['export-table', 'req.json'], { cwd: dir, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /unknown selector "elevation": no feature in the collection has this property \(the table's properties: "elev", "landcover"\)/);

  await tfrecord(path.join(dir, 'x.tfrecord'), [
    [
      ['lon', 1],
      ['lat', 2],
    ],
    [
      ['lon', 3],
      ['lat', 4],
    ],
  ]);
  const ing = await geotfr(['ingest-table', '--out', 'o.geojson', 'x.tfrecord'], { cwd: dir, env });
  assert.equal(ing.code, 0, ing.stderr);
  assert.match(
    ing.stderr,
    /warning: no record has numeric "longitude" and "latitude" features: every geometry is null; name the coordinate features with --x-column\/--y-column \(features: "lon", "lat"\)/,
  );
  assert.equal(JSON.parse(ing.stdout.toString()).warnings.length, 1);
  const ok = await geotfr(['ingest-table', '--out', 'o2.geojson', '--x-column', 'lon', '--y-column', 'lat', 'x.tfrecord'], { cwd: dir, env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /warning/);
  assert.equal(JSON.parse(ok.stdout.toString()).points, 2);
});
