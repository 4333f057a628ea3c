/**
 * The GCS JSON API test server, driven by the REAL `@google-cloud/storage` client (and raw HTTP
 * where the client cannot be made to send a malformed or partial request). The client checks
 * CRC-32C on whole downloads and uploads itself, so every successful round trip also proves our
 * hashes match Google's implementation.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Storage } from '@google-cloud/storage';
import * as ff from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { startGcsServer, type GcsServer } from './server.js';
import { crc32c } from '../../shared/tfrecord/crc32c.js';
import { randomBytes } from '../support/random.js';

const randomBytesSeeded = (n: number, seed: number): Buffer => randomBytes(seed, n);

const crcB64 = (b: Buffer): string => {
  const o = Buffer.alloc(4);
  o.writeUInt32BE(crc32c(b) >>> 0);
  return o.toString('base64');
};
const md5B64 = (b: Buffer): string => createHash('md5').update(b).digest('base64');

/** The HTTP status on an error from the client (`code` for API errors, `status` for gaxios ones). */
const httpStatus = (e: unknown): number | undefined => {
  const x = e as { code?: unknown; status?: unknown };
  return typeof x.code === 'number' ? x.code : typeof x.status === 'number' ? x.status : undefined;
};
const hasStatus = (status: number) => (e: unknown) => httpStatus(e) === status;

let server: GcsServer;
let storage: Storage;
const BUCKET = 'geotfr-test';

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  // apiEndpoint (not the env var) so this file also covers the `/storage/v1/...` path form;
  // the BlobStore tests use STORAGE_EMULATOR_HOST, which makes the client call `/b/...`.
  storage = new Storage({ apiEndpoint: server.host, projectId: 'test-project', retryOptions: { maxRetries: 0 } });
});
after(async () => {
  await server.close();
});

test('multipart upload, download and metadata: sizes, generations and hashes as GCS computes them', async () => {
  const data = randomBytesSeeded(100_003, 1);
  const f = storage.bucket(BUCKET).file('small/one.bin');
  await f.save(data, { resumable: false, contentType: 'application/x-test' });
  const [md] = await f.getMetadata();
  assert.equal(Number(md.size), data.length);
  assert.equal(md.crc32c, crcB64(data));
  assert.equal(md.md5Hash, md5B64(data));
  assert.equal(md.contentType, 'application/x-test');
  assert.match(String(md.generation), /^\d+$/);
  const [back] = await f.download(); // validated by the client against x-goog-hash
  assert.ok(back.equals(data));
  // A second write is a new, larger generation.
  await f.save(Buffer.from('v2'), { resumable: false });
  const [md2] = await f.getMetadata();
  assert.ok(BigInt(String(md2.generation)) > BigInt(String(md.generation)));
  assert.equal((await f.download())[0].toString(), 'v2');
});

