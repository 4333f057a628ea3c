/**
 * Example features → table values for ingest (docs/semantics.md §8): a list of one becomes a scalar, longer lists
 * arrays, bytes become UTF-8 strings. Values are written straight to JSON or CSV text so float32
 * values print in their shortest round-trip form (`0.1`, not `0.10000000149011612`).
 */
import type { Feature } from '../tfrecord/example.js';

/** Shortest decimal that reads back (through float32) as the same float32 value. */
export function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(v) && Math.abs(v) < 2 ** 24) return String(v);
  // Every float32 needs at most 9 significant digits; most table values need 6-9. Start at 6 and walk
  // towards the answer instead of trying 1, 2, 3... for each of millions of values (toPrecision is
  // the cost here, so each candidate is formatted once).
  let best = '';
  const ok = (p: number): boolean => {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) !== v) return false;
    best = s;
    return true;
  };
  let p = 6;
  if (ok(p)) while (p > 1 && ok(p - 1)) p--;
  else
    do p++;
    while (p < 9 && !ok(p));
  return String(Number(best || v.toPrecision(9))); // 9 digits always round-trip a float32
}

const utf8 = new TextDecoder('utf-8');

/** JSON text of one numeric element (JSON has no NaN/Infinity: they become null). */
const jsonFloat = (v: number) => (Number.isFinite(v) ? formatFloat32(v) : 'null');

/** The feature's value as JSON text: scalar for a list of one, else an array. */
export function featureJson(f: Feature): string {
  const n = f.value.length;
  switch (f.kind) {
    case 'float_list': {
      if (n === 1) return jsonFloat(f.value[0]);
      const parts: string[] = new Array(n);
      for (let i = 0; i < n; i++) parts[i] = jsonFloat(f.value[i]);
      return `[${parts.join(',')}]`;
    }
    case 'int64_list': {
      // Exact decimal integers; beyond 2^53 readers may round, but the text is right.
      if (n === 1) return f.value[0].toString();
      return `[${Array.from(f.value, (x) => x.toString()).join(',')}]`;
    }
    case 'bytes_list': {
      if (n === 1) return JSON.stringify(utf8.decode(f.value[0]));
      return `[${f.value.map((b) => JSON.stringify(utf8.decode(b))).join(',')}]`;
    }
  }
}

/** The feature's value as CSV cell text (unquoted): scalars plain, arrays as JSON, like EE's CSV exports. */
export function featureCell(f: Feature): string {
  if (f.value.length === 1) {
    if (f.kind === 'bytes_list') return utf8.decode(f.value[0]);
    if (f.kind === 'float_list') return formatFloat32(f.value[0]);
  }
  return featureJson(f);
}

/** A scalar numeric feature's value (for point geometry), or undefined. */
export function featureNumber(f: Feature | undefined): number | undefined {
  if (!f || f.value.length !== 1) return undefined;
  if (f.kind === 'float_list') return f.value[0];
  if (f.kind === 'int64_list') return Number(f.value[0]);
  return undefined;
}

/** Bytes as megabytes with one decimal, for progress bars. */
export const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
