/**
 * Every `GEOTFR_*` setting, declared once as data (STYLE.md §5; the shape of functions-framework's
 * `src/options.ts`): a name, its environment variable, a command-line flag where the CLI has one, a
 * default, a validator and one documentation line. One precedence rule for all of them: the flag (when
 * the CLI set one), then the environment variable, then the default. The CLI, the functions and the core
 * all read settings through `option()`; docs/cloud.md's configuration table is generated from `OPTIONS`
 * (a test fails when the two differ).
 *
 * Values are read on every call (not cached), so a function invocation sees the environment it runs in
 * and tests can vary it. Test-runner and bench variables (`GEOTFR_TEST_*`, `GEOTFR_BENCH*`) are not
 * settings of geotfr and are not declared here.
 */
import { GeotfrError } from './errors.js';

/** One setting. `parse` turns the raw string into the value or throws a message saying what is expected. */
export interface OptionSpec<T> {
  env: string;
  /** Long flag of the CLI (`--allow-https`), when the CLI offers one. */
  flag?: string;
  /** Default as written in the docs (parsed like any other value). */
  default: string;
  /** What the docs say the default means, when the raw default would not (`""` → "none: nothing allowed"). */
  defaultDoc?: string;
  parse: (raw: string) => T;
  doc: string;
}

const positive = (raw: string): number => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new Error('a positive number');
  return n;
};
const nonNegativeInt = (raw: string): number => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 0) throw new Error('a non-negative integer');
  return n;
};
const bool = (raw: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off|)$/i.test(raw)) return false;
  throw new Error('1 or 0');
};
/** Comma-separated bucket names (a `gs://` prefix and trailing slashes are dropped). */
const buckets = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) =>
      s
        .trim()
        .replace(/^gs:\/\//, '')
        .replace(/\/+$/, ''),
    )
    .filter(Boolean);
const topic = (raw: string): string => {
  if (!/^[A-Za-z][\w.~+%/-]{2,254}$/.test(raw)) throw new Error('a Pub/Sub topic name');
  return raw;
};
const oneOf =
  <T extends string>(...values: T[]) =>
  (raw: string): T => {
    const v = raw.toUpperCase() as T;
    if (!values.includes(v)) throw new Error(`one of ${values.join(', ')}`);
    return v;
  };
/** Comma-separated http(s) URI prefixes, each naming at least a host and a `/`. */
const httpPrefixes = (raw: string): string[] => {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of list) if (!/^https?:\/\/[^/]+\//i.test(p)) throw new Error(`http(s) prefixes naming a host and a "/" (got ${JSON.stringify(p)})`);
  return list;
};

const spec = <T>(s: OptionSpec<T>) => s;

