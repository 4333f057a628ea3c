/**
 * CSV (RFC 4180) both ways: a streaming reader (quoted fields, doubled quotes, embedded newlines,
 * CRLF or LF, a UTF-8 BOM) that reports malformed input with line and column, and the quoting rule
 * for writing cells.
 */
import { GeotfrError } from '../errors.js';
import { limit, limitError } from '../limits.js';
import type { TableRow } from './row.js';

/** One parsed CSV record: its cells and the 1-based line it starts on. */
export interface CsvRecord {
  cells: string[];
  line: number;
  /** Byte offset of the record's start in the UTF-8 text. */
  offset: number;
}

const QUOTE = 0x22,
  COMMA = 0x2c,
  CR = 0x0d,
  NL = 0x0a;

/**
 * Parses CSV text chunks into records, yielded in batches (one per input chunk: an async generator
 * step per record would cost more than parsing it). A quote may only open a field; inside a quoted field `""` is a
 * quote and newlines are data; after the closing quote only a comma or the line end may follow.
 * Blank lines are skipped. Memory holds one record at most (plus one chunk).
 */
export async function* parseCsv(text: AsyncIterable<string>, file: string): AsyncGenerator<CsvRecord[]> {
  const maxColumns = limit('maxColumns');
  // Refused before V8's string limit (~512 M characters) turns an unterminated quote into a crash.
  const maxFieldChars = limit('maxTextValueChars');
  let cells: string[] = [];
  let field = ''; // completed parts of the current field (across chunk boundaries)
  let inQuotes = false;
  let afterQuote = false; // just saw the closing quote of a quoted field
  let fieldStarted = false; // the current field has content or was quoted
  let line = 1;
  let col = 1; // column of the next character
  let recordLine = 1;
  let quoteLine = 0,
    quoteCol = 0;
  let first = true;
  let pendingCR = false;
  // Byte offsets: bytes of the chunks before this one, and a cursor (char index → bytes) in this one.
  let chunkBytes = 0;
  let ascii = true;
  let atChar = 0;
  let atBytes = 0;
  let chunkText = '';
  let recordOffset = 0;
  const byteAt = (i: number): number => {
    if (ascii) return chunkBytes + i;
    atBytes += Buffer.byteLength(chunkText.slice(atChar, i));
    atChar = i;
    return chunkBytes + atBytes;
  };
  const fail = (msg: string, l = line, c = col): never => {
    throw new GeotfrError('BAD_INPUT', `malformed CSV at line ${l}, column ${c}: ${msg}`, { file });
  };
  let batch: CsvRecord[] = [];
  const endRecord = (): void => {
    if (cells.length === 0 && !fieldStarted && field === '') return; // blank line
    cells.push(field);
    batch.push({ cells, line: recordLine, offset: recordOffset });
    cells = [];
    field = '';
    fieldStarted = false;
  };
  for await (let chunk of text) {
    if (first) {
      if (chunk.charCodeAt(0) === 0xfeff) {
        chunk = chunk.slice(1);
        chunkBytes = recordOffset = 3; // the BOM's UTF-8 bytes
      }
      first = false;
    }
    const n = chunk.length;
    chunkText = chunk;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the class is every non-ASCII character; \x00 is its lower bound on purpose
    ascii = !/[^\x00-\x7f]/.test(chunk);
    atChar = 0;
    atBytes = 0;
    let i = 0;
    if (pendingCR) {
      if (n && chunk.charCodeAt(0) !== NL) fail('bare carriage return (use LF or CRLF line endings)');
      pendingCR = false;
    }
    while (i < n) {
      if (inQuotes) {
        // Jump to the next quote; everything before it (newlines too) is field data.
        const q = chunk.indexOf('"', i);
        const stop = q < 0 ? n : q;
        for (let k = i; k < stop; k++) {
          if (chunk.charCodeAt(k) === NL) {
            line++;
            col = 1;
          } else col++;
        }
        field += chunk.slice(i, stop);
        i = stop;
        if (field.length > maxFieldChars)
          fail(`quoted field longer than ${maxFieldChars} characters, the maxTextValueChars limit (unterminated? it starts here)`, quoteLine, quoteCol);
        if (q < 0) break;
        // A quote: either the closing one or the first of a doubled pair (which may straddle chunks).
        if (i + 1 < n) {
          if (chunk.charCodeAt(i + 1) === QUOTE) {
            field += '"';
            i += 2;
            col += 2;
          } else {
            inQuotes = false;
            afterQuote = true;
            i++;
            col++;
          }
        } else {
          // Quote at the chunk's end: decide with the next chunk.
          inQuotes = false;
          afterQuote = true;
          i++;
          col++;
        }
        continue;
      }
      const c = chunk.charCodeAt(i);
      if (afterQuote) {
        if (c === QUOTE) {
          // Doubled quote split across chunks (or `""` right after the closing quote): data.
          field += '"';
          inQuotes = true;
          afterQuote = false;
          i++;
          col++;
          continue;
        }
        afterQuote = false;
        if (c !== COMMA && c !== NL && c !== CR)
          fail(`expected ',' or the end of the line after the closing quote, found ${JSON.stringify(String.fromCharCode(c))}`);
      }
      if (c === COMMA) {
        // One more field follows this comma: refuse a row wider than maxColumns before it is all held.
        if (cells.length + 2 > maxColumns)
          throw limitError('maxColumns', maxColumns, `the CSV record at line ${recordLine}, with more than ${maxColumns} fields,`, { file });
        cells.push(field);
        field = '';
        fieldStarted = true; // an empty field after a comma still counts
        i++;
        col++;
      } else if (c === NL) {
        endRecord();
        i++;
        line++;
        col = 1;
        recordLine = line;
        recordOffset = byteAt(i);
      } else if (c === CR) {
        // CRLF: the CR is dropped and the LF ends the record; a CR alone is not a line ending here.
        if (i + 1 < n) {
          if (chunk.charCodeAt(i + 1) !== NL) fail('bare carriage return (use LF or CRLF line endings)');
        } else pendingCR = true;
        i++;
      } else if (c === QUOTE) {
        if (field.length) fail('a quote inside an unquoted field (quote the whole field and double the quote)');
        inQuotes = true;
        fieldStarted = true;
        quoteLine = line;
        quoteCol = col;
        i++;
        col++;
      } else {
        // Unquoted run up to the next delimiter.
        let k = i;
        while (k < n) {
          const d = chunk.charCodeAt(k);
          if (d === COMMA || d === NL || d === CR || d === QUOTE) break;
          k++;
        }
        if (k < n && chunk.charCodeAt(k) === QUOTE) {
          col += k - i;
          fail('a quote inside an unquoted field (quote the whole field and double the quote)');
        }
        field += chunk.slice(i, k);
        fieldStarted = true;
        col += k - i;
        i = k;
      }
    }
    chunkBytes += ascii ? n : Buffer.byteLength(chunk);
    if (batch.length) {
      yield batch;
      batch = [];
    }
  }
  if (inQuotes) fail('unterminated quoted field (it starts here)', quoteLine, quoteCol);
  endRecord();
  if (batch.length) yield batch;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * CSV records → rows (in batches): the first record names the columns; numeric-looking cells become numbers,
 * empty cells are missing, anything else is a string (docs/semantics.md §8, as EE's CSV upload types columns).
 */
export async function* readCsv(text: AsyncIterable<string>, file: string, onHeader?: (columns: string[]) => void): AsyncGenerator<TableRow[]> {
  let header: string[] | undefined;
  let index = 0;
  for await (const recs of parseCsv(text, file)) {
    const rows: TableRow[] = [];
    for (const rec of recs) {
      if (!header) {
        header = rec.cells.map((h) => h.trim());
        const seen = new Set<string>();
        header.forEach((h, k) => {
          if (!h) throw new GeotfrError('BAD_INPUT', `CSV header at line ${rec.line}, column ${k + 1} (field ${k + 1}) has an empty name`, { file });
          if (seen.has(h)) throw new GeotfrError('BAD_INPUT', `CSV header at line ${rec.line} names column ${JSON.stringify(h)} twice`, { file, field: h });
          seen.add(h);
        });
        onHeader?.(header);
        continue;
      }
      if (rec.cells.length !== header.length) {
        throw new GeotfrError('BAD_INPUT', `malformed CSV at line ${rec.line}: ${rec.cells.length} fields, but the header has ${header.length}`, {
          file,
          record: index,
        });
      }
      const properties: Record<string, unknown> = {};
      for (let k = 0; k < header.length; k++) {
        const cell = rec.cells[k];
        if (cell === '') continue;
        properties[header[k]] = NUMBER.test(cell) ? Number(cell) : cell;
      }
      rows.push({ properties, index, line: rec.line, offset: rec.offset });
      index++;
    }
    if (rows.length) yield rows;
  }
}

/** Quotes a cell when it holds a comma, quote, CR or LF (RFC 4180 §2.6–2.7). */
export function csvCell(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
