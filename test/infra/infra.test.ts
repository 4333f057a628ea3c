/**
 * Offline checks of the deployment (terraform cannot be installed here: ECOSYSTEM.md):
 * every infra/*.tf parses with @cdktf/hcl2json (HashiCorp's HCL parser compiled to WASM, errors with
 * file:line,column), every reference resolves to something declared, and the security and delivery
 * rules of issue 6 hold structurally. cloudbuild.yaml is checked with `yaml` + `ajv`.
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

const infraDir = path.join(repoRoot, 'infra');
/** The entry points issue 6 names (used when functions/index.ts does not exist yet). */
const ISSUE_ENTRY_POINTS = ['planExport', 'exportShard', 'finalizeExport', 'ingestPredictions', 'deadLetter'];

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

/** hcl2json gives each block as a one-element array; this unwraps it. */
const one = (v: unknown): Block => (Array.isArray(v) ? (v[0] as Block) : (v as Block));

before(async () => {
  model = { resource: {}, data: {}, variable: {}, output: {}, locals: {}, files: {} };
  const tfFiles = readdirSync(infraDir).filter((f) => f.endsWith('.tf')).sort();
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
});

/** Every string in a parsed value, with its path. */
function* strings(v: unknown, at: string[] = []): Generator<[string, string[]]> {
  if (typeof v === 'string') yield [v, at];
  else if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* strings(x, [...at, String(i)]);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) yield* strings(x, [...at, k]);
}

const resources = (type: string): [string, Block][] => Object.entries(model.resource[type] ?? {});

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
      // Variable type constraints are type expressions, not references.
      if (at[0] === 'variable' && at[at.length - 1] === 'type') continue;
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

test('every Pub/Sub subscription has a retry policy and a dead-letter policy to another topic', () => {
  const subs = resources('google_pubsub_subscription');
  assert.ok(subs.length > 0, 'no subscriptions declared');
  for (const [name, body] of subs) {
    const retry = one(body.retry_policy);
    assert.ok(retry?.minimum_backoff && retry?.maximum_backoff, `${name}: retry_policy with backoffs`);
    const dl = one(body.dead_letter_policy);
    assert.ok(dl?.dead_letter_topic, `${name}: dead_letter_policy.dead_letter_topic`);
    assert.ok(dl?.max_delivery_attempts, `${name}: dead_letter_policy.max_delivery_attempts`);
    assert.ok(one(body.push_config)?.oidc_token, `${name}: pushes are authenticated (oidc_token)`);
  }
  // The push map: each topic delivers to its function and dead-letters elsewhere.
  const push = model.locals.push_subscriptions as Record<string, { topic: string; endpoint: string; dead_letter: string }>;
  const expected: Record<string, string> = { requests: 'plan_export', shards: 'export_shard', finalize: 'finalize_export', dead_letter: 'dead_letter' };
  assert.deepEqual(Object.keys(push).sort(), Object.keys(expected).sort());
  for (const [topic, fn] of Object.entries(expected)) {
    assert.equal(push[topic].topic, `\${google_pubsub_topic.${topic}.id}`);
    assert.equal(push[topic].endpoint, `\${google_cloudfunctions2_function.${fn}.service_config[0].uri}`);
    assert.notEqual(push[topic].dead_letter, push[topic].topic, `${topic} must not dead-letter into itself`);
  }
  const maxAttempts = model.variable.max_delivery_attempts;
  assert.ok(Number(maxAttempts.default) >= 5 && Number(maxAttempts.default) <= 100);
});

/** Names exported by functions/index.ts (source text: `export { a, b }` and `export function|const`). */
function functionExports(): string[] | undefined {
  const file = path.join(repoRoot, 'functions', 'index.ts');
  if (!existsSync(file)) return undefined;
  const src = readFileSync(file, 'utf8');
  const names = new Set<string>();
  for (const m of src.matchAll(/export\s*\{([^}]*)\}/g)) for (const n of m[1].split(',')) names.add(n.trim().split(/\s+as\s+/).pop()!.trim());
  for (const m of src.matchAll(/export\s+(?:async\s+)?(?:function|const|let)\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1]);
  names.delete('');
  return [...names];
}