/** The settings. Keys are the names used in code; the table in docs/cloud.md lists them in this order. */
export const OPTIONS = {
  sourceBuckets: spec({
    env: 'GEOTFR_SOURCE_BUCKETS',
    default: '',
    defaultDoc: '*(none: nothing allowed)*',
    parse: buckets,
    doc: 'comma list of buckets requests may read (`*` = any)',
  }),
  destinationBuckets: spec({
    env: 'GEOTFR_DESTINATION_BUCKETS',
    default: '',
    defaultDoc: '*(none)*',
    parse: buckets,
    doc: 'comma list of buckets requests may write (outputs and job state)',
  }),
  allowLocalPaths: spec({ env: 'GEOTFR_ALLOW_LOCAL_PATHS', default: '0', parse: bool, doc: 'allow local paths in cloud requests (local runs only)' }),
  allowHttps: spec({
    env: 'GEOTFR_ALLOW_HTTPS',
    flag: '--allow-https',
    default: '',
    defaultDoc: '*(none)*',
    parse: httpPrefixes,
    doc: 'comma list of http(s) URI prefixes sources may be read from',
  }),
  maxRequestBytes: spec({ env: 'GEOTFR_MAX_REQUEST_BYTES', default: '262144', parse: positive, doc: 'largest request document or queue message' }),
  maxPixelsCap: spec({ env: 'GEOTFR_MAX_PIXELS_CAP', default: '1e11', parse: positive, doc: 'largest `maxPixels` a request may ask for' }),
  requestTopic: spec({ env: 'GEOTFR_REQUEST_TOPIC', default: 'geotfr-requests', parse: topic, doc: 'topic of export requests (schedules publish here)' }),
  shardTopic: spec({ env: 'GEOTFR_SHARD_TOPIC', default: 'geotfr-shards', parse: topic, doc: 'worker topic: one message per shard or table export' }),
  finalizeTopic: spec({ env: 'GEOTFR_FINALIZE_TOPIC', default: 'geotfr-finalize', parse: topic, doc: 'topic the workers notify after each shard' }),
  functionTimeoutSeconds: spec({
    env: 'GEOTFR_FUNCTION_TIMEOUT_SECONDS',
    default: '540',
    parse: positive,
    doc: 'function time limit (shard split, worker deadline)',
  }),
  shardBytesPerSecond: spec({
    env: 'GEOTFR_SHARD_BYTES_PER_SECOND',
    default: '2e7',
    parse: positive,
    doc: 'worker throughput the shard split assumes (framed bytes/s)',
  }),
  maxEventAgeSeconds: spec({
    env: 'GEOTFR_MAX_EVENT_AGE_SECONDS',
    default: '3600',
    parse: positive,
    doc: 'events older than this are dropped (logged, job failed) so a retry storm ends',
  }),
  maxDeliveryAttempts: spec({
    env: 'GEOTFR_MAX_DELIVERY_ATTEMPTS',
    default: '5',
    parse: positive,
    doc: 'deliveries of one bucket drop before its job is failed (Pub/Sub has its own dead-letter count)',
  }),
  logLevel: spec({
    env: 'GEOTFR_LOG_LEVEL',
    default: 'INFO',
    parse: oneOf('INFO', 'WARNING', 'ERROR', 'NONE'),
    doc: 'functions log level (`INFO`, `WARNING`, `ERROR`, `NONE`; JSON lines)',
  }),
  progress: spec({ env: 'GEOTFR_PROGRESS', flag: '--progress', default: '1', parse: bool, doc: 'progress lines on stderr (`0` silences them)' }),
  tileCacheMb: spec({
    env: 'GEOTFR_TILE_CACHE_MB',
    flag: '--tile-cache-mb',
    default: '0',
    defaultDoc: '*(auto: two block rows, ≤ 256)*',
    parse: (raw) => (raw === '0' ? 0 : positive(raw)),
    doc: 'decoded raster block cache per open raster, MiB',
  }),
  gcsResumableThreshold: spec({
    env: 'GEOTFR_GCS_RESUMABLE_THRESHOLD',
    default: String(8 * 1024 * 1024),
    parse: positive,
    doc: 'uploads at least this large (bytes) are resumable',
  }),
  gcsChunkBytes: spec({
    env: 'GEOTFR_GCS_CHUNK_BYTES',
    default: String(16 * 1024 * 1024),
    parse: positive,
    doc: 'resumable upload chunk (rounded to 256 KiB)',
  }),
  gcsReadRetries: spec({
    env: 'GEOTFR_GCS_READ_RETRIES',
    default: '3',
    parse: nonNegativeInt,
    doc: 'retries of a failed idempotent Cloud Storage read, and of an upload cut off before it was stored',
  }),
  crc32c: spec({
    env: 'GEOTFR_CRC32C',
    default: 'native',
    parse: (raw) => (raw === 'js' ? 'js' : 'native'),
    doc: '`js` forces the JavaScript CRC-32C (for comparisons)',
  }),
  dryRunRateMbps: spec({
    env: 'GEOTFR_RATE_MBPS',
    default: '0',
    defaultDoc: '*(0: the measured rates in docs/grid.md)*',
    parse: (raw) => (raw === '0' ? 0 : positive(raw)),
    doc: '`--dry-run` time estimate: framed MB/s per worker',
  }),
  ingestRequestTopic: spec({
    env: 'GEOTFR_INGEST_REQUEST_TOPIC',
    default: 'geotfr-ingest-requests',
    parse: topic,
    doc: 'topic of distributed ingest requests (docs/semantics.md §13)',
  }),
  stripTopic: spec({ env: 'GEOTFR_STRIP_TOPIC', default: 'geotfr-strips', parse: topic, doc: 'distributed ingest: one message per strip' }),
  ingestFinalizeTopic: spec({
    env: 'GEOTFR_INGEST_FINALIZE_TOPIC',
    default: 'geotfr-ingest-finalize',
    parse: topic,
    doc: 'topic the strip workers notify after each strip',
  }),
  maxStripBytes: spec({
    env: 'GEOTFR_MAX_STRIP_BYTES',
    default: '4e9',
    parse: positive,
    doc: 'pixel bytes per strip when an ingest request sets neither `stripTileRows` nor `workers`',
  }),
  ingestTimeoutSeconds: spec({
    env: 'GEOTFR_INGEST_TIMEOUT_SECONDS',
    default: '3600',
    parse: positive,
    doc: 'time limit of `planIngest` and `finalizeIngest` (HTTP functions)',
  }),
  memoryBudgetMb: spec({
    env: 'GEOTFR_MEMORY_BUDGET_MB',
    flag: '--memory-budget',
    default: '1024',
    parse: (raw) => {
      const n = positive(raw);
      if (n < 64) throw new Error('a number of MiB ≥ 64');
      return n;
    },
    doc: 'memory budget of a process, MiB: source blocks take ≤ 1/4, an ingest row of patches ≤ 1/2 (shared/budget.ts)',
  }),
  heapGrowingPercent: spec({
    env: 'GEOTFR_HEAP_GROWING_PERCENT',
    default: '300',
    parse: (raw) => {
      const n = nonNegativeInt(raw);
      if (n > 1000) throw new Error('a percentage from 0 to 1000');
      return n;
    },
    doc: "function instances: V8's old-generation growing factor is 1 + N/100 (`0`: V8 chooses; functions/heap.ts)",
  }),
  stripThread: spec({
    env: 'GEOTFR_STRIP_THREAD',
    default: '1',
    parse: bool,
    doc: 'strip workers build each strip on a worker thread of their own (`0`: on the request thread; shared/jobs/strip-build.ts)',
  }),
  debug: spec({ env: 'GEOTFR_DEBUG', default: '0', parse: bool, doc: 'CLI errors also print their stack' }),
} as const;

