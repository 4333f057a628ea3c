/**
 * Streaming reader for a GeoJSON FeatureCollection (RFC 7946 §3.3). A 2 GB collection must not be
 * JSON.parse'd whole, so a small scanner walks the top-level object, finds the `features` array and
 * cuts out one feature's text at a time (tracking strings, escapes and bracket depth), which is then
 * JSON.parse'd on its own. Memory is bounded by the largest single feature.
 */
import { GeotfrError } from '../errors.js';
import { jsonDepthMessage, limit } from '../limits.js';
import { findJsonError, lineColumn } from './jsonerror.js';
import { featureToRow, type TableRow } from './row.js';

const WS_SP = 0x20,
  WS_TAB = 0x09,
  WS_CR = 0x0d,
  NL = 0x0a;
const QUOTE = 0x22,
  BSLASH = 0x5c,
  LBRACE = 0x7b,
  RBRACE = 0x7d,
  LBRACK = 0x5b,
  RBRACK = 0x5d,
  COMMA = 0x2c,
  COLON = 0x3a;

/** A cursor over text arriving in chunks, keeping only what the current value needs. */
class Cursor {
  buf = '';
  pos = 0;
  /** Absolute character index of buf[0]. */
  base = 0;
  line = 1;
  /** Absolute index of the first character of the current line. */
  lineStart = 0;
  /** Start (in buf) of a value being cut out, or -1. */
  mark = -1;
  private eof = false;
  /** UTF-8 bytes before buf[0], and a cursor (index in buf → bytes from buf[0]) that only moves forward. */
  private baseBytes = 0;
  private atIndex = 0;
  private atBytes = 0;

  /** Byte offset of buf[i] in the text (i never before an earlier call's, within one buf). */
  byteOffset(i: number): number {
    this.atBytes += Buffer.byteLength(this.buf.slice(this.atIndex, i));
    this.atIndex = i;
    return this.baseBytes + this.atBytes;
  }

  /** A single feature larger than this is refused (V8 strings top out near 512 M characters). */
  private readonly maxFeatureChars = limit('maxTextValueChars');
  /** Nesting depth of one feature (counted from the feature itself, which is parsed on its own). */
  private readonly maxDepth = limit('maxJsonDepth');

  constructor(
    private readonly it: AsyncIterator<string>,
    readonly file: string,
  ) {}

  async more(): Promise<boolean> {
    if (this.eof) return false;
    const r = await this.it.next();
    if (r.done) {
      this.eof = true;
      return false;
    }
    const drop = this.mark >= 0 ? this.mark : this.pos;
    this.baseBytes = this.byteOffset(drop);
    this.atIndex = 0;
    this.atBytes = 0;
    this.buf = drop > 0 ? this.buf.slice(drop) + r.value : this.buf + r.value;
    this.base += drop;
    this.pos -= drop;
    if (this.mark >= 0) this.mark -= drop;
    return true;
  }

  get column(): number {
    return this.base + this.pos - this.lineStart + 1;
  }

  fail(msg: string, line = this.line, column = this.column): never {
    throw new GeotfrError('BAD_INPUT', `malformed GeoJSON at line ${line}, column ${column}: ${msg}`, { file: this.file });
  }

  /** Skips whitespace; returns the next character code without consuming it, or -1 at the end. */
  async peek(): Promise<number> {
    for (;;) {
      const b = this.buf;
      while (this.pos < b.length) {
        const c = b.charCodeAt(this.pos);
        if (c === NL) {
          this.pos++;
          this.line++;
          this.lineStart = this.base + this.pos;
        } else if (c === WS_SP || c === WS_TAB || c === WS_CR || c === 0xfeff)
          this.pos++; // U+FEFF: a BOM
        else return c;
      }
      if (!(await this.more())) return -1;
    }
  }

  async expect(code: number, what: string): Promise<void> {
    const c = await this.peek();
    if (c !== code) this.fail(`expected ${what}, found ${c < 0 ? 'end of input' : JSON.stringify(String.fromCharCode(c))}`);
    this.pos++;
  }