test('multipart bodies as any client writes them: boundary bare, "quoted" or \'quoted\' (gcloud), CRLF or LF line breaks', async () => {
  // Data that looks like framing: line breaks, a fake delimiter, and a trailing CR (which an LF body must keep).
  const data = Buffer.concat([Buffer.from('a\r\n--xyz\n\r\n'), randomBytesSeeded(2000, 8), Buffer.from('\r')]);
  const cases: { param: string; b: string; eol: string }[] = [
    { param: 'boundary=xyz123', b: 'xyz123', eol: '\r\n' },
    { param: 'boundary="xyz123"', b: 'xyz123', eol: '\r\n' },
    { param: "boundary='===============xyz123=='", b: '===============xyz123==', eol: '\n' },
    { param: 'boundary="xyz123"; charset=utf-8', b: 'xyz123', eol: '\n' },
  ];
  for (const [i, c] of cases.entries()) {
    const b = c.b;
    const name = `multipart-forms/${i}.bin`;
    const body = Buffer.concat([
      Buffer.from(
        `--${b}${c.eol}Content-Type: application/json${c.eol}${c.eol}${JSON.stringify({ name, contentType: 'application/x-form' })}${c.eol}--${b}${c.eol}Content-Type: application/x-form${c.eol}${c.eol}`,
      ),
      data,
      Buffer.from(`${c.eol}--${b}--${c.eol}`),
    ]);
    const r = await fetch(`${server.host}/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart`, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; ${c.param}` },
      body: new Uint8Array(body),
    });
    assert.equal(r.status, 200, `${c.param} ${JSON.stringify(c.eol)}: ${await r.text()}`);
    const [back] = await storage.bucket(BUCKET).file(name).download();
    assert.ok(back.equals(data), `${c.param} ${JSON.stringify(c.eol)}`);
  }
});

test('resumable uploads, chunked (256 KiB Content-Range chunks, 308 + Range) and single-request, multi-MB', async () => {
  const data = randomBytesSeeded(3 * 1024 * 1024 + 12_345, 2);
  const before = server.counts['upload:resumable-put'] ?? 0;
  const f = storage.bucket(BUCKET).file('big/chunked.bin');
  await f.save(data, { resumable: true, chunkSize: 256 * 1024 });
  const puts = (server.counts['upload:resumable-put'] ?? 0) - before;
  assert.equal(puts, Math.ceil(data.length / (256 * 1024)), 'one PUT per 256 KiB chunk');
  assert.ok((await f.download())[0].equals(data));

  const g = storage.bucket(BUCKET).file('big/stream.bin');
  await new Promise<void>((resolve, reject) => {
    const w = g.createWriteStream({ resumable: true });
    w.on('finish', resolve).on('error', reject);
    for (let o = 0; o < data.length; o += 65_536) w.write(data.subarray(o, o + 65_536));
    w.end();
  });
  const [md] = await g.getMetadata();
  assert.equal(Number(md.size), data.length);
  assert.equal(md.crc32c, crcB64(data));
});

test('a resumable upload is invisible until its last chunk; status queries, retried chunks and gaps', async () => {
  const data = randomBytesSeeded(600_000, 3);
  const f = storage.bucket(BUCKET).file('partial/obj.bin');
  const [sessionUri] = await f.createResumableUpload();
  const put = (range: string, body?: Buffer) => fetch(sessionUri, { method: 'PUT', headers: { 'Content-Range': range }, body: body && new Uint8Array(body) });
  const chunk = 262_144;
  let r = await put(`bytes 0-${chunk - 1}/*`, data.subarray(0, chunk));
  assert.equal(r.status, 308);
  assert.equal(r.headers.get('range'), `bytes=0-${chunk - 1}`);
  assert.equal((await f.exists())[0], false, 'not visible mid-upload');
  r = await put('bytes */*');
  assert.equal(r.status, 308);
  assert.equal(r.headers.get('range'), `bytes=0-${chunk - 1}`);
  // A retried (overlapping) chunk: the server keeps what it has and appends the rest.
  r = await put(`bytes 100000-${2 * chunk - 1}/*`, data.subarray(100_000, 2 * chunk));
  assert.equal(r.status, 308);
  assert.equal(r.headers.get('range'), `bytes=0-${2 * chunk - 1}`);
  // A gap is refused.
  r = await put(`bytes ${3 * chunk}-${3 * chunk + 9}/*`, data.subarray(3 * chunk, 3 * chunk + 10));
  assert.equal(r.status, 400);
  r = await put(`bytes ${2 * chunk}-${data.length - 1}/${data.length}`, data.subarray(2 * chunk));
  assert.equal(r.status, 200);
  const resource = (await r.json()) as { size: string; crc32c: string };
  assert.equal(resource.size, String(data.length));
  assert.equal(resource.crc32c, crcB64(data));
  assert.ok((await f.download())[0].equals(data));
  // The final request retried after success answers the same object, without a new generation.
  r = await put(`bytes ${2 * chunk}-${data.length - 1}/${data.length}`, data.subarray(2 * chunk));
  assert.equal(r.status, 200);
  assert.equal(((await r.json()) as { generation: string }).generation, (await f.getMetadata())[0].generation);
});

test('ranged downloads match the bytes (end inclusive), suffix ranges, and 416 past the end', async () => {
  const data = randomBytesSeeded(50_000, 4);
  const f = storage.bucket(BUCKET).file('ranges/r.bin');
  await f.save(data, { resumable: false });
  let seed = 99;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let i = 0; i < 20; i++) {
    const start = rnd(data.length);
    const end = start + rnd(data.length - start);
    const [got] = await f.download({ start, end });
    assert.ok(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}`);
  }
  const [tail] = await f.download({ start: data.length - 10, end: data.length + 1000 });
  assert.ok(tail.equals(data.subarray(data.length - 10)));
  const url = `${server.host}/storage/v1/b/${BUCKET}/o/${encodeURIComponent('ranges/r.bin')}?alt=media`;
  let r = await fetch(url, { headers: { Range: 'bytes=-7' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), `bytes ${data.length - 7}-${data.length - 1}/${data.length}`);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(data.subarray(data.length - 7)));
  r = await fetch(url, { headers: { Range: `bytes=${data.length}-` } });
  assert.equal(r.status, 416);
  await r.arrayBuffer();
});

test('listing: prefix, delimiter, pageToken and maxResults give every name once, in byte order', async () => {
  const names: string[] = [];
  for (let i = 0; i < 23; i++) names.push(`list/${['a', 'b', 'c'][i % 3]}/${String(i).padStart(3, '0')}.bin`);
  names.push('list/top.txt', 'list/é.txt', 'list/Z.txt', 'lister.txt');
  await Promise.all(names.map((n) => storage.bucket(BUCKET).file(n).save(Buffer.from(n), { resumable: false })));
  const expected = names.filter((n) => n.startsWith('list/')).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

  const seen: string[] = [];
  let pageToken: string | undefined;
  let pages = 0;
  do {
    const r: unknown[] = await storage.bucket(BUCKET).getFiles({ prefix: 'list/', maxResults: 4, pageToken, autoPaginate: false });
    const [files, next] = r as [{ name: string }[], unknown];
    assert.ok(files.length <= 4);
    seen.push(...files.map((f) => f.name));
    pageToken = (next as { pageToken?: string } | null)?.pageToken;
    pages++;
  } while (pageToken);
  assert.deepEqual(seen, expected);
  assert.equal(pages, Math.ceil(expected.length / 4));

  const [all] = await storage.bucket(BUCKET).getFiles({ prefix: 'list/' }); // autoPaginate across 1000-item pages
  assert.deepEqual(
    all.map((f) => f.name),
    expected,
  );

  // Delimiter: objects directly under list/ plus one prefix per "directory"; pages count both.
  const items: string[] = [];
  const prefixes: string[] = [];
  pageToken = undefined;
  do {
    const r: unknown[] = await storage.bucket(BUCKET).getFiles({ prefix: 'list/', delimiter: '/', maxResults: 2, pageToken, autoPaginate: false });
    const [files, next, resp] = r as [{ name: string }[], unknown, unknown];
    items.push(...files.map((f) => f.name));
    prefixes.push(...((resp as { prefixes?: string[] }).prefixes ?? []));
    pageToken = (next as { pageToken?: string } | null)?.pageToken;
  } while (pageToken);
  assert.deepEqual(prefixes, ['list/a/', 'list/b/', 'list/c/']);
  assert.deepEqual(items, ['list/Z.txt', 'list/top.txt', 'list/é.txt']);
});

test('preconditions: ifGenerationMatch 0 is create-once (412 for multipart and resumable); racing creators yield one object', async () => {
  const f = storage.bucket(BUCKET).file('pre/once.bin');
  await f.save(Buffer.from('first'), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
  await assert.rejects(f.save(Buffer.from('second'), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }), hasStatus(412));
  await assert.rejects(f.save(Buffer.from('third'), { resumable: true, preconditionOpts: { ifGenerationMatch: 0 } }), hasStatus(412));
  assert.equal((await f.download())[0].toString(), 'first');
  const [md] = await f.getMetadata();
  await f.save(Buffer.from('fourth'), { resumable: false, preconditionOpts: { ifGenerationMatch: Number(md.generation) } });
  await assert.rejects(f.save(Buffer.from('fifth'), { resumable: false, preconditionOpts: { ifGenerationMatch: Number(md.generation) } }), hasStatus(412));
  assert.equal((await f.download())[0].toString(), 'fourth');

  // Resumable sessions that all started before any finished: the precondition is checked at completion.
  const g = storage.bucket(BUCKET).file('pre/race.bin');
  const sessions = await Promise.all(
    Array.from({ length: 6 }, () => g.createResumableUpload({ preconditionOpts: { ifGenerationMatch: 0 } }).then((r) => r[0])),
  );
  const results = await Promise.all(
    sessions.map((uri, i) =>
      fetch(uri, { method: 'PUT', headers: { 'Content-Range': 'bytes 0-5/6' }, body: `body-${i}` }).then(async (r) => ({
        status: r.status,
        i,
        text: await r.text(),
      })),
    ),
  );
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 1, JSON.stringify(results.map((r) => r.status)));
  assert.equal(results.filter((r) => r.status === 412).length, 5);
  assert.equal((await g.download())[0].toString(), `body-${ok[0].i}`);
});

test('hash validation: a corrupt upload (wrong crc32c or md5 sent) is rejected and stores nothing', async () => {
  const data = randomBytesSeeded(70_000, 5);
  const wrongCrc = crcB64(Buffer.from('something else'));
  const wrongMd5 = md5B64(Buffer.from('something else'));
  const f = storage.bucket(BUCKET).file('hash/bad-md5.bin');
  await assert.rejects(
    f.save(data, { resumable: false, metadata: { md5Hash: wrongMd5 } }),
    (e: unknown) => httpStatus(e) === 400 && /MD5/.test(String((e as Error).message)),
  );
  assert.equal((await f.exists())[0], false);
  const g = storage.bucket(BUCKET).file('hash/bad-crc.bin');
  await assert.rejects(g.save(data, { resumable: true, metadata: { crc32c: wrongCrc } }));
  assert.equal((await g.exists())[0], false);
  // X-Goog-Hash on a media upload, as clients send it on the final request.
  const url = `${server.host}/upload/storage/v1/b/${BUCKET}/o?uploadType=media&name=hash%2Fmedia.bin`;
  let r = await fetch(url, { method: 'POST', headers: { 'X-Goog-Hash': `crc32c=${wrongCrc}` }, body: new Uint8Array(data) });
  assert.equal(r.status, 400);
  await r.arrayBuffer();
  assert.equal((await storage.bucket(BUCKET).file('hash/media.bin').exists())[0], false);
  r = await fetch(url, { method: 'POST', headers: { 'X-Goog-Hash': `crc32c=${crcB64(data)},md5=${md5B64(data)}` }, body: new Uint8Array(data) });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  assert.ok((await storage.bucket(BUCKET).file('hash/media.bin').download())[0].equals(data));
});

test('deletes: gone afterwards, 404 when missing, 412 on a generation mismatch', async () => {
  const f = storage.bucket(BUCKET).file('del/x.txt');
  await f.save('x', { resumable: false });
  const [md] = await f.getMetadata();
  await assert.rejects(f.delete({ ifGenerationMatch: Number(md.generation) + 1 }), hasStatus(412));
  assert.equal((await f.exists())[0], true);
  await f.delete({ ifGenerationMatch: Number(md.generation) });
  assert.equal((await f.exists())[0], false);
  await assert.rejects(f.delete(), hasStatus(404));
  await assert.rejects(f.download(), hasStatus(404));
  await assert.rejects(storage.bucket('no-such-bucket').file('x').save('x', { resumable: false }), hasStatus(404));
});

test('finalize CloudEvents reach a functions-framework cloudEvent function, filtered by bucket, retried on failure', async (t) => {
  const got: { type: string; source: string; subject?: string; data: Record<string, unknown> }[] = [];
  let failFirst = true;
  ff.cloudEvent('gcsServerTestSink', (ev: ff.CloudEvent<unknown>) => {
    if (failFirst) {
      failFirst = false;
      throw new Error('first delivery fails on purpose');
    }
    got.push({ type: ev.type, source: ev.source, subject: ev.subject, data: ev.data as Record<string, unknown> });
  });
  const fn = getTestServer('gcsServerTestSink');
  await new Promise<void>((r) => fn.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => fn.close(() => r())));
  const url = `http://127.0.0.1:${(fn.address() as AddressInfo).port}/`;

  // A raw listener sees the exact headers.
  const raw: http.IncomingHttpHeaders[] = [];
  const listener = http.createServer((req, res) => {
    raw.push(req.headers);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => listener.close(() => r())));

  server.createBucket('events-bucket');
  server.addNotify({ url, bucketFilter: 'events-bucket' });
  server.addNotify({ url: `http://127.0.0.1:${(listener.address() as AddressInfo).port}/`, bucketFilter: 'events-bucket', prefix: 'requests/' });
  const data = Buffer.from('{"hello":1}');
  await storage.bucket('events-bucket').file('requests/a.json').save(data, { resumable: false, contentType: 'application/json' });
  await storage
    .bucket('events-bucket')
    .file('other/b.bin')
    .save(randomBytesSeeded(300_000, 6), { resumable: true, chunkSize: 256 * 1024 });
  await storage.bucket(BUCKET).file('not-this-bucket.txt').save('x', { resumable: false });
  await server.idle();

  assert.deepEqual(got.map((e) => e.data.name).sort(), ['other/b.bin', 'requests/a.json']);
  const ev = got.find((e) => e.data.name === 'requests/a.json')!;
  assert.equal(ev.type, 'google.cloud.storage.object.v1.finalized');
  assert.equal(ev.source, '//storage.googleapis.com/projects/_/buckets/events-bucket');
  assert.equal(ev.subject, 'objects/requests/a.json');
  assert.equal(ev.data.bucket, 'events-bucket');
  assert.equal(ev.data.size, String(data.length));
  assert.equal(ev.data.contentType, 'application/json');
  assert.equal(ev.data.crc32c, crcB64(data));
  assert.match(String(ev.data.generation), /^\d+$/);
  assert.ok(!Number.isNaN(Date.parse(String(ev.data.timeCreated))));
  const retried = server.deliveries.find((d) => d.url === url && d.attempts > 1);
  assert.ok(retried?.ok, 'the failed first delivery was retried and succeeded');

  assert.equal(raw.length, 1, 'prefix filter: only requests/ reaches the second target');
  assert.equal(raw[0]['ce-specversion'], '1.0');
  assert.equal(raw[0]['ce-type'], 'google.cloud.storage.object.v1.finalized');
  assert.equal(raw[0]['content-type'], 'application/json');
  assert.ok(raw[0]['ce-id']);
});

test('file-backed mode (dir): bodies on disk, multi-MB round trip, files removed on delete and close', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gcs-server-'));
  const disk = await startGcsServer({ buckets: ['disk-bucket'], dir });
  try {
    const st = new Storage({ apiEndpoint: disk.host, projectId: 'p', retryOptions: { maxRetries: 0 } });
    const data = randomBytesSeeded(2 * 1024 * 1024 + 1, 7);
    const f = st.bucket('disk-bucket').file('d/x.bin');
    await f.save(data, { resumable: true, chunkSize: 512 * 1024 });
    assert.equal((await readdir(dir)).length, 1);
    assert.ok((await f.download())[0].equals(data));
    const [part] = await f.download({ start: 1_000_000, end: 1_000_999 });
    assert.ok(part.equals(data.subarray(1_000_000, 1_001_000)));
    await st.bucket('disk-bucket').file('d/empty').save(Buffer.alloc(0), { resumable: false });
    assert.equal((await st.bucket('disk-bucket').file('d/empty').download())[0].length, 0);
    await f.delete();
    assert.equal((await readdir(dir)).length, 1, 'only the empty object remains');
  } finally {
    await disk.close();
    assert.equal((await readdir(dir)).length, 0);
    await rm(dir, { recursive: true, force: true });
  }
});

test('injected faults answer the given status (for retry tests) and are consumed', async () => {
  await storage.bucket(BUCKET).file('fault/x').save('x', { resumable: false });
  server.injectFault({ method: 'GET', pathIncludes: 'fault%2Fx', status: 503, times: 1 });
  await assert.rejects(storage.bucket(BUCKET).file('fault/x').download(), hasStatus(503));
  assert.equal((await storage.bucket(BUCKET).file('fault/x').download())[0].toString(), 'x');
});

test('a dropped answer comes after the work (the upload is stored); a hang-up comes before it (nothing is)', async () => {
  const noRetry = new Storage({ apiEndpoint: server.host, projectId: 'p', retryOptions: { autoRetry: false, maxRetries: 0 } });
  const b = noRetry.bucket(BUCKET);
  const broken = (e: unknown) => httpStatus(e) === undefined && /socket hang up|ECONNRESET/i.test(String((e as Error).message ?? e));
  server.injectFault({ method: 'POST', pathIncludes: 'name=fault%2Fdropped', drop: true, times: 1 });
  await assert.rejects(b.file('fault/dropped').save('kept', { resumable: false }), broken);
  assert.equal((await b.file('fault/dropped').download())[0].toString(), 'kept');
  server.injectFault({ method: 'POST', pathIncludes: 'name=fault%2Fhung', hangUp: true, times: 1 });
  await assert.rejects(b.file('fault/hung').save('lost', { resumable: false }), broken);
  assert.equal((await b.file('fault/hung').exists())[0], false);
  // Both were consumed: the next requests are served and answered.
  await b.file('fault/hung').save('now', { resumable: false });
  assert.equal((await b.file('fault/hung').download())[0].toString(), 'now');
});
