/**
 * The http(s) allow-list (shared/storage/http.ts, issue 11 item 15), against a real HTTP server that
 * decodes paths the way many do (`%2f` → `/`, then resolves `..`): whatever a server may make of the
 * URI, it must not reach outside the allowed prefix, and a redirect is a permanent refusal.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GeotfrError } from '../../../shared/errors.js';
import { checkHttpUri, openHttp } from '../../../shared/storage/http.js';

let server: http.Server;
let base: string;
const served: string[] = [];
const FILES: Record<string, Buffer> = { '/ok/x.tif': Buffer.from('allowed bytes'), '/secret.tif': Buffer.from('the secret') };

before(async () => {
  server = http.createServer((req, res) => {
    // A decoding server: percent-decodes the whole path (separators too), then resolves dot segments.
    const p = path.posix.normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!).replaceAll('\\', '/'));
    served.push(p);
    if (p === '/ok/moved.tif') return void res.writeHead(302, { location: '/secret.tif' }).end();
    const body = FILES[p];
    if (!body) return void res.writeHead(404).end();
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200).end(body);
    const [s, e] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
    res.writeHead(206, { 'content-range': `bytes ${s}-${e}/${body.length}` }).end(body.subarray(s, e + 1));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  process.env.GEOTFR_ALLOW_HTTPS = `${base}/ok/`;
});
after(async () => {
  delete process.env.GEOTFR_ALLOW_HTTPS;
  await new Promise((r) => server.close(r));
});

const forbidden = (e: unknown) => e instanceof GeotfrError && e.code === 'FORBIDDEN' && !e.retryable;

test('an allowed URI is read with range requests', async () => {
  const r = openHttp(`${base}/ok/x.tif`, 'image');
  assert.equal((await r.stat('x'))?.size, FILES['/ok/x.tif']!.length);
  assert.equal((await r.readRange('x', 0, 7)).toString(), 'allowed');
});

test('encoded separators, backslashes and dot segments are refused before any request is made', async () => {
  const n = served.length;
  for (const tail of [
    '..%2fsecret.tif',
    '..%2Fsecret.tif',
    '..%5csecret.tif',
    '%2e%2e%2fsecret.tif',
    '..\\secret.tif',
    'a/%2e%2e/%2e%2e/secret.tif',
    './x.tif',
    '%2e/x.tif',
    'sub/../x.tif',
  ]) {
    const uri = `${base}/ok/${tail}`;
    await assert.rejects(
      async () => {
        const r = openHttp(uri, 'image');
        await r.stat('x'); // before the fix, the decoding server answered this one with /secret.tif
      },
      forbidden,
      uri,
    );
  }
  assert.deepEqual(served.slice(n), [], 'no request may reach the server');
  // A prefix only matches whole decoded segments of the same origin.
  assert.throws(() => checkHttpUri(`${base}/okay/x.tif`, [`${base}/ok/`], 'image'), forbidden);
  assert.throws(() => checkHttpUri(`http://127.0.0.2${base.slice(16)}/ok/x.tif`, [`${base}/ok/`], 'image'), forbidden);
  assert.throws(() => checkHttpUri(`http://user:pw@${base.slice(7)}/ok/x.tif`, [`${base}/ok/`], 'image'), forbidden);
  assert.equal(checkHttpUri(`${base}/ok/a%20b.tif`, [`${base}/ok/`], 'image'), `${base}/ok/a%20b.tif`);
});

test('a redirect is a permanent FORBIDDEN naming the target, not a retryable IO error', async () => {
  const r = openHttp(`${base}/ok/moved.tif`, 'image');
  await assert.rejects(
    () => r.stat('x'),
    (e: unknown) => forbidden(e) && /redirects \(HTTP 302 to \/secret\.tif\)/.test((e as Error).message),
  );
  await assert.rejects(() => r.readRange('x', 0, 4), forbidden);
  assert.ok(!served.includes('/secret.tif'), 'the redirect must not be followed');
});
