/**
 * `geotfr ingest-image` on bad input (issue 4): each case exits non-zero with the file, record index
 * and byte offset (or field) in the message, and leaves no output file and no temporary files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeExample, floatFeature, int64Feature, type Feature } from '../../shared/tfrecord/example.js';
import { formatMixer, type Mixer } from '../../shared/mixer.js';
import { frameRecords, gzipSync } from '../../shared/tfrecord/record.js';
import { listFiles } from '../support/files.js';
import { geotfr } from '../support/oracles.js';

const PW = 8;
const PH = 6;
const PPR = 3;
const TOTAL = 6;
const mixer: Mixer = {
  projection: { crs: 'EPSG:32633', affine: { doubleMatrix: [10, 0, 500000, 0, -10, 4000000] } },
  patchDimensions: [PW, PH],
  patchesPerRow: PPR,
  totalPatches: TOTAL,
};

function example(i: number, over: Record<string, Feature | null> = {}): Buffer {
  const f = new Map<string, Feature>([
    ['prob', floatFeature(Float32Array.from({ length: PW * PH }, (_, k) => i + k / 100))],
    ['class', int64Feature(Array.from({ length: PW * PH }, (_, k) => (i + k) % 3))],
  ]);
  for (const [k, v] of Object.entries(over)) {
    if (v === null) f.delete(k);
    else f.set(k, v);
  }
  return encodeExample(f);
}

interface Setup {
  dir: string;
  mixerPath: string;
  out: string;
  files: string[];
}

/** Two files (3 plain records, 3 gzip records) unless `records` overrides the payloads. */
async function setup(records: Buffer[] = Array.from({ length: TOTAL }, (_, i) => example(i)), mixerText = formatMixer(mixer)): Promise<Setup> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'geotfr-ingest-cli-'));
  const mixerPath = path.join(dir, 'p-mixer.json');
  await fs.writeFile(mixerPath, mixerText);
  const a = path.join(dir, 'p-00000.tfrecord');
  const b = path.join(dir, 'p-00001.tfrecord.gz');
  await fs.writeFile(a, frameRecords(records.slice(0, 3)));
  await fs.writeFile(b, gzipSync(frameRecords(records.slice(3))));
  return { dir, mixerPath, out: path.join(dir, 'out', 'pred.tif'), files: [a, b] };
}

/** Runs the CLI expecting failure; checks exit code, message parts and that nothing was left behind. */
async function expectFailure(s: Setup, args: string[], parts: (string | RegExp)[], tmpDir: string): Promise<string> {
  const r = await geotfr(['ingest-image', '--mixer', s.mixerPath, '--out', s.out, ...args, ...s.files], { env: { GEOTFR_PROGRESS: '0', TMPDIR: tmpDir } });
  assert.notEqual(r.code, 0, `expected failure, got success: ${r.stdout}`);
  assert.equal(r.stdout.toString(), '', 'no summary on failure');
  for (const p of parts) assert.match(r.stderr, typeof p === 'string' ? new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : p);
  await assert.rejects(fs.stat(s.out), /ENOENT/, 'no output file');
  const outDir = path.dirname(s.out);
  const leftovers = await listFiles(outDir);
  assert.deepEqual(leftovers, [], `no temporary files in ${outDir}`);
  assert.deepEqual(await listFiles(tmpDir), [], 'no spilled tiles left in TMPDIR');
  return r.stderr;
}

async function withSetup(records: Buffer[] | undefined, fn: (s: Setup, tmp: string) => Promise<void>, mixerText?: string): Promise<void> {
  const s = await setup(records, mixerText);
  const tmp = path.join(s.dir, 'tmp');
  await fs.mkdir(tmp);
  try {
    await fn(s, tmp);
  } finally {
    await fs.rm(s.dir, { recursive: true, force: true });
  }
}

