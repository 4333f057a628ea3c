/**
 * The export pipeline end to end over in-memory sources: random grids, kernels, bands and masks,
 * checked pixel by pixel against a direct per-pixel reading of the source (docs/semantics.md §3–6); shard packing,
 * determinism (runner bytes = writeShard bytes), maskedThreshold, cleanup on failure and cancel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeExample, decodeSequenceExample } from '../../../shared/tfrecord/example.js';
import { parseMixer } from '../../../shared/mixer.js';
import { readRecords, fileSource } from '../../../shared/tfrecord/record.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { planImageExport } from '../../../shared/export/plan.js';
import { runImageExport } from '../../../shared/export/run.js';
import { writeShard } from '../../../shared/export/shard.js';
import { GeotfrError } from '../../../shared/errors.js';
import { listFiles, tempDir } from '../../support/files.js';
import { MemSource, rng, type MemBand } from './memsource.js';

async function tmp(): Promise<string> {
  return tempDir('export');
}

async function records(file: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const r of readRecords(fileSource(file), { file })) out.push(r.data.slice());
  return out;
}

const RANGES: Record<string, [number, number]> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
};

/** What one output value must be: the source pixel when valid, else defaultValue truncated+clamped for ints. */
function expectedFill(type: SampleType, def: number): number {
  const r = RANGES[type];
  return r ? Math.min(r[1], Math.max(r[0], Math.trunc(def))) : def;
}

function randomBand(next: () => number, name: string, type: SampleType, W: number, H: number, depth = 1): MemBand {
  const nodata = type === 'float64' || type === 'float32' ? (next() < 0.5 ? -9999 : undefined) : RANGES[type][0] + 1;
  const data = new Float64Array(depth * W * H);
  for (let i = 0; i < data.length; i++) {
    if (next() < 0.15) data[i] = nodata ?? NaN;
    else if (RANGES[type]) data[i] = Math.round(RANGES[type][0] + next() * (RANGES[type][1] - RANGES[type][0]));
    else data[i] = (next() - 0.5) * 1e3;
  }
  return { name, type, data, depth, nodata };
}

