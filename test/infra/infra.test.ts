/**
 * Offline checks of the deployment (terraform cannot be installed here: ECOSYSTEM.md):
 * every infra/*.tf parses with @cdktf/hcl2json (HashiCorp's HCL parser compiled to WASM, errors with
 * file:line,column), every reference resolves to something declared, and the security and delivery
 * rules of issue 6 hold on what Terraform would create: `./hcl.ts` expands every `for_each` with the
 * variables below, so each function, grant, subscription and trigger is checked as an instance.
 * cloudbuild.yaml is checked with `yaml` + `ajv`.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse, getReferencesInExpression } from '@cdktf/hcl2json';
import YAML from 'yaml';
import { Ajv } from 'ajv';
import { OPTIONS } from '../../shared/options.js';
import { repoRoot } from '../support/oracles.js';
import { Evaluator, type Instance, type Value } from './hcl.js';

const infraDir = path.join(repoRoot, 'infra');
/** The entry points issue 6 names (used when functions/index.ts does not exist yet). */
const ISSUE_ENTRY_POINTS = ['planExport', 'exportShard', 'finalizeExport', 'ingestPredictions', 'deadLetter', 'planIngest', 'ingestStrip', 'finalizeIngest'];

type Block = Record<string, unknown>;
interface Model {
  /** type → name → body */
  resource: Record<string, Record<string, Block>>;
  data: Record<string, Record<string, Block>>;
  variable: Record<string, Block>;
  output: Record<string, Block>;
  locals: Record<string, unknown>;
  /** file → parsed JSON, for walks. */
  files: Record<string, Block>;
}

let model: Model;
let ev: Evaluator;

type BucketRole = 'sources' | 'exports' | 'predictions';
/** What a deployment is planned with: distinct buckets per role, and an extra source bucket. */
const VARS = {
  project_id: 'proj',
  source_bucket_name: 'src-bkt',
  export_bucket_name: 'exp-bkt',
  prediction_bucket_name: 'pred-bkt',
  extra_source_buckets: ['extra-src-bkt'],
  plan_invokers: ['group:geo-team@example.com'],
} satisfies Record<string, Value>;
const BUCKETS: Record<BucketRole, string[]> = { sources: ['src-bkt', 'extra-src-bkt'], exports: ['exp-bkt'], predictions: ['pred-bkt'] };

/**
 * What each function must be able to do, by entry point: the one table the access tests derive their
 * expectations from. `reads`: buckets its requests may read (source allow-list); `writes`: buckets it
 * writes outputs and job state to (destination allow-list); `publishes`: topics; `pushedFrom`: the
 * topic delivering to it; `drops`: the bucket whose object-finalized events trigger it.
 */
const ACCESS: Record<string, { reads: BucketRole[]; writes: BucketRole[]; publishes: string[]; pushedFrom?: string; drops?: BucketRole }> = {
  planExport: { reads: ['sources'], writes: ['exports'], publishes: ['shards', 'finalize'], pushedFrom: 'requests', drops: 'exports' },
  exportShard: { reads: ['sources'], writes: ['exports'], publishes: ['finalize'], pushedFrom: 'shards' },
  finalizeExport: { reads: [], writes: ['exports'], publishes: [], pushedFrom: 'finalize' },
  // The mixer is in the exports bucket; predictions in the prediction bucket (or beside the export).
  // Kept for direct use; ingest drops go to the distributed ingest's planner (docs/semantics.md §13).
  ingestPredictions: { reads: ['exports', 'predictions'], writes: ['predictions'], publishes: [] },
  planIngest: {
    reads: ['exports', 'predictions'],
    writes: ['predictions'],
    publishes: ['strips', 'ingest_finalize'],
    pushedFrom: 'ingest_requests',
    drops: 'predictions',
  },
  ingestStrip: { reads: ['exports', 'predictions'], writes: ['predictions'], publishes: ['ingest_finalize'], pushedFrom: 'strips' },
  finalizeIngest: { reads: [], writes: ['predictions'], publishes: [], pushedFrom: 'ingest_finalize' },
  // Ingest jobs live in the prediction bucket, export jobs in the exports bucket.
  deadLetter: { reads: [], writes: ['exports', 'predictions'], publishes: [], pushedFrom: 'dead_letter' },
};