test('ingest-image CLI: a good input succeeds (control for the failure cases)', async () => {
  await withSetup(undefined, async (s, tmp) => {
    const r = await geotfr(['ingest-image', '--mixer', s.mixerPath, '--out', s.out, ...s.files], { env: { GEOTFR_PROGRESS: '0', TMPDIR: tmp } });
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.toString());
    assert.equal(summary.width, PW * PPR);
    assert.equal(summary.height, PH * 2);
    assert.deepEqual(
      summary.bands.map((b: { name: string }) => b.name),
      ['prob', 'class'],
    );
    assert.equal(summary.type, 'float32');
    assert.ok((await fs.stat(s.out)).size > 0);
    assert.deepEqual(await listFiles(tmp), []);
  });
});

test('ingest-image CLI: a failure after the output was opened (the name is taken by a directory) leaves no temporary', async () => {
  // The other failure cases stop before the COG is written; this one fails when the finished file is
  // published, so the cleanup of the half-written output is what is checked.
  await withSetup(undefined, async (s, tmp) => {
    await fs.mkdir(path.join(s.out, 'occupied'), { recursive: true });
    const r = await geotfr(['ingest-image', '--mixer', s.mixerPath, '--out', s.out, ...s.files], { env: { GEOTFR_PROGRESS: '0', TMPDIR: tmp } });
    assert.notEqual(r.code, 0, `expected failure, got success: ${r.stdout}`);
    assert.equal(r.stdout.toString(), '', 'no summary on failure');
    assert.ok(r.stderr.includes(s.out), r.stderr);
    assert.ok((await fs.stat(path.join(s.out, 'occupied'))).isDirectory(), 'the directory is untouched');
    assert.deepEqual(await listFiles(path.dirname(s.out)), [], 'no output or temporary file left');
    assert.deepEqual(await listFiles(tmp), [], 'no spilled tiles left in TMPDIR');
  });
});

test('ingest-image CLI: data CRC error in the last record names file, record and offset; no output', async () => {
  await withSetup(undefined, async (s, tmp) => {
    // Corrupt record 2 of the plain file (its last record): flip a payload byte.
    const buf = await fs.readFile(s.files[0]);
    const rec0 = example(0).length + 16;
    const rec1 = example(1).length + 16;
    const offset = rec0 + rec1;
    buf[offset + 12 + 5] ^= 0xff;
    await fs.writeFile(s.files[0], buf);
    await expectFailure(s, [], [s.files[0], 'record 2', `byte offset ${offset}`, 'data CRC mismatch'], tmp);
  });
});

test('ingest-image CLI: truncated gzip file and truncated record', async () => {
  await withSetup(undefined, async (s, tmp) => {
    // Plain file cut in the middle of record 1.
    const buf = await fs.readFile(s.files[0]);
    const rec0 = example(0).length + 16;
    await fs.writeFile(s.files[0], buf.subarray(0, rec0 + 30));
    await expectFailure(s, [], [s.files[0], 'record 1', `byte offset ${rec0}`, 'truncated record'], tmp);
  });
  await withSetup(undefined, async (s, tmp) => {
    // Uncompressed stream of the gzip file cut inside its last record, then re-gzipped.
    const recs = [3, 4, 5].map((i) => example(i));
    const framed = frameRecords(recs);
    const cut = framed.length - 10;
    await fs.writeFile(s.files[1], gzipSync(framed.subarray(0, cut)));
    const off = recs[0].length + recs[1].length + 32;
    await expectFailure(s, [], [s.files[1], 'record 2', `byte offset ${off}`, 'truncated'], tmp);
  });
});

test('ingest-image CLI: wrong record count (too few, too many)', async () => {
  await withSetup(
    Array.from({ length: TOTAL - 1 }, (_, i) => example(i)),
    async (s, tmp) => {
      await expectFailure(s, [], [s.files[1], 'record 2', 'wrong record count: 5 records', 'totalPatches is 6', /byte offset \d+/], tmp);
    },
  );
  await withSetup(
    Array.from({ length: TOTAL + 1 }, (_, i) => example(i)),
    async (s, tmp) => {
      const off = [3, 4, 5].reduce((n, i) => n + example(i).length + 16, 0);
      await expectFailure(s, [], [s.files[1], 'record 3', `byte offset ${off}`, "more records than the mixer's totalPatches (6)"], tmp);
    },
  );
});

