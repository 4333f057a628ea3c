/**
 * The limits table itself (shared/limits.ts): one precedence rule (option, then environment
 * variable, then default), bad values named, errors naming the limit, the JSON depth scan skipping
 * strings, and docs/limits.md carrying the table generated from the declarations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GeotfrError } from '../../../shared/errors.js';
import { LIMITS, checkJsonDepth, checkLimit, checkValueDepth, findJsonDepth, formatCount, limit, limitsTable } from '../../../shared/limits.js';
import { mulberry32 } from '../../support/random.js';
import { repoRoot } from '../../support/oracles.js';

test('precedence: the option, then the environment variable, then the default', () => {
  assert.equal(limit('maxColumns', undefined, {}), LIMITS.maxColumns.default);
  assert.equal(limit('maxColumns', undefined, { GEOTFR_MAX_COLUMNS: '12' }), 12);
  assert.equal(limit('maxColumns', undefined, { GEOTFR_MAX_COLUMNS: ' ' }), LIMITS.maxColumns.default, 'blank counts as unset');
  assert.equal(limit('maxColumns', 7, { GEOTFR_MAX_COLUMNS: '12' }), 7);
  for (const bad of ['0', '-3', '1.5', 'many'])
    assert.throws(
      () => limit('maxColumns', undefined, { GEOTFR_MAX_COLUMNS: bad }),
      (e: unknown) =>
        e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === 'GEOTFR_MAX_COLUMNS' && e.message.includes(JSON.stringify(bad)),
    );
  assert.throws(() => limit('maxColumns', 0), /maxColumns must be a positive integer/);
  // Every default is a positive integer and every variable is distinct.
  for (const s of Object.values(LIMITS)) assert.ok(Number.isInteger(s.default) && s.default > 0);
  assert.equal(new Set(Object.values(LIMITS).map((s) => s.env)).size, Object.keys(LIMITS).length);
});

test('checkLimit: LIMIT naming the limit, its value and its variable; at the limit passes', () => {
  assert.equal(checkLimit('maxJsonDepth', 256, 'x'), 256);
  assert.throws(
    () => checkLimit('maxJsonDepth', 257, 'a depth of 257', { file: 'f.json' }),
    (e: unknown) =>
      e instanceof GeotfrError &&
      e.code === 'LIMIT' &&
      e.message === 'f.json: a depth of 257 exceeds the maxJsonDepth limit of 256 (set GEOTFR_MAX_JSON_DEPTH to change it; docs/limits.md)',
  );
});

test('formatCount groups digits exactly as toLocaleString("en-US") does (random integers of every length)', () => {
  const next = mulberry32(2026);
  const samples = [0, 1, -1, 999, 1000, -1000, 999999, 1000000, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5, 2 ** 60];
  for (let digits = 1; digits <= 16; digits++)
    for (let k = 0; k < 20; k++) {
      const n = Math.floor(next() * 10 ** digits);
      if (Number.isSafeInteger(n) && n > 0) samples.push(n, -n);
    }
  for (const n of samples) assert.equal(formatCount(n), n.toLocaleString('en-US'), String(n));
});

test('the JSON depth scan counts brackets outside strings only, and reports UTF-8 byte offsets', () => {
  assert.equal(findJsonDepth('[[["[[[[\\"[[["]]]', 3), undefined, 'brackets in a string (with an escaped quote) do not count');
  assert.deepEqual(findJsonDepth('{"a":[{"b":[1]}]}', 3), { index: 11, depth: 4 });
  assert.equal(findJsonDepth('{"a":[{"b":[1]}]}', 4), undefined);
  assert.doesNotThrow(() => checkJsonDepth('[[[1]]]', {}, 3));
  assert.throws(
    () => checkJsonDepth('{"é":[[1]]}', { file: 'r.json' }, 2),
    (e: unknown) =>
      e instanceof GeotfrError &&
      e.code === 'BAD_INPUT' &&
      e.context.offset === 7 &&
      /^r\.json, byte offset 7: JSON nests deeper than the maxJsonDepth limit of 2 \(depth 3 here/.test(e.message),
  );
  // Sequential siblings do not add up: depth is nesting, not count.
  assert.doesNotThrow(() => checkJsonDepth('[' + '[1],'.repeat(10_000) + '[1]]', {}, 2));
  assert.doesNotThrow(() => checkValueDepth({ a: [[1], [2]], b: { c: 1 } }, {}, 3));
  assert.throws(
    () => checkValueDepth({ a: [[1], [2]], b: { c: [1] } }, {}, 2),
    (e: unknown) => e instanceof GeotfrError && e.context.field === 'a.0',
  );
});

test('docs/limits.md carries the table generated from LIMITS', () => {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'limits.md'), 'utf8');
  assert.ok(doc.includes(limitsTable()), `docs/limits.md must contain exactly this table (from shared/limits.ts limitsTable()):\n${limitsTable()}`);
});