/** hcl2json gives each block as a one-element array; this unwraps it. */
const one = (v: unknown): Block => (Array.isArray(v) ? (v[0] as Block) : (v as Block));

before(async () => {
  model = { resource: {}, data: {}, variable: {}, output: {}, locals: {}, files: {} };
  const tfFiles = readdirSync(infraDir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  for (const f of tfFiles) {
    const json = (await parse(f, readFileSync(path.join(infraDir, f), 'utf8'))) as Block;
    model.files[f] = json;
    for (const kind of ['resource', 'data'] as const) {
      for (const [type, byName] of Object.entries((json[kind] ?? {}) as Record<string, Record<string, unknown>>)) {
        for (const [name, body] of Object.entries(byName)) {
          const slot = (model[kind][type] ??= {});
          assert.ok(!(name in slot), `${kind} ${type}.${name} declared twice (${f})`);
          slot[name] = one(body);
        }
      }
    }
    for (const kind of ['variable', 'output'] as const)
      for (const [name, body] of Object.entries((json[kind] ?? {}) as Record<string, unknown>)) {
        assert.ok(!(name in model[kind]), `${kind} ${name} declared twice (${f})`);
        model[kind][name] = one(body);
      }
    for (const l of (json.locals ?? []) as Block[]) Object.assign(model.locals, l);
  }
  // The example's scheduled exports, so the scheduler jobs are instances too.
  const example = (await parse('terraform.tfvars.example', readFileSync(path.join(infraDir, 'terraform.tfvars.example'), 'utf8'))) as Block;
  ev = new Evaluator(model, { ...VARS, scheduled_exports: example.scheduled_exports as Value });
});

/** Every instance of a resource type, with its evaluated body. */
async function evaluated(type: string): Promise<{ inst: Instance; body: Record<string, Value> }[]> {
  const out: { inst: Instance; body: Record<string, Value> }[] = [];
  for (const name of Object.keys(model.resource[type] ?? {})) for (const inst of await ev.instances(type, name)) out.push({ inst, body: await ev.body(inst) });
  return out;
}

/** The function instances by address, with their entry points. */
async function functionsByAddress(): Promise<Map<string, { address: string; entryPoint: string; body: Record<string, Value> }>> {
  const fns = await evaluated('google_cloudfunctions2_function');
  return new Map(fns.map(({ inst, body }) => [inst.address, { address: inst.address, entryPoint: String(one(body.build_config).entry_point), body }]));
}

/** Every string in a parsed value, with its path. */
function* strings(v: unknown, at: string[] = []): Generator<[string, string[]]> {
  if (typeof v === 'string') yield [v, at];
  else if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* strings(x, [...at, String(i)]);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) yield* strings(x, [...at, k]);
}

test('every infra/*.tf parses; a syntax error is reported with file, line and column', async () => {
  assert.ok(Object.keys(model.files).length >= 8, `tf files: ${Object.keys(model.files)}`);
  await assert.rejects(parse('broken.tf', 'resource "google_pubsub_topic" "t" {\n  name = \n}\n'), /broken\.tf:2,\d+/);
});

