/**
 * The real `gcloud storage` CLI (google-cloud-cli) against the GCS JSON API test server: upload
 * (multipart, and a parallel composite upload: resumable components, compose, component deletes),
 * `ls -l`, download, `cat` and `rm`, offline and without credentials, configured exactly as
 * docs/cloud.md ("Using gcloud against the local stack") says.
 *
 * gcloud is another client implementation, written in Python on apitools: it sends what the Node
 * client does not (a single-quoted multipart boundary, LF line breaks in multipart bodies, resumable
 * sessions started on `/resumable/upload/...`, `fields=` projections), and it checks the CRC-32C of
 * what it downloads itself, so a composite's derived checksum is verified by Google's code.
 *
 * gcloud starts slowly (Python), so the whole session is seven invocations in one test. Without
 * gcloud the test is skipped loudly; under CI it fails instead.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGcsServer } from './server.js';
import { crc32c } from '../../shared/tfrecord/crc32c.js';
import { inCI, run } from '../support/oracles.js';
import { randomBytes } from '../support/random.js';

/** The gcloud executable: GEOTFR_GCLOUD, else the first `gcloud` on PATH (looked up, not run). */
function findGcloud(): string | undefined {
  const candidates = process.env.GEOTFR_GCLOUD
    ? [process.env.GEOTFR_GCLOUD]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((d) => path.join(d, 'gcloud'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Returns the gcloud path, or skips `t` loudly (outside CI) / throws (under CI), as test/support/oracles.ts does. */
function needGcloud(t: TestContext): string | undefined {
  const gcloud = findGcloud();
  if (gcloud) return gcloud;
  const msg = 'gcloud is not available (install google-cloud-cli, or set GEOTFR_GCLOUD to its path)';
  if (inCI) throw new Error(`CI requires ${msg}`);
  process.stderr.write(`\n*** SKIPPING "${t.name}": ${msg} ***\n`);
  t.skip(msg);
  return undefined;
}

const crcB64 = (b: Buffer): string => {
  const o = Buffer.alloc(4);
  o.writeUInt32BE(crc32c(b) >>> 0);
  return o.toString('base64');
};

test('gcloud storage cp (multipart and parallel composite), ls, cp back, cat and rm against the server', { timeout: 15 * 60_000 }, async (t) => {
  const gcloud = needGcloud(t);
  if (!gcloud) return;
  const BUCKET = 'gcloud-test';
  const server = await startGcsServer({ buckets: [BUCKET] });
  const work = await mkdtemp(path.join(os.tmpdir(), 'gcs-gcloud-'));
  t.after(async () => {
    await server.close();
    await rm(work, { recursive: true, force: true });
  });
  const config = path.join(work, 'gcloud-config');
  await mkdir(config);
  // Only this session's settings: inherited CLOUDSDK_* variables (a project, other endpoint
  // overrides, a real account) must not leak in. Undefined values are left out of the child's env.
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.keys(process.env)
      .filter((k) => k.startsWith('CLOUDSDK_'))
      .map((k) => [k, undefined]),
  );
  Object.assign(env, {
    CLOUDSDK_CONFIG: config,
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
  });
  const g = (args: string[], extra: NodeJS.ProcessEnv = {}) => run(gcloud, args, { env: { ...env, ...extra }, cwd: work });

  // 1-2. The configuration docs/cloud.md gives (the trailing slash is required by gcloud).
  await g(['config', 'set', 'auth/disable_credentials', 'true']);
  await g(['config', 'set', 'api_endpoint_overrides/storage', `${server.host}/`]);

  // A small file that stresses the multipart parser (CRLF, LF, a fake delimiter, a trailing CR),
  // and one big enough for a parallel composite upload of 1 MiB components.
  const small = Buffer.concat([Buffer.from('line one\nline two\r\n--not-a-boundary\r\n\r\n'), randomBytes(1, 1000), Buffer.from('\r')]);
  const big = randomBytes(2, 3 * 1024 * 1024 + 12_345);
  await writeFile(path.join(work, 'small.txt'), small);
  await writeFile(path.join(work, 'big.bin'), big);

  // 3. Upload both. The small one goes as one multipart request (gcloud's boundary is single-quoted);
  //    the big one as resumable components composed into the destination, components then deleted.
  await g(['storage', 'cp', 'small.txt', 'big.bin', `gs://${BUCKET}/up/`], {
    CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED: 'True',
    CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_THRESHOLD: '1M',
    CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_COMPONENT_SIZE: '1M',
    CLOUDSDK_STORAGE_RESUMABLE_THRESHOLD: '256K',
  });
  assert.ok((server.counts['upload:multipart'] ?? 0) >= 1, 'the small file went as a multipart upload');
  assert.ok((server.counts['upload:resumable-init'] ?? 0) >= 2, 'the components went as resumable uploads');
  assert.equal(server.counts.compose, 1, 'one compose call');
  const stored = server.store.get(BUCKET, 'up/big.bin');
  assert.ok(stored, 'the composite exists');
  assert.ok((stored.componentCount ?? 0) >= 2, `componentCount ${stored.componentCount}`);
  assert.equal(stored.crc32c, crcB64(big));
  assert.equal(stored.md5Hash, undefined);
  assert.equal(server.store.get(BUCKET, 'up/small.txt')?.crc32c, crcB64(small));
  const names = server.store.list(BUCKET, {}).items.map((o) => o.name);
  assert.deepEqual(names, ['up/big.bin', 'up/small.txt'], 'gcloud deleted its temporary components');

  // 4. Listing, as gcloud prints it: size, time, URL per object, then a total.
  const ls = (await g(['storage', 'ls', '-l', `gs://${BUCKET}/up/`])).stdout.toString();
  const rows = [...ls.matchAll(/^\s*(\d+)\s+\S+\s+(gs:\/\/\S+)\s*$/gm)].map((m) => [m[2], Number(m[1])]);
  assert.deepEqual(
    rows,
    [
      [`gs://${BUCKET}/up/big.bin`, big.length],
      [`gs://${BUCKET}/up/small.txt`, small.length],
    ],
    ls,
  );
  assert.match(ls, /TOTAL: 2 objects/);

  // 5. Download both (gcloud verifies each CRC-32C against its own computation).
  const down = path.join(work, 'down');
  await mkdir(down);
  await g(['storage', 'cp', `gs://${BUCKET}/up/small.txt`, `gs://${BUCKET}/up/big.bin`, `${down}/`]);
  assert.ok((await readFile(path.join(down, 'small.txt'))).equals(small), 'small file downloaded intact');
  assert.ok((await readFile(path.join(down, 'big.bin'))).equals(big), 'composite downloaded intact');

  // 6. cat writes the object's bytes to stdout.
  assert.ok((await g(['storage', 'cat', `gs://${BUCKET}/up/small.txt`])).stdout.equals(small));

  // 7. rm removes both; the bucket is empty afterwards.
  await g(['storage', 'rm', `gs://${BUCKET}/up/small.txt`, `gs://${BUCKET}/up/big.bin`]);
  assert.deepEqual(
    server.store.list(BUCKET, {}).items.map((o) => o.name),
    [],
  );
});
