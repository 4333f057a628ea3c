/**
 * What is specific to the Cloud Storage store (the common contract is in blobstore.test.ts):
 * how client failures map to GeotfrError codes and the retryable flag (throw → Pub/Sub redelivers,
 * or record and acknowledge), and that a process killed mid-upload publishes nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Storage } from '@google-cloud/storage';
import { GcsBlobStore, gcsError } from '../../../shared/storage/gcs.js';
import { PreconditionFailed } from '../../../shared/storage/port.js';
import { GeotfrError } from '../../../shared/errors.js';
import { startGcsServer, type GcsServer } from '../../gcs-server/server.js';
import { distRoot } from '../../support/oracles.js';

let server: GcsServer;
const BUCKET = 'gcs-adapter';

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  process.env.STORAGE_EMULATOR_HOST = server.host;
});
after(async () => {
  await server.close();
});

/** A store whose client does not retry, so each injected failure surfaces once. */
function noRetryStore(): GcsBlobStore {
  return new GcsBlobStore(BUCKET, { storage: new Storage({ projectId: 'p', retryOptions: { maxRetries: 0, autoRetry: false } }), readRetries: 0 });
}

const expectError = (code: string, retryable: boolean) => (e: unknown) => {
  assert.ok(e instanceof GeotfrError, `not a GeotfrError: ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.retryable, retryable, e.message);
  assert.ok(e.message.includes(`gs://${BUCKET}/`), `names the object: ${e.message}`);
  return true;
};

test('HTTP failures map to codes: 5xx/429/408 retryable IO, 403 FORBIDDEN, 404 NOT_FOUND, other 4xx permanent', async () => {
  const s = noRetryStore();
  await s.write('err/x.bin', 'x');
  const cases: [number, string, boolean][] = [
    [503, 'IO', true],
    [500, 'IO', true],
    [429, 'IO', true],
    [408, 'IO', true],
    [403, 'FORBIDDEN', false],
    [401, 'FORBIDDEN', false],
    [400, 'IO', false],
  ];
  for (const [status, code, retryable] of cases) {
    server.injectFault({ method: 'GET', pathIncludes: 'err%2Fx.bin', status, times: 1 });
    await assert.rejects(s.read('err/x.bin'), expectError(code, retryable), `read with ${status}`);
    server.injectFault({ method: 'POST', pathIncludes: 'name=err%2Fy.bin', status, times: 1 });
    await assert.rejects(s.write('err/y.bin', 'y'), expectError(code, retryable), `write with ${status}`);
    server.injectFault({ method: 'GET', pathIncludes: '/o?', status, times: 1 });
    await assert.rejects(s.list('err/'), expectError(code, retryable), `list with ${status}`);
  }
  await assert.rejects(s.read('err/none.bin'), expectError('NOT_FOUND', false));
  await assert.rejects(s.readRange('err/none.bin', 0, 10), expectError('NOT_FOUND', false));
  await assert.rejects(s.readRangeChunks('err/none.bin', 0, 10), expectError('NOT_FOUND', false));
  // The fault budget is spent: the object is readable again.
  assert.equal((await s.read('err/x.bin')).toString(), 'x');
});

test('create-once conflicts are PreconditionFailed, not retryable', async () => {
  const s = noRetryStore();
  await s.write('err/once', 'a', { ifNotExists: true });
  await assert.rejects(s.write('err/once', 'b', { ifNotExists: true }), (e: unknown) => e instanceof PreconditionFailed && !(e as GeotfrError).retryable);
});

test('a download corrupted in transit fails the CRC-32C check (retryable) and the retry reads the right bytes', async () => {
  const data = Buffer.from('x'.repeat(10_000) + 'payload');
  await new GcsBlobStore(BUCKET).write('err/corrupt-read.bin', data);
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fcorrupt-read.bin', corrupt: true, times: 1 });
  await assert.rejects(noRetryStore().read('err/corrupt-read.bin'), expectError('IO', true));
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fcorrupt-read.bin', corrupt: true, times: 1 });
  assert.ok((await new GcsBlobStore(BUCKET, { readRetries: 1 }).read('err/corrupt-read.bin')).equals(data));
});

test('an upload corrupted in transit is detected by the client, removed, and reported retryable; a retry stores it once', async () => {
  const s = noRetryStore();
  const data = Buffer.from('shard bytes '.repeat(1000));
  server.injectFault({ method: 'POST', pathIncludes: 'name=err%2Fcorrupt-write.bin', corrupt: true, times: 1 });
  await assert.rejects(s.write('err/corrupt-write.bin', data, { ifNotExists: true }), expectError('IO', true));
  assert.equal(await s.stat('err/corrupt-write.bin'), undefined, 'the corrupted object was deleted, nothing torn remains');
  await s.write('err/corrupt-write.bin', data, { ifNotExists: true });
  assert.ok((await s.read('err/corrupt-write.bin')).equals(data));
});

test('a create-once conflict found mid-stream (resumable path) fails the writer: stream error and commit, no hang', async () => {
  const s = new GcsBlobStore(BUCKET, { resumableThresholdBytes: 256 * 1024, chunkSizeBytes: 256 * 1024 });
  await s.write('err/taken.bin', 'original');
  const w = await s.createWriter('err/taken.bin', { ifNotExists: true });
  const streamError = new Promise<unknown>((resolve) => w.stream.once('error', resolve));
  const chunk = Buffer.alloc(128 * 1024, 1);
  // Write like a producer honouring backpressure, stopping at the first error.
  let failed = false;
  w.stream.once('error', () => (failed = true));
  for (let i = 0; i < 32 && !failed; i++) {
    if (!w.stream.write(chunk)) await Promise.race([new Promise((r) => w.stream.once('drain', r)), streamError]);
  }
  const err = await streamError;
  assert.ok(err instanceof PreconditionFailed, `stream error: ${String(err)}`);
  await assert.rejects(w.commit(), (e: unknown) => e instanceof PreconditionFailed);
  assert.equal((await s.read('err/taken.bin')).toString(), 'original');
});

test('an unreachable endpoint is a retryable IO error', async () => {
  const dead = http.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const port = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  // The client prefers STORAGE_EMULATOR_HOST over apiEndpoint for JSON calls: hide it while constructing.
  const saved = process.env.STORAGE_EMULATOR_HOST;
  delete process.env.STORAGE_EMULATOR_HOST;
  const storage = new Storage({ apiEndpoint: `http://127.0.0.1:${port}`, projectId: 'p', retryOptions: { maxRetries: 0, autoRetry: false } });
  process.env.STORAGE_EMULATOR_HOST = saved;
  const s = new GcsBlobStore(BUCKET, { storage, readRetries: 1 });
  await assert.rejects(s.read('x'), expectError('IO', true));
  await assert.rejects(s.stat('x'), expectError('IO', true));
});

test('idempotent reads retry transient failures (503, 429) with backoff, then give up retryable', async () => {
  const s = new GcsBlobStore(BUCKET, { readRetries: 2 });
  await s.write('err/flaky.bin', 'ok-flaky');
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fflaky.bin', status: 503, times: 2 });
  assert.equal((await s.read('err/flaky.bin')).toString(), 'ok-flaky');
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fflaky.bin', status: 429, times: 2 });
  assert.equal((await s.readRange('err/flaky.bin', 3, 8)).toString(), 'flaky');
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fflaky.bin', status: 503, times: 2 });
  assert.equal(Buffer.concat(await s.readRangeChunks('err/flaky.bin', 3, 8)).toString(), 'flaky');
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fflaky.bin', status: 503, times: 2 });
  assert.equal((await s.stat('err/flaky.bin'))?.size, 8);
  server.injectFault({ method: 'GET', pathIncludes: 'err%2Fflaky.bin', status: 503, times: 10 });
  await assert.rejects(s.read('err/flaky.bin'), expectError('IO', true));
  server.clearFaults();
});

test('gcsError keeps GeotfrErrors and maps unknown throwables to retryable IO', () => {
  const g = new GeotfrError('BAD_INPUT', 'x');
  assert.equal(gcsError(g, 'gs://b/k', 'read'), g);
  const e = gcsError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'gs://b/k', 'read');
  assert.equal(e.code, 'IO');
  assert.equal(e.retryable, true);
  assert.match(e.message, /gs:\/\/b\/k: read: socket hang up/);
});

