/**
 * Every size limit geotfr enforces, declared once (docs/limits.md lists them for users). Each guards
 * an allocation that hostile or corrupt input could otherwise make as large as it likes (a record
 * header claiming 512 MiB, a tile declaring 16384² pixels, a request asking for an 8001² kernel), so
 * it is checked before that allocation, and the error names the limit and how to change it.
 *
 * A plain table of data (name, default, environment variable, doc line) so an options module can
 * fold it in as it is; the precedence is: an explicit option where a function takes one, then the
 * environment variable, then the default.
 */
import { GeotfrError, type ErrorCode, type ErrorContext } from './errors.js';

export interface LimitSpec {
  /** Default value, in the unit the name ends with. */
  readonly default: number;
  /** Environment variable overriding the default (a positive integer). */
  readonly env: string;
  /** One line for docs/limits.md and error messages. */
  readonly doc: string;
}

const MiB = 1024 * 1024;

export const LIMITS = {
  maxRecordBytes: {
    default: 256 * MiB,
    env: 'GEOTFR_MAX_RECORD_BYTES',
    doc: 'payload bytes of one TFRecord read (inspect, ingest-image, ingest-table) or written (export-image); refused at its 12-byte header, before it is buffered',
  },
  maxBlockBytes: {
    default: 256 * MiB,
    env: 'GEOTFR_MAX_BLOCK_BYTES',
    doc: 'decoded bytes of one GeoTIFF tile or strip (all samples of a pixel-interleaved block, one sample of a band-interleaved one); checked when the file is opened',
  },
  maxValuesPerPatch: {
    default: 2 ** 23,
    env: 'GEOTFR_MAX_VALUES_PER_PATCH',
    doc: "values of one exported patch: tile pixels (patch plus kernel margins) × the sum of the bands' depths; one record, or the SequenceExamples of one patch with sequenceData",
  },
  maxValuesPerExport: {
    default: 2 ** 36,
    env: 'GEOTFR_MAX_VALUES_PER_EXPORT',
    doc: 'values written by one image export: patches × values per patch (maxPixels counts the region only; overlapping margins and tensor depths multiply it)',
  },
  maxColumns: {
    default: 16384,
    env: 'GEOTFR_MAX_COLUMNS',
    doc: 'fields of a CSV record, distinct properties of a table export (each becomes a feature and a line of the summary), distinct feature names ingest-table writes as columns',
  },
  maxNameChars: {
    default: 1024,
    env: 'GEOTFR_MAX_NAME_CHARS',
    doc: 'characters of one property or feature name in a table (with maxColumns, this bounds the summary: one line per column)',
  },
  maxTextValueChars: {
    default: 256 * MiB,
    env: 'GEOTFR_MAX_TEXT_VALUE_CHARS',
    doc: 'characters of one CSV field, NDJSON line or GeoJSON feature held while it is parsed (V8 strings stop near 512 M; an unterminated quote would reach it)',
  },
  maxJsonDepth: {
    default: 256,
    env: 'GEOTFR_MAX_JSON_DEPTH',
    doc: 'nesting depth of arrays and objects in a JSON document (export requests, mixers, manifests, GeoJSON features); scanned before the text is parsed',
  },
} as const satisfies Record<string, LimitSpec>;

export type LimitName = keyof typeof LIMITS;

/**
 * The value of limit `name`: `override` when given, else its environment variable, else its default.
 * Read at each call (cheap), so a deployment or a test sets the variable without a restart of anything.
 */
export function limit(name: LimitName, override?: number, env: NodeJS.ProcessEnv = process.env): number {
  const spec: LimitSpec = LIMITS[name];
  if (override !== undefined) {
    if (!(Number.isInteger(override) && override > 0))
      throw new GeotfrError('BAD_REQUEST', `${name} must be a positive integer, got ${override}`, { field: name });
    return override;
  }
  const text = env[spec.env];
  if (text === undefined || text.trim() === '') return spec.default;
  const v = Number(text);
  if (!(Number.isInteger(v) && v > 0))
    throw new GeotfrError('BAD_REQUEST', `${spec.env} must be a positive integer (the ${name} limit), got ${JSON.stringify(text)}`, { field: spec.env });
  return v;
}

/**
 * Thousands separators, so 16777216 reads as 16,777,216 in messages: what `toLocaleString('en-US')`
 * writes for an integer, without Intl, whose first call loads ICU's number formats (20–30 ms of
 * every export's start-up, spent on messages built for limits that were not exceeded).
 */
export function formatCount(n: number): string {
  if (!Number.isSafeInteger(n)) return n.toLocaleString('en-US');
  const digits = String(Math.abs(n));
  let out = digits.slice(0, digits.length % 3 || 3);
  for (let i = out.length; i < digits.length; i += 3) out += `,${digits.slice(i, i + 3)}`;
  return n < 0 ? `-${out}` : out;
}

/**
 * The error for input over limit `name`: `what` says what was found ("record length 536,870,912
 * bytes"); the message adds the limit's name, value and how to raise it.
 */
