/**
 * `geotfr export-patches` as a user runs it (docs/semantics.md §9, §12): one line of JSON on stdout
 * with the parse spec, progress on stderr, `inspect` printing the [K, K] spec; a bad request exits 2
 * naming the field (a bad table row names the record and its line) and leaves no file behind.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { listFiles } from '../support/files.js';
import { geotfr, needGdal } from '../support/oracles.js';
import { tempDir, writeGeoTiff } from '../support/rasters.js';

async function setup() {
  const dir = await tempDir('geotfr-cli-patches-');
  const W = 70,
    H = 50;
  const bands = [0, 1].map((b) => Float64Array.from({ length: W * H }, (_, i) => i + b));
  const img = path.join(dir, 'img.tif');
  await writeGeoTiff(img, { width: W, height: H, bands, type: 'float32', affine: [0.001, 0, 12, 0, -0.001, 45], crs: 'EPSG:4326', bandNames: ['red', 'nir'] });
  const rows = Array.from({ length: 40 }, (_, i) => `${12 + 0.0005 + (i % 70) * 0.001},${45 - 0.0005 - (i % 50) * 0.001},${i % 4},name${i}`);
  await fs.writeFile(path.join(dir, 'pts.csv'), 'longitude,latitude,label,name\n' + rows.join('\n') + '\n');
  return { dir, img };
}

async function run(dir: string, request: object) {
  const req = path.join(dir, 'req.json');
  await fs.writeFile(req, JSON.stringify(request));
  return geotfr(['export-patches', req, '--workers', '1'], { env: { GEOTFR_PROGRESS: '1' } });
}

test('export-patches: JSON summary with the parse spec on stdout, progress on stderr, inspect agrees', async (t) => {
  if (!needGdal(t)) return;
  const { dir, img } = await setup();
  const r = await run(dir, {
    image: img,
    points: path.join(dir, 'pts.csv'),
    properties: 'label, name',
    kernelSize: 16,
    bucket: path.join(dir, 'out'),
    fileNamePrefix: 'train/p',
  });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.toString().trim().split('\n');
  assert.equal(lines.length, 1, 'one line of JSON');
  const s = JSON.parse(lines[0]!);
  assert.equal(s.records, 40);
  assert.deepEqual(s.shards, [path.join(dir, 'out', 'train', 'p.tfrecord.gz')]);
  assert.match(s.parseSpec, /'red': tf\.io\.FixedLenFeature\(\[16, 16\], tf\.float32\)/);
  assert.match(s.parseSpec, /'name': tf\.io\.FixedLenFeature\(\[\], tf\.string\)/);
  assert.match(r.stderr, /export-patches: .*patches/);
  const manifest = path.join(dir, 'out', '.geotfr', 'manifests', 'train', 'p.json');
  assert.equal(s.manifest, manifest);
  assert.deepEqual(await listFiles(path.join(dir, 'out')), ['.geotfr/manifests/train/p.json', 'train/p.tfrecord.gz']);
  // inspect reads the patch shapes from the manifest the export wrote beside the bucket's other manifests.
  const i = await geotfr(['inspect', s.shards[0]]);
  assert.equal(i.code, 0, i.stderr);
  assert.match(i.stdout.toString(), /'nir': tf\.io\.FixedLenFeature\(\[16, 16\], tf\.float32\),\n/);
  assert.match(i.stdout.toString(), /shapes from the export manifest .*p\.json/);
  // Without it, inspect does not guess 256 values to be 16×16 (issue 11 item 17): the flat length, said to be so.
  await fs.rm(manifest);
  const flat = await geotfr(['inspect', s.shards[0]]);
  assert.equal(flat.code, 0, flat.stderr);
  assert.match(flat.stdout.toString(), /'nir': tf\.io\.FixedLenFeature\(\[256\], tf\.float32\),  # flat: shape unknown/);
  await fs.rm(dir, { recursive: true, force: true });
});

test('export-patches: bad requests exit 2 naming the field; a bad row names its record and line; nothing is written', async (t) => {
  if (!needGdal(t)) return;
  const { dir, img } = await setup();
  const out = path.join(dir, 'out');
  const base = { image: img, points: path.join(dir, 'pts.csv'), kernelSize: 8, bucket: out, fileNamePrefix: 'p' };
  const bad: [object, RegExp, number][] = [
    [{ ...base, kernelSize: -3 }, /field kernelSize\.0: /, 2],
    [{ ...base, kernelSize: 4096 }, /field kernelSize\.0: .*at most 1024/, 2],
    [{ ...base, xColumn: 'lon' }, /field xColumn: the CSV has no coordinate column "lon"/, 2],
    [{ ...base, properties: ['label', 'height'] }, /field properties: unknown property "height"/, 2],
    [{ ...base, points: { sample: { numPixels: 70 * 50 + 1 } } }, /field points\.sample\.numPixels: numPixels 3501 is more than the 3500 pixels/, 2],
    [{ ...base, crs: 'EPSG:3857' }, /field crs: .*say the pixel size/, 2],
  ];
  for (const [request, message, code] of bad) {
    const r = await run(dir, request);
    assert.equal(r.code, code, `${JSON.stringify(request)}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout.toString(), '');
  }
  // A row with a non-numeric coordinate deep in the table: BAD_INPUT naming the record and line, after output had started.
  const many = Array.from({ length: 3000 }, (_, i) => `12.01,44.99,${i}`);
  many[2500] = 'east,44.99,1';
  await fs.writeFile(path.join(dir, 'late.csv'), 'longitude,latitude,label\n' + many.join('\n') + '\n');
  const r = await run(dir, { ...base, points: path.join(dir, 'late.csv'), kernelSize: 32 });
  assert.equal(r.code, 1, r.stderr);
  const offset = Buffer.byteLength(
    'longitude,latitude,label\n' +
      many
        .slice(0, 2500)
        .map((l) => l + '\n')
        .join(''),
  );
  assert.match(
    r.stderr,
    new RegExp(`late\\.csv, record 2500, byte offset ${offset}, field longitude: feature 2500 \\(line 2502\\): column "longitude" is not a number`),
  );
  assert.deepEqual(
    (await listFiles(out).catch(() => [])).filter((f) => !f.startsWith('.geotfr')),
    [],
    'nothing written',
  );
  await fs.rm(dir, { recursive: true, force: true });
});
