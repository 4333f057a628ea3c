/**
 * Patch export behaviour that TensorFlow does not see (docs/semantics.md §12): sampling determinism
 * (same seed → same bytes; 0, 1 and 4 worker threads → same bytes), distinct in-region pixels,
 * stratified counts exact per class, the canonical Example encoding (bytes equal `encodeExample`),
 * reads that decode each source block once, drop counts per reason, and bad requests that name
 * their field and write nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { needGdal } from '../../support/oracles.js';
import { tempDir, writeGeoTiff } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';
import { listFiles } from '../../support/files.js';
import { runPatchExport } from '../../../shared/patches/run.js';
import { PatchChunkProducer } from '../../../shared/patches/chunk.js';
import { chunkPoints, deserializeChunks, serializeChunk, type PatchPlan } from '../../../shared/patches/plan.js';
import { patchBands } from '../../../shared/patches/encode.js';
import { parsePatchExportRequest } from '../../../shared/patches/request.js';
import { openImage } from '../../../shared/raster/open.js';
import { readRecordFile } from '../../../shared/tfrecord/record.js';
import { decodeExample, encodeExample } from '../../../shared/tfrecord/example.js';
import { GeotfrError } from '../../../shared/errors.js';

const affine: [number, number, number, number, number, number] = [10, 0, 500000, 0, -10, 4000000];

/** A 3-band float32 raster plus a uint8 class band (classes 1..4 in stripes, 0 = nodata), 128×96, tiled 32. */
async function fixture(dir: string) {
  const W = 128,
    H = 96;
  const next = mulberry32(5);
  const bands = [0, 1, 2].map((b) =>
    Float64Array.from({ length: W * H }, (_, i) => (next() < 0.02 ? -9999 : Math.fround((i % W) * 0.5 + b * 1000 + Math.floor(i / W)))),
  );
  const img = path.join(dir, 'img.tif');
  await writeGeoTiff(img, {
    width: W,
    height: H,
    bands,
    type: 'float32',
    nodata: -9999,
    affine,
    crs: 'EPSG:32633',
    layout: 'GTiff',
    blockSize: 32,
    compress: 'DEFLATE',
  });
  // Class k covers columns [32(k-1), 32k); class 4 only rows < 10 (a rare class); a masked square.
  const cls = Float64Array.from({ length: W * H }, (_, i) => {
    const x = i % W,
      y = Math.floor(i / W);
    if (x >= 40 && x < 50 && y >= 40 && y < 50) return 0;
    const k = 1 + Math.floor(x / 32);
    return k === 4 && y >= 10 ? 3 : k;
  });
  const lc = path.join(dir, 'lc.tif');
  await writeGeoTiff(lc, {
    width: W,
    height: H,
    bands: [cls],
    type: 'uint8',
    nodata: 0,
    affine,
    crs: 'EPSG:32633',
    layout: 'GTiff',
    blockSize: 32,
    compress: 'DEFLATE',
  });
  return { img, lc, W, H, bands, cls };
}

async function records(files: string[]) {
  const out: Map<string, import('../../../shared/tfrecord/example.js').Feature>[] = [];
  const raw: Uint8Array[] = [];
  for (const f of files)
    for await (const r of readRecordFile(f)) {
      out.push(decodeExample(r.data));
      raw.push(r.data);
    }
  return { out, raw };
}