export function limitError(name: LimitName, value: number, what: string, ctx: ErrorContext = {}, code: ErrorCode = 'LIMIT', hint?: string): GeotfrError {
  return new GeotfrError(
    code,
    `${what} exceeds the ${name} limit of ${formatCount(value)} (${hint ? `${hint}, or ` : ''}set ${LIMITS[name].env} to change it; docs/limits.md)`,
    ctx,
  );
}

/** Throws `limitError` when `actual` > the limit's value; returns the value otherwise. `hint` says what else the user can do. */
export function checkLimit(name: LimitName, actual: number, what: string, ctx: ErrorContext = {}, opts: { override?: number; hint?: string } = {}): number {
  const v = limit(name, opts.override);
  if (actual > v) throw limitError(name, v, what, ctx, 'LIMIT', opts.hint);
  return v;
}

/**
 * Where JSON text first nests deeper than `max`: the (UTF-16) index of that bracket and the depth
 * reached, or undefined. One linear pass, skipping strings; malformed text is left for JSON.parse.
 */
export function findJsonDepth(text: string, max: number): { index: number; depth: number } | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0, n = text.length; i < n; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return { index: i, depth };
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

/** The text of a nesting error, the same wherever it is found. */
export function jsonDepthMessage(depth: number, max: number): string {
  return `JSON nests deeper than the maxJsonDepth limit of ${formatCount(max)} (depth ${formatCount(depth)} here; set ${LIMITS.maxJsonDepth.env} to change it; docs/limits.md)`;
}

/**
 * Refuses JSON text nested deeper than `maxJsonDepth` before anything parses it: JSON.parse itself
 * copes, but every recursive walk after it (schema validation, JSON.stringify, flattening nested
 * arrays) would overflow the stack, an INTERNAL error with no position that the cloud would retry.
 * BAD_INPUT, permanent, at the byte offset (UTF-8) of the bracket that went too deep.
 */
export function checkJsonDepth(text: string, ctx: ErrorContext = {}, override?: number): void {
  const max = limit('maxJsonDepth', override);
  const deep = findJsonDepth(text, max);
  if (!deep) return;
  const offset = (ctx.offset ?? 0) + Buffer.byteLength(text.slice(0, deep.index), 'utf8');
  throw new GeotfrError('BAD_INPUT', jsonDepthMessage(deep.depth, max), { ...ctx, offset });
}

/** Whether `value` nests deeper than maxJsonDepth (for code that must not walk it recursively). */
export function exceedsJsonDepth(value: unknown): boolean {
  try {
    checkValueDepth(value);
    return false;
  } catch (err) {
    if (err instanceof GeotfrError && err.code === 'BAD_INPUT') return true;
    throw err;
  }
}

/**
 * The same check on a value already parsed by someone else (an HTTP body parsed by the functions
 * framework), walked with an explicit stack so the check itself cannot overflow. The error names the
 * path to the value that went too deep (no byte offset is known any more).
 */
export function checkValueDepth(value: unknown, ctx: ErrorContext = {}, override?: number): void {
  const max = limit('maxJsonDepth', override);
  type Node = { v: unknown; depth: number; key: string; up: Node | undefined };
  const stack: Node[] = [{ v: value, depth: 1, key: '', up: undefined }];
  while (stack.length) {
    const node = stack.pop()!;
    if (node.v === null || typeof node.v !== 'object') continue;
    if (node.depth > max) {
      const path: string[] = [];
      for (let n: Node | undefined = node; n?.up; n = n.up) path.push(n.key);
      const shown = path.reverse().slice(0, 4).join('.') + (path.length > 4 ? '…' : '');
      throw new GeotfrError('BAD_INPUT', jsonDepthMessage(node.depth, max), { ...ctx, field: shown || ctx.field });
    }
    // Children pushed last-first, so the first offender in document order is the one reported.
    const entries = Object.entries(node.v);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, v] = entries[i]!;
      if (v !== null && typeof v === 'object') stack.push({ v, depth: node.depth + 1, key: k, up: node });
    }
  }
}

/** Units as the names end: `…Bytes`, `…Chars`, else a count. */
function unitOf(name: string): string {
  return name.endsWith('Bytes') ? 'bytes' : name.endsWith('Chars') ? 'characters' : name.endsWith('Depth') ? 'levels' : 'count';
}

/** Bytes written the way people read them: 268435456 → "256 MiB (268,435,456)". */
function showDefault(name: string, v: number): string {
  if (unitOf(name) === 'bytes' && v % MiB === 0) return `${formatCount(v / MiB)} MiB (${formatCount(v)})`;
  return formatCount(v);
}

/** The markdown table docs/limits.md carries (generated; test/shared/limits/limits.test.ts compares). */
export function limitsTable(): string {
  const rows = Object.entries(LIMITS).map(
    ([name, s]: [string, LimitSpec]) => `| \`${name}\` | ${showDefault(name, s.default)} | ${unitOf(name)} | \`${s.env}\` | ${s.doc} |`,
  );
  return ['| limit | default | unit | environment variable | what it bounds |', '|---|---|---|---|---|', ...rows].join('\n');
}
