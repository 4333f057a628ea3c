/**
 * `geotfr inspect` (docs/semantics.md §9): what is in these TFRecord files, and how do I parse them in TensorFlow?
 *
 * Streams every record of every file (plain or gzip), decodes it as a SequenceExample (an Example's
 * `features` is field 1 exactly like a SequenceExample's `context`, so one decoder reads both), and
 * keeps per-feature statistics in first-seen order: type, length, and whether either varies or the
 * feature is missing from some records. From those it writes the `tf.io` parse spec to paste.
 *
 * Shapes are never guessed from a length (a `[4, 128, 128]` array band has 256² values): they come
 * from the export manifest (`.geotfr/manifests/<prefix>.json` above the shards) when there is one;
 * otherwise the spec gives the flat length and says the shape is unknown.
 */
import { decodeSequenceExample, type Feature, type FeatureKind } from './tfrecord/example.js';
import { GeotfrError } from './errors.js';
import { recordsOf } from './ingest/records.js';
import { Progress } from './progress.js';
import { findManifest } from './ingest/manifest.js';
import { exportFeatures, type SpecFeature } from './export/parsespec.js';
import type { ExportManifest } from './export/finalize.js';
import { patchManifestFeatures } from './patches/manifest.js';

/** Statistics of one feature (or of one feature list's per-step features). */
export interface FeatureSummary {
  /** Kind in the first record that has the feature. */
  type: FeatureKind;
  /** Number of values (strings for `bytes_list`) in the first record that has the feature. */
  length: number;
  minLength: number;
  maxLength: number;
  /** True when the length differs between records (or steps). */
  varies: boolean;
  /** Records that hold the feature. */
  records: number;
  /** Present only when the kind differs between records: every kind seen. */
  types?: FeatureKind[];
  /** The feature's shape, from the export manifest; absent when unknown (then the spec is flat). */
  shape?: number[];
}

/** Statistics of one SequenceExample feature list. */
export interface FeatureListSummary extends FeatureSummary {
  /** Steps in the first record that has the list; min/max over records. */
  steps: number;
  minSteps: number;
  maxSteps: number;
}

export interface InspectReport {
  files: string[];
  records: number;
  /** `Example`, or `SequenceExample` when any record has feature lists. */
  kind: 'Example' | 'SequenceExample';
  /** Example features (or SequenceExample context) in first-record order. */
  features: Record<string, FeatureSummary>;
  /** SequenceExample feature lists in first-record order (empty for Examples). */
  featureLists: Record<string, FeatureListSummary>;
  /** Record payload bytes (uncompressed). */
  payloadBytes: number;
  /** The TensorFlow parse spec to paste (Python). */
  parseSpec: string;
  /** The export manifest the shapes come from, or null (shapes unknown: flat lengths). */
  manifest: string | null;
}

export interface InspectOptions {
  signal?: AbortSignal;
  /** Progress on stderr (for large inputs it redraws; small inputs print nothing). */
  progress?: boolean;
}

class Stats {
  type: FeatureKind;
  length: number;
  minLength: number;
  maxLength: number;
  records = 0;
  types: Set<FeatureKind>;
  constructor(f: Feature) {
    this.type = f.kind;
    this.length = this.minLength = this.maxLength = f.value.length;
    this.types = new Set([f.kind]);
  }
  add(f: Feature): void {
    const n = f.value.length;
    if (n < this.minLength) this.minLength = n;
    if (n > this.maxLength) this.maxLength = n;
    this.types.add(f.kind);
  }
  summary(): FeatureSummary {
    const s: FeatureSummary = {
      type: this.type,
      length: this.length,
      minLength: this.minLength,
      maxLength: this.maxLength,
      varies: this.minLength !== this.maxLength,
      records: this.records,
    };
    if (this.types.size > 1) s.types = [...this.types];
    return s;
  }
}

class ListStats {
  step?: Stats;
  records = 0;
  steps: number;
  minSteps: number;
  maxSteps: number;
  constructor(steps: number) {
    this.steps = this.minSteps = this.maxSteps = steps;
  }
}

