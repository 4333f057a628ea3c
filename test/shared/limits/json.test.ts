/**
 * Deep nesting (docs/limits.md, maxJsonDepth): an export request, a mixer, and GeoJSON features
 * nested 100,000 deep are a BAD_INPUT naming the depth and where (byte offset, or line and column in
 * a table), found by a scan before JSON.parse, instead of `INTERNAL: Maximum call stack size
 * exceeded`; a request that arrives parsed (an HTTP body, a Pub/Sub message) is a permanent error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GeotfrError } from '../../../shared/errors.js';
import { cloudConfigFromEnv } from '../../../shared/jobs/config.js';
import { submitJob } from '../../../shared/jobs/planner.js';
import { isRetryable } from '../../../shared/jobs/status.js';
import { InProcessQueue } from '../../../shared/queue/memory.js';
import { listFiles } from '../../support/files.js';
import { tempDir } from '../../support/rasters.js';
import { RSS_BOUND_MIB, geotfrMeasured } from './measure.js';
import { tinyGeoTiff } from './tiff.js';

const DEEP = 100_000;
const nested = (inner = '') => '['.repeat(DEEP) + inner + ']'.repeat(DEEP);

/** Byte offset of the bracket where `text` first nests deeper than `max` (counted naively: no brackets in strings here). */
function offsetPast(text: string, max: number): number {
  let depth = 0;
  const b = Buffer.from(text);
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x5b || b[i] === 0x7b) depth++;
    else if (b[i] === 0x5d || b[i] === 0x7d) depth--;
    if (depth > max) return i;
  }
  throw new Error('not that deep');
}

test('an export request nested 100,000 deep: BAD_INPUT naming the depth and the byte offset, no output', async (t) => {
  const dir = await tempDir('geotfr-limits-json-');
  try {
    const out = path.join(dir, 'out');
    // "é" before the nesting: the offset is in bytes, not characters.
    const text = `{"image":"none.tif","bucket":${JSON.stringify(out)},"description":"é","region":{"type":"Polygon","coordinates":${nested()}},"formatOptions":{"patchDimensions":[8,8]}}`;
    const req = path.join(dir, 'req.json');
    await fs.writeFile(req, text);
    const r = await geotfrMeasured(['export-image', req]);
    t.diagnostic(`peak RSS ${r.peakRssMiB?.toFixed(0)} MiB`);
    assert.notEqual(r.code, 0);
    const at = offsetPast(text, 256);
    assert.match(
      r.stderr,
      new RegExp(
        `BAD_INPUT: .*req\\.json, byte offset ${at}: JSON nests deeper than the maxJsonDepth limit of 256 \\(depth 257 here; set GEOTFR_MAX_JSON_DEPTH`,
      ),
      r.stderr.slice(0, 300),
    );
    assert.ok(r.peakRssMiB !== undefined && r.peakRssMiB < RSS_BOUND_MIB, `peak RSS ${r.peakRssMiB} MiB`);
    assert.deepEqual(await listFiles(out), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a mixer nested 100,000 deep: BAD_INPUT at its byte offset before ingest reads a record', async () => {
  const dir = await tempDir('geotfr-limits-mixer-');
  try {
    const mixer = path.join(dir, 'm-mixer.json');
    // A valid mixer but for patchesPerRow: its error message would print the value (JSON.stringify recurses).
    const text = `{"projection":{"crs":"EPSG:4326","affine":{"doubleMatrix":[0.01,0,10,0,-0.01,50]}},"patchDimensions":[4,4],"patchesPerRow":${nested()},"totalPatches":1}`;
    await fs.writeFile(mixer, text);
    const tif = path.join(dir, 'out', 'p.tif');
    const r = await geotfrMeasured(['ingest-image', '--mixer', mixer, '--out', tif, path.join(dir, 'none.tfrecord')], { cwd: dir });
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      new RegExp(`BAD_INPUT: .*m-mixer\\.json, byte offset ${offsetPast(text, 256)}: JSON nests deeper than the maxJsonDepth limit`),
      r.stderr.slice(0, 300),
    );
    assert.deepEqual(await listFiles(path.join(dir, 'out')), [], 'no output');
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('GeoJSON features nested 100,000 deep (FeatureCollection and one per line): BAD_INPUT at line and column, no output', async () => {
  const dir = await tempDir('geotfr-limits-geojson-deep-');
  try {
    const feature = `{"type":"Feature","geometry":null,"properties":{"a":1,"deep":${nested('1')}}}`;
    const files = {
      'fc.geojson': `{"type":"FeatureCollection","features":[\n${feature}\n]}\n`,
      'lines.geojsonl': `{"type":"Feature","geometry":null,"properties":{"a":1}}\n${feature}\n`,
    };
    for (const [name, text] of Object.entries(files)) {
      const file = path.join(dir, name);
      await fs.writeFile(file, text);
      const out = path.join(dir, 'out');
      const req = path.join(dir, 'req.json');
      await fs.writeFile(req, JSON.stringify({ collection: file, bucket: out, fileNamePrefix: 't', fileFormat: 'TFRecord' }));
      const r = await geotfrMeasured(['export-table', req], { cwd: dir });
      assert.notEqual(r.code, 0, name);
      // Line 2 either way, at the column of the bracket that went too deep; depth counts from the
      // feature (each is parsed on its own), which starts its line.
      const column = offsetPast(feature, 256) + 1;
      assert.match(
        r.stderr,
        new RegExp(`BAD_INPUT: .*${name}.*line 2, column ${column}: JSON nests deeper than the maxJsonDepth limit of 256`),
        `${name}: ${r.stderr.slice(0, 300)}`,
      );
      assert.deepEqual(await listFiles(out), [], `${name}: no output`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a parsed request nested 100,000 deep (HTTP body, Pub/Sub message): permanent BAD_INPUT naming the field', async () => {
  const dir = await tempDir('geotfr-limits-cloud-');
  try {
    const deep = JSON.parse(nested());
    const image = path.join(dir, 'x.tif');
    await fs.writeFile(image, tinyGeoTiff({ width: 64, height: 64, tileWidth: 64, tileHeight: 64, compression: 1, tile: Buffer.alloc(64 * 64 * 4) }));
    const config = cloudConfigFromEnv({ GEOTFR_ALLOW_LOCAL_PATHS: '1', GEOTFR_SOURCE_BUCKETS: '*', GEOTFR_DESTINATION_BUCKETS: '*' });
    const deps = { queue: new InProcessQueue(), config };
    const requests = {
      image: { image, bucket: dir, fileNamePrefix: 'p', region: { type: 'Polygon', coordinates: deep }, formatOptions: { patchDimensions: [8, 8] } },
      table: { collection: path.join(dir, 't.csv'), bucket: dir, fileNamePrefix: 't', fileFormat: 'TFRecord', selectors: deep },
    };
    for (const [kind, request] of Object.entries(requests)) {
      await assert.rejects(submitJob(request, `job-${kind}`, new Date(), deps), (e: unknown) => {
        assert.ok(e instanceof GeotfrError, String(e));
        assert.equal(e.code, 'BAD_INPUT', e.message);
        assert.equal(isRetryable(e), false, 'acknowledged and recorded, not redelivered');
        assert.match(e.message, /JSON nests deeper than the maxJsonDepth limit of 256 \(depth 257 here/);
        assert.match(String(e.context.field), kind === 'image' ? /^region\.coordinates\.0\.0/ : /^selectors\.0\.0/);
        return true;
      });
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
