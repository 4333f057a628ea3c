/**
 * Table ingest (docs/semantics.md §8): TFRecord files of tf.train.Examples → a GeoJSON FeatureCollection or a CSV,
 * the reverse of `runTableExport`. Lists of one become scalars, longer lists arrays, bytes UTF-8
 * strings; the `longitude`/`latitude` features (or the given x/y columns) become Point geometry, as
 * EE's table upload makes points from a CSV's coordinate columns.
 *
 * Inputs are read in the given order as streams (plain or gzip, detected from the bytes); the output
 * is streamed through `BlobStore.createWriter` and published only when complete. CSV needs its header
 * first, so CSV output reads the inputs twice (the first pass only collects feature names).
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { checkOutput, resolveUri } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { decodeExample, type Feature, type Features } from '../tfrecord/example.js';
import { recordsOf } from '../ingest/records.js';
import { checkLimit } from '../limits.js';
import { Progress } from '../progress.js';
import { csvCell } from './csv.js';
import { featureCell, featureJson, featureNumber, formatFloat32, mb } from './values.js';

export interface IngestTableOptions {
  /** TFRecord files (local, file:// or gs://), read in this order. */
  files: string[];
  /** Output: `*.geojson`/`*.json` (FeatureCollection), `*.geojsonl`/`*.ndjson` (one Feature per line) or `*.csv`. */
  out: string;
  /** Feature holding the point's x (default `longitude`). */
  xColumn?: string;
  /** Feature holding the point's y (default `latitude`). */
  yColumn?: string;
  signal?: AbortSignal;
  progress?: boolean;
}

export interface IngestTableSummary {
  file: string;
  format: 'geojson' | 'ndjson' | 'csv';
  features: number;
  /** Features with a point geometry made from the x/y columns. */
  points: number;
  columns: string[];
  seconds: number;
  /** E.g. no record had the coordinate features (also printed on stderr). */
  warnings: string[];
}

/** Writes text with backpressure, in ~1 MiB pieces. */
class TextSink {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly stream: Writable) {}
  async put(s: string): Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 1 << 20) await this.flush();
  }
  async flush(): Promise<void> {
    if (!this.parts.length) return;
    const ok = this.stream.write(this.parts.join(''));
    this.parts = [];
    this.size = 0;
    if (!ok) await once(this.stream, 'drain');
  }
}

/** Streams every Example of every input file, in order. */
async function* examples(files: string[], signal?: AbortSignal, progress?: Progress): AsyncGenerator<Features> {
  for await (const rec of recordsOf(files, { signal, onBytes: (n) => progress?.set(mb(n), n) }))
    yield decodeExample(rec.data, { file: rec.file, record: rec.index });
}

/**
 * The inputs as their stores name them (errors name a local input by its absolute path), and, when
 * `sized`, their total size for the progress bar.
 */
async function resolveInputs(files: string[], sized: boolean): Promise<{ uris: string[]; bytes: number }> {
  const uris: string[] = [];
  let bytes = 0;
  for (const f of files) {
    const { store, key } = await resolveUri(f, 'files');
    uris.push(store.uri(key));
    if (sized) bytes += (await store.stat(key))?.size ?? 0;
  }
  return { uris, bytes };
}

/** Each distinct feature name is a column of the output and a line of the summary: capped (docs/limits.md). */
function tooManyColumns(n: number, name: string): void {
  checkLimit('maxColumns', n, `distinct feature name number ${n} (each is an output column)`);
  checkLimit('maxNameChars', name.length, `feature name ${JSON.stringify(name.slice(0, 40) + '…')} (${name.length} characters)`);
}

