/**
 * The published package as a user gets it: `npm pack` the built tree, install the tarball into a
 * fresh project, then use it only by its name — `import … from 'geotfr'` and `'geotfr/tfrecord'`
 * in a script that exports a small GeoTIFF and ingests the records back, a TypeScript consumer
 * type-checked against the shipped declarations, and the `geotfr` bin run from other directories.
 *
 * The install is offline: the consumer's lockfile is derived from this repository's (the same
 * dependency versions and integrities, which `npm ci` here has already put in npm's cache), so
 * `npm ci --offline` resolves every dependency from the cache and installs the tarball as npm would.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { needGdal, repoRoot, run } from '../support/oracles.js';
import { readRasterWithGdal, writeGeoTiff } from '../support/rasters.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  engines: Record<string, string>;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
};
const tarballName = `${pkg.name}-${pkg.version}.tgz`;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// npm's own lifecycle variables (set when this runs under `npm test`) would leak into the nested npm.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_'))) as NodeJS.ProcessEnv;

let work: string;
let project: string;
let packed: { path: string; mode: number }[];

/** Runs npm (or another command) with the test's environment; rejects with its stderr on failure. */
const sh = (cmd: string, args: string[], cwd: string) => run(cmd, args, { cwd, env: { ...env, NO_UPDATE_NOTIFIER: '1' } });

/**
 * A lockfile for a project depending only on the tarball: the repository's non-dev packages at the
 * same paths (geotfr's dependency tree is the repository's own production tree), each with its
 * tarball URL on the configured registry so that the cache, keyed by URL and integrity, answers.
 */
async function consumerLock(registry: string, integrity: string): Promise<object> {
  const lock = JSON.parse(await fs.readFile(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const base = registry.replace(/\/?$/, '/');
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { [pkg.name]: `file:${tarballName}` } },
    [`node_modules/${pkg.name}`]: {
      version: pkg.version,
      resolved: `file:${tarballName}`,
      integrity,
      license: pkg.license,
      dependencies: pkg.dependencies,
      bin: pkg.bin,
      engines: pkg.engines,
    },
  };
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (!where || entry.dev || entry.link) continue;
    const name = (entry.name as string | undefined) ?? where.slice(where.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const resolved = entry.resolved ?? `${base}${name}/-/${name.split('/').pop()}-${entry.version as string}.tgz`;
    packages[where] = { ...entry, resolved };
  }
  return { name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

before(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-pack-'));
  project = path.join(work, 'consumer');
  await fs.mkdir(project);
  const r = await sh(npm, ['pack', '--json', '--pack-destination', work], repoRoot);
  const info = JSON.parse(r.stdout.toString()) as { filename: string; files: { path: string; mode: number }[] }[];
  assert.equal(info[0].filename, tarballName);
  packed = info[0].files;
  await fs.rename(path.join(work, tarballName), path.join(project, tarballName));
  const tgz = await fs.readFile(path.join(project, tarballName));
  const integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
  const registry = (await sh(npm, ['config', 'get', 'registry'], project)).stdout.toString().trim();
  await fs.writeFile(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { [pkg.name]: `file:${tarballName}` } }, null, 2),
  );
  await fs.writeFile(path.join(project, 'package-lock.json'), JSON.stringify(await consumerLock(registry, integrity), null, 2));
  await sh(npm, ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], project);
});