/** Reads every record of `files` (in order) and summarises their features. */
export async function inspectFiles(files: string[], opts: InspectOptions = {}): Promise<InspectReport> {
  if (!files.length) throw new GeotfrError('BAD_REQUEST', 'inspect needs at least one file');
  const features = new Map<string, Stats>();
  const lists = new Map<string, ListStats>();
  let records = 0;
  let payloadBytes = 0;
  const started = performance.now();
  const progress = opts.progress ? new Progress({ label: 'inspect', unit: 'records' }) : undefined;

  // Files (local path, file:// or gs://) are read in order through the BlobStore port.
  for await (const rec of recordsOf(files, { signal: opts.signal, field: 'file' })) {
    const seq = decodeSequenceExample(rec.data, { file: rec.file, record: rec.index, offset: rec.offset });
    for (const [name, f] of seq.context) {
      let s = features.get(name);
      if (!s) features.set(name, (s = new Stats(f)));
      else s.add(f);
      s.records++;
    }
    for (const [name, steps] of seq.featureLists) {
      let l = lists.get(name);
      if (!l) lists.set(name, (l = new ListStats(steps.length)));
      else {
        l.minSteps = Math.min(l.minSteps, steps.length);
        l.maxSteps = Math.max(l.maxSteps, steps.length);
      }
      l.records++;
      for (const f of steps) {
        if (!l.step) l.step = new Stats(f);
        else l.step.add(f);
      }
    }
    records++;
    payloadBytes += rec.data.length;
    progress?.tick(1, rec.data.length);
  }
  // Only long runs get a closing progress line; a quick look stays quiet.
  if (progress && performance.now() - started > 2000) progress.finish();

  const featureOut: Record<string, FeatureSummary> = {};
  for (const [name, s] of features) featureOut[name] = s.summary();
  const listOut: Record<string, FeatureListSummary> = {};
  for (const [name, l] of lists) {
    // A list whose every record has zero steps has no step type: report it as an empty float list.
    const step = l.step?.summary() ?? { type: 'float_list' as const, length: 0, minLength: 0, maxLength: 0, varies: false, records: 0 };
    listOut[name] = { ...step, records: l.records, steps: l.steps, minSteps: l.minSteps, maxSteps: l.maxSteps };
  }
  const kind = lists.size ? 'SequenceExample' : 'Example';
  const manifest = kind === 'Example' ? await exportShapes(files, featureOut) : null;
  const report: InspectReport = { files, records, kind, features: featureOut, featureLists: listOut, payloadBytes, parseSpec: '', manifest };
  report.parseSpec = parseSpec(report);
  return report;
}

const TF_DTYPE: Record<FeatureKind, string> = { float_list: 'tf.float32', int64_list: 'tf.int64', bytes_list: 'tf.string' };

/** A Python string literal for a feature name (names may hold quotes or any Unicode). */
export function pyString(s: string): string {
  let out = "'";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\' || ch === "'") out += '\\' + ch;
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + "'";
}

/**
 * The manifest shared by every file (shards of one export), and the shapes it gives: each feature
 * whose kind and length agree with the manifest gets `shape`. Returns the manifest's URI, or null.
 */
async function exportShapes(files: string[], features: Record<string, FeatureSummary>): Promise<string | null> {
  let found: { uri: string; manifest: Record<string, unknown> } | undefined;
  for (const f of files) {
    const m = await findManifest(f);
    if (!m || (found && found.uri !== m.uri)) return null;
    found = m;
  }
  if (!found) return null;
  let spec: SpecFeature[] | undefined;
  try {
    spec = found.manifest.kind === 'patches' ? patchManifestFeatures(found.manifest) : exportFeatures(found.manifest as unknown as ExportManifest);
  } catch {
    return null; // not a manifest this version understands
  }
  if (!spec) return null;
  const KIND = { float: 'float_list', int64: 'int64_list', bytes: 'bytes_list' } as const;
  for (const f of spec) {
    const s = features[f.name];
    const n = f.shape.reduce((a, b) => a * b, 1);
    if (s && !s.varies && !s.types && s.type === KIND[f.kind] && s.length === n) s.shape = f.shape;
  }
  return found.uri;
}

/**
 * The shape a fixed-length feature is parsed with: the manifest's when known, else flat — `[L]`, or
 * `[]` for a single string (EE's tables parse one value as `[1]`).
 */
export function specShape(s: FeatureSummary): number[] {
  if (s.shape) return s.shape;
  return s.type === 'bytes_list' && s.length === 1 ? [] : [s.length];
}

/** True when a fixed-length feature's shape is not known beyond its flat length. */
function shapeUnknown(s: FeatureSummary): boolean {
  return !s.shape && s.length > 1;
}