test('sample: same seed → identical bytes on 0, 1 and 4 workers; distinct pixels inside the region; another seed differs', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-psample-');
  const { img } = await fixture(dir);
  const region = [500000 + 10 * 10, 4000000 - 80 * 10, 500000 + 100 * 10, 4000000 - 5 * 10]; // columns 10..99, rows 5..79
  const req = (seed: number, prefix: string) => ({
    image: img,
    points: { sample: { region, numPixels: 700, seed } },
    kernelSize: 6,
    geometries: true,
    bucket: path.join(dir, 'out'),
    fileNamePrefix: prefix,
  });
  const bytes: Buffer[] = [];
  for (const w of [0, 1, 4]) {
    const s = await runPatchExport(req(42, `w${w}`), { workers: w });
    assert.equal(s.inputPoints, 700);
    assert.equal(s.records + s.dropped.masked, 700);
    assert.ok(s.dropped.masked > 0, 'some sampled centres fall on nodata');
    bytes.push(await fs.readFile(s.shards[0]!));
  }
  assert.ok(bytes[0]!.equals(bytes[1]!) && bytes[1]!.equals(bytes[2]!), 'worker count changes nothing');
  const again = await runPatchExport(req(42, 'again'), { workers: 2 });
  assert.ok((await fs.readFile(again.shards[0]!)).equals(bytes[0]!), 'same seed, same bytes');
  const other = await runPatchExport(req(43, 'other'), { workers: 2 });
  assert.ok(!(await fs.readFile(other.shards[0]!)).equals(bytes[0]!), 'another seed, other pixels');
  const { out } = await records([path.join(dir, 'out', 'w0.tfrecord.gz')]);
  const seen = new Set<string>();
  for (const ex of out) {
    const lon = (ex.get('longitude')!.value as Float32Array)[0]!;
    const lat = (ex.get('latitude')!.value as Float32Array)[0]!;
    assert.ok(!seen.has(`${lon},${lat}`), 'distinct pixels');
    seen.add(`${lon},${lat}`);
    // b1 is col * 0.5 + row: the centre value lies within the region's range.
    const b1 = ex.get('b1')!.value as Float32Array;
    const centre = b1[3 * 6 + 3]!;
    assert.ok(centre === -9999 || (centre >= 10 * 0.5 + 5 && centre <= 99 * 0.5 + 79), `centre value ${centre} from inside the region`);
  }
  await fs.rm(dir, { recursive: true, force: true });
});

test('sample: uniform — over many seeds every pixel of a small region is drawn about equally often', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-punif-');
  const { img } = await fixture(dir);
  const { samplePoints } = await import('../../../shared/patches/sample.js');
  const src = await openImage(img);
  const region = [500000, 4000000 - 8 * 10, 500000 + 8 * 10, 4000000]; // 8×8 = 64 pixels
  const counts = new Array(64).fill(0);
  const seeds = 400;
  for (let seed = 0; seed < seeds; seed++) {
    const r = parsePatchExportRequest({ image: img, points: { sample: { region, numPixels: 16, seed } }, kernelSize: 1, bucket: dir });
    const s = samplePoints(r, (r.points as { sample: never }).sample, src);
    for await (const b of s.batches) for (const p of b) counts[p.row * 8 + p.col]++;
  }
  await src.close();
  // Each pixel is drawn with probability 16/64 per seed: mean 100, sd ≈ 8.7; allow ±5 sd.
  for (const c of counts) assert.ok(Math.abs(c - 100) < 44, `pixel drawn ${c} times (expected ~100): ${counts.join(',')}`);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    16 * seeds,
  );
  await fs.rm(dir, { recursive: true, force: true });
});