test('random grids: every value equals the source pixel or the converted default (docs/semantics.md §3-5)', async () => {
  const types: SampleType[] = ['uint8', 'int8', 'int16', 'float32', 'float64', 'uint16'];
  for (let seed = 1; seed <= 12; seed++) {
    const next = rng(seed);
    const W = 20 + Math.floor(next() * 60);
    const H = 20 + Math.floor(next() * 60);
    const nb = 1 + Math.floor(next() * 3);
    const bands = Array.from({ length: nb }, (_, i) => randomBand(next, `band_${i}`, types[Math.floor(next() * types.length)], W, H));
    const src = new MemSource(W, H, bands, [10, 0, 500000, 0, -10, 4000000]);
    const pw = 3 + Math.floor(next() * 14);
    const ph = 3 + Math.floor(next() * 14);
    const kx = 1 + Math.floor(next() * 8);
    const ky = 1 + Math.floor(next() * 8);
    // Regions inside, partly outside and whole-image.
    const mode = seed % 3;
    const rx0 = mode === 0 ? 0 : Math.floor(next() * W * 0.5) - (mode === 2 ? 5 : 0);
    const ry0 = mode === 0 ? 0 : Math.floor(next() * H * 0.5) - (mode === 2 ? 5 : 0);
    const rw = mode === 0 ? W : pw + Math.floor(next() * (W - Math.max(rx0, 0)));
    const rh = mode === 0 ? H : ph + Math.floor(next() * (H - Math.max(ry0, 0)));
    const region = mode === 0 ? undefined : [500000 + rx0 * 10, 4000000 - (ry0 + rh) * 10, 500000 + (rx0 + rw) * 10, 4000000 - ry0 * 10];
    const defaultValue = [0, -3.7, 300, 1e6, -1e6, 12.5][seed % 6];
    const compressed = next() < 0.5;
    const dir = await tmp();
    const request = {
      image: 'mem://x',
      bucket: dir,
      fileNamePrefix: 'out/p',
      ...(region ? { region } : {}),
      formatOptions: { patchDimensions: [pw, ph], kernelSize: [kx, ky], defaultValue, compressed, maxFileSize: 1 + Math.floor(next() * 6000) },
    };
    const open = async () => src;
    const plan = await planImageExport(request, { open });
    const summary = await runImageExport(request, { open });
    const g = plan.grid;
    // The export grid starts at the region's top-left pixel (whole-image: the image's), W × H = the region.
    const win = region ? { x0: rx0, y0: ry0, width: rw, height: rh } : { x0: 0, y0: 0, width: W, height: H };
    assert.deepEqual([plan.source.width, plan.source.height], [win.width, win.height]);
    assert.equal(summary.files, plan.shards.length);
    assert.equal(summary.patches, g.totalPatches);
    const files = await listFiles(dir);
    const shardFiles = files.filter((f) => f.startsWith('out/p-0'));
    assert.deepEqual(
      shardFiles,
      plan.shards.map((s) => s.name),
      `seed ${seed}`,
    );
    assert.ok(files.includes('out/p-mixer.json'));
    // Nothing else beside the shards and the mixer (docs/semantics.md §5).
    assert.deepEqual(files.filter((f) => f.startsWith('out/')).length, shardFiles.length + 1);
    const mixer = parseMixer(await fs.readFile(path.join(dir, 'out/p-mixer.json'), 'utf8'));
    assert.equal(mixer.patchesPerRow, Math.floor(win.width / pw));
    assert.equal(mixer.totalPatches, Math.floor(win.width / pw) * Math.floor(win.height / ph));
    assert.ok(Math.abs(mixer.projection.affine.doubleMatrix[2] - (500000 + win.x0 * 10)) < 1e-6);
    assert.ok(Math.abs(mixer.projection.affine.doubleMatrix[5] - (4000000 - win.y0 * 10)) < 1e-6);

    const mx = Math.floor(kx / 2);
    const my = Math.floor(ky / 2);
    const tw = pw + 2 * mx;
    const th = ph + 2 * my;
    let patch = 0;
    for (const s of plan.shards) {
      const recs = await records(path.join(dir, s.name));
      assert.equal(recs.length, s.patchCount);
      const framed = recs.reduce((n, r) => n + r.length + 16, 0);
      assert.ok(framed <= request.formatOptions.maxFileSize || recs.length === 1, `shard ${s.name} holds ${framed} framed bytes`);
      for (const rec of recs) {
        const f = decodeExample(rec);
        assert.deepEqual(
          [...f.keys()],
          bands.map((b) => b.name),
          'features in band order',
        );
        const row = Math.floor(patch / mixer.patchesPerRow);
        const col = patch % mixer.patchesPerRow;
        bands.forEach((b) => {
          const feat = f.get(b.name)!;
          assert.equal(feat.kind, 'float_list');
          assert.equal(feat.value.length, tw * th);
          const fill = expectedFill(b.type, defaultValue);
          for (let ty = 0; ty < th; ty++)
            for (let tx = 0; tx < tw; tx++) {
              const sx = win.x0 + col * pw - mx + tx;
              const sy = win.y0 + row * ph - my + ty;
              const inside = sx >= 0 && sy >= 0 && sx < W && sy < H;
              const v = inside ? b.data[sy * W + sx] : NaN;
              const masked = !inside || (b.nodata !== undefined ? v === b.nodata : Number.isNaN(v));
              const want = Math.fround(masked ? fill : v);
              const got: number = feat.value[ty * tw + tx] as number;
              if (got !== want) assert.fail(`seed ${seed} patch ${patch} band ${b.name} (${b.type}) tile px ${tx},${ty}: got ${got}, want ${want}`);
            }
        });
        patch++;
      }
    }
    assert.equal(patch, g.totalPatches);

    // Determinism: writeShard (the cloud workers' path) writes the runner's bytes.
    const dir2 = await tmp();
    const plan2 = await planImageExport({ ...request, bucket: dir2 }, { open });
    for (const s of plan2.shards) {
      await writeShard(plan2, s.index, { open });
      const a = await fs.readFile(path.join(dir, s.name));
      const b = await fs.readFile(path.join(dir2, s.name));
      assert.ok(a.equals(b), `seed ${seed}: shard ${s.name} differs between runner and writeShard`);
    }
    await fs.rm(dir, { recursive: true });
    await fs.rm(dir2, { recursive: true });
  }
});

