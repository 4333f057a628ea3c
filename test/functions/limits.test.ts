/**
 * A request nested 100,000 deep reaching the planExport function (docs/limits.md, maxJsonDepth):
 * as an HTTP body it is answered 400 with BAD_INPUT; as a Pub/Sub push it is acknowledged (2xx, so
 * never redelivered) and its job is recorded `failed` with the reason. Before, both were
 * `INTERNAL: Maximum call stack size exceeded`, which counts as retryable.
 */
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { InProcessQueue } from '../../shared/queue/memory.js';
import type { JobStatus } from '../../shared/jobs/status.js';
import { tempDir } from '../support/rasters.js';
import { tinyGeoTiff } from '../shared/limits/tiff.js';

let tmp: string;
let url: string;
let server: Server;

before(async () => {
  tmp = await tempDir('geotfr-functions-limits-');
  Object.assign(process.env, {
    GEOTFR_ALLOW_LOCAL_PATHS: '1',
    GEOTFR_SOURCE_BUCKETS: '',
    GEOTFR_DESTINATION_BUCKETS: '',
    GEOTFR_LOG_LEVEL: 'NONE',
    GEOTFR_PROGRESS: '0',
  });
  await import('../../functions/index.js');
  const { setQueue } = await import('../../functions/context.js');
  setQueue(new InProcessQueue());
  server = getTestServer('planExport') as Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((r) => server.close(r));
  await fs.rm(tmp, { recursive: true, force: true });
});

/** A bucket holding a real raster, so nothing but the nesting is wrong with the request. */
async function mkBucket(bucket: string): Promise<void> {
  await fs.mkdir(bucket);
  await fs.writeFile(
    path.join(bucket, 'x.tif'),
    tinyGeoTiff({ width: 64, height: 64, tileWidth: 64, tileHeight: 64, compression: 1, tile: Buffer.alloc(64 * 64 * 4) }),
  );
}

const DEEP = 100_000;
const deepRequest = (bucket: string) =>
  `{"image":${JSON.stringify(path.join(bucket, 'x.tif'))},"bucket":${JSON.stringify(bucket)},"fileNamePrefix":"p","region":{"type":"Polygon","coordinates":${'['.repeat(DEEP)}${']'.repeat(DEEP)}},"formatOptions":{"patchDimensions":[8,8]}}`;

test('HTTP: 400 BAD_INPUT naming the field, not a retryable 500', async () => {
  const bucket = path.join(tmp, 'http');
  await mkBucket(bucket);
  const r = await fetch(`${url}/?jobId=deep-http`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deepRequest(bucket) });
  const body = (await r.json()) as { error: { code: string; message: string; retryable: boolean; field?: string } };
  assert.equal(r.status, 400, JSON.stringify(body));
  assert.equal(body.error.code, 'BAD_INPUT');
  assert.equal(body.error.retryable, false);
  assert.match(body.error.message, /JSON nests deeper than the maxJsonDepth limit of 256/);
  assert.match(String(body.error.field), /^region\.coordinates\.0\.0/);
});

test('Pub/Sub push: acknowledged, and the job is recorded failed with the reason', async () => {
  const bucket = path.join(tmp, 'pubsub');
  await mkBucket(bucket);
  const push = {
    subscription: 'projects/test/subscriptions/requests-planExport',
    message: {
      data: Buffer.from(deepRequest(bucket)).toString('base64'),
      attributes: { jobId: 'deep-pubsub' },
      messageId: '1',
      publishTime: new Date().toISOString(),
    },
  };
  const r = await fetch(`${url}/projects/test/topics/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(push),
  });
  const text = await r.text();
  assert.ok(r.status >= 200 && r.status < 300, `acknowledged: ${r.status} ${text}`);
  const jobs = await fs.readdir(path.join(bucket, '.geotfr', 'jobs'));
  assert.equal(jobs.length, 1);
  const s = JSON.parse(await fs.readFile(path.join(bucket, '.geotfr', 'jobs', jobs[0]!, 'status.json'), 'utf8')) as JobStatus;
  assert.equal(s.state, 'failed');
  assert.equal(s.errors[0]?.code, 'BAD_INPUT');
  assert.match(s.errors[0]!.message, /JSON nests deeper than the maxJsonDepth limit of 256/);
});