test('every function: a dedicated service account, an exported entry point, Node 20, not public', () => {
  const fns = resources('google_cloudfunctions2_function');
  assert.equal(fns.length, ISSUE_ENTRY_POINTS.length);
  const exported = functionExports() ?? ISSUE_ENTRY_POINTS;
  const accounts = new Map<string, string>();
  const entryPoints: string[] = [];
  for (const [name, body] of fns) {
    const build = one(body.build_config);
    const svc = one(body.service_config);
    assert.equal(build.runtime, 'nodejs20', `${name}: runtime`);
    const ep = String(build.entry_point);
    entryPoints.push(ep);
    assert.ok(exported.includes(ep), `${name}: entry point ${ep} is not exported by functions/index.ts (${exported})`);
    const m = /^\$\{google_service_account\.([a-z0-9_]+)\.email\}$/.exec(String(svc.service_account_email));
    assert.ok(m, `${name}: service_account_email must be a google_service_account of its own, got ${svc.service_account_email}`);
    assert.ok(model.resource.google_service_account?.[m[1]], `${name}: service account ${m[1]} declared`);
    assert.ok(!accounts.has(m[1]), `${name} shares service account ${m[1]} with ${accounts.get(m[1])}`);
    accounts.set(m[1], name);
    // Only planExport takes traffic from outside the project (authenticated); the rest are internal.
    assert.equal(svc.ingress_settings, ep === 'planExport' ? 'ALLOW_ALL' : 'ALLOW_INTERNAL_ONLY', `${name}: ingress`);
  }
  assert.deepEqual(entryPoints.sort(), [...ISSUE_ENTRY_POINTS].sort());
});

test('no IAM binding anywhere grants allUsers or allAuthenticatedUsers; no primitive or admin roles', () => {
  const bad: string[] = [];
  for (const [type, byName] of Object.entries(model.resource)) {
    for (const [name, body] of Object.entries(byName)) {
      for (const [s, at] of strings(body)) {
        const key = at[at.length - 1];
        const inMembers = key === 'member' || at.includes('members');
        if (inMembers && /allUsers|allAuthenticatedUsers/.test(s)) bad.push(`${type}.${name}: ${at.join('.')} = ${s}`);
        if (key === 'role' && /^roles\/(owner|editor|viewer|storage\.admin|pubsub\.admin|iam\.serviceAccountUser)$/.test(s)) bad.push(`${type}.${name}: broad role ${s}`);
      }
    }
  }
  assert.deepEqual(bad, []);
  // HTTP invokers of planExport come from a variable whose validation refuses public members.
  const v = one(model.variable.plan_invokers.validation);
  assert.match(String(v.condition), /allUsers/);
  // Project-wide grants only where Google offers no narrower scope.
  const projectRoles = resources('google_project_iam_member').map(([, b]) => String(b.role)).sort();
  assert.deepEqual(projectRoles, ['roles/eventarc.eventReceiver', 'roles/pubsub.publisher']);
});

test('buckets: uniform bucket-level access and public access prevention', () => {
  const buckets = resources('google_storage_bucket');
  assert.ok(buckets.length >= 2);
  for (const [name, b] of buckets) {
    assert.equal(b.uniform_bucket_level_access, true, `${name}: uniform access`);
    assert.equal(b.public_access_prevention, 'enforced', `${name}: public access prevention`);
  }
  // Storage roles are scoped to buckets, never the project.
  for (const [name, b] of resources('google_storage_bucket_iam_member')) assert.match(String(b.role), /^roles\/storage\.object(Viewer|User|Creator)$/, name);
});

test('bucket drops reach planExport and ingestPredictions as object-finalized events', () => {
  const triggers = resources('google_eventarc_trigger');
  const targets = triggers.map(([name, t]) => {
    const criteria = (t.matching_criteria as Block[]).map((c) => `${c.attribute}=${c.value}`);
    assert.ok(criteria.includes('type=google.cloud.storage.object.v1.finalized'), `${name}: ${criteria}`);
    assert.ok(criteria.some((c) => c.startsWith('bucket=${google_storage_bucket.exports.name}')), `${name}: bucket`);
    assert.ok(t.service_account, `${name}: runs as a service account`);
    return String(one(one(t.destination).cloud_run_service).service);
  });
  assert.deepEqual(targets.sort(), [
    '${google_cloudfunctions2_function.ingest_predictions.name}',
    '${google_cloudfunctions2_function.plan_export.name}',
  ]);
});