test('array bands, tensorDepths, collapseBands, sequenceData and native types', async () => {
  const next = rng(99);
  const W = 9;
  const H = 7;
  const ts = randomBand(next, 'ts', 'int16', W, H, 4);
  const b8 = randomBand(next, 'u8', 'uint8', W, H);
  const src = new MemSource(W, H, [b8, ts]);
  const open = async () => src;
  const base = { image: 'mem://x', formatOptions: { patchDimensions: [4, 3], defaultValue: -5.5, compressed: false, tensorDepths: { ts: 6 } } };
  const valueAt = (b: MemBand, d: number, x: number, y: number) => {
    if (d >= (b.depth ?? 1)) return expectedFill(b.type, -5.5);
    if (x < 0 || y < 0 || x >= W || y >= H) return expectedFill(b.type, -5.5);
    let ok = true;
    for (let k = 0; k < (b.depth ?? 1); k++) if (b.data[k * W * H + y * W + x] === b.nodata) ok = false;
    return ok ? b.data[d * W * H + y * W + x] : expectedFill(b.type, -5.5);
  };

  // Examples: array band as [D, H, W] with D = 6 (4 source values, padded with the default).
  let dir = await tmp();
  await runImageExport({ ...base, bucket: dir, fileNamePrefix: 'a' }, { open });
  let recs = await records(path.join(dir, 'a-00000.tfrecord'));
  assert.equal(recs.length, 2 * 2);
  for (let p = 0; p < recs.length; p++) {
    const f = decodeExample(recs[p]);
    const v = f.get('ts')!.value as Float32Array;
    assert.equal(v.length, 6 * 12);
    const c = p % 2;
    const r = Math.floor(p / 2);
    for (let d = 0; d < 6; d++)
      for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) assert.equal(v[d * 12 + y * 4 + x], Math.fround(valueAt(ts, d, c * 4 + x, r * 3 + y)));
  }

  // bandTypes native: uint8 → one bytes_list of raw bytes; int16 → int64_list.
  dir = await tmp();
  await runImageExport({ ...base, bucket: dir, fileNamePrefix: 'n', formatOptions: { ...base.formatOptions, bandTypes: 'native' } }, { open });
  recs = await records(path.join(dir, 'n-00000.tfrecord'));
  const f0 = decodeExample(recs[0]);
  const u8 = f0.get('u8')!;
  assert.equal(u8.kind, 'bytes_list');
  assert.equal(u8.value.length, 1);
  assert.deepEqual(
    [...(u8.value[0] as Uint8Array)],
    Array.from({ length: 12 }, (_, i) => valueAt(b8, 0, i % 4, Math.floor(i / 4))),
  );
  const i64 = f0.get('ts')!;
  assert.equal(i64.kind, 'int64_list');
  assert.deepEqual(
    [...(i64.value as BigInt64Array)].slice(0, 12),
    Array.from({ length: 12 }, (_, i) => BigInt(valueAt(ts, 0, i % 4, Math.floor(i / 4)))),
  );

  // collapseBands: one feature named after the first band, [C, H, W] with C = 1 + 6; native promotes to int64.
  dir = await tmp();
  await runImageExport(
    { ...base, bucket: dir, fileNamePrefix: 'c', formatOptions: { ...base.formatOptions, collapseBands: true, bandTypes: 'native' } },
    { open },
  );
  recs = await records(path.join(dir, 'c-00000.tfrecord'));
  const fc = decodeExample(recs[1]);
  assert.deepEqual([...fc.keys()], ['u8']);
  const cv = fc.get('u8')!;
  assert.equal(cv.kind, 'int64_list');
  assert.equal(cv.value.length, 7 * 12);
  for (let i = 0; i < 12; i++) {
    assert.equal((cv.value as BigInt64Array)[i], BigInt(valueAt(b8, 0, 4 + (i % 4), Math.floor(i / 4))));
    assert.equal((cv.value as BigInt64Array)[12 * 3 + i], BigInt(valueAt(ts, 2, 4 + (i % 4), Math.floor(i / 4))));
  }

  // sequenceData: one SequenceExample per pixel, row-major within a patch; scalar → context, array → FeatureList of D.
  dir = await tmp();
  await runImageExport({ ...base, bucket: dir, fileNamePrefix: 's', formatOptions: { ...base.formatOptions, sequenceData: true } }, { open });
  recs = await records(path.join(dir, 's-00000.tfrecord'));
  assert.equal(recs.length, 4 * 12);
  for (let k = 0; k < recs.length; k++) {
    const p = Math.floor(k / 12);
    const px = k % 12;
    const x = (p % 2) * 4 + (px % 4);
    const y = Math.floor(p / 2) * 3 + Math.floor(px / 4);
    const s = decodeSequenceExample(recs[k]);
    assert.deepEqual([...s.context.keys()], ['u8']);
    assert.deepEqual([...s.context.get('u8')!.value], [valueAt(b8, 0, x, y)]);
    const steps = s.featureLists.get('ts')!;
    assert.equal(steps.length, 6);
    steps.forEach((st, d) => assert.deepEqual([...st.value], [Math.fround(valueAt(ts, d, x, y))]));
  }
});

