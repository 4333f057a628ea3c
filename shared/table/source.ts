/**
 * Opens a table input of any supported format as a stream of rows (docs/semantics.md §8): a GeoJSON
 * FeatureCollection, newline-delimited GeoJSON, or CSV, optionally gzip-compressed.
 *
 * The format comes from the name (`.csv`; `.geojsonl`, `.geojsons`, `.ndjson`, `.jsonl`), and for
 * `.json`/`.geojson` from the content: a first line that is a complete Feature means one Feature per
 * line, anything else is read as a FeatureCollection.
 */
import { GeotfrError } from '../errors.js';
import { readCsv } from './csv.js';
import { readFeatureCollection, type MemberHook } from './geojson.js';
import { readNdjson } from './ndjson.js';
import { openText, type TextStreamOptions } from './textstream.js';
import type { TableRow } from './row.js';

export type TableFormat = 'geojson' | 'ndjson' | 'csv';

export interface TableSource {
  file: string;
  size?: number;
  format: TableFormat;
  /** Rows in input order, in batches. */
  rows: AsyncGenerator<TableRow[]>;
}

/** Opens `uri` and streams its rows in input order, in batches. */
export async function openTable(
  uri: string,
  opts: TextStreamOptions & { onMember?: MemberHook; onHeader?: (columns: string[]) => void } = {},
): Promise<TableSource> {
  const input = await openText(uri, opts);
  const name = uri.toLowerCase().replace(/\.gz$/, '');
  let format: TableFormat | undefined;
  if (name.endsWith('.csv')) format = 'csv';
  else if (/\.(geojsonl|geojsons|geojsonseq|ndjson|jsonl|ldjson)$/.test(name)) format = 'ndjson';
  let text = input.text;
  if (!format) {
    const sniffed = await sniff(input.text, input.file);
    format = sniffed.format;
    text = sniffed.text;
  }
  const rows =
    format === 'csv'
      ? readCsv(text, input.file, opts.onHeader)
      : format === 'ndjson'
        ? readNdjson(text, input.file)
        : readFeatureCollection(text, input.file, opts.onMember);
  return { file: input.file, size: input.size, format, rows };
}

/** Looks at the first line to tell NDJSON from a FeatureCollection, then replays what it read. */
async function sniff(text: AsyncIterable<string>, file: string): Promise<{ format: TableFormat; text: AsyncIterable<string> }> {
  const it = text[Symbol.asyncIterator]();
  const head: string[] = [];
  let seen = '';
  let ended = false;
  while (!seen.includes('\n') && seen.length < 1 << 22) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    head.push(r.value);
    seen += r.value;
  }
  let format: TableFormat = 'geojson';
  const nl = seen.indexOf('\n');
  const firstLine = (nl < 0 ? seen : seen.slice(0, nl)).replace(/^\uFEFF/, '').trim();
  if (firstLine.startsWith('{') && (nl >= 0 || ended)) {
    try {
      const v = JSON.parse(firstLine) as { type?: unknown };
      if (v && v.type === 'Feature') format = 'ndjson';
    } catch {
      // not a complete object on one line: a (pretty-printed) FeatureCollection
    }
  } else if (firstLine && !firstLine.startsWith('{') && !firstLine.startsWith('[')) {
    throw new GeotfrError('BAD_INPUT', 'not GeoJSON (does not start with "{"); name CSV files *.csv and newline-delimited GeoJSON *.geojsonl', { file });
  }
  const replay: AsyncIterable<string> = {
    [Symbol.asyncIterator]: async function* () {
      yield* head;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    },
  };
  return { format, text: replay };
}
