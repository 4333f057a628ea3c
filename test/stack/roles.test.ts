/**
 * The local stack is configured exactly as infra/ configures a deployment (issue 11 item 12): every
 * function's readable and writable bucket roles, and the bucket whose drops trigger it, are the rows of
 * infra/functions.tf's `local.functions`. The stack derives each instance's GEOTFR_SOURCE_BUCKETS /
 * GEOTFR_DESTINATION_BUCKETS from FUNCTION_ROLES as infra/ does from its table, so equal tables mean
 * equal allow-lists.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from '@cdktf/hcl2json';
import { repoRoot } from '../support/oracles.js';
import { FUNCTION_ROLES } from './stack.js';

interface InfraFunction {
  entry_point: string;
  reads: string[];
  writes: string[];
  drops: { bucket: string } | null;
}

test("FUNCTION_ROLES is infra/functions.tf's function table", async () => {
  const model = (await parse('functions.tf', readFileSync(path.join(repoRoot, 'infra', 'functions.tf'), 'utf8'))) as { locals?: Record<string, unknown>[] };
  const locals = Object.assign({}, ...(model.locals ?? [])) as { functions?: Record<string, InfraFunction>; bucket_roles?: Record<string, unknown> };
  assert.ok(locals.functions, 'infra/functions.tf declares local.functions');
  assert.deepEqual(Object.keys(locals.bucket_roles ?? {}).sort(), ['exports', 'predictions', 'sources']);
  const infra = Object.fromEntries(
    Object.values(locals.functions).map((f) => [f.entry_point, { reads: [...f.reads].sort(), writes: [...f.writes].sort(), drops: f.drops?.bucket ?? null }]),
  );
  const stack = Object.fromEntries(
    Object.entries(FUNCTION_ROLES).map(([k, r]) => [k, { reads: [...r.reads].sort(), writes: [...r.writes].sort(), drops: r.drops?.bucket ?? null }]),
  );
  assert.deepEqual(stack, infra);
});
