/**
 * The files behind a band (shared/grid/glob.ts, stac.ts, image.ts, source.ts): `gs://` globs list the
 * bucket once (the repo's GCS JSON API server, driven by the real @google-cloud/storage client) and
 * sort their matches; a STAC item in a bucket resolves relative hrefs there; local globs with `**`,
 * `?` and classes; concurrent reads of one source (a worker reads ahead) give what sequential reads
 * give; the glob syntax itself.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { openBucket } from '../../../shared/storage/open.js';
import { expandUris, globRegExp } from '../../../shared/grid/glob.js';
import { planImage } from '../../../shared/grid/image.js';
import { resolveHref } from '../../../shared/grid/stac.js';
import { planImageExport } from '../../../shared/export/plan.js';
import { GridImageSource } from '../../../shared/grid/source.js';
import { GeotfrError } from '../../../shared/errors.js';
import { pointTransformer } from '../../../shared/grid/crs.js';
import { needGdal } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { mulberry32 } from '../../support/random.js';

let dir: string;
let server: GcsServer;
before(async () => {
  dir = await tempDir('geotfr-grid-sources-');
  server = await startGcsServer({ buckets: ['scenes'] });
  process.env.STORAGE_EMULATOR_HOST = server.host;
});
after(async () => {
  await server.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('glob syntax: ** any depth, * and ? within a segment, [..] classes', () => {
  assert.ok(globRegExp('s2/**/B04.tif').test('s2/a/b/B04.tif'));
  assert.ok(globRegExp('s2/**/B04.tif').test('s2/B04.tif'));
  assert.ok(!globRegExp('s2/*/B04.tif').test('s2/a/b/B04.tif'));
  assert.ok(globRegExp('t?.tif').test('t1.tif') && !globRegExp('t?.tif').test('t12.tif'));
  assert.ok(globRegExp('[bc].tif').test('c.tif') && !globRegExp('[!bc].tif').test('c.tif'));
  assert.ok(!globRegExp('a.tif').test('aXtif'), 'dots are literal');
  assert.equal(resolveHref('./R10m/B04.tif', 'gs://b/items/x/item.json'), 'gs://b/items/x/R10m/B04.tif');
  assert.equal(resolveHref('../B04.tif', '/data/items/item.json'), '/data/B04.tif');
  assert.equal(resolveHref('gs://other/B04.tif', '/data/items/item.json'), 'gs://other/B04.tif');
});

