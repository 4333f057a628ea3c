/**
 * Settings declared once (shared/options.ts): one precedence rule (flag, then env, then default),
 * validation naming the variable, no `GEOTFR_*` variable read anywhere else, and docs/cloud.md's
 * configuration table generated from the declarations (this test fails when they differ).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GeotfrError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { OPTIONS, clearFlagValues, option, optionsTable, setFlagValues } from '../../shared/options.js';
import { repoRoot } from '../support/oracles.js';

test('precedence: the flag, then the environment variable, then the default', () => {
  try {
    assert.deepEqual(option('allowHttps', {}), []);
    assert.deepEqual(option('allowHttps', { GEOTFR_ALLOW_HTTPS: 'https://a.example/x/' }), ['https://a.example/x/']);
    setFlagValues({ allowHttps: 'https://b.example/y/, https://c.example/' });
    assert.deepEqual(option('allowHttps', { GEOTFR_ALLOW_HTTPS: 'https://a.example/x/' }), ['https://b.example/y/', 'https://c.example/']);
  } finally {
    clearFlagValues();
  }
  assert.equal(option('maxEventAgeSeconds', {}), 3600);
  assert.equal(option('maxEventAgeSeconds', { GEOTFR_MAX_EVENT_AGE_SECONDS: '' }), 3600, 'empty counts as unset');
  assert.equal(option('progress', { GEOTFR_PROGRESS: '0' }), false);
  assert.deepEqual(option('sourceBuckets', { GEOTFR_SOURCE_BUCKETS: 'gs://a/, b' }), ['a', 'b']);
});

test('a bad value is a BAD_REQUEST naming the variable or flag and what it expects', () => {
  const bad = (f: () => unknown, field: string, what: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === field && what.test(e.message));
  bad(
    () => option('functionTimeoutSeconds', { GEOTFR_FUNCTION_TIMEOUT_SECONDS: 'soon' }),
    'GEOTFR_FUNCTION_TIMEOUT_SECONDS',
    /must be a positive number, got "soon"/,
  );
  bad(() => option('logLevel', { GEOTFR_LOG_LEVEL: 'loud' }), 'GEOTFR_LOG_LEVEL', /one of INFO, WARNING, ERROR, NONE/);
  bad(() => option('allowHttps', { GEOTFR_ALLOW_HTTPS: 'ftp://x/' }), 'GEOTFR_ALLOW_HTTPS', /http\(s\) prefixes/);
  try {
    setFlagValues({ tileCacheMb: '-1' });
    bad(() => option('tileCacheMb', {}), '--tile-cache-mb', /positive number/);
  } finally {
    clearFlagValues();
  }
  // Every default is valid.
  for (const name of Object.keys(OPTIONS) as (keyof typeof OPTIONS)[]) option(name, {});
});

/** Source files of the package (not tests or benches, whose variables are not settings). */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : n.endsWith('.ts') ? [p] : [];
  });
}

test('no GEOTFR_* variable is read outside shared/options.ts, and every one named in code is declared', () => {
  // Size limits are declared in their own table (shared/limits.ts, docs/limits.md), read the same way.
  const declared = new Set([...Object.values(OPTIONS), ...Object.values(LIMITS)].map((o) => o.env));
  for (const file of ['shared', 'cli', 'functions'].flatMap((d) => sources(path.join(repoRoot, d)))) {
    const src = readFileSync(file, 'utf8');
    const rel = path.relative(repoRoot, file);
    if (rel === path.join('shared', 'options.ts')) continue;
    assert.doesNotMatch(src, /process\.env(\.GEOTFR_|\[['"]GEOTFR_)/, `${rel} reads a GEOTFR_ variable itself`);
    for (const m of src.matchAll(/\bGEOTFR_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g))
      assert.ok(declared.has(m[0]), `${rel} names ${m[0]}, which neither shared/options.ts nor shared/limits.ts declares`);
  }
});

test("docs/cloud.md's configuration table is the one generated from OPTIONS", () => {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'cloud.md'), 'utf8');
  const table = optionsTable();
  assert.ok(doc.includes(table), `docs/cloud.md must contain exactly this table (regenerate it from shared/options.ts optionsTable()):\n${table}`);
});