test('scheduled exports publish to the request topic; the example request is valid and uses {date}', async () => {
  const jobs = resources('google_cloud_scheduler_job');
  assert.equal(jobs.length, 1);
  const [, job] = jobs[0];
  assert.equal(one(job.pubsub_target).topic_name, '${google_pubsub_topic.requests.id}');
  assert.match(String(one(model.variable.scheduled_exports.validation).condition), /\{date\\*\}/);
  const example = (await parse('terraform.tfvars.example', readFileSync(path.join(infraDir, 'terraform.tfvars.example'), 'utf8'))) as Block;
  const sched = example.scheduled_exports as Record<string, { request_json: string; schedule: string }>;
  assert.ok(Object.keys(sched).length > 0);
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

test('the functions get exactly the configuration the code reads (GEOTFR_* names)', () => {
  const env = model.locals.common_env as Record<string, string>;
  const setByInfra = Object.keys(env).filter((k) => k.startsWith('GEOTFR_'));
  // The cloud configuration: the settings (shared/options.ts) that config.ts and policy.ts read, plus progress.
  const srcFiles = ['shared/jobs/config.ts', 'shared/jobs/policy.ts'].map((f) => path.join(repoRoot, f)).filter(existsSync);
  if (!srcFiles.length) return assert.ok(setByInfra.length > 0);
  const read = new Set<string>(['GEOTFR_PROGRESS']);
  for (const f of srcFiles) for (const m of readFileSync(f, 'utf8').matchAll(/option\('([A-Za-z]+)'/g)) read.add(OPTIONS[m[1] as keyof typeof OPTIONS].env);
  // Settings whose defaults are fit for a deployment, which infra/ may leave unset.
  const defaulted = ['GEOTFR_MAX_EVENT_AGE_SECONDS', 'GEOTFR_MAX_DELIVERY_ATTEMPTS'];
  assert.deepEqual([...read].filter((k) => !setByInfra.includes(k) && !defaulted.includes(k)), [], 'read by the code but never set by infra');
  assert.deepEqual(setByInfra.filter((k) => !read.has(k)), [], 'set by infra but read by no code');
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
  const doc = YAML.parse(text) as { steps: { id?: string; name: string; args?: string[]; entrypoint?: string; waitFor?: string[] }[]; substitutions?: Record<string, string> };
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(cloudbuildSchema);
  assert.ok(validate(doc), ajv.errorsText(validate.errors));
  // The schema itself rejects what Cloud Build would (e.g. a step without a builder image).
  assert.equal(validate({ steps: [{ args: ['x'] }] }), false);

  const ids = doc.steps.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length, 'step ids are unique');
  for (const s of doc.steps) for (const w of s.waitFor ?? []) assert.ok(w === '-' || ids.indexOf(w) >= 0 && ids.indexOf(w) < ids.indexOf(s.id), `${s.id} waits for an earlier step ${w}`);
  const cmd = (s: (typeof doc.steps)[number]) => [s.name, s.entrypoint ?? '', ...(s.args ?? [])].join(' ');
  const order = [/\bnpm ci\b/, /\bnpm run build\b/, /\btest\/run\.mjs\b/, /\bapply\b.*-auto-approve/].map((re) => doc.steps.findIndex((s) => re.test(cmd(s))));
  assert.ok(order.every((i) => i >= 0), `steps found: ${order}`);
  assert.deepEqual([...order].sort((a, b) => a - b), order, 'install → build → test → deploy');

  // As with substitutionOption MUST_MATCH: every user substitution used is declared and vice versa.
  const used = new Set([...text.replace(/^\s*#.*$/gm, '').matchAll(/\$\{(_[A-Z0-9_]+)\}/g)].map((m) => m[1]));
  const declared = new Set(Object.keys(doc.substitutions ?? {}));
  assert.deepEqual([...used].filter((u) => !declared.has(u)), []);
  assert.deepEqual([...declared].filter((d) => !used.has(d)), []);
  // The terraform variables passed on the command line exist.
  for (const s of doc.steps)
    for (const a of s.args ?? []) {
      const m = /^-var=([a-z_]+)=/.exec(a);
      if (m) assert.ok(m[1] in model.variable, `cloudbuild passes undeclared variable ${m[1]}`);
    }
});
