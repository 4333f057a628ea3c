/**
 * The deployment policy (shared/jobs/policy.ts): allow-lists for sources and destinations, prefix escapes,
 * request size and the maxPixels cap, each rejected with the code and field the functions report.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GeotfrError } from '../../../shared/errors.js';
import { checkRequestPolicy, checkRequestSize, policyFromEnv } from '../../../shared/jobs/policy.js';

const policy = policyFromEnv({
  GEOTFR_SOURCE_BUCKETS: 'gs://imagery, shared-data',
  GEOTFR_DESTINATION_BUCKETS: 'exports',
  GEOTFR_MAX_REQUEST_BYTES: '1000',
  GEOTFR_MAX_PIXELS_CAP: '1e9',
});
const ok = { image: 'gs://imagery/scene.tif', bucket: 'exports', fileNamePrefix: 'runs/{date}/p' };

function rejects(req: unknown, code: string, field: string | RegExp): void {
  assert.throws(
    () => checkRequestPolicy(req, policy),
    (e: unknown) => e instanceof GeotfrError && e.code === code && (typeof field === 'string' ? e.context.field === field : field.test(e.message)),
    JSON.stringify(req),
  );
}

test('allowed sources and destinations pass; the env lists accept names and gs:// URIs', () => {
  assert.deepEqual(policy.sourceBuckets, ['imagery', 'shared-data']);
  checkRequestPolicy(ok, policy);
  checkRequestPolicy({ ...ok, bucket: 'gs://exports' }, policy);
  checkRequestPolicy(
    {
      ...ok,
      image: {
        bands: [
          { name: 'a', uri: 'gs://imagery/a.tif' },
          { name: 'b', uri: 'gs://shared-data/b.tif', band: 2 },
        ],
      },
    },
    policy,
  );
  checkRequestPolicy({ collection: 'gs://shared-data/points.geojson', bucket: 'exports', fileNamePrefix: 'train' }, policy);
});

test('sources outside the allow-list, other schemes and local paths are FORBIDDEN, naming the field', () => {
  rejects({ ...ok, image: 'gs://elsewhere/x.tif' }, 'FORBIDDEN', 'image');
  rejects(
    {
      ...ok,
      image: {
        bands: [
          { name: 'a', uri: 'gs://imagery/a.tif' },
          { name: 'b', uri: 'gs://other/b.tif' },
        ],
      },
    },
    'FORBIDDEN',
    'image.bands[1].uri',
  );
  // Mosaics and STAC items (docs/semantics.md §11): every URI of a list, and the item.
  rejects({ ...ok, image: { bands: [{ name: 'm', uri: ['gs://imagery/a.tif', 'gs://other/b.tif'] }] } }, 'FORBIDDEN', 'image.bands[0].uri[1]');
  rejects({ ...ok, image: { stac: 'gs://other/item.json', bands: ['red'] } }, 'FORBIDDEN', 'image.stac');
  checkRequestPolicy({ ...ok, image: { bands: [{ name: 'm', uri: ['gs://imagery/a.tif', 'gs://shared-data/*.tif'] }] } }, policy);
  rejects({ ...ok, image: 'https://example.com/x.tif' }, 'FORBIDDEN', 'image');
  rejects({ ...ok, image: '/etc/passwd' }, 'FORBIDDEN', 'image');
  rejects({ ...ok, image: 'file:///etc/passwd' }, 'FORBIDDEN', 'image');
  rejects({ ...ok, image: 'gs://imagery/../secret.tif' }, 'FORBIDDEN', 'image');
  rejects({ collection: 'gs://nope/p.csv', bucket: 'exports', fileNamePrefix: 't' }, 'FORBIDDEN', 'collection');
});

test('destinations outside the allow-list and escaping prefixes are FORBIDDEN', () => {
  rejects({ ...ok, bucket: 'imagery' }, 'FORBIDDEN', 'bucket');
  rejects({ ...ok, bucket: '/tmp/out' }, 'FORBIDDEN', 'bucket');
  rejects({ ...ok, fileNamePrefix: '../../etc/p' }, 'FORBIDDEN', 'fileNamePrefix');
  rejects({ ...ok, fileNamePrefix: '/abs/p' }, 'FORBIDDEN', 'fileNamePrefix');
  rejects({ ...ok, fileNamePrefix: 'a/./p' }, 'FORBIDDEN', 'fileNamePrefix');
  rejects({ ...ok, fileNamePrefix: '.geotfr/jobs/x/p' }, 'FORBIDDEN', 'fileNamePrefix');
});

test('maxPixels above the cap is LIMIT; oversized requests are LIMIT; no allow-list means nothing is allowed', () => {
  rejects({ ...ok, maxPixels: 1e10 }, 'LIMIT', 'maxPixels');
  checkRequestPolicy({ ...ok, maxPixels: 1e9 }, policy);
  assert.throws(
    () => checkRequestSize(1001, policy),
    (e: unknown) => e instanceof GeotfrError && e.code === 'LIMIT' && /1001 bytes/.test(e.message),
  );
  checkRequestSize(1000, policy);
  const none = policyFromEnv({});
  assert.throws(
    () => checkRequestPolicy(ok, none),
    (e: unknown) => e instanceof GeotfrError && e.code === 'FORBIDDEN',
  );
  const any = policyFromEnv({ GEOTFR_SOURCE_BUCKETS: '*', GEOTFR_DESTINATION_BUCKETS: '*' });
  checkRequestPolicy({ ...ok, image: 'gs://anything/x.tif', bucket: 'whatever' }, any);
  rejects('not an object', 'BAD_REQUEST', /JSON object/);
});

test('description, when it becomes the prefix, gets the same check as fileNamePrefix (one rule for the prefix)', () => {
  const { fileNamePrefix: _, ...noPrefix } = ok;
  for (const bad of ['.geotfr/jobs/victim/x', '.geotfr', '../x', '/abs/x', 'a/../../b']) {
    const viaPrefix = outcome({ ...noPrefix, fileNamePrefix: bad });
    assert.notEqual(viaPrefix, 'passes', `fileNamePrefix ${bad}`);
    assert.equal(outcome({ ...noPrefix, description: bad }), viaPrefix, `description ${bad}`);
  }
  // fileNamePrefix wins over description, as in Earth Engine: then the description is only a label.
  checkRequestPolicy({ ...ok, description: '.geotfr/jobs/victim/x' }, policy);
  checkRequestPolicy({ ...noPrefix, description: 'runs/p' }, policy);
});

/** What the policy says about a request: "passes", or the error's code and field. */
function outcome(req: unknown): string {
  try {
    checkRequestPolicy(req, policy);
    return 'passes';
  } catch (e) {
    return `${(e as GeotfrError).code} ${(e as GeotfrError).context.field}`;
  }
}
