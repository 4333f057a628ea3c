/**
 * `objects.compose` on the GCS JSON API test server, driven by the REAL `@google-cloud/storage`
 * client (`bucket.combine`) and by raw JSON API requests for the refusals the client would not send.
 * Every composite is checked against the local concatenation of its sources: bytes, size and a
 * CRC-32C computed here over those bytes (the server derives its own without reading them).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Storage, type File } from '@google-cloud/storage';
import { startGcsServer, type GcsServer } from './server.js';
import { crc32cCombine } from './compose.js';
import { crc32c } from '../../shared/tfrecord/crc32c.js';
import { mulberry32, randomBytes } from '../support/random.js';

const crcB64 = (b: Buffer): string => {
  const o = Buffer.alloc(4);
  o.writeUInt32BE(crc32c(b) >>> 0);
  return o.toString('base64');
};
const httpStatus = (e: unknown): number | undefined => {
  const x = e as { code?: unknown; status?: unknown };
  return typeof x.code === 'number' ? x.code : typeof x.status === 'number' ? x.status : undefined;
};
const hasStatus = (status: number) => (e: unknown) => httpStatus(e) === status;

let server: GcsServer;
let storage: Storage;
const BUCKET = 'compose-test';

before(async () => {
  server = await startGcsServer({ buckets: [BUCKET] });
  storage = new Storage({ apiEndpoint: server.host, projectId: 'test-project', retryOptions: { maxRetries: 0 } });
});
after(async () => {
  await server.close();
});

/** Uploads `data` as `name` (multipart below 1 MiB, else resumable) and returns the client's File. */
async function put(st: Storage, bucket: string, name: string, data: Buffer): Promise<File> {
  const f = st.bucket(bucket).file(name);
  await f.save(data, { resumable: data.length >= 1 << 20, contentType: 'application/x-part' });
  return f;
}

