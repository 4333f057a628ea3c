/**
 * gzip record-length bombs (docs/limits.md): a small gzip TFRecord whose header (with a valid
 * length CRC) claims a huge record is refused at that header, before the record is buffered, by
 * inspect, ingest-table and ingest-image; and ingest refuses a record longer than any patch of the
 * mixer can be, even when it is under the general maxRecordBytes limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { formatMixer } from '../../../shared/mixer.js';
import { encodeExample } from '../../../shared/tfrecord/example.js';
import { frameRecords, recordHeader } from '../../../shared/tfrecord/record.js';
import { listFiles } from '../../support/files.js';
import { tempDir } from '../../support/rasters.js';
import { RSS_BOUND_MIB, geotfrMeasured } from './measure.js';
import { compressedZeros } from './tiff.js';

const MiB = 1 << 20;

/** A 2×1 grid of 4×4 patches (EPSG:4326). */
const mixer = formatMixer({
  projection: { crs: 'EPSG:4326', affine: { doubleMatrix: [0.01, 0, 10, 0, -0.01, 50] } },
  patchDimensions: [4, 4],
  patchesPerRow: 2,
  totalPatches: 2,
});

test('a gzip TFRecord whose first header claims 300 MiB: LIMIT maxRecordBytes at record 0 in inspect, ingest-table and ingest-image', async (t) => {
  const dir = await tempDir('geotfr-limits-records-');
  try {
    const bomb = path.join(dir, 'bomb.tfrecord.gz');
    await fs.writeFile(bomb, await compressedZeros('gzip', 300 * MiB, recordHeader(300 * MiB)));
    assert.ok((await fs.stat(bomb)).size < MiB, 'the bomb is small on disk');
    await fs.writeFile(path.join(dir, 'mixer.json'), mixer);
    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    const runs: [string, string[]][] = [
      ['inspect', ['inspect', bomb]],
      ['ingest-table', ['ingest-table', '--out', path.join(out, 't.geojson'), bomb]],
      ['ingest-image', ['ingest-image', '--mixer', path.join(dir, 'mixer.json'), '--out', path.join(out, 'p.tif'), bomb]],
    ];
    for (const [name, args] of runs) {
      const r = await geotfrMeasured(args, { cwd: dir });
      t.diagnostic(`${name}: peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
      assert.notEqual(r.code, 0, `${name}: ${r.stderr}`);
      assert.match(
        r.stderr,
        /LIMIT: .*bomb\.tfrecord\.gz, record 0, byte offset 0: record length 314572800 bytes exceeds the maxRecordBytes limit of 268,435,456 \(set GEOTFR_MAX_RECORD_BYTES/,
        name,
      );
      assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `${name}: peak RSS ${r.peakRssMiB} MiB`);
      // Files only: empty temporary folders are issue 11 item 5's business.
      assert.deepEqual(await listFiles(out), [], `${name}: no output`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test("ingest-image refuses a record longer than the mixer's patch allows at its header, under maxRecordBytes too", async (t) => {
  const dir = await tempDir('geotfr-limits-ingest-');
  try {
    // Record 0: a good 4×4 patch of one float band; record 1 claims 200 MiB (within maxRecordBytes).
    const good = frameRecords([encodeExample([['b1', { kind: 'float_list', value: new Float32Array(16).fill(2) }]])]);
    const file = path.join(dir, 'pred.tfrecord.gz');
    await fs.writeFile(file, await compressedZeros('gzip', 200 * MiB, Buffer.concat([good, recordHeader(200 * MiB)])));
    await fs.writeFile(path.join(dir, 'mixer.json'), mixer);
    const tif = path.join(dir, 'out', 'p.tif');
    await fs.mkdir(path.dirname(tif));
    const r = await geotfrMeasured(['ingest-image', '--mixer', path.join(dir, 'mixer.json'), '--out', tif, file], { cwd: dir });
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.notEqual(r.code, 0, r.stderr);
    const at = good.length;
    assert.match(
      r.stderr,
      new RegExp(
        `BAD_INPUT: .*pred\\.tfrecord\\.gz, record 1, byte offset ${at}: record length 209715200 bytes is longer than any record a 4×4 patch of the first record's 1 feature\\(s\\) can be \\(mixer; tile-sized predictions need --kernel-size or the export manifest\\)`,
      ),
    );
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(path.dirname(tif)), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
