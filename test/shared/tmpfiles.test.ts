/**
 * Temporaries (docs/semantics.md §5 "Temporaries", issue 11 item 5): nothing is left beside outputs on
 * success or failure, and what a killed run left (a partial shard in `.geotfr/tmp/`, a COG spill
 * directory in TMPDIR) is reclaimed by the next run there once old and orphaned — never a live one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { runImageExport } from '../../shared/export/run.js';
import { ingestImage } from '../../shared/ingest/image.js';
import { runTableExport } from '../../shared/table/export.js';
import { LocalBlobStore } from '../../shared/storage/local.js';
import { reclaimOwnedTmpDirs } from '../../shared/tmpfiles.js';
import { listFiles } from '../support/files.js';
import { MemSource } from './export/memsource.js';

const dirs: string[] = [];
test.after(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-tmpfiles-'));
  dirs.push(d);
  return d;
}

/** The pid of a process that has exited (a "killed run"). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  return new Promise<number>((resolve) => child.on('exit', () => resolve(child.pid!)));
}

const HOUR = 3600 * 1000;
async function age(p: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  await fs.utimes(p, t, t);
}

test('a successful export and ingest, and a failed table export, leave no .geotfr/tmp behind', async () => {
  const dir = await tmp();
  const src = new MemSource(32, 32, [{ name: 'b', type: 'float32', data: new Float64Array(32 * 32).map((_, i) => i) }]);
  const exp = await runImageExport({ image: 'm', bucket: dir, fileNamePrefix: 'e/p', formatOptions: { patchDimensions: [16, 16] } }, { open: async () => src });
  assert.deepEqual(await listFiles(path.join(dir, '.geotfr'), { dirs: true }), ['manifests', 'manifests/e', 'manifests/e/p.json']);

  const outDir = await tmp();
  await ingestImage({ files: exp.shards, mixer: exp.mixer!, out: path.join(outDir, 'pred.tif') });
  assert.deepEqual(await listFiles(outDir, { dirs: true }), ['pred.tif']);

  // A relative --out resolves against the working directory: nothing may appear there either.
  const cwd = process.cwd();
  process.chdir(outDir);
  try {
    await ingestImage({ files: exp.shards, mixer: exp.mixer!, out: 'rel.tif' });
  } finally {
    process.chdir(cwd);
  }
  assert.deepEqual(await listFiles(outDir, { dirs: true }), ['pred.tif', 'rel.tif']);

  const tableDir = await tmp();
  const collection = path.join(tableDir, 'empty.geojson');
  await fs.writeFile(collection, JSON.stringify({ type: 'FeatureCollection', features: [] }));
  const outTables = path.join(tableDir, 'out');
  await fs.mkdir(outTables);
  await assert.rejects(runTableExport({ collection, bucket: outTables, fileNamePrefix: 't' }), /no features/);
  assert.deepEqual(await listFiles(outTables, { dirs: true }), []);
});

test('the next write at a destination reclaims an orphaned partial shard over an hour old, and only that', async () => {
  const dir = await tmp();
  const tmpDir = path.join(dir, '.geotfr', 'tmp');
  await fs.mkdir(tmpDir, { recursive: true });
  const dead = await deadPid();
  const orphanOld = path.join(tmpDir, `p-00003.tfrecord.gz.${dead}.0123456789ab`);
  const orphanNew = path.join(tmpDir, `p-00004.tfrecord.gz.${dead}.0123456789ac`);
  const liveOld = path.join(tmpDir, `p-00005.tfrecord.gz.${process.pid}.0123456789ad`);
  for (const f of [orphanOld, orphanNew, liveOld]) await fs.writeFile(f, 'partial');
  await age(orphanOld, 2 * HOUR);
  await age(liveOld, 2 * HOUR);

  const store = new LocalBlobStore(dir);
  await store.write('x.txt', 'hello');
  assert.deepEqual((await fs.readdir(tmpDir)).sort(), [path.basename(orphanNew), path.basename(liveOld)].sort());
});

test('an ingest reclaims an orphaned COG spill directory in its temp dir, not a live or recent one', async () => {
  const base = await tmp();
  const dead = await deadPid();
  const mk = async (name: string, ms: number) => {
    const d = path.join(base, name);
    await fs.mkdir(d);
    await fs.writeFile(path.join(d, 'level0.tiles'), 'spilled');
    await age(path.join(d, 'level0.tiles'), ms);
    await age(d, ms);
    return d;
  };
  await mk(`geotfr-cog-${dead}-aaaaaa`, 2 * HOUR);
  const recent = await mk(`geotfr-cog-${dead}-bbbbbb`, 60 * 1000);
  const live = await mk(`geotfr-cog-${process.pid}-cccccc`, 2 * HOUR);
  const other = await mk('geotfr-other-1-dddddd', 2 * HOUR);
  const removed = await reclaimOwnedTmpDirs(base, 'cog');
  assert.deepEqual(removed, [path.join(base, `geotfr-cog-${dead}-aaaaaa`)]);
  assert.deepEqual((await fs.readdir(base)).sort(), [path.basename(recent), path.basename(live), path.basename(other)].sort());

  // And the COG writer runs it: an ingest with tmpDir = base removes the old orphan.
  await mk(`geotfr-cog-${dead}-eeeeee`, 2 * HOUR);
  const dir = await tmp();
  const src = new MemSource(16, 16, [{ name: 'b', type: 'float32', data: new Float64Array(256) }]);
  const exp = await runImageExport({ image: 'm', bucket: dir, fileNamePrefix: 'p', formatOptions: { patchDimensions: [16, 16] } }, { open: async () => src });
  await ingestImage({ files: exp.shards, mixer: exp.mixer!, out: path.join(dir, 'o.tif'), tmpDir: base });
  assert.ok(!(await fs.readdir(base)).includes(`geotfr-cog-${dead}-eeeeee`));
});