test('a writer killed mid-upload (SIGKILL after some resumable chunks) publishes nothing; a retry creates the object once', async () => {
  const gcsModule = pathToFileURL(path.join(distRoot, 'shared', 'storage', 'gcs.js')).href;
  const script = `
    const { GcsBlobStore } = await import(${JSON.stringify(gcsModule)});
    const s = new GcsBlobStore(${JSON.stringify(BUCKET)}, { resumableThresholdBytes: 256 * 1024, chunkSizeBytes: 256 * 1024 });
    const w = await s.createWriter('killed/shard-00000.tfrecord.gz', { ifNotExists: true });
    const chunk = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < 6; i++) w.stream.write(chunk);
    process.stdout.write('writing\\n');
    setInterval(() => {}, 1000); // never commits: the parent kills us
  `;
  const before = server.counts['upload:resumable-put'] ?? 0;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, STORAGE_EMULATOR_HOST: server.host, METADATA_SERVER_DETECTION: 'none' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
  const deadline = Date.now() + 20_000;
  while ((server.counts['upload:resumable-put'] ?? 0) - before < 2) {
    if (Date.now() > deadline) throw new Error('the child never uploaded a chunk');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  const s = new GcsBlobStore(BUCKET);
  assert.equal(await s.stat('killed/shard-00000.tfrecord.gz'), undefined, 'no torn object');
  assert.deepEqual(await s.list('killed/'), []);
  // The redelivered task writes the shard again, create-once: it appears exactly once.
  const data = Buffer.alloc(1_000_000, 9);
  await s.write('killed/shard-00000.tfrecord.gz', data, { ifNotExists: true });
  await assert.rejects(s.write('killed/shard-00000.tfrecord.gz', data, { ifNotExists: true }), (e: unknown) => e instanceof PreconditionFailed);
  assert.deepEqual(
    (await s.list('killed/')).map((b) => [b.key, b.size]),
    [['killed/shard-00000.tfrecord.gz', data.length]],
  );
});

test('a one-request write whose answer is lost is found done: create-once or not, sent once', async () => {
  const s = new GcsBlobStore(BUCKET);
  for (const [key, ifNotExists] of [
    ['err/lost-once.json', true],
    ['err/lost-plain.json', false],
  ] as const) {
    const data = `{"key":${JSON.stringify(key)}}`;
    server.injectFault({ method: 'POST', pathIncludes: `name=${encodeURIComponent(key)}`, drop: true, times: 1 });
    const sent = server.counts['upload:multipart'] ?? 0;
    const info = await s.write(key, data, { ifNotExists });
    assert.equal(info.size, data.length);
    assert.equal(info.generation, (await s.stat(key))?.generation, 'the info is of the stored object');
    assert.equal((await s.read(key)).toString(), data);
    assert.equal((server.counts['upload:multipart'] ?? 0) - sent, 1, `${key}: found, not sent again`);
  }
});

test('a one-request write cut off before the server stored it is sent again, within writeRetries', async () => {
  const key = 'err/hung-up.json';
  server.injectFault({ method: 'POST', pathIncludes: `name=${encodeURIComponent(key)}`, hangUp: true, times: 2 });
  const sent = server.counts['upload:multipart'] ?? 0;
  await new GcsBlobStore(BUCKET, { writeRetries: 2 }).write(key, 'third time', { ifNotExists: true });
  assert.equal((await noRetryStore().read(key)).toString(), 'third time');
  assert.equal((server.counts['upload:multipart'] ?? 0) - sent, 1, 'served once: the two cut off were never served');
  // Without retries the broken connection surfaces as a retryable IO error, and nothing is stored.
  const other = 'err/hung-up-2.json';
  server.injectFault({ method: 'POST', pathIncludes: `name=${encodeURIComponent(other)}`, hangUp: true, times: 1 });
  await assert.rejects(new GcsBlobStore(BUCKET, { writeRetries: 0 }).write(other, 'x', { ifNotExists: true }), expectError('IO', true));
  assert.equal(await noRetryStore().stat(other), undefined);
});

test("a create-once write whose answer is lost, over someone else's object, is PreconditionFailed and changes nothing", async () => {
  const s = new GcsBlobStore(BUCKET);
  const key = 'err/lost-taken.json';
  await s.write(key, 'theirs: same length');
  // The 412 answer is lost: the store looks, finds other bytes, sends again, and gets the 412.
  server.injectFault({ method: 'POST', pathIncludes: `name=${encodeURIComponent(key)}`, drop: true, times: 1 });
  await assert.rejects(s.write(key, 'mine!!: same length', { ifNotExists: true }), (e: unknown) => e instanceof PreconditionFailed);
  assert.equal((await s.read(key)).toString(), 'theirs: same length');
});

test('a resumable upload whose last answer is lost is found done; one cut off before it leaves nothing', async () => {
  const s = new GcsBlobStore(BUCKET, { resumableThresholdBytes: 100 * 1024, chunkSizeBytes: 256 * 1024 });
  const data = Buffer.alloc(200 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  // One chunk: its PUT is the session's last request.
  server.injectFault({ method: 'PUT', pathIncludes: 'lost-big.bin', drop: true, times: 1 });
  const info = await s.write('err/lost-big.bin', data, { ifNotExists: true });
  assert.equal(info.size, data.length);
  assert.ok((await s.read('err/lost-big.bin')).equals(data));
  server.injectFault({ method: 'PUT', pathIncludes: 'cut-big.bin', hangUp: true, times: 10 });
  await assert.rejects(s.write('err/cut-big.bin', data, { ifNotExists: true }), expectError('IO', true));
  server.clearFaults();
  assert.equal(await s.stat('err/cut-big.bin'), undefined, 'no object from a session that never finished');
});