test('maskedThreshold drops patches over the masked fraction and writes no mixer (docs/semantics.md §4)', async () => {
  const W = 8;
  const H = 4;
  const data = new Float64Array(W * H).fill(1);
  // Patch 0 (x 0..3): 5 of 16 masked; patch 1: 1 of 16 masked.
  for (const i of [0, 1, 2, 3, 8]) data[i] = NaN;
  data[4 + 8] = NaN;
  const src = new MemSource(W, H, [{ name: 'b', type: 'float32', data }]);
  const dir = await tmp();
  const s = await runImageExport(
    { image: 'm', bucket: dir, fileNamePrefix: 'm', formatOptions: { patchDimensions: [4, 4], maskedThreshold: 0.25, compressed: false } },
    { open: async () => src },
  );
  assert.equal(s.patches, 1);
  assert.equal(s.skippedPatches, 1);
  assert.equal(s.mixer, null);
  const files = await listFiles(dir);
  assert.deepEqual(
    files.filter((f) => !f.startsWith('.geotfr')),
    ['m-00000.tfrecord'],
  );
  const recs = await records(path.join(dir, 'm-00000.tfrecord'));
  assert.equal(recs.length, 1);
  assert.equal((decodeExample(recs[0]).get('b')!.value as Float32Array)[4], 0); // the masked pixel of patch 1 holds the default
});

test('a failing source or a cancel leaves no shard, no mixer and no manifest behind', async () => {
  const W = 64;
  const H = 64;
  const data = new Float64Array(W * H).map((_, i) => i);
  const mk = (failAt: number, ac?: AbortController) => {
    const src = new MemSource(W, H, [{ name: 'b', type: 'float32', data }]);
    let n = 0;
    const read = src.readWindow.bind(src);
    src.readWindow = async (...a) => {
      if (++n === failAt) {
        if (ac) ac.abort(new GeotfrError('CANCELLED', 'stopped by test'));
        else throw new GeotfrError('BAD_INPUT', 'corrupt tile', { file: 'mem' });
      }
      return read(...a);
    };
    return src;
  };
  const request = (dir: string) => ({ image: 'm', bucket: dir, fileNamePrefix: 'deep/dir/p', formatOptions: { patchDimensions: [8, 8], maxFileSize: 2000 } });
  let dir = await tmp();
  await assert.rejects(runImageExport(request(dir), { open: async () => mk(3) }), /corrupt tile/);
  assert.deepEqual(await listFiles(dir), []);
  assert.deepEqual(await fs.readdir(dir), []);

  dir = await tmp();
  const ac = new AbortController();
  await assert.rejects(runImageExport(request(dir), { open: async () => mk(5, ac), signal: ac.signal }), (e: GeotfrError) => e.code === 'CANCELLED');
  assert.deepEqual(await fs.readdir(dir), []);
});

test('re-running the same request rewrites identical bytes; gzip output gunzips to the plain shards', async () => {
  const next = rng(5);
  const src = new MemSource(50, 40, [randomBand(next, 'a', 'float32', 50, 40), randomBand(next, 'b', 'int16', 50, 40)]);
  const open = async () => src;
  const req = (dir: string, compressed: boolean) => ({
    image: 'm',
    bucket: dir,
    fileNamePrefix: 'r',
    formatOptions: { patchDimensions: [10, 8], kernelSize: [5, 4], compressed, maxFileSize: 20000 },
  });
  const dir = await tmp();
  await runImageExport(req(dir, true), { open });
  const first = await Promise.all((await listFiles(dir)).filter((f) => f.startsWith('r-')).map((f) => fs.readFile(path.join(dir, f))));
  await runImageExport(req(dir, true), { open, overwrite: true });
  const second = await Promise.all((await listFiles(dir)).filter((f) => f.startsWith('r-')).map((f) => fs.readFile(path.join(dir, f))));
  assert.equal(first.length, second.length);
  first.forEach((b, i) => assert.ok(b.equals(second[i])));
  const plainDir = await tmp();
  await runImageExport(req(plainDir, false), { open });
  const zlib = await import('node:zlib');
  const gz = (await listFiles(dir)).filter((f) => f.endsWith('.gz'));
  const plain = (await listFiles(plainDir)).filter((f) => f.endsWith('.tfrecord'));
  assert.equal(gz.length, plain.length);
  for (let i = 0; i < gz.length; i++) {
    const a = zlib.gunzipSync(await fs.readFile(path.join(dir, gz[i])));
    assert.ok(a.equals(await fs.readFile(path.join(plainDir, plain[i]))), gz[i]);
  }
});