test('stratified: per class exactly min(requested, available), class value at the centre of classBand', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-pstrat-');
  const { img, lc, W, H, cls } = await fixture(dir);
  const image = {
    bands: [
      { name: 'b1', uri: img, band: 1 },
      { name: 'landcover', uri: lc, band: 1 },
    ],
  };
  const s = await runPatchExport(
    {
      image,
      points: { stratified: { classBand: 'landcover', classValues: [1, 2, 4, 9], classPoints: [50, 120, 10000, 5], seed: 7 } },
      kernelSize: [4, 4],
      dropNulls: false,
      bucket: path.join(dir, 'out'),
      fileNamePrefix: 'st',
    },
    { workers: 2 },
  );
  // Available per class, counted here from the class raster alone (dropNulls false: only the class band must be valid).
  const avail = new Map<number, number>();
  for (let i = 0; i < W * H; i++) if (cls[i]) avail.set(cls[i]!, (avail.get(cls[i]!) ?? 0) + 1);
  assert.deepEqual(
    s.classes,
    [1, 2, 4, 9].map((v, k) => {
      const requested = [50, 120, 10000, 5][k]!;
      return { value: v, available: avail.get(v) ?? 0, requested, selected: Math.min(requested, avail.get(v) ?? 0) };
    }),
  );
  const { out } = await records(s.shards);
  const got = new Map<number, number>();
  for (const ex of out) {
    const c = (ex.get('landcover')!.value as Float32Array)[2 * 4 + 2]!;
    got.set(c, (got.get(c) ?? 0) + 1);
  }
  assert.deepEqual(
    [...got.entries()].sort((a, b) => a[0] - b[0]),
    [
      [1, 50],
      [2, 120],
      [4, avail.get(4)!],
    ],
  );
  assert.equal(s.records, 50 + 120 + avail.get(4)!);
  // numPoints for every class present; with dropNulls the b1 nodata pixels are not available.
  const s2 = await runPatchExport(
    { image, points: { stratified: { classBand: 'landcover', numPoints: 30 } }, kernelSize: 3, bucket: path.join(dir, 'out'), fileNamePrefix: 'st2' },
    { workers: 0 },
  );
  assert.deepEqual(
    s2.classes!.map((c) => [c.value, c.selected]),
    [
      [1, 30],
      [2, 30],
      [3, 30],
      [4, 30],
    ],
  );
  assert.ok(
    s2.classes!.every((c) => c.available < avail.get(c.value)!),
    'nodata in b1 makes fewer pixels available',
  );
  await fs.rm(dir, { recursive: true, force: true });
});

test('records are canonical Examples (re-encoding the decoded features gives the same bytes); properties as table export writes them', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-pcanon-');
  const { img } = await fixture(dir);
  const features = Array.from({ length: 30 }, (_, i) => ({
    type: 'Feature',
    geometry: i === 7 ? null : { type: 'Point', coordinates: [500000 + ((i * 37) % 1280) + 5, 4000000 - ((i * 53) % 960) - 5] },
    properties: { id: i, name: `p${i}`, v: [i, i + 1], opt: i % 3 === 0 ? null : i },
  }));
  // UTM coordinates: the FeatureCollection's crs member says so.
  const fc = { type: 'FeatureCollection', crs: { type: 'name', properties: { name: 'EPSG:32633' } }, features };
  await fs.writeFile(path.join(dir, 'p.geojson'), JSON.stringify(fc));
  const s = await runPatchExport(
    { image: img, points: path.join(dir, 'p.geojson'), kernelSize: [3, 2], geometries: true, bucket: path.join(dir, 'out'), fileNamePrefix: 'c' },
    { workers: 0 },
  );
  assert.equal(s.dropped.noCoordinates, 1);
  assert.deepEqual(
    s.features.map((f) => f.name),
    ['b1', 'b2', 'b3', 'id', 'name', 'v', 'opt', 'longitude', 'latitude'],
  );
  const { out, raw } = await records(s.shards);
  assert.equal(out.length, s.records);
  out.forEach((ex, i) => assert.ok(Buffer.from(encodeExample(ex)).equals(Buffer.from(raw[i]!)), `record ${i} is canonical`));
  assert.ok(
    out.some((ex) => !ex.has('opt')),
    'a null property is left out of its record, as in table export',
  );
  await fs.rm(dir, { recursive: true, force: true });
});

