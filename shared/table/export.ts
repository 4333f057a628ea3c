/**
 * Table export (docs/semantics.md §8, issue 5): a FeatureCollection, newline-delimited GeoJSON or CSV becomes
 * exactly one `PREFIX.tfrecord.gz`, one tf.train.Example per feature in input order, the way EE's
 * `Export.table.toCloudStorage(..., fileFormat: 'TFRecord')` writes sampled points.
 *
 * Streaming end to end: rows are read, encoded and written through gzip with backpressure, so memory
 * does not grow with the table. The output goes through `BlobStore.createWriter` and is published only
 * when every row has been written and checked: any error (bad row, unknown selector, empty table,
 * cancellation) aborts it, leaving no output file. The same function serves the CLI and the cloud planner.
 */
import { finished } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { type BlobStore } from '../storage/port.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { Progress } from '../progress.js';
import { mb } from './values.js';
import { RecordBatcher } from './framer.js';
import { TableEncoder, columnParseSpec, type ColumnInfo } from './encode.js';
import { parseTableExportRequest } from './request.js';
import { openTable, type TableFormat } from './source.js';

export interface TableExportSummary {
  /** URI of the one output file. */
  file: string;
  format: TableFormat;
  features: number;
  /** Compressed bytes written. */
  bytes: number;
  /** Uncompressed framed bytes. */
  bytesFramed: number;
  seconds: number;
  /** Output features in record order, with the parse spec to use in TensorFlow (properties that were always null are left out). */
  columns: (ColumnInfo & { spec: string })[];
}

export interface TableExportOptions {
  signal?: AbortSignal;
  /** Progress bar on stderr (MB of input read, %, MB/s, ETA). */
  progress?: boolean;
}

/** Runs a table export request (docs/semantics.md §8) and returns its summary. Throws GeotfrError on any failure. */
export async function runTableExport(request: unknown, opts: TableExportOptions = {}): Promise<TableExportSummary> {
  const t0 = performance.now();
  const req = parseTableExportRequest(request);
  // Progress is a bar over the input's bytes (its size is known before reading), with the MB/s rate.
  let progress: Progress | undefined;
  const src = await openTable(req.collection, { signal: opts.signal, onBytes: (n) => progress?.set(mb(n), n) });
  if (opts.progress) progress = new Progress({ label: 'export-table', unit: 'MB read', total: src.size ? mb(src.size) || 0.1 : undefined });
  let encoder: TableEncoder;
  let store: BlobStore;
  try {
    if (req.geometry && src.format === 'csv')
      throw new GeotfrError(
        'BAD_REQUEST',
        `"geometry": "${req.geometry}" needs GeoJSON input: a CSV has no geometry (its longitude/latitude columns are exported as properties)`,
        { file: src.file, field: 'geometry' },
      );
    encoder = new TableEncoder({ file: src.file, selectors: req.selectors, geometry: req.geometry });
    store = await openBucket(req.bucket);
  } catch (err) {
    await src.rows.return(undefined).catch(() => {}); // closes the input stream
    throw err;
  }
  const key = `${req.fileNamePrefix}.tfrecord.gz`;
  const out = await store.createWriter(key, { contentType: 'application/octet-stream' });
  // One gzip stream at zlib level 6 (docs/semantics.md §5, TensorFlow's default), fed in large batches (framer.ts).
  const gzip = zlib.createGzip({ level: 6, chunkSize: 1 << 20 });
  gzip.pipe(out.stream);
  gzip.on('error', (e) => out.stream.destroy(e));
  const writer = new RecordBatcher(gzip);
  const fill = (buf: Buffer, off: number) => encoder.write(buf, off);
  let compressed = 0;
  let features = 0;
  try {
    for await (const rows of src.rows) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new GeotfrError('CANCELLED', 'cancelled');
      for (const row of rows) {
        const wait = writer.add(encoder.prepare(row), fill);
        if (wait) await wait;
      }
      features += rows.length;
    }
    if (features === 0) throw new GeotfrError('BAD_INPUT', 'the collection has no features: nothing to export', { file: src.file });
    encoder.finish();
    await writer.end();
    await finished(out.stream);
    const info = await out.commit();
    if (progress && src.size) progress.set(mb(src.size) || 0.1, src.size); // tiny inputs round to 0 MB
    compressed = info.size;
  } catch (err) {
    gzip.destroy();
    await out.abort();
    await src.rows.return(undefined).catch(() => {});
    throw asGeotfrError(err, { file: src.file });
  } finally {
    progress?.finish();
  }
  return {
    file: store.uri(key),
    format: src.format,
    features,
    bytes: compressed,
    bytesFramed: writer.bytesFramed,
    seconds: (performance.now() - t0) / 1000,
    columns: encoder
      .info()
      .filter((c) => c.type !== undefined)
      .map((c) => ({ ...c, spec: columnParseSpec(c) })),
  };
}