  /** Cuts out the JSON value starting at the next non-blank character; returns its text and start position. */
  async value(): Promise<{ text: string; line: number; column: number; offset: number }> {
    const first = await this.peek();
    if (first < 0) this.fail('unexpected end of input, expected a value');
    const line = this.line;
    const column = this.column;
    this.mark = this.pos;
    const offset = this.byteOffset(this.pos);
    let depth = 0;
    let inStr = false;
    let esc = false;
    const scalar = first !== QUOTE && first !== LBRACE && first !== LBRACK;
    for (;;) {
      const b = this.buf;
      let p = this.pos;
      const n = b.length;
      let done = false;
      if (scalar) {
        while (p < n) {
          const c = b.charCodeAt(p);
          if (c === COMMA || c === RBRACE || c === RBRACK || c === WS_SP || c === NL || c === WS_TAB || c === WS_CR) {
            done = true;
            break;
          }
          p++;
        }
      } else {
        while (p < n) {
          const c = b.charCodeAt(p++);
          if (inStr) {
            if (esc) esc = false;
            else if (c === BSLASH) esc = true;
            else if (c === QUOTE) {
              inStr = false;
              if (depth === 0) {
                done = true;
                break;
              }
            } else if (c === NL) {
              this.line++;
              this.lineStart = this.base + p;
            }
          } else if (c === QUOTE) inStr = true;
          else if (c === LBRACE || c === LBRACK) {
            // Refused while cutting, before JSON.parse: the row conversion after it recurses (docs/limits.md).
            if (++depth > this.maxDepth) this.fail(jsonDepthMessage(depth, this.maxDepth), this.line, this.base + p - this.lineStart);
          } else if (c === RBRACE || c === RBRACK) {
            if (--depth <= 0) {
              done = true;
              break;
            }
          } else if (c === NL) {
            this.line++;
            this.lineStart = this.base + p;
          }
        }
      }
      this.pos = p;
      if (done) break;
      if (this.pos - this.mark > this.maxFeatureChars) {
        const e = findJsonError(this.buf.slice(this.mark, this.pos));
        if (e) {
          const at = lineColumn(this.buf.slice(this.mark), e.index, line, column);
          this.fail(e.message, at.line, at.column);
        }
        this.fail(`a single value is larger than ${this.maxFeatureChars} characters, the maxTextValueChars limit`, line, column);
      }
      if (!(await this.more())) break; // truncated: JSON.parse below reports where
    }
    const text = this.buf.slice(this.mark, this.pos);
    this.mark = -1;
    return { text, line, column, offset };
  }

  /** JSON.parse with a located error. */
  parse(v: { text: string; line: number; column: number }): unknown {
    try {
      return JSON.parse(v.text);
    } catch (err) {
      const e = findJsonError(v.text);
      if (!e) throw err;
      const at = lineColumn(v.text, e.index, v.line, v.column);
      this.fail(e.message, at.line, at.column);
    }
  }
}

/** Sees each top-level member other than `features` as it is read (patch export reads the 2008-style `crs` member this way). */
export type MemberHook = (key: string, value: unknown, at: { line: number; column: number }) => void;

/**
 * Reads the features of a GeoJSON FeatureCollection from text chunks, in order, in batches of up to
 * 1,000 (an async generator step per feature costs more than cutting it out). Top-level members
 * other than `features` may come before or after it; `type` must be "FeatureCollection".
 */
export async function* readFeatureCollection(text: AsyncIterable<string>, file: string, onMember?: MemberHook): AsyncGenerator<TableRow[]> {
  const cur = new Cursor(text[Symbol.asyncIterator](), file);
  await cur.expect(LBRACE, "'{' (a GeoJSON FeatureCollection object)");
  let sawFeatures = false;
  let index = 0;
  let batch: TableRow[] = [];
  if ((await cur.peek()) === RBRACE) cur.pos++;
  else
    for (;;) {
      const keyText = await cur.value();
      if (!keyText.text.startsWith('"')) cur.fail('expected a property name in double quotes', keyText.line, keyText.column);
      const key = cur.parse(keyText) as string;
      await cur.expect(COLON, "':' after a property name");
      if (key === 'features') {
        if (sawFeatures) cur.fail('"features" appears twice');
        sawFeatures = true;
        await cur.expect(LBRACK, "'[' (the features array)");
        if ((await cur.peek()) === RBRACK) cur.pos++;
        else
          for (;;) {
            const v = await cur.value();
            batch.push(featureToRow(cur.parse(v), { file, index, line: v.line, column: v.column, offset: v.offset }));
            index++;
            if (batch.length >= 1000) {
              yield batch;
              batch = [];
            }
            const c = await cur.peek();
            if (c === COMMA) cur.pos++;
            else if (c === RBRACK) {
              cur.pos++;
              break;
            } else cur.fail(`expected ',' or ']' after a feature, found ${c < 0 ? 'end of input' : JSON.stringify(String.fromCharCode(c))}`);
          }
      } else {
        const v = await cur.value();
        const value = cur.parse(v);
        onMember?.(key, value, { line: v.line, column: v.column });
        if (key === 'type' && value !== 'FeatureCollection') {
          cur.fail(
            `expected a FeatureCollection, found "type": ${JSON.stringify(value)}${value === 'Feature' ? ' (for one Feature per line use newline-delimited GeoJSON, .geojsonl)' : ''}`,
            v.line,
            v.column,
          );
        }
      }
      const c = await cur.peek();
      if (c === COMMA) cur.pos++;
      else if (c === RBRACE) {
        cur.pos++;
        break;
      } else cur.fail(`expected ',' or '}' after a member, found ${c < 0 ? 'end of input' : JSON.stringify(String.fromCharCode(c))}`);
    }
  if ((await cur.peek()) !== -1) cur.fail('unexpected text after the end of the FeatureCollection');
  if (!sawFeatures) cur.fail('the object has no "features" array (not a GeoJSON FeatureCollection)');
  if (batch.length) yield batch;
}
