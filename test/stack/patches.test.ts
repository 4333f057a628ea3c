/**
 * Patch exports on the local stack (docs/semantics.md §10, §12): the real Pub/Sub emulator, the GCS
 * JSON API server and the functions, driven through the real clients. A request dropped into
 * `requests/` and one POSTed over HTTP are planned into several shards, written by shard workers and
 * finalized; every file equals `geotfr export-patches` on the same request, byte for byte.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { geotfr } from '../support/oracles.js';
import { tempDir, writeGeoTiff } from '../support/rasters.js';
import { mulberry32 } from '../support/random.js';
import { clients, needPubsubEmulator, objects, waitTerminal, type Clients } from './helpers.js';
import { emulatorPath } from './emulator.js';
import { startStack, type Stack } from './stack.js';

let stack: Stack | undefined;
let c: Clients;
let tmp: string;

describe('patch exports on the cloud stack', { concurrency: false, timeout: 300_000 }, () => {
  before(async () => {
    if (!emulatorPath()) return;
    tmp = await tempDir('geotfr-pstack-');
    stack = await startStack({ maxDeliveryAttempts: 5, env: { GEOTFR_LOG_LEVEL: process.env.GEOTFR_LOG_LEVEL ?? 'NONE' } });
    c = clients(stack);
    const rnd = mulberry32(11);
    const W = 90,
      H = 70;
    const bands = [0, 1].map(() => Float32Array.from({ length: W * H }, (_, i) => (rnd() < 0.04 ? -9999 : (i % W) + rnd())));
    const local = path.join(tmp, 'scene.tif');
    await writeGeoTiff(local, {
      width: W,
      height: H,
      bands,
      type: 'float32',
      nodata: -9999,
      affine: [30, 0, 500000, 0, -30, 4200000],
      crs: 'EPSG:32633',
      bandNames: ['red', 'nir'],
      layout: 'COG',
      compress: 'DEFLATE',
    });
    await c.storage.bucket(stack.buckets.sources).upload(local, { destination: 'src/scene.tif' });
    const features = Array.from({ length: 300 }, (_, i) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [500000 - 200 + rnd() * (W * 30 + 400), 4200000 + 200 - rnd() * (H * 30 + 400)] },
      properties: { label: i % 4, id: `p${i}` },
    }));
    await c.storage
      .bucket(stack.buckets.sources)
      .file('src/points.geojson')
      .save(JSON.stringify({ type: 'FeatureCollection', crs: { type: 'name', properties: { name: 'EPSG:32633' } }, features }), { resumable: false });
  });
  after(async () => {
    await c?.pubsub.close();
    await stack?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const request = (prefix: string, points: unknown) => ({
    image: `gs://${stack!.buckets.sources}/src/scene.tif`,
    points,
    kernelSize: [8, 8],
    bucket: stack!.bucket,
    fileNamePrefix: prefix,
    maxFileSize: 60_000,
  });

  /** `geotfr export-patches` on the same request into a local directory: name → bytes. */
  async function reference(req: Record<string, unknown>, tag: string): Promise<Map<string, Buffer>> {
    const dir = path.join(tmp, `ref-${tag}`);
    const file = path.join(tmp, `ref-${tag}.json`);
    await fs.writeFile(file, JSON.stringify({ ...req, bucket: dir, fileNamePrefix: 'ref/p' }));
    const r = await geotfr(['export-patches', file, '--workers', '2'], { env: { GEOTFR_PROGRESS: '0' } });
    assert.equal(r.code, 0, r.stderr);
    const out = new Map<string, Buffer>();
    for (const name of (await fs.readdir(path.join(dir, 'ref'))).sort()) out.set(name.replace(/^p/, ''), await fs.readFile(path.join(dir, 'ref', name)));
    return out;
  }

  async function assertSame(prefix: string, ref: Map<string, Buffer>) {
    const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const got = await objects(c, stack!.bucket, dir);
    assert.deepEqual(
      [...got.keys()],
      [...ref.keys()].map((k) => prefix + k),
      `files under ${dir}`,
    );
    for (const [k, bytes] of ref) assert.ok(got.get(prefix + k)!.bytes.equals(bytes), `${prefix}${k} differs from geotfr export-patches`);
  }

  test('a table request dropped into requests/ writes the same shards as geotfr export-patches', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const req = request('out/drop/p', `gs://${stack!.buckets.sources}/src/points.geojson`);
    const ref = await reference(req, 'table');
    assert.ok(ref.size >= 3, `several shards: ${[...ref.keys()]}`);
    const f = c.storage.bucket(stack!.bucket).file('requests/patches.json');
    await f.save(JSON.stringify(req), { contentType: 'application/json', resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    const s = await waitTerminal(c, stack!.bucket, `patches-${f.metadata.generation}`);
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    assert.equal(s.shards.total, ref.size);
    assert.deepEqual(
      s.outputs,
      [...ref.keys()].map((k) => 'out/drop/p' + k),
    );
    await assertSame('out/drop/p', ref);
    // The finalizer writes the CLI's patch manifest (geotfr inspect reads the patch shapes from it).
    const [cloudManifest] = await c.storage.bucket(stack!.bucket).file('.geotfr/manifests/out/drop/p.json').download();
    const cliManifest = await fs.readFile(path.join(tmp, 'ref-table', '.geotfr', 'manifests', 'ref', 'p.json'), 'utf8');
    assert.equal(cloudManifest.toString('utf8'), cliManifest.replaceAll('ref/p', 'out/drop/p'));
  });

  test('a seeded sample POSTed over HTTP: same bytes as the CLI; a bad request gets 400 naming the field', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const req = request('out/http/p', { sample: { numPixels: 400, seed: 5 } });
    const ref = await reference(req, 'sample');
    const res = await fetch(`${stack!.functions.planExport}/?jobId=patch-http`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const s = await waitTerminal(c, stack!.bucket, 'patch-http');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    await assertSame('out/http/p', ref);
    const bad = await fetch(`${stack!.functions.planExport}/?jobId=patch-bad`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...req, kernelSize: 0 }),
    });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /kernelSize/);
  });

  test('a sample on another grid (crs EPSG:3035, scale 50, bilinear): the plan carries the grid; same bytes as the CLI', async (t) => {
    if (!needPubsubEmulator(t)) return;
    const req = { ...request('out/grid/p', { sample: { numPixels: 300, seed: 9 } }), crs: 'EPSG:3035', scale: 50, resample: 'bilinear' };
    const ref = await reference(req, 'grid');
    const res = await fetch(`${stack!.functions.planExport}/?jobId=patch-grid`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req),
    });
    assert.equal(res.status, 202, await res.clone().text());
    const s = await waitTerminal(c, stack!.bucket, 'patch-grid');
    assert.equal(s.state, 'done', JSON.stringify(s.errors));
    await assertSame('out/grid/p', ref);
    const [stored] = await c.storage.bucket(stack!.bucket).file('.geotfr/jobs/patch-grid/plan.json').download();
    const plan = JSON.parse(stored.toString());
    assert.equal(plan.plan.source.crs, 'EPSG:3035');
    assert.deepEqual([plan.plan.source.affine[0], plan.plan.source.affine[4]], [50, -50]);
    assert.equal(plan.plan.gridRule, 'scale');
    assert.deepEqual(
      plan.plan.image.files.map((f: { uri: string }) => f.uri),
      [`gs://${stack!.buckets.sources}/src/scene.tif`],
    );
  });
});