/** Runs a table ingest and returns its summary. Throws GeotfrError; never leaves a partial output. */
export async function ingestTable(opts: IngestTableOptions): Promise<IngestTableSummary> {
  const t0 = performance.now();
  if (!opts.files.length) throw new GeotfrError('BAD_REQUEST', 'no input files', { field: 'files' });
  const name = opts.out.toLowerCase();
  const format = name.endsWith('.csv')
    ? 'csv'
    : /\.(geojsonl|geojsons|ndjson|jsonl)$/.test(name)
      ? 'ndjson'
      : /\.(geo)?json$/.test(name)
        ? 'geojson'
        : undefined;
  if (!format)
    throw new GeotfrError('BAD_REQUEST', `--out must end in .geojson, .json, .geojsonl, .ndjson or .csv, got ${JSON.stringify(opts.out)}`, { field: 'out' });
  const x = opts.xColumn ?? 'longitude';
  const y = opts.yColumn ?? 'latitude';
  const { store, key } = await resolveUri(opts.out, 'out');
  await checkOutput({ store, key }, opts.out);
  const inputs = await resolveInputs(opts.files, !!opts.progress);
  const progress = opts.progress ? new Progress({ label: 'ingest-table', unit: 'MB read', total: mb(inputs.bytes) || 0.1 }) : undefined;

  // CSV: a first pass for the header (the union of feature names, in first-seen order).
  const columns: string[] = [];
  if (format === 'csv') {
    const seen = new Set<string>();
    for await (const ex of examples(inputs.uris, opts.signal))
      for (const k of ex.keys())
        if (!seen.has(k)) {
          seen.add(k);
          columns.push(k);
          tooManyColumns(columns.length, k);
        }
  }

  const out = await store.createWriter(key, { contentType: format === 'csv' ? 'text/csv' : 'application/geo+json' });
  const sink = new TextSink(out.stream);
  let features = 0;
  let points = 0;
  const names = new Set<string>(columns);
  try {
    if (format === 'csv') await sink.put(columns.map(csvCell).join(',') + '\n');
    if (format === 'geojson') await sink.put('{"type":"FeatureCollection","features":[\n');
    for await (const ex of examples(inputs.uris, opts.signal, progress)) {
      if (format === 'csv') {
        const cells = columns.map((c) => {
          const f = ex.get(c);
          return f ? csvCell(featureCell(f)) : '';
        });
        await sink.put(cells.join(',') + '\n');
      } else {
        const fx = featureNumber(ex.get(x));
        const fy = featureNumber(ex.get(y));
        const point = fx !== undefined && fy !== undefined && Number.isFinite(fx) && Number.isFinite(fy);
        const props: string[] = [];
        for (const [k, f] of ex) {
          if (point && (k === x || k === y)) continue;
          props.push(`${JSON.stringify(k)}:${featureJson(f as Feature)}`);
          if (!names.has(k)) tooManyColumns(names.add(k).size, k);
        }
        if (point) points++;
        const geometry = point ? `{"type":"Point","coordinates":[${formatFloat32(fx)},${formatFloat32(fy)}]}` : 'null';
        const sep = format === 'geojson' && features > 0 ? ',\n' : '';
        await sink.put(`${sep}{"type":"Feature","geometry":${geometry},"properties":{${props.join(',')}}}${format === 'ndjson' ? '\n' : ''}`);
      }
      features++;
    }
    if (format === 'geojson') await sink.put('\n]}\n');
    await sink.flush();
    await out.commit();
  } catch (err) {
    await out.abort();
    throw asGeotfrError(err);
  } finally {
    progress?.finish();
  }
  const warnings: string[] = [];
  // GeoJSON output without a single point is almost always a coordinate-name mismatch: say so.
  if (format !== 'csv' && features > 0 && points === 0) {
    const shown = [...names].slice(0, 20).map((n) => JSON.stringify(n));
    warnings.push(
      `no record has numeric ${JSON.stringify(x)} and ${JSON.stringify(y)} features: every geometry is null; name the coordinate features with --x-column/--y-column (features: ${shown.join(', ')}${names.size > 20 ? ', …' : ''})`,
    );
  }
  if (opts.progress) for (const w of warnings) process.stderr.write(`geotfr: warning: ${w}\n`);
  return { file: store.uri(key), format, features, points, columns: [...names], seconds: (performance.now() - t0) / 1000, warnings };
}