test('reads decode each source block once (points visited in block order within a chunk)', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-pblock-');
  const { img, W, H } = await fixture(dir);
  const req = parsePatchExportRequest({ image: img, points: { sample: { numPixels: 500 } }, kernelSize: 8, bucket: dir });
  const src = await openImage(img, { tileCacheBytes: 1 << 30 });
  const plan: PatchPlan = { version: 1, request: req, source: src.grid, bands: patchBands(src.bands, {}, 0) };
  const next = mulberry32(3);
  const pts = Array.from({ length: 500 }, (_, i) => ({ index: i, col: Math.floor(next() * W), row: Math.floor(next() * H) }));
  const producer = new PatchChunkProducer(plan, src);
  let blocks = 0;
  for await (const c of chunkPoints([pts], () => 1, { geometries: false })) {
    // The serialized form a cloud worker reads is the same chunk.
    const back = [...deserializeChunks(serializeChunk(c), 'mem')][0]!;
    assert.deepEqual(back, c);
    await producer.produce(c);
  }
  const f = src.files[0]!;
  for (let by = 0; by < f.blocksDown; by++) for (let bx = 0; bx < f.blocksAcross; bx++) blocks++;
  assert.ok(f.decodes <= blocks, `${f.decodes} decodes for ${blocks} blocks`);
  await producer.close();
  await fs.rm(dir, { recursive: true, force: true });
});

test('bad requests name their field, fail with BAD_REQUEST and write nothing', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-pbad-');
  const { img, lc } = await fixture(dir);
  const out = path.join(dir, 'out');
  await fs.writeFile(path.join(dir, 'nocoords.csv'), 'x,y,label\n1,2,3\n');
  await fs.writeFile(
    path.join(dir, 'badcrs.geojson'),
    JSON.stringify({
      type: 'FeatureCollection',
      crs: { type: 'name', properties: { name: 'EPSG:999999' } },
      features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: [1, 2] }, properties: {} }],
    }),
  );
  await fs.writeFile(
    path.join(dir, 'ok.geojsonl'),
    JSON.stringify({ type: 'Feature', geometry: { type: 'Point', coordinates: [15.0, 36.1] }, properties: { label: 1 } }) + '\n',
  );
  const base = { image: img, bucket: out, fileNamePrefix: 'bad', kernelSize: 4 };
  const image2 = {
    bands: [
      { name: 'b1', uri: img, band: 1 },
      { name: 'lc', uri: lc, band: 1 },
    ],
  };
  const cases: [object, RegExp, string][] = [
    [{ ...base, points: path.join(dir, 'nocoords.csv') }, /no coordinate column "longitude"/, 'xColumn'],
    [{ ...base, points: path.join(dir, 'badcrs.geojson') }, /cannot be read/, 'crs'],
    [{ ...base, points: path.join(dir, 'ok.geojsonl'), kernelSize: 0 }, /too small|>0|positive/i, 'kernelSize.0'],
    [{ ...base, points: path.join(dir, 'ok.geojsonl'), kernelSize: [8, 2048] }, /at most 1024/, 'kernelSize.1'],
    [
      { ...base, image: image2, points: { stratified: { classBand: 'b1', numPoints: 3 } } },
      /float32 band; it must be a scalar integer band/,
      'points.stratified.classBand',
    ],
    [{ ...base, image: image2, points: { stratified: { classBand: 'nope', numPoints: 3 } } }, /not a band of the image/, 'points.stratified.classBand'],
    [{ ...base, points: { sample: { numPixels: 128 * 96 + 1 } } }, /more than the 12288 pixels/, 'points.sample.numPixels'],
    [{ ...base, points: path.join(dir, 'ok.geojsonl'), properties: ['label', 'missing'] }, /unknown property "missing"/, 'properties'],
    [{ ...base, points: path.join(dir, 'ok.geojsonl'), properties: ['b1'] }, /clashes with a band/, 'properties'],
    [{ ...base, points: path.join(dir, 'ok.geojsonl'), scale: 30, dimensions: [5, 5] }, /not both/, 'dimensions'],
    [{ ...base, points: { sample: { numPixels: 5, seeed: 1 } } }, /Unknown fields in points.sample: seeed/, 'points.sample.seeed'],
  ];
  for (const [request, message, field] of cases) {
    await assert.rejects(runPatchExport(request, { workers: 0 }), (e: unknown) => {
      assert.ok(e instanceof GeotfrError, String(e));
      assert.equal(e.code, 'BAD_REQUEST', e.message);
      assert.match(e.message, message);
      assert.equal(e.context.field, field, e.message);
      return true;
    });
  }
  assert.deepEqual(
    (await listFiles(out).catch(() => [])).filter((f) => !f.includes('.geotfr')),
    [],
    'nothing written',
  );
  await fs.rm(dir, { recursive: true, force: true });
});