after(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

test('the tarball holds the built library, CLI, functions and protos, and no test, bench or test map', () => {
  const paths = packed.map((f) => f.path);
  for (const p of paths) {
    assert.match(
      p,
      /^(README\.md|package\.json|proto\/[^/]+\.proto|dist\/(shared|functions|cli|bundle)\/.+\.(js|d\.ts|js\.map))$/,
      `unexpected file in the package: ${p}`,
    );
    assert.doesNotMatch(p, /(^|\/)(test|bench)(\/|$)|\.test\.|\.bench\./, `test or bench file in the package: ${p}`);
  }
  for (const need of [
    'dist/shared/index.js',
    'dist/shared/index.d.ts',
    'dist/shared/tfrecord/index.js',
    'dist/shared/tfrecord/index.d.ts',
    'dist/functions/index.js',
    'dist/functions/index.d.ts',
    'dist/cli/geotfr.js',
    'dist/bundle/geotfr.js',
    'dist/bundle/shared/export/pool-worker.js',
    'dist/bundle/shared/patches/pool-worker.js',
    'proto/example.proto',
  ])
    assert.ok(paths.includes(need), `${need} missing from the package`);
  const bin = packed.find((f) => f.path === pkg.bin.geotfr);
  assert.ok(bin && (bin.mode & 0o111) !== 0, 'the bin is executable in the tarball');
});

test('the installed package is imported by name: a tiny export and ingest through geotfr and geotfr/tfrecord', async (t) => {
  if (!needGdal(t)) return;
  // A 3-band float32 GeoTIFF of 20 × 12 pixels (two patch rows of 10 × 6), made by GDAL.
  const width = 20;
  const height = 12;
  const bands = [0, 1, 2].map((b) => Float32Array.from({ length: width * height }, (_, i) => b * 1000 + i + 0.25));
  const tif = path.join(work, 'scene.tif');
  await writeGeoTiff(tif, {
    width,
    height,
    bands,
    type: 'float32',
    affine: [10, 0, 500000, 0, -10, 4100000],
    crs: 'EPSG:32633',
    bandNames: ['B1', 'B2', 'B3'],
  });
  const script = `
import { runImageExport, ingestImage, GeotfrError, parseMixer, planImageExport, writeShard, writeExportMetadata } from 'geotfr';
import { decodeExample, encodeExample, floatFeature, readRecordFile, RecordWriter, GeotfrError as CodecError } from 'geotfr/tfrecord';
import { createWriteStream, readFileSync } from 'node:fs';
const [tif, out] = process.argv.slice(2);
const request = (bucket) => ({ image: tif, bucket, fileNamePrefix: 'patches', formatOptions: { patchDimensions: [10, 6], maxFileSize: 3000 } });
const summary = await runImageExport(request(out), { workers: 0 });
// The same export fanned out: plan, one writeShard per shard, then the metadata.
const plan = await planImageExport(request(out + '/fan'));
for (const s of plan.shards) await writeShard(plan, s.index, { createOnly: true });
const meta = await writeExportMetadata(plan);
const fanOutSame = plan.shards.length === summary.shards.length && summary.shards.every((f, i) =>
  readFileSync(f).equals(readFileSync(out + '/fan/' + plan.shards[i].name))) &&
  readFileSync(summary.mixer).equals(readFileSync(out + '/fan/' + meta.mixerKey));
const mixer = parseMixer(readFileSync(summary.mixer, 'utf8'), summary.mixer);
// Identity "model": every record's features back as predictions, in patch order.
const preds = out + '/preds.tfrecord';
const w = new RecordWriter(createWriteStream(preds));
let records = 0;
for (const shard of summary.shards)
  for await (const rec of readRecordFile(shard)) {
    const f = decodeExample(rec.data);
    await w.write(encodeExample([...f].map(([k, v]) => [k, floatFeature(v.value)])));
    records++;
  }
await w.close();
const ingest = await ingestImage({ files: [preds], mixer: summary.mixer, out: out + '/back.tif' });
let deep = 'exported';
try { await import('geotfr/dist/shared/export/run.js'); } catch (e) { deep = e.code; }
console.log(JSON.stringify({ patches: summary.patches, shards: summary.shards.length, fanOutSame, records, mixerPatches: mixer.totalPatches, ingest, sameError: GeotfrError === CodecError, deep }));
`;
  await fs.writeFile(path.join(project, 'use.mjs'), script);
  const out = path.join(work, 'out');
  await fs.mkdir(out);
  const r = await run(process.execPath, ['use.mjs', tif, out], { cwd: project, env: { ...env, GEOTFR_PROGRESS: '0' } });
  const res = JSON.parse(r.stdout.toString()) as {
    patches: number;
    shards: number;
    fanOutSame: boolean;
    records: number;
    mixerPatches: number;
    ingest: { out: string; width: number; height: number; bands: { name: string }[] };
    sameError: boolean;
    deep: string;
  };
  assert.equal(res.patches, 4);
  assert.ok(res.shards > 1, `maxFileSize splits the export into shards (got ${res.shards})`);
  assert.equal(res.fanOutSame, true, 'plan → writeShard → writeExportMetadata writes the bytes of runImageExport');
  assert.equal(res.records, 4);
  assert.equal(res.mixerPatches, 4);
  assert.equal(res.sameError, true, 'geotfr and geotfr/tfrecord share one GeotfrError class');
  assert.equal(res.deep, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'deep imports are closed by the exports map');
  assert.deepEqual([res.ingest.width, res.ingest.height], [width, height]);
  assert.deepEqual(
    res.ingest.bands.map((b) => b.name),
    ['B1', 'B2', 'B3'],
  );
  // The identity round trip gives the source pixels back (read by GDAL).
  const back = await readRasterWithGdal(res.ingest.out);
  assert.deepEqual([back.width, back.height, back.bands.length], [width, height, 3]);
  back.bands.forEach((b, i) => assert.deepEqual(Array.from(b), Array.from(bands[i]), `band ${i + 1}`));
});

test('a TypeScript consumer type-checks against the shipped declarations', async () => {
  const src = `
import { runImageExport, ingestImage, planImageExport, writeShard, writeExportMetadata, LocalBlobStore, InProcessQueue, CogWriter, type ExportSummary, type BlobStore, type Queue } from 'geotfr';
import { encodeExample, decodeExample, floatFeature, frameRecords, parseRecordsSync, Tag, WireType, type Features } from 'geotfr/tfrecord';
import { TARGETS } from 'geotfr/functions';

const store: BlobStore = new LocalBlobStore('/tmp');
const queue: Queue = new InProcessQueue();
const features: Features = decodeExample(encodeExample([['B1', floatFeature([1, 2])]]));
const n: number = [...parseRecordsSync(frameRecords([encodeExample(features)]))].length;
const tag: number = Tag.floatList + WireType.LengthDelimited;
const targets: readonly string[] = TARGETS;
export async function go(request: unknown): Promise<ExportSummary> {
  const plan = await planImageExport(request);
  await writeShard(plan, 0);
  await writeExportMetadata(plan);
  await ingestImage({ files: [], mixer: 'm.json', out: 'o.tif' });
  return runImageExport(request, { workers: 1 });
}
// @ts-expect-error: the summary's fields are typed
export const wrong: string = ({} as ExportSummary).patches;
void [store, queue, n, tag, targets, CogWriter.create];
`;
  await fs.writeFile(path.join(project, 'consumer.ts'), src);
  await fs.writeFile(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
        // A Node library's users bring @types/node; this project's copy stands in for theirs.
        typeRoots: [path.join(repoRoot, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }),
  );
  await run(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project });
});