/** POSTs a raw compose request; returns the status and the parsed JSON answer. */
async function rawCompose(dest: string, body: unknown, query = ''): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${server.host}/storage/v1/b/${BUCKET}/o/${encodeURIComponent(dest)}/compose${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

test('crc32cCombine equals the CRC-32C of the concatenation, for random splits and sizes', () => {
  const next = mulberry32(11);
  for (let i = 0; i < 200; i++) {
    const n = Math.floor(next() * 5000);
    const data = randomBytes(1000 + i, n);
    const cut = Math.floor(next() * (n + 1));
    const a = data.subarray(0, cut);
    const b = data.subarray(cut);
    assert.equal(crc32cCombine(crc32c(a), crc32c(b), b.length), crc32c(data) >>> 0, `n=${n} cut=${cut}`);
  }
  // A few long lengths (the shift factor's high bits), checked through zeros: CRC(A‖0^n) computed directly.
  for (const n of [1 << 20, (1 << 24) + 7, 3 * (1 << 24) + 1]) {
    const a = randomBytes(n, 100);
    const zeros = Buffer.alloc(n);
    assert.equal(crc32cCombine(crc32c(a), crc32c(zeros), n), crc32c(Buffer.concat([a, zeros])) >>> 0, `n=${n}`);
  }
});

test('bucket.combine: bytes, size and crc32c of the local concatenation; no md5Hash; componentCount; create-only', async () => {
  const parts = [randomBytes(1, 300_001), randomBytes(2, 0), randomBytes(3, 2 * 1024 * 1024 + 5), randomBytes(4, 17)];
  const files = await Promise.all(parts.map((p, i) => put(storage, BUCKET, `src/part-${i}`, p)));
  const whole = Buffer.concat(parts);
  const dest = storage.bucket(BUCKET).file('out/whole.bin');
  dest.metadata.contentType = 'application/x-whole';
  await storage.bucket(BUCKET).combine(files, dest, { ifGenerationMatch: 0 });
  const [md] = await dest.getMetadata();
  assert.equal(Number(md.size), whole.length);
  assert.equal(md.crc32c, crcB64(whole));
  assert.equal(md.md5Hash, undefined, 'composite objects have no MD5 in GCS');
  assert.equal(md.componentCount, parts.length);
  assert.equal(md.contentType, 'application/x-whole');
  assert.equal(String(md.metageneration), '1');
  const [back] = await dest.download(); // the client checks the CRC-32C header itself
  assert.ok(back.equals(whole));

  // Create-only: a second combine onto the now existing destination is refused and changes nothing.
  await assert.rejects(storage.bucket(BUCKET).combine(files.slice(0, 1), dest, { ifGenerationMatch: 0 }), hasStatus(412));
  await assert.rejects(storage.bucket(BUCKET).combine(files.slice(0, 1), dest, { ifMetagenerationMatch: 2 }), hasStatus(412));
  assert.equal((await dest.getMetadata())[0].generation, md.generation);
  // With the live generation as the precondition it replaces the object with a new generation.
  await storage.bucket(BUCKET).combine(files.slice(3), dest, { ifGenerationMatch: Number(md.generation), ifMetagenerationMatch: 1 });
  const [md2] = await dest.getMetadata();
  assert.ok(BigInt(String(md2.generation)) > BigInt(String(md.generation)));
  assert.ok((await dest.download())[0].equals(parts[3]));
  assert.equal(md2.crc32c, crcB64(parts[3]));
});

test('composites of composites: componentCount sums, ranges across part boundaries, independent of later source changes', async () => {
  const a = randomBytes(10, 70_000);
  const b = randomBytes(11, 130_000);
  const c = randomBytes(12, 5);
  const [fa, fb, fc] = await Promise.all([put(storage, BUCKET, 'nest/a', a), put(storage, BUCKET, 'nest/b', b), put(storage, BUCKET, 'nest/c', c)]);
  const ab = storage.bucket(BUCKET).file('nest/ab');
  await storage.bucket(BUCKET).combine([fa, fb], ab);
  const abab = storage.bucket(BUCKET).file('nest/abcab');
  await storage.bucket(BUCKET).combine([ab, fc, ab], abab);
  const expected = Buffer.concat([a, b, c, a, b]);
  const [md] = await abab.getMetadata();
  assert.equal(md.componentCount, 5, '2 + 1 + 2');
  assert.equal(md.crc32c, crcB64(expected));
  assert.ok((await abab.download())[0].equals(expected));
  const next = mulberry32(5);
  for (let i = 0; i < 25; i++) {
    const start = Math.floor(next() * expected.length);
    const end = start + Math.floor(next() * (expected.length - start));
    const [got] = await abab.download({ start, end });
    assert.ok(got.equals(expected.subarray(start, end + 1)), `range ${start}-${end}`);
  }
  // Replacing and deleting the sources leaves the composite as it was.
  await fa.save(Buffer.from('replaced'), { resumable: false });
  await fb.delete();
  await ab.delete();
  assert.ok((await abab.download())[0].equals(expected));
  assert.equal((await abab.getMetadata())[0].crc32c, crcB64(expected));
});

test('raw JSON API: 33 sources is a 400, 32 is fine; missing source 404; source and destination preconditions 412', async () => {
  const one = Buffer.from('0123456789');
  const [f] = await Promise.all([put(storage, BUCKET, 'raw/one', one)]);
  const [md] = await f.getMetadata();
  const gen = String(md.generation);

  let r = await rawCompose('raw/too-many', { sourceObjects: Array.from({ length: 33 }, () => ({ name: 'raw/one' })) });
  assert.equal(r.status, 400);
  assert.match(String((r.json.error as { message: string }).message), /33.*32/);
  assert.equal((await storage.bucket(BUCKET).file('raw/too-many').exists())[0], false);
  r = await rawCompose('raw/none', { sourceObjects: [] });
  assert.equal(r.status, 400);

  r = await rawCompose('raw/32', {
    sourceObjects: Array.from({ length: 32 }, () => ({ name: 'raw/one', generation: gen })),
    destination: { contentType: 'text/plain' },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.size, String(32 * one.length));
  assert.equal(r.json.crc32c, crcB64(Buffer.concat(Array.from({ length: 32 }, () => one))));
  assert.equal(r.json.componentCount, 32);
  assert.equal(r.json.contentType, 'text/plain');
  assert.equal('md5Hash' in r.json, false);
  assert.ok((await storage.bucket(BUCKET).file('raw/32').download())[0].equals(Buffer.concat(Array.from({ length: 32 }, () => one))));

  r = await rawCompose('raw/missing', { sourceObjects: [{ name: 'raw/one' }, { name: 'raw/no-such-object' }] });
  assert.equal(r.status, 404);
  assert.equal((await storage.bucket(BUCKET).file('raw/missing').exists())[0], false, 'nothing written on a failed compose');
  r = await rawCompose('raw/old-generation', { sourceObjects: [{ name: 'raw/one', generation: String(BigInt(gen) - 1n) }] });
  assert.equal(r.status, 404);
  r = await rawCompose('raw/source-pre', { sourceObjects: [{ name: 'raw/one', objectPreconditions: { ifGenerationMatch: String(BigInt(gen) + 1n) } }] });
  assert.equal(r.status, 412);
  r = await rawCompose('raw/source-pre', { sourceObjects: [{ name: 'raw/one', objectPreconditions: { ifGenerationMatch: gen } }] });
  assert.equal(r.status, 200);

  // Destination preconditions in the query: 0 = create-only, and ifMetagenerationMatch.
  r = await rawCompose('raw/source-pre', { sourceObjects: [{ name: 'raw/one' }] }, '?ifGenerationMatch=0');
  assert.equal(r.status, 412);
  r = await rawCompose('raw/source-pre', { sourceObjects: [{ name: 'raw/one' }] }, '?ifMetagenerationMatch=7');
  assert.equal(r.status, 412);
  r = await rawCompose('raw/fresh', { sourceObjects: [{ name: 'raw/one' }] }, '?ifGenerationMatch=0');
  assert.equal(r.status, 200);
  // Appending to itself: the destination may be one of its own sources.
  r = await rawCompose('raw/fresh', { sourceObjects: [{ name: 'raw/fresh' }, { name: 'raw/one' }] });
  assert.equal(r.status, 200);
  assert.ok((await storage.bucket(BUCKET).file('raw/fresh').download())[0].equals(Buffer.concat([one, one])));

  const nb = await fetch(`${server.host}/storage/v1/b/no-such-bucket/o/x/compose`, {
    method: 'POST',
    body: JSON.stringify({ sourceObjects: [{ name: 'x' }] }),
  });
  assert.equal(nb.status, 404);
  await nb.arrayBuffer();
});

test('deleteSourceObjects removes exactly the generations composed', async () => {
  const a = Buffer.from('aaa');
  const b = Buffer.from('bbbb');
  await Promise.all([put(storage, BUCKET, 'del/a', a), put(storage, BUCKET, 'del/b', b)]);
  const r = await rawCompose('del/ab', { sourceObjects: [{ name: 'del/a' }, { name: 'del/b' }], deleteSourceObjects: true });
  assert.equal(r.status, 200);
  assert.equal((await storage.bucket(BUCKET).file('del/a').exists())[0], false);
  assert.equal((await storage.bucket(BUCKET).file('del/b').exists())[0], false);
  assert.ok((await storage.bucket(BUCKET).file('del/ab').download())[0].equals(Buffer.concat([a, b])));
});

test('a composite fires an object-finalize event like any upload', async (t) => {
  const seen: { headers: http.IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
  const listener = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => listener.close(() => r())));
  const x = Buffer.from('x'.repeat(1000));
  const y = Buffer.from('y'.repeat(10));
  const fx = await put(storage, BUCKET, 'ev/x', x);
  const fy = await put(storage, BUCKET, 'ev/y', y);
  server.addNotify({ url: `http://127.0.0.1:${(listener.address() as AddressInfo).port}/`, bucketFilter: BUCKET, prefix: 'ev/out' });
  await storage.bucket(BUCKET).combine([fx, fy], storage.bucket(BUCKET).file('ev/out.bin'));
  await server.idle();
  assert.equal(seen.length, 1);
  assert.equal(seen[0].headers['ce-type'], 'google.cloud.storage.object.v1.finalized');
  assert.equal(seen[0].headers['ce-subject'], 'objects/ev/out.bin');
  assert.equal(seen[0].body.name, 'ev/out.bin');
  assert.equal(seen[0].body.size, String(x.length + y.length));
  assert.equal(seen[0].body.crc32c, crcB64(Buffer.concat([x, y])));
  assert.equal(seen[0].body.componentCount, 2);
});

test('composing shares the stored bytes: no new body in memory, no new file on disk; files go with their last object', async () => {
  // Memory mode: composing 3 × 8 MiB allocates nothing near their size (it would be ≥ 24 MiB if copied).
  const big = [randomBytes(20, 8 << 20), randomBytes(21, 8 << 20), randomBytes(22, 8 << 20)];
  const files = await Promise.all(big.map((p, i) => put(storage, BUCKET, `mem/${i}`, p)));
  const beforeBytes = process.memoryUsage().arrayBuffers;
  await storage.bucket(BUCKET).combine(files, storage.bucket(BUCKET).file('mem/all'));
  const grown = process.memoryUsage().arrayBuffers - beforeBytes;
  assert.ok(grown < 8 << 20, `array buffers grew by ${grown} bytes while composing`);
  const whole = Buffer.concat(big);
  const [md] = await storage.bucket(BUCKET).file('mem/all').getMetadata();
  assert.equal(md.crc32c, crcB64(whole));
  assert.ok((await storage.bucket(BUCKET).file('mem/all').download())[0].equals(whole));

  // Disk mode: the composite reuses its sources' files; they are removed once no object uses them.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gcs-compose-'));
  const disk = await startGcsServer({ buckets: ['disk'], dir });
  try {
    const st = new Storage({ apiEndpoint: disk.host, projectId: 'p', retryOptions: { maxRetries: 0 } });
    const parts = [randomBytes(30, 1_500_000), randomBytes(31, 40_000), randomBytes(32, 1_200_000)];
    const fs3 = await Promise.all(parts.map((p, i) => put(st, 'disk', `d/${i}`, p)));
    assert.equal((await readdir(dir)).length, 3);
    const out = st.bucket('disk').file('d/out');
    await st.bucket('disk').combine(fs3, out);
    assert.equal((await readdir(dir)).length, 3, 'no new file for the composite');
    await Promise.all(fs3.map((f) => f.delete()));
    assert.equal((await readdir(dir)).length, 3, 'the composite still uses every source file');
    const expected = Buffer.concat(parts);
    assert.ok((await out.download())[0].equals(expected));
    const [mid] = await out.download({ start: 1_400_000, end: 1_600_000 });
    assert.ok(mid.equals(expected.subarray(1_400_000, 1_600_001)));
    assert.equal((await out.getMetadata())[0].crc32c, crcB64(expected));
    await out.delete();
    assert.equal((await readdir(dir)).length, 0, 'files removed with the last object using them');
  } finally {
    await disk.close();
    assert.equal((await readdir(dir)).length, 0);
    await rm(dir, { recursive: true, force: true });
  }
});