test('every reference (var., local., data., resource) resolves to a declaration', async () => {
  const problems: string[] = [];
  let checked = 0;
  for (const [file, json] of Object.entries(model.files)) {
    for (const [s, at] of strings(json)) {
      if (!s.includes('${')) continue;
      // Variable type constraints are type expressions, not references; moved blocks name old addresses.
      if (at[0] === 'variable' && at[at.length - 1] === 'type') continue;
      if (at[0] === 'moved') continue;
      for (const ref of await getReferencesInExpression(file, s)) {
        const parts = ref.value.split('.');
        const [root, a, b] = parts;
        const where = `${file}: ${at.join('.')}: ${ref.value}`;
        checked++;
        if (root === 'var') {
          if (!(a in model.variable)) problems.push(`undeclared variable (${where})`);
        } else if (root === 'local') {
          if (!(a.replace(/\[.*$/, '') in model.locals)) problems.push(`undeclared local (${where})`);
        } else if (root === 'data') {
          if (!model.data[a]?.[b.replace(/\[.*$/, '')]) problems.push(`undeclared data source (${where})`);
        } else if (['each', 'count', 'path', 'self', 'terraform'].includes(root)) {
          continue;
        } else if (/^[a-z0-9]+_[a-z0-9_]+$/.test(root) && a !== undefined) {
          if (!model.resource[root]?.[a.replace(/\[.*$/, '')]) problems.push(`undeclared resource (${where})`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked > 100, `only ${checked} references found`);
});

test('moved blocks: each old address now names an instance that exists, and is no longer declared', async () => {
  const moved = Object.values(model.files).flatMap((f) => (f.moved ?? []) as Block[]);
  assert.ok(moved.length > 0);
  const addresses = new Set<string>();
  for (const [type, byName] of Object.entries(model.resource))
    for (const name of Object.keys(byName)) for (const i of await ev.instances(type, name)) addresses.add(i.address);
  const strip = (s: unknown) => String(s).replace(/^\$\{(.*)\}$/, '$1');
  for (const m of moved) {
    const from = strip(m.from);
    const to = strip(m.to);
    assert.ok(addresses.has(to), `moved to ${to}: no such instance`);
    assert.ok(!addresses.has(from), `moved from ${from}: still declared`);
    assert.notEqual(from, to);
  }
});

test('every push subscription has a retry policy, a dead-letter policy to another topic, and an authenticated push to its function', async () => {
  const subs = await evaluated('google_pubsub_subscription');
  assert.ok(subs.length > 0, 'no subscriptions declared');
  const fns = await functionsByAddress();
  const pusher = 'google_service_account.pusher.email';
  const delivered: Record<string, string> = {};
  for (const { inst, body } of subs) {
    const name = inst.address;
    const retry = one(body.retry_policy);
    assert.ok(retry?.minimum_backoff && retry?.maximum_backoff, `${name}: retry_policy with backoffs`);
    const dl = one(body.dead_letter_policy);
    assert.ok(dl?.dead_letter_topic, `${name}: dead_letter_policy.dead_letter_topic`);
    assert.equal(dl.max_delivery_attempts, Number(model.variable.max_delivery_attempts.default), `${name}: max_delivery_attempts`);
    assert.notEqual(dl.dead_letter_topic, body.topic, `${name} must not dead-letter into itself`);
    const push = one(body.push_config);
    const oidc = one(push?.oidc_token);
    assert.equal(oidc?.service_account_email, pusher, `${name}: pushes are authenticated as the pusher (oidc_token)`);
    const m = /^(google_cloudfunctions2_function\.[a-z_]+(?:\["[a-z_]+"\])?)\.service_config\[0\]\.uri$/.exec(String(push.push_endpoint));
    assert.ok(m && fns.has(m[1]), `${name}: pushes to a function's URI, got ${push.push_endpoint}`);
    assert.equal(oidc.audience, push.push_endpoint, `${name}: token audience`);
    const topic = /^google_pubsub_topic\.topic\["([a-z_]+)"\]\.id$/.exec(String(body.topic));
    assert.ok(topic, `${name}: topic ${body.topic}`);
    delivered[topic[1]] = fns.get(m[1])!.entryPoint;
  }
  const expected = Object.fromEntries(Object.entries(ACCESS).flatMap(([ep, a]) => (a.pushedFrom ? [[a.pushedFrom, ep]] : [])));
  assert.deepEqual(delivered, expected, 'topic → function');
  const maxAttempts = model.variable.max_delivery_attempts;
  assert.ok(Number(maxAttempts.default) >= 5 && Number(maxAttempts.default) <= 100);
});

/** Names exported by functions/index.ts (source text: `export { a, b }` and `export function|const`). */
function functionExports(): string[] | undefined {
  const file = path.join(repoRoot, 'functions', 'index.ts');
  if (!existsSync(file)) return undefined;
  const src = readFileSync(file, 'utf8');
  const names = new Set<string>();
  for (const m of src.matchAll(/export\s*\{([^}]*)\}/g))
    for (const n of m[1].split(','))
      names.add(
        n
          .trim()
          .split(/\s+as\s+/)
          .pop()!
          .trim(),
      );
  for (const m of src.matchAll(/export\s+(?:async\s+)?(?:function|const|let)\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1]);
  names.delete('');
  return [...names];
}

test('every function: a dedicated service account, an exported entry point, Node 20, not public', async () => {
  const fns = [...(await functionsByAddress()).values()];
  assert.equal(fns.length, ISSUE_ENTRY_POINTS.length);
  const exported = functionExports() ?? ISSUE_ENTRY_POINTS;
  const accounts = new Map<string, string>();
  const serviceAccounts = new Set((await evaluated('google_service_account')).map(({ inst }) => inst.address));
  for (const { address, entryPoint: ep, body } of fns) {
    const build = one(body.build_config);
    const svc = one(body.service_config);
    assert.equal(build.runtime, 'nodejs20', `${address}: runtime`);
    assert.ok(exported.includes(ep), `${address}: entry point ${ep} is not exported by functions/index.ts (${exported})`);
    const m = /^(google_service_account\.[a-z0-9_]+(?:\["[a-z0-9_]+"\])?)\.email$/.exec(String(svc.service_account_email));
    assert.ok(m, `${address}: service_account_email must be a google_service_account of its own, got ${svc.service_account_email}`);
    assert.ok(serviceAccounts.has(m[1]), `${address}: service account ${m[1]} declared`);
    assert.ok(!/pusher|eventarc/.test(m[1]), `${address}: runs as a delivery identity ${m[1]}`);
    assert.ok(!accounts.has(m[1]), `${address} shares service account ${m[1]} with ${accounts.get(m[1])}`);
    accounts.set(m[1], address);
    // Only planExport takes traffic from outside the project (authenticated); the rest are internal.
    assert.equal(svc.ingress_settings, ep === 'planExport' ? 'ALLOW_ALL' : 'ALLOW_INTERNAL_ONLY', `${address}: ingress`);
    assert.equal(svc.max_instance_request_concurrency, 1, `${address}: one request per instance`);
  }
  assert.deepEqual(fns.map((f) => f.entryPoint).sort(), [...ISSUE_ENTRY_POINTS].sort());
});

test('no IAM binding anywhere grants allUsers or allAuthenticatedUsers; no primitive or admin roles; project roles only where unavoidable', async () => {
  const bad: string[] = [];
  for (const type of Object.keys(model.resource)) {
    if (/_iam_(binding|policy)$/.test(type)) bad.push(`${type}: authoritative IAM would remove others' grants`);
    for (const { inst, body } of await evaluated(type))
      for (const [s, at] of strings(body)) {
        const key = at[at.length - 1];
        const inMembers = key === 'member' || at.includes('members');
        if (inMembers && /allUsers|allAuthenticatedUsers/.test(s)) bad.push(`${inst.address}: ${at.join('.')} = ${s}`);
        if (key === 'role' && /^roles\/(owner|editor|viewer|storage\.admin|pubsub\.admin|iam\.serviceAccountUser)$/.test(s))
          bad.push(`${inst.address}: broad role ${s}`);
      }
  }
  assert.deepEqual(bad, []);
  // HTTP invokers of planExport come from a variable whose validation refuses public members.
  const v = one(model.variable.plan_invokers.validation);
  assert.match(String(v.condition), /allUsers/);
  // Project-wide grants only where Google offers no narrower scope, and to no function's account.
  const projectGrants = (await evaluated('google_project_iam_member')).map(({ body }) => `${body.role} ${body.member}`).sort();
  assert.deepEqual(projectGrants, [
    'roles/eventarc.eventReceiver serviceAccount:google_service_account.eventarc.email',
    'roles/pubsub.publisher serviceAccount:data.google_storage_project_service_account.gcs_agent.email_address',
  ]);
});

test('buckets: uniform bucket-level access and public access prevention; storage roles scoped to buckets', async () => {
  const buckets = await evaluated('google_storage_bucket');
  assert.ok(buckets.length >= 4);
  for (const { inst, body } of buckets) {
    assert.equal(body.uniform_bucket_level_access, true, `${inst.address}: uniform access`);
    assert.equal(body.public_access_prevention, 'enforced', `${inst.address}: public access prevention`);
  }
  for (const { inst, body } of await evaluated('google_storage_bucket_iam_member'))
    assert.match(String(body.role), /^roles\/storage\.object(Viewer|User|Creator)$/, inst.address);
  // Without a name, the prediction bucket is named after the project and prefix.
  const byDefault = new Evaluator(model, Object.fromEntries(Object.entries(VARS).filter(([k]) => k !== 'prediction_bucket_name')));
  const [pred] = await byDefault.instances('google_storage_bucket', 'predictions');
  assert.equal((await byDefault.body(pred!)).name, `${VARS.project_id}-geotfr-predictions`);
});

test('each function reads and writes exactly the buckets of its role: allow-lists, storage grants, topics, invokers', async () => {
  const fns = await functionsByAddress();
  const grants = await evaluated('google_storage_bucket_iam_member');
  const publishers = await evaluated('google_pubsub_topic_iam_member');
  const invokers = await evaluated('google_cloud_run_service_iam_member');
  const seen = new Set<string>();
  for (const { address, entryPoint: ep, body } of fns.values()) {
    const access = ACCESS[ep];
    assert.ok(access, `${ep}: not in the test's ACCESS table`);
    const svc = one(body.service_config);
    const member = `serviceAccount:${svc.service_account_email}`;
    const env = svc.environment_variables as Record<string, string>;
    const reads = [...new Set([...access.reads, ...access.writes].flatMap((r) => BUCKETS[r]))].sort();
    const writes = access.writes.flatMap((r) => BUCKETS[r]).sort();
    // The allow-lists the code enforces (shared/jobs/policy.ts); an unset one allows nothing.
    const allowList = (k: string) => (env[k] === undefined ? [] : env[k].split(',').sort());
    assert.deepEqual(allowList('GEOTFR_SOURCE_BUCKETS'), access.reads.flatMap((r) => BUCKETS[r]).sort(), `${ep}: GEOTFR_SOURCE_BUCKETS`);
    assert.deepEqual(allowList('GEOTFR_DESTINATION_BUCKETS'), writes, `${ep}: GEOTFR_DESTINATION_BUCKETS`);
    // IAM: objectUser where it writes, objectViewer where it only reads, nothing else.
    const mine = grants
      .filter(({ body: g }) => g.member === member)
      .map(({ body: g }) => `${g.bucket} ${g.role}`)
      .sort();
    const expected = reads.map((b) => `${b} roles/storage.${writes.includes(b) ? 'objectUser' : 'objectViewer'}`).sort();
    assert.deepEqual(mine, expected, `${ep}: storage grants`);
    const topics = publishers
      .filter(({ body: g }) => g.member === member)
      .map(({ body: g }) => String(g.topic))
      .sort();
    assert.deepEqual(topics, access.publishes.map((t) => `google_pubsub_topic.topic["${t}"].id`).sort(), `${ep}: publishes to`);
    const name = String(body.name);
    const callers = invokers
      .filter(({ body: g }) => g.service === name)
      .map(({ body: g }) => String(g.member))
      .sort();
    const expectedCallers = [
      ...(access.pushedFrom ? ['serviceAccount:google_service_account.pusher.email'] : []),
      ...(access.drops ? ['serviceAccount:google_service_account.eventarc.email'] : []),
      ...(ep === 'planExport' ? VARS.plan_invokers : []),
    ].sort();
    assert.deepEqual(callers, expectedCallers, `${ep}: invokers`);
    seen.add(member);
    assert.ok(address);
  }
  // No storage grant to anyone else (the delivery identities read no data).
  assert.deepEqual(
    grants.filter(({ body: g }) => !seen.has(String(g.member))).map(({ inst }) => inst.address),
    [],
  );
});

test('the deployed allow-lists accept the documented flows and refuse crossing them (shared/jobs/policy.ts)', async () => {
  const { policyFromEnv, checkRequestPolicy } = await import('../../shared/jobs/policy.js');
  const { parseIngestRequest } = await import('../../shared/jobs/ingest.js');
  const { cloudConfigFromEnv } = await import('../../shared/jobs/config.js');
  const envOf = async (ep: string) => {
    const f = [...(await functionsByAddress()).values()].find((x) => x.entryPoint === ep)!;
    return one(f.body.service_config).environment_variables as Record<string, string>;
  };
  const [src] = BUCKETS.sources;
  const [exp] = BUCKETS.exports;
  const [pred] = BUCKETS.predictions;
  const exportRequest = (image: string) => ({ image, bucket: exp, fileNamePrefix: 'exports/demo/patches' });
  for (const ep of ['planExport', 'exportShard']) {
    const policy = policyFromEnv(await envOf(ep));
    checkRequestPolicy(exportRequest(`gs://${src}/src/demo.tif`), policy);
    checkRequestPolicy(exportRequest(`gs://${BUCKETS.sources[1]}/src/demo.tif`), policy);
    assert.throws(() => checkRequestPolicy(exportRequest(`gs://${pred}/preds/p.tif`), policy), { code: 'FORBIDDEN' }, `${ep} must not read predictions`);
    assert.throws(
      () => checkRequestPolicy({ ...exportRequest(`gs://${src}/a.tif`), bucket: pred }, policy),
      { code: 'FORBIDDEN' },
      `${ep} must not write predictions`,
    );
  }
  // The documented ingest: mixer in the exports bucket, predictions in either, the COG in the prediction bucket.
  const ingestDeps = { config: cloudConfigFromEnv(await envOf('ingestPredictions')) } as Parameters<typeof parseIngestRequest>[1];
  const ingest = {
    files: [`gs://${pred}/preds/p-00000.tfrecord.gz`, `gs://${exp}/exports/demo/patches-00000.tfrecord.gz`],
    mixer: `gs://${exp}/exports/demo/patches-mixer.json`,
    out: `gs://${pred}/predictions/demo.tif`,
  };
  assert.deepEqual((await parseIngestRequest(ingest, ingestDeps)).files, ingest.files);
  await assert.rejects(parseIngestRequest({ ...ingest, mixer: `gs://${src}/m.json` }, ingestDeps), { code: 'FORBIDDEN' });
  await assert.rejects(parseIngestRequest({ ...ingest, out: `gs://${exp}/x.tif` }, ingestDeps), { code: 'FORBIDDEN' });
});

test('bucket drops reach planExport (exports bucket) and planIngest (prediction bucket) as object-finalized events', async () => {
  const fns = await functionsByAddress();
  const byName = new Map([...fns.values()].map((f) => [String(f.body.name), f.entryPoint]));
  const targets: Record<string, string> = {};
  for (const { inst, body: t } of await evaluated('google_eventarc_trigger')) {
    const criteria = (t.matching_criteria as Block[]).map((c) => `${c.attribute}=${c.value}`).sort();
    const ep = byName.get(String(one(one(t.destination).cloud_run_service).service));
    assert.ok(ep, `${inst.address}: destination is a function`);
    assert.equal(t.service_account, 'google_service_account.eventarc.email', `${inst.address}: runs as the eventarc identity`);
    targets[ep] = criteria.join(' ');
  }
  const expected = Object.fromEntries(
    Object.entries(ACCESS).flatMap(([ep, a]) => (a.drops ? [[ep, `bucket=${BUCKETS[a.drops][0]} type=google.cloud.storage.object.v1.finalized`]] : [])),
  );
  assert.deepEqual(targets, expected);
  // A function must be able to read what is dropped for it.
  for (const [ep, a] of Object.entries(ACCESS)) if (a.drops) assert.ok([...a.reads, ...a.writes].includes(a.drops), `${ep} reads its drop bucket`);
});

test('scheduled exports publish to the request topic; the example request is valid and uses {date}', async () => {
  const jobs = await evaluated('google_cloud_scheduler_job');
  const example = (await parse('terraform.tfvars.example', readFileSync(path.join(infraDir, 'terraform.tfvars.example'), 'utf8'))) as Block;
  const sched = example.scheduled_exports as Record<string, { request_json: string; schedule: string }>;
  assert.ok(Object.keys(sched).length > 0);
  assert.equal(jobs.length, Object.keys(sched).length, 'one job per scheduled export');
  for (const { body: job } of jobs) {
    const target = one(job.pubsub_target);
    assert.equal(target.topic_name, 'google_pubsub_topic.topic["requests"].id');
    assert.ok(
      Object.values(sched).some((s) => Buffer.from(String(target.data), 'base64').toString() === s.request_json),
      'publishes the request',
    );
  }
  assert.match(String(one(model.variable.scheduled_exports.validation).condition), /\{date\\*\}/);
  const { parseImageExportRequest } = await import('../../shared/export/request.js');
  for (const [name, s] of Object.entries(sched)) {
    const req = JSON.parse(s.request_json) as { fileNamePrefix: string };
    assert.ok(req.fileNamePrefix.includes('{date}'), `${name}: {date} in fileNamePrefix`);
    // The same schema the planner applies (docs/semantics.md §2); it fills {date} itself.
    const parsed = parseImageExportRequest(req, { now: new Date('2026-01-05T03:00:00Z') });
    assert.ok(!parsed.fileNamePrefix.includes('{date}'), `${name}: {date} is filled in (${parsed.fileNamePrefix})`);
    assert.match(s.schedule, /^(\S+\s+){4}\S+$/, `${name}: five-field cron`);
  }
});

test('the functions get exactly the configuration the code reads (GEOTFR_* names)', async () => {
  const envs = [...(await functionsByAddress()).values()].map((f) => one(f.body.service_config).environment_variables as Record<string, string>);
  const setByInfra = [...new Set(envs.flatMap((e) => Object.keys(e)).filter((k) => k.startsWith('GEOTFR_')))];
  // Everything but the allow-lists (per function, unset when empty) is the same on every function.
  const common = envs.map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => !/^GEOTFR_(SOURCE|DESTINATION)_BUCKETS$/.test(k))));
  for (const c of common) assert.deepEqual(c, common[0]);
  assert.equal(common[0].GEOTFR_REQUEST_TOPIC, 'geotfr-requests');
  // The cloud configuration: the settings (shared/options.ts) that config.ts, policy.ts and the distributed ingest read, plus progress.
  const srcFiles = ['shared/jobs/config.ts', 'shared/jobs/policy.ts', 'shared/jobs/ingest-strips.ts'].map((f) => path.join(repoRoot, f)).filter(existsSync);
  if (!srcFiles.length) return assert.ok(setByInfra.length > 0);
  const read = new Set<string>(['GEOTFR_PROGRESS']);
  for (const f of srcFiles) for (const m of readFileSync(f, 'utf8').matchAll(/option\('([A-Za-z]+)'/g)) read.add(OPTIONS[m[1] as keyof typeof OPTIONS].env);
  // Settings whose defaults are fit for a deployment, which infra/ may leave unset.
  const defaulted = ['GEOTFR_MAX_EVENT_AGE_SECONDS', 'GEOTFR_MAX_DELIVERY_ATTEMPTS'];
  assert.deepEqual(
    [...read].filter((k) => !setByInfra.includes(k) && !defaulted.includes(k)),
    [],
    'read by the code but never set by infra',
  );
  assert.deepEqual(
    setByInfra.filter((k) => !read.has(k)),
    [],
    'set by infra but read by no code',
  );
});

const cloudbuildSchema = {
  type: 'object',
  required: ['steps'],
  additionalProperties: false,
  properties: {
    steps: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', minLength: 1 },
          name: { type: 'string', minLength: 1 },
          args: { type: 'array', items: { type: 'string' } },
          entrypoint: { type: 'string' },
          dir: { type: 'string' },
          env: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*=' } },
          secretEnv: { type: 'array', items: { type: 'string' } },
          waitFor: { type: 'array', items: { type: 'string' } },
          timeout: { type: 'string', pattern: '^\\d+(\\.\\d+)?s$' },
          script: { type: 'string' },
        },
      },
    },
    substitutions: { type: 'object', propertyNames: { pattern: '^_[A-Z0-9_]+$' }, additionalProperties: { type: 'string' } },
    timeout: { type: 'string', pattern: '^\\d+(\\.\\d+)?s$' },
    options: {
      type: 'object',
      additionalProperties: false,
      properties: {
        logging: { enum: ['LOGGING_UNSPECIFIED', 'LEGACY', 'GCS_ONLY', 'STACKDRIVER_ONLY', 'CLOUD_LOGGING_ONLY', 'NONE'] },
        machineType: { enum: ['UNSPECIFIED', 'N1_HIGHCPU_8', 'N1_HIGHCPU_32', 'E2_HIGHCPU_8', 'E2_HIGHCPU_32', 'E2_MEDIUM'] },
        substitutionOption: { enum: ['MUST_MATCH', 'ALLOW_LOOSE'] },
        dynamicSubstitutions: { type: 'boolean' },
        env: { type: 'array', items: { type: 'string' } },
      },
    },
    images: { type: 'array', items: { type: 'string' } },
    tags: { type: 'array', items: { type: 'string' } },
    serviceAccount: { type: 'string' },
  },
} as const;

test('cloudbuild.yaml: schema-valid; install, build, test, deploy in order; substitutions match their uses', () => {
  const text = readFileSync(path.join(repoRoot, 'cloudbuild.yaml'), 'utf8');
  const doc = YAML.parse(text) as {
    steps: { id?: string; name: string; args?: string[]; entrypoint?: string; waitFor?: string[] }[];
    substitutions?: Record<string, string>;
  };
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(cloudbuildSchema);
  assert.ok(validate(doc), ajv.errorsText(validate.errors));
  // The schema itself rejects what Cloud Build would (e.g. a step without a builder image).
  assert.equal(validate({ steps: [{ args: ['x'] }] }), false);

  const ids = doc.steps.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length, 'step ids are unique');
  for (const s of doc.steps)
    for (const w of s.waitFor ?? [])
      assert.ok(w === '-' || (ids.indexOf(w) >= 0 && ids.indexOf(w) < ids.indexOf(s.id)), `${s.id} waits for an earlier step ${w}`);
  const cmd = (s: (typeof doc.steps)[number]) => [s.name, s.entrypoint ?? '', ...(s.args ?? [])].join(' ');
  const order = [/\bnpm ci\b/, /\bnpm run build\b/, /\btest\/run\.mjs\b/, /\bapply\b.*-auto-approve/].map((re) => doc.steps.findIndex((s) => re.test(cmd(s))));
  assert.ok(
    order.every((i) => i >= 0),
    `steps found: ${order}`,
  );
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    order,
    'install → build → test → deploy',
  );

  // As with substitutionOption MUST_MATCH: every user substitution used is declared and vice versa.
  const used = new Set([...text.replace(/^\s*#.*$/gm, '').matchAll(/\$\{(_[A-Z0-9_]+)\}/g)].map((m) => m[1]));
  const declared = new Set(Object.keys(doc.substitutions ?? {}));
  assert.deepEqual(
    [...used].filter((u) => !declared.has(u)),
    [],
  );
  assert.deepEqual(
    [...declared].filter((d) => !used.has(d)),
    [],
  );
  // The terraform variables passed on the command line exist.
  for (const s of doc.steps)
    for (const a of s.args ?? []) {
      const m = /^-var=([a-z_]+)=/.exec(a);
      if (m) assert.ok(m[1] in model.variable, `cloudbuild passes undeclared variable ${m[1]}`);
    }
});