function featureSpec(s: FeatureSummary, total: number): string {
  const dtype = TF_DTYPE[s.type];
  // Varying length, absent from some records, or empty: FixedLenFeature would fail to parse.
  if (s.varies || s.records < total || s.length === 0 || s.types) return `tf.io.VarLenFeature(${dtype})`;
  return `tf.io.FixedLenFeature([${specShape(s).join(', ')}], ${dtype})`;
}

function listSpec(s: FeatureListSummary): string {
  const dtype = TF_DTYPE[s.type];
  if (s.varies || s.length === 0 || s.types) return `tf.io.VarLenFeature(${dtype})`;
  const shape = s.type === 'bytes_list' && s.length === 1 ? [] : [s.length];
  return `tf.io.FixedLenSequenceFeature([${shape.join(', ')}], ${dtype})`;
}

function pyDict(name: string, entries: [string, string, string?][]): string {
  if (!entries.length) return `${name} = {}`;
  return `${name} = {\n${entries.map(([k, v, note]) => `    ${pyString(k)}: ${v},${note ? `  # ${note}` : ''}`).join('\n')}\n}`;
}

/** The Python parse spec for a report: a features dict (or context/sequence dicts) and the call. */
export function parseSpec(r: Pick<InspectReport, 'kind' | 'features' | 'featureLists' | 'records'>): string {
  const feats = Object.entries(r.features).map(([k, s]): [string, string, string?] => {
    const spec = featureSpec(s, r.records);
    return [k, spec, spec.startsWith('tf.io.FixedLen') && shapeUnknown(s) ? 'flat: shape unknown without the export manifest' : undefined];
  });
  if (r.kind === 'Example') {
    return [pyDict('features', feats), 'parsed = tf.io.parse_single_example(serialized, features)'].join('\n');
  }
  const seq = Object.entries(r.featureLists).map(([k, s]): [string, string] => [k, listSpec(s)]);
  return [
    pyDict('context_features', feats),
    pyDict('sequence_features', seq),
    'context, sequences = tf.io.parse_single_sequence_example(\n    serialized, context_features=context_features, sequence_features=sequence_features)',
  ].join('\n');
}

function lengthText(s: FeatureSummary): string {
  if (s.varies) return `${s.minLength}..${s.maxLength} (varies)`;
  if (s.shape && s.shape.length > 1) return `${s.length} (${s.shape.join(' x ')})`;
  return shapeUnknown(s) ? `${s.length} (shape unknown)` : String(s.length);
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '));
}

/** Human-readable report (what `geotfr inspect` prints without `--json`). */
export function formatReport(r: InspectReport): string {
  const lines: string[] = [];
  const nf = r.files.length;
  lines.push(`${nf} file${nf === 1 ? '' : 's'}, ${r.records} record${r.records === 1 ? '' : 's'} (tf.train.${r.kind}), ${r.payloadBytes} payload bytes`);
  const notes: string[] = [];
  const describe = (title: string, entries: [string, FeatureSummary][], extra?: (s: FeatureSummary) => string) => {
    if (!entries.length) return;
    lines.push('', title);
    const rows = [['name', 'type', 'length', ...(extra ? ['steps'] : [])]];
    for (const [name, s] of entries) {
      rows.push([name, s.types ? s.types.join('|') : s.type, lengthText(s), ...(extra ? [extra(s)] : [])]);
      if (s.varies) notes.push(`${name}: length varies from ${s.minLength} to ${s.maxLength}`);
      if (s.types) notes.push(`${name}: type varies (${s.types.join(', ')})`);
      if (!extra && s.records < r.records) notes.push(`${name}: missing from ${r.records - s.records} of ${r.records} records`);
    }
    lines.push(...table(rows));
  };
  describe(r.kind === 'Example' ? 'features (first-record order):' : 'context features:', Object.entries(r.features));
  describe('feature lists (length per step):', Object.entries(r.featureLists), (s) => {
    const l = s as FeatureListSummary;
    return l.minSteps === l.maxSteps ? String(l.steps) : `${l.minSteps}..${l.maxSteps}`;
  });
  if (!r.records) lines.push('', 'no records');
  if (r.manifest) lines.push('', `shapes from the export manifest ${r.manifest}`);
  else if (Object.values(r.features).some((s) => !s.varies && shapeUnknown(s)))
    notes.push('no export manifest found: shapes are unknown, the spec gives flat lengths (reshape to [H, W] or [D, H, W] yourself)');
  if (notes.length) lines.push('', 'warnings:', ...notes.map((n) => `  ! ${n}`));
  lines.push('', 'TensorFlow parse spec:', r.parseSpec);
  return lines.join('\n') + '\n';
}