test('the geotfr bin runs from any directory: npx --no-install in the project, the installed path elsewhere', async () => {
  const viaNpx = await sh('npx', ['--no-install', 'geotfr', '--help'], project);
  assert.match(viaNpx.stdout.toString(), /export-image/);
  const bin = path.join(project, 'node_modules', '.bin', 'geotfr');
  for (const cmd of ['export-image', 'ingest-image', 'export-table', 'ingest-table', 'inspect', 'export-patches']) {
    const r = await run(bin, [cmd, '--help'], { cwd: os.tmpdir(), env });
    const text = r.stdout.toString();
    assert.match(text, new RegExp(`Usage: geotfr ${cmd}`));
    assert.match(text, /Docs \(in the geotfr repository\): docs\//, `${cmd} --help points to the project's docs`);
    for (const doc of text.match(/docs\/[a-z]+\.md/g) ?? [])
      assert.ok(existsSync(path.join(repoRoot, doc)), `${cmd} --help names ${doc}, which does not exist`);
    assert.doesNotMatch(text, /SPEC|\.\.\/shared|https?:/, `${cmd} --help points only to the project's own docs`);
    assert.match(text, /Summary \(one JSON line on stdout\):/, `${cmd} --help names its summary fields`);
  }
  // A real command from another directory: inspect a file the package itself wrote (relative path, cwd = its folder).
  const dir = path.join(work, 'elsewhere');
  await fs.mkdir(dir, { recursive: true });
  await run(
    process.execPath,
    [
      '-e',
      `import('geotfr/tfrecord').then(t => require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'one.tfrecord'))}, t.frameRecords([t.encodeExample([['x', t.floatFeature([1.5])]])])))`,
    ],
    { cwd: project },
  );
  const r = await run(bin, ['inspect', '--json', 'one.tfrecord'], { cwd: dir, env });
  const report = JSON.parse(r.stdout.toString()) as { records: number; features: Record<string, unknown> };
  assert.equal(report.records, 1);
  assert.deepEqual(Object.keys(report.features), ['x']);
});