test('ingest-image CLI: feature of an unexpected length, with and without a kernel', async () => {
  const recs = Array.from({ length: TOTAL }, (_, i) => example(i));
  recs[4] = example(4, { prob: floatFeature(new Float32Array(PW * PH + 1)) });
  await withSetup(recs, async (s, tmp) => {
    const off = example(3).length + 16;
    await expectFailure(s, [], [s.files[1], 'record 1', `byte offset ${off}`, 'field prob', `has ${PW * PH + 1} values`, '--kernel-size'], tmp);
    await expectFailure(s, ['--kernel-size', '3,3'], ['field prob', `or a ${PW + 2}×${PH + 2} tile (${(PW + 2) * (PH + 2)})`], tmp);
  });
});

test('ingest-image CLI: records whose feature sets or kinds differ', async () => {
  const recs = Array.from({ length: TOTAL }, (_, i) => example(i));
  recs[1] = example(1, { class: null, extra: floatFeature(new Float32Array(PW * PH)) });
  await withSetup(recs, async (s, tmp) => {
    const off = example(0).length + 16;
    await expectFailure(s, [], [s.files[0], 'record 1', `byte offset ${off}`, 'missing: class', 'unexpected: extra'], tmp);
  });
  const kinds = Array.from({ length: TOTAL }, (_, i) => example(i));
  kinds[5] = example(5, { class: floatFeature(new Float32Array(PW * PH)) });
  await withSetup(kinds, async (s, tmp) => {
    await expectFailure(s, [], [s.files[1], 'record 2', 'field class', 'is a float_list, but a int64_list in the first record'], tmp);
  });
});

test('ingest-image CLI: unreadable, invalid and inconsistent mixers', async () => {
  await withSetup(undefined, async (s, tmp) => {
    await expectFailure({ ...s, mixerPath: path.join(s.dir, 'missing-mixer.json') }, [], ['NOT_FOUND', 'missing-mixer.json'], tmp);
  });
  await withSetup(
    undefined,
    async (s, tmp) => {
      await expectFailure(s, [], [s.mixerPath, 'mixer is not valid JSON'], tmp);
    },
    '{"projection": ',
  );
  await withSetup(
    undefined,
    async (s, tmp) => {
      await expectFailure(s, [], [s.mixerPath, 'field totalPatches', 'not a multiple of patchesPerRow'], tmp);
    },
    formatMixer({ ...mixer, totalPatches: 7 }),
  );
  await withSetup(
    undefined,
    async (s, tmp) => {
      await expectFailure(s, [], [s.mixerPath, 'field projection.crs', 'unsupported CRS'], tmp);
    },
    formatMixer({ ...mixer, projection: { ...mixer.projection, crs: 'LOCAL_CS["x"]' } }),
  );
  await withSetup(undefined, async (s, tmp) => {
    // A manifest for another export (different patch size) next to the mixer.
    const m = path.join(s.dir, '.geotfr', 'manifests', 'p.json');
    await fs.mkdir(path.dirname(m), { recursive: true });
    await fs.writeFile(m, JSON.stringify({ version: 1, patchDimensions: [16, 16], kernelSize: [3, 3], totalPatches: TOTAL }));
    await expectFailure(s, [], [m, "patchDimensions [16,16] differ from the mixer's [8,6]"], tmp);
  });
});

test('ingest-image CLI: bad arguments and a missing prediction file', async () => {
  await withSetup(undefined, async (s, tmp) => {
    await expectFailure(s, ['--kernel-size', '3'], ['--kernel-size expects two positive integers'], tmp);
    await expectFailure({ ...s, files: [s.files[0], path.join(s.dir, 'nope.tfrecord')] }, [], ['NOT_FOUND', 'nope.tfrecord'], tmp);
  });
});
