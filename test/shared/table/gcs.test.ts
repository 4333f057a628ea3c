/**
 * Tables through Cloud Storage (issue 5): `gs://` inputs and outputs both ways, via the GCS store and
 * the project's GCS JSON API server (the real `@google-cloud/storage` client talks to it). A failed
 * export publishes no object.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openBucket } from '../../../shared/storage/open.js';
import { runTableExport } from '../../../shared/table/export.js';
import { ingestTable } from '../../../shared/table/ingest.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { rng } from './helpers.js';

let server: GcsServer;
const BUCKET = 'table-bucket';

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  process.env.STORAGE_EMULATOR_HOST = server.host;
});
after(async () => {
  await server.close();
});

test('gs:// collection → gs:// bucket → ingest from and to gs://', async () => {
  const store = await openBucket(`gs://${BUCKET}`);
  const r = rng(11);
  const rows = Array.from({ length: 500 }, (_, i) => ({
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [r(), r()] },
    properties: { id: i, v: r(), tag: `t${i % 7}` },
  }));
  await store.write('in/points.geojsonl', rows.map((x) => JSON.stringify(x)).join('\n'));
  const s = await runTableExport({
    collection: `gs://${BUCKET}/in/points.geojsonl`,
    bucket: `gs://${BUCKET}`,
    fileNamePrefix: 'exports/points',
    fileFormat: 'TFRecord',
    geometry: 'lonlat',
  });
  assert.equal(s.file, `gs://${BUCKET}/exports/points.tfrecord.gz`);
  assert.equal(s.features, rows.length);
  assert.deepEqual(
    (await store.list('exports/')).map((b) => b.key),
    ['exports/points.tfrecord.gz'],
  );

  const back = await ingestTable({ files: [s.file], out: `gs://${BUCKET}/back/points.geojson` });
  assert.equal(back.points, rows.length);
  const fc = JSON.parse((await store.read('back/points.geojson')).toString('utf8'));
  fc.features.forEach((f: { geometry: { coordinates: number[] }; properties: Record<string, unknown> }, i: number) => {
    assert.equal(f.properties.id, i);
    assert.equal(f.properties.tag, rows[i].properties.tag);
    assert.equal(Math.fround(f.properties.v as number), Math.fround(rows[i].properties.v));
    assert.deepEqual(f.geometry.coordinates.map(Math.fround), rows[i].geometry.coordinates.map(Math.fround));
  });

  // A bad row late in the input: nothing is published.
  await store.write('in/bad.geojsonl', [...rows.map((x) => JSON.stringify(x)), '{"type":"Feature","properties":{"id":"x"}}'].join('\n'));
  await assert.rejects(
    runTableExport({ collection: `gs://${BUCKET}/in/bad.geojsonl`, bucket: `gs://${BUCKET}`, fileNamePrefix: 'exports/bad' }),
    /gs:\/\/table-bucket\/in\/bad\.geojsonl, record 500, field id: feature 500 \(line 501\): property "id" is string here but numeric/,
  );
  assert.equal(await store.stat('exports/bad.tfrecord.gz'), undefined);
});
