/**
 * Newline-delimited GeoJSON (one Feature per line, as EE's table upload and `ogr2ogr -f GeoJSONSeq`
 * write it), read as a stream of rows. Blank lines are skipped; a bad line fails with its line and column.
 */
import { GeotfrError } from '../errors.js';
import { findJsonDepth, jsonDepthMessage, limit } from '../limits.js';
import { findJsonError } from './jsonerror.js';
import { featureToRow, type TableRow } from './row.js';

/** Reads rows from NDJSON text chunks, in batches (one per chunk). Only the current partial line is buffered. */
export async function* readNdjson(text: AsyncIterable<string>, file: string): AsyncGenerator<TableRow[]> {
  const maxDepth = limit('maxJsonDepth');
  // A longer line is refused before V8's string limit (~512 M characters) turns it into a crash.
  const maxLineChars = limit('maxTextValueChars');
  let rest = '';
  let line = 0; // lines completed so far
  let index = 0;
  let offset = 0; // byte offset of the next line's start
  const parseLine = (s: string, lineNo: number): TableRow | undefined => {
    let at = offset;
    offset += Buffer.byteLength(s) + 1;
    if (lineNo === 1 && s.charCodeAt(0) === 0xfeff) {
      s = s.slice(1); // a byte-order mark (textstream.ts keeps it, so that offsets count its 3 bytes)
      at += 3;
    }
    if (s.endsWith('\r')) s = s.slice(0, -1);
    if (s.charCodeAt(0) !== 0x7b && /^\s*$/.test(s)) return undefined; // blank line ('{' starts nearly every line)
    // Before JSON.parse: the row conversion after it walks nested arrays recursively (docs/limits.md).
    const deep = findJsonDepth(s, maxDepth);
    if (deep)
      throw new GeotfrError('BAD_INPUT', `at line ${lineNo}, column ${deep.index + 1}: ${jsonDepthMessage(deep.depth, maxDepth)}`, { file, record: index });
    let value: unknown;
    try {
      value = JSON.parse(s);
    } catch (err) {
      const e = findJsonError(s);
      const col = (e?.index ?? 0) + 1;
      throw new GeotfrError('BAD_INPUT', `malformed JSON at line ${lineNo}, column ${col}: ${e?.message ?? (err as Error).message}`, { file, record: index });
    }
    return featureToRow(value, { file, index: index, line: lineNo, offset: at });
  };
  for await (const chunk of text) {
    let start = 0;
    let nl = chunk.indexOf('\n');
    if (nl < 0) {
      rest += chunk;
      if (rest.length > maxLineChars)
        throw new GeotfrError(
          'BAD_INPUT',
          `line ${line + 1} is longer than ${maxLineChars} characters, the maxTextValueChars limit (not one Feature per line? name FeatureCollections *.geojson)`,
          { file, record: index },
        );
      continue;
    }
    // First line of this chunk completes the carried-over partial line.
    let s = rest + chunk.slice(0, nl);
    rest = '';
    const batch: TableRow[] = [];
    for (;;) {
      line++;
      const row = parseLine(s, line);
      if (row) {
        index++;
        batch.push(row);
      }
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
      if (nl < 0) break;
      s = chunk.slice(start, nl);
    }
    rest = chunk.slice(start);
    if (batch.length) yield batch;
  }
  if (rest.length) {
    line++;
    const row = parseLine(rest, line);
    if (row) yield [row];
  }
}