export type OptionName = keyof typeof OPTIONS;
export type OptionValue<K extends OptionName> = ReturnType<(typeof OPTIONS)[K]['parse']>;

/** Flags the CLI parsed (set once at start-up by cli/geotfr.ts), by option name. */
const flags = new Map<OptionName, string>();

/** Records the CLI's flag values (raw strings); they take precedence over the environment. */
export function setFlagValues(values: Partial<Record<OptionName, string>>): void {
  for (const [k, v] of Object.entries(values) as [OptionName, string | undefined][]) if (v !== undefined) flags.set(k, v);
}

/** Forgets the CLI's flags (tests). */
export function clearFlagValues(): void {
  flags.clear();
}

/**
 * The value of one setting: flag, then environment variable, then default. An empty environment
 * variable counts as unset for settings whose default is not empty (infra/ leaves some unset).
 * Invalid values are a BAD_REQUEST naming the variable (or flag) and what it expects.
 */
export function option<K extends OptionName>(name: K, env: NodeJS.ProcessEnv = process.env): OptionValue<K> {
  const o = OPTIONS[name] as OptionSpec<OptionValue<K>>;
  const flag = flags.get(name);
  const fromEnv = env[o.env];
  const [raw, where] =
    flag !== undefined ? [flag, o.flag!] : fromEnv !== undefined && (fromEnv !== '' || o.default === '') ? [fromEnv, o.env] : [o.default, `${o.env} (default)`];
  try {
    return o.parse(raw);
  } catch (err) {
    throw new GeotfrError('BAD_REQUEST', `${where} must be ${(err as Error).message}, got ${JSON.stringify(raw)}`, { field: where });
  }
}

/** The markdown table docs/cloud.md carries (generated; test/shared/options.test.ts compares). */
export function optionsTable(): string {
  const rows = Object.values(OPTIONS).map(
    (o: OptionSpec<unknown>) => `| \`${o.env}\` | ${o.flag ? `\`${o.flag}\`` : ''} | ${o.defaultDoc ?? `\`${o.default}\``} | ${o.doc} |`,
  );
  return ['| variable | CLI flag | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