test('a bad table row is named by record, line and byte offset (FeatureCollection with multi-byte text, NDJSON, CSV)', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-poffset-');
  const { img } = await fixture(dir);
  const ok = (i: number) => ({
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [500100 + i, 3999900] },
    properties: { name: `Zürich – 東京 ${i}`, v: i },
  });
  const bad = {
    type: 'Feature',
    geometry: {
      type: 'LineString',
      coordinates: [
        [500100, 3999900],
        [500200, 3999800],
      ],
    },
    properties: { name: 'ß' },
  };
  const feats = [...Array.from({ length: 1500 }, (_, i) => ok(i)), bad];
  // One feature per line inside the FeatureCollection (line numbers and offsets both move), and NDJSON.
  const fcText =
    '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32633"}},\n "features": [\n' +
    feats.map((f) => '  ' + JSON.stringify(f)).join(',\n') +
    '\n]}\n';
  const nd = feats.map((f) => JSON.stringify(f)).join('\n') + '\n';
  const cases: [string, string][] = [
    ['fc.geojson', fcText],
    ['nd.geojsonl', nd],
  ];
  for (const [name, text] of cases) await fs.writeFile(path.join(dir, name), text);
  // Where the bad feature starts, in bytes: found in the encoded text itself.
  const starts = cases.map(([, text]) => Buffer.from(text).indexOf(Buffer.from(JSON.stringify(bad))));
  assert.ok(starts.every((s) => s > 0));
  for (const [k, [name]] of cases.entries()) {
    const req = { image: img, points: path.join(dir, name), kernelSize: 2, bucket: path.join(dir, 'out'), fileNamePrefix: name };
    await assert.rejects(runPatchExport(req, { workers: 0 }), (e: unknown) => {
      assert.ok(e instanceof GeotfrError);
      assert.equal(e.context.record, 1500, e.message);
      assert.equal(e.context.offset, starts[k], `${name}: ${e.message}`);
      assert.match(e.message, /record 1500, byte offset \d+, field geometry: feature 1500 \(line \d+/);
      return true;
    });
  }
  // CSV: a cell that is not a number, after rows with multi-byte text.
  const rows = Array.from({ length: 800 }, (_, i) => `15.0${i % 10},36.1,é東${i}`);
  rows[700] = '15.01,north,x';
  const csv = 'longitude,latitude,name\n' + rows.join('\n') + '\n';
  await fs.writeFile(path.join(dir, 'p.csv'), '\uFEFF' + csv);
  const want =
    3 +
    Buffer.byteLength(
      'longitude,latitude,name\n' +
        rows
          .slice(0, 700)
          .map((r) => r + '\n')
          .join(''),
    );
  await assert.rejects(
    runPatchExport({ image: img, points: path.join(dir, 'p.csv'), kernelSize: 2, bucket: path.join(dir, 'out'), fileNamePrefix: 'csv' }, { workers: 0 }),
    (e: unknown) => {
      assert.ok(e instanceof GeotfrError);
      assert.equal(e.context.offset, want, e.message);
      assert.equal(e.context.field, 'latitude');
      return true;
    },
  );
  await fs.rm(dir, { recursive: true, force: true });
});