test('gs:// globs and a STAC item in a bucket: one listing, sorted matches, relative hrefs', async (t) => {
  if (!needGdal(t)) return;
  const bucket = await openBucket('gs://scenes');
  const r = mulberry32(3);
  for (const name of ['2024/b.tif', '2024/a.tif', '2023/c.tif', 'other/x.tif']) {
    const file = path.join(dir, name.replace('/', '-'));
    await writeGeoTiff(file, {
      width: 16,
      height: 16,
      bands: [Array.from({ length: 256 }, () => 1 + Math.floor(r() * 100))],
      type: 'uint16',
      affine: [10, 0, 500000, 0, -10, 5300000],
      crs: 'EPSG:32633',
      layout: 'COG',
      blockSize: 16,
    });
    await bucket.write(`tiles/${name}`, await fs.readFile(file));
  }
  assert.deepEqual(await expandUris('gs://scenes/tiles/2024/*.tif', 'image.bands[0].uri'), ['gs://scenes/tiles/2024/a.tif', 'gs://scenes/tiles/2024/b.tif']);
  assert.deepEqual(await expandUris(['gs://scenes/tiles/other/x.tif', 'gs://scenes/tiles/**/[ab].tif'], 'f'), [
    'gs://scenes/tiles/other/x.tif',
    'gs://scenes/tiles/2024/a.tif',
    'gs://scenes/tiles/2024/b.tif',
  ]);
  await assert.rejects(
    expandUris('gs://scenes/tiles/2025/*.tif', 'image.bands[2].uri'),
    (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === 'image.bands[2].uri' && /matches no file/.test(e.message),
  );
  const item = {
    type: 'Feature',
    stac_version: '1.0.0',
    id: 'i1',
    geometry: null,
    properties: { 'proj:epsg': 32633 },
    assets: { red: { href: '../tiles/2024/a.tif', 'eo:bands': [{ name: 'B04', common_name: 'red' }] } },
  };
  await bucket.write('items/i1.json', JSON.stringify(item));
  const image = await planImage({ stac: 'gs://scenes/items/i1.json', bands: ['B04'] });
  assert.deepEqual(
    image.files.map((f) => f.uri),
    ['gs://scenes/tiles/2024/a.tif'],
  );
  assert.equal(image.bands[0]!.name, 'B04');
  // A whole export plans from gs:// headers only.
  const plan = await planImageExport({
    image: { bands: [{ name: 'b', uri: 'gs://scenes/tiles/2024/*.tif' }] },
    bucket: dir,
    formatOptions: { patchDimensions: [8, 8] },
  });
  assert.deepEqual(
    plan.image!.files.map((f) => f.uri),
    ['gs://scenes/tiles/2024/a.tif', 'gs://scenes/tiles/2024/b.tif'],
  );
});

test('concurrent reads of one mosaic source (a worker reading ahead) equal sequential reads', async (t) => {
  if (!needGdal(t)) return;
  const files: string[] = [];
  const r = mulberry32(11);
  // Two files in UTM 33 and one in UTM 34 over the same square kilometre or so.
  const [e34, n34] = pointTransformer('EPSG:32633', 'EPSG:32634')(500300, 5299700);
  const origins: [string, number, number][] = [
    ['EPSG:32633', 500000, 5300000],
    ['EPSG:32633', 500400, 5299850],
    ['EPSG:32634', Math.round(e34), Math.round(n34)],
  ];
  for (const [i, [crs, x, y]] of origins.entries()) {
    const file = path.join(dir, `m${i}.tif`);
    const nodata = 0;
    await writeGeoTiff(file, {
      width: 120,
      height: 90,
      bands: [Array.from({ length: 120 * 90 }, () => (r() < 0.1 ? nodata : 1 + Math.floor(r() * 1000)))],
      type: 'uint16',
      nodata,
      affine: [10 + 3 * i, 0, x, 0, -10 - 3 * i, y],
      crs,
    });
    files.push(file);
  }
  const region = {
    type: 'Polygon',
    crs: { type: 'name', properties: { name: 'EPSG:32633' } },
    coordinates: [
      [
        [500000, 5298500],
        [501500, 5298500],
        [501500, 5300000],
        [500000, 5300000],
        [500000, 5298500],
      ],
    ],
  };
  const plan = await planImageExport({
    image: {
      bands: [
        { name: 'm', uri: files },
        { name: 'one', uri: files[1]!, resample: 'bilinear' },
      ],
    },
    crs: 'EPSG:3035',
    scale: 12,
    region,
    bucket: dir,
    formatOptions: { patchDimensions: [16, 16] },
  });
  const windows = Array.from({ length: 12 }, (_, k) => ({ x0: (k * 13) % 60, y0: (k * 7) % 40, w: 40, h: 30 }));
  const seq = new GridImageSource(plan.image!, plan.source);
  const want: { values: Float64Array[]; valid: Uint8Array[] }[] = [];
  for (const w of windows) {
    const d = await seq.readWindow(w.x0, w.y0, w.w, w.h);
    want.push({ values: d.values.map((v) => Float64Array.from(v)), valid: d.valid.map((v) => Uint8Array.from(v)) });
  }
  await seq.close();
  const par = new GridImageSource(plan.image!, plan.source, { maxOpenFiles: 1 });
  // Two at a time, each handing back the window before last for reuse (as chunk.ts does).
  const got: Awaited<ReturnType<GridImageSource['readWindow']>>[] = [];
  for (let k = 0; k < windows.length; k += 2) {
    const pair = await Promise.all([k, k + 1].map((i) => par.readWindow(windows[i]!.x0, windows[i]!.y0, windows[i]!.w, windows[i]!.h, { reuse: got[i - 2] })));
    pair.forEach((d, j) => {
      const w = want[k + j]!;
      assert.deepEqual(
        d.valid.map((v) => Uint8Array.from(v)),
        w.valid,
        `window ${k + j} masks`,
      );
      // Masked pixels hold unspecified values (shared/raster/types.ts): compare the valid ones.
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < w.valid[b]!.length; i++) if (w.valid[b]![i]) assert.equal(d.values[b]![i], w.values[b]![i], `window ${k + j} band ${b} pixel ${i}`);
    });
    got.push(...pair);
  }
  assert.ok(
    want.some((w) => w.valid[0]!.some((v) => v === 1)),
    'the windows should hold valid pixels',
  );
  await par.close();
});
