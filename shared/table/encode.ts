/**
 * Table rows → tf.train.Example bytes (docs/semantics.md §8), keeping one type and shape per property so the
 * output parses with the `FixedLenFeature` specs an EE user writes.
 *
 * Numbers → `float_list` of 1; booleans → 1.0/0.0; arrays (nested too, rectangular) → flattened
 * row-major `float_list` (arrays of strings → `bytes_list`); strings → `bytes_list` of 1 (UTF-8);
 * null or missing → the feature is absent from that record. Properties are written in `selectors`
 * order, else in the order they were first seen in the input.
 */
import { GeotfrError } from '../errors.js';
import { checkLimit } from '../limits.js';
import { encodeFeatureEntry, exampleSize, floatEntryPrefix, writeExampleHead } from '../tfrecord/example.js';
import { describe, where, type TableRow } from './row.js';
import { toWkt } from './wkt.js';

export type GeometryEncoding = 'wkt' | 'lonlat';

/** What the export learned about one output feature (reported in the summary as a parse spec). */
export interface ColumnInfo {
  name: string;
  /** `float` (float_list) or `string` (bytes_list); undefined if the property was only ever null. */
  type?: 'float' | 'string';
  /** Array shape; [] for a scalar. */
  shape: number[];
  /** Number of records holding this feature. */
  records: number;
}

interface Column extends ColumnInfo {
  index: number;
  /** Float columns: values per record, the map entry's bytes before the values, and the entry's size. */
  count?: number;
  floatPrefix?: Uint8Array;
  floatEntrySize: number;
  /** Where the type/shape was first seen, for the error when it changes. */
  firstFeature: number;
  firstLine: number;
  /** The key appeared in at least one feature (even as null). */
  seen: boolean;
}

interface Flat {
  type: 'float' | 'string';
  shape: number[];
  floats?: Float32Array;
  strings?: Buffer[];
}

/** One feature of the row being encoded: its map entry's bytes, then (float features) its values. */
interface Slot {
  /** Column order (geometry features last). */
  order: number;
  prefix: Uint8Array;
  /** Total bytes of the map entry. */
  size: number;
  scalar?: number;
  floats?: Float32Array;
}

const shapeText = (s: number[]) => (s.length ? `[${s.join(', ')}]` : 'scalar');
/** A scalar and a one-element vector are the same float_list of 1. */
const sameShape = (a: number[], b: number[]) => (a.length === b.length && a.every((x, i) => x === b[i])) || (a.length + b.length === 1 && (a[0] ?? b[0]) === 1);

export class TableEncoder {
  private readonly columns: Column[] = [];
  private readonly byName = new Map<string, Column>();
  private readonly fixed: boolean;
  private readonly reserved: Set<string>;
  private geometryRecords = 0;
  private readonly slots: Slot[] = [];
  /** With selectors: property names seen in the first rows, for the unknown-selector error. */
  private readonly present = new Set<string>();
  private sampledRows = 0;
  private body = 0;
  private readonly lonPrefix = floatEntryPrefix('longitude', 1);
  private readonly latPrefix = floatEntryPrefix('latitude', 1);

  constructor(private readonly o: { file: string; selectors?: string[]; geometry?: GeometryEncoding }) {
    this.reserved = new Set(o.geometry === 'wkt' ? ['geometry'] : o.geometry === 'lonlat' ? ['longitude', 'latitude'] : []);
    this.fixed = o.selectors !== undefined;
    for (const s of o.selectors ?? []) {
      if (this.reserved.has(s))
        throw new GeotfrError('BAD_REQUEST', `selector ${JSON.stringify(s)} clashes with the feature written for "geometry": "${o.geometry}"`, {
          field: 'selectors',
        });
      this.addColumn(s);
    }
  }

  private addColumn(name: string): Column {
    // Every column is a feature of each record and a line of the summary (docs/limits.md).
    checkLimit('maxColumns', this.columns.length + 1, `distinct property number ${this.columns.length + 1} (${JSON.stringify(name.slice(0, 40))})`, {
      file: this.o.file,
    });
    checkLimit('maxNameChars', name.length, `the name of property ${JSON.stringify(name.slice(0, 40) + '…')} (${name.length} characters)`, {
      file: this.o.file,
    });
    const col: Column = { name, shape: [], records: 0, index: this.columns.length, floatEntrySize: 0, firstFeature: -1, firstLine: 0, seen: false };
    this.columns.push(col);
    this.byName.set(name, col);
    return col;
  }

  /** Encodes one row as a serialized Example. Throws BAD_INPUT naming the property, feature and line. */
  encode(row: TableRow): Buffer {
    const buf = Buffer.allocUnsafe(this.prepare(row));
    this.write(buf, 0);
    return buf;
  }

  /**
   * Checks and stages one row; returns the size of its serialized Example, which `write` then writes.
   * Split in two so the Example can be written in place into the framing buffer (framer.ts).
   */
  prepare(row: TableRow): number {
    const props = row.properties;
    const slots = this.slots;
    slots.length = 0;
    if (this.fixed) {
      // Remember what the table does have, so an unknown selector's error can list it (bounded).
      if (this.sampledRows < 1000) {
        this.sampledRows++;
        for (const k in props) if (this.present.size < 200) this.present.add(k);
      }
      for (const col of this.columns) {
        const v = props[col.name];
        if (v === undefined) continue;
        col.seen = true;
        if (v === null) continue;
        slots.push(this.slot(col, v, row));
      }
    } else {
      let sorted = true;
      let last = -1;
      for (const k in props) {
        let col = this.byName.get(k);
        if (!col) {
          if (this.reserved.has(k))
            throw this.err(
              row,
              k,
              `property ${JSON.stringify(k)} clashes with the feature written for "geometry": "${this.o.geometry}" (leave it out with "selectors")`,
            );
          col = this.addColumn(k);
        }
        col.seen = true;
        const v = props[k];
        if (v === null || v === undefined) continue;
        slots.push(this.slot(col, v, row));
        if (col.index < last) sorted = false;
        last = col.index;
      }
      if (!sorted) slots.sort((a, b) => a.order - b.order);
    }
    if (this.o.geometry) this.geometry(row, slots);
    let body = 0;
    for (const s of slots) body += s.size;
    this.body = body;
    // A row with no feature is an empty record (not an empty `features` field).
    return body ? exampleSize(body) : 0;
  }

  /** Writes the row staged by `prepare` at `off`. */
  write(buf: Buffer, off: number): void {
    if (!this.body) return;
    let p = writeExampleHead(buf, off, this.body);
    for (const s of this.slots) {
      const pre = s.prefix;
      for (let i = 0; i < pre.length; i++) buf[p++] = pre[i];
      if (s.floats) {
        const f = s.floats;
        for (let i = 0; i < f.length; i++, p += 4) buf.writeFloatLE(f[i], p);
      } else if (s.scalar !== undefined) {
        buf.writeFloatLE(s.scalar, p);
        p += 4;
      }
    }
  }

  private err(row: TableRow, field: string, msg: string): GeotfrError {
    return new GeotfrError('BAD_INPUT', `${where({ file: this.o.file, index: row.index, line: row.line })}: ${msg}`, {
      file: this.o.file,
      record: row.index,
      field,
    });
  }

  /** Checks one value against its column's type and shape and stages its encoded map entry. */
  private slot(col: Column, v: unknown, row: TableRow): Slot {
    // Hot path (numeric scalars, the common table): no allocation beyond the slot.
    if (typeof v === 'number' || typeof v === 'boolean') {
      if (col.type === 'float' && col.count === 1) {
        col.records++;
        return { order: col.index, prefix: col.floatPrefix!, size: col.floatEntrySize, scalar: typeof v === 'number' ? v : v ? 1 : 0 };
      }
      return this.check(col, { type: 'float', shape: [], floats: Float32Array.of(typeof v === 'number' ? v : v ? 1 : 0) }, row);
    }
    let flat: Flat;
    if (typeof v === 'string') flat = { type: 'string', shape: [], strings: [Buffer.from(v, 'utf8')] };
    else if (Array.isArray(v)) flat = this.flatten(col, v, row);
    else
      throw this.err(
        row,
        col.name,
        `property ${JSON.stringify(col.name)} is ${describe(v)}, which has no TFRecord encoding (numbers, strings, booleans and arrays of them only)`,
      );
    return this.check(col, flat, row);
  }

  private check(col: Column, flat: Flat, row: TableRow): Slot {
    if (col.type === undefined) {
      col.type = flat.type;
      col.shape = flat.shape;
      col.firstFeature = row.index;
      col.firstLine = row.line;
      if (flat.type === 'float') {
        // The map entry of a float feature is a fixed prefix + the values: the encoder's prefix, once.
        col.count = flat.floats!.length;
        col.floatPrefix = floatEntryPrefix(col.name, col.count);
        col.floatEntrySize = col.floatPrefix.length + 4 * col.count;
      }
    } else if (col.type !== flat.type) {
      const t = (x: string) => (x === 'float' ? 'numeric' : 'string');
      throw this.err(
        row,
        col.name,
        `property ${JSON.stringify(col.name)} is ${t(flat.type)} here but ${t(col.type)} in feature ${col.firstFeature} (line ${col.firstLine}): a TFRecord feature needs one type across the table`,
      );
    } else if (!sameShape(col.shape, flat.shape)) {
      throw this.err(
        row,
        col.name,
        `property ${JSON.stringify(col.name)} has shape ${shapeText(flat.shape)} here but ${shapeText(col.shape)} in feature ${col.firstFeature} (line ${col.firstLine}): FixedLenFeature parsing needs one shape per property`,
      );
    }
    col.records++;
    if (flat.type === 'float') return { order: col.index, prefix: col.floatPrefix!, size: col.floatEntrySize, floats: flat.floats };
    const entry = encodeFeatureEntry(col.name, { kind: 'bytes_list', value: flat.strings! });
    return { order: col.index, prefix: entry, size: entry.length };
  }

  /** Flattens a rectangular nested array row-major, checking that leaves are all numeric or all strings. */
  private flatten(col: Column, v: unknown[], row: TableRow): Flat {
    const shape: number[] = [];
    for (let a: unknown = v; Array.isArray(a); a = a[0]) {
      shape.push(a.length);
      if (a.length === 0) break;
    }
    const leaves: unknown[] = [];
    const walk = (a: unknown, d: number): void => {
      if (d === shape.length) {
        if (Array.isArray(a))
          throw this.err(row, col.name, `property ${JSON.stringify(col.name)} is a ragged array (deeper nesting at some elements); arrays must be rectangular`);
        leaves.push(a);
        return;
      }
      if (!Array.isArray(a) || a.length !== shape[d])
        throw this.err(
          row,
          col.name,
          `property ${JSON.stringify(col.name)} is a ragged array (expected ${shape[d]} elements at depth ${d}, found ${Array.isArray(a) ? a.length : describe(a)}); arrays must be rectangular`,
        );
      for (const x of a) walk(x, d + 1);
    };
    walk(v, 0);
    if (leaves.length && typeof leaves[0] === 'string') {
      const strings: Buffer[] = [];
      for (const x of leaves) {
        if (typeof x !== 'string') throw this.err(row, col.name, `property ${JSON.stringify(col.name)} mixes strings and ${describe(x)} in one array`);
        strings.push(Buffer.from(x, 'utf8'));
      }
      return { type: 'string', shape, strings };
    }
    const floats = new Float32Array(leaves.length);
    for (let i = 0; i < leaves.length; i++) {
      const x = leaves[i];
      if (typeof x === 'number') floats[i] = x;
      else if (typeof x === 'boolean') floats[i] = x ? 1 : 0;
      else
        throw this.err(
          row,
          col.name,
          `property ${JSON.stringify(col.name)} has ${describe(x)} at flat position ${i} of a numeric array (nulls cannot be represented in a float_list)`,
        );
    }
    return { type: 'float', shape, floats };
  }

  private geometry(row: TableRow, out: Slot[]): void {
    const g = row.geometry;
    if (!g) return; // null geometry: the geometry features are absent, like any null
    this.geometryRecords++;
    if (this.o.geometry === 'wkt') {
      let wkt: string;
      try {
        wkt = toWkt(g);
      } catch (e) {
        throw this.err(row, 'geometry', `cannot write the geometry as WKT: ${(e as Error).message}`);
      }
      const entry = encodeFeatureEntry('geometry', { kind: 'bytes_list', value: [Buffer.from(wkt, 'utf8')] });
      out.push({ order: Infinity, prefix: entry, size: entry.length });
    } else {
      const c = g.coordinates;
      if (g.type !== 'Point' || !Array.isArray(c) || typeof c[0] !== 'number' || typeof c[1] !== 'number')
        throw this.err(
          row,
          'geometry',
          `"geometry": "lonlat" needs Point geometries, found ${g.type === 'Point' ? 'an empty or malformed Point' : `a ${g.type}`} (use "wkt" for other geometries)`,
        );
      out.push(
        { order: Infinity, prefix: this.lonPrefix, size: this.lonPrefix.length + 4, scalar: c[0] },
        { order: Infinity, prefix: this.latPrefix, size: this.latPrefix.length + 4, scalar: c[1] },
      );
    }
  }

  /** Checks what can only be known at the end: selectors that no feature had. */
  finish(): void {
    if (!this.fixed) return;
    const missing = this.columns.filter((c) => !c.seen).map((c) => c.name);
    if (missing.length)
      throw new GeotfrError(
        'BAD_REQUEST',
        `unknown selector${missing.length > 1 ? 's' : ''} ${missing.map((m) => JSON.stringify(m)).join(', ')}: no feature in the collection has ${missing.length > 1 ? 'these properties' : 'this property'}` +
          ` (the table's properties: ${this.present.size ? [...this.present].map((m) => JSON.stringify(m)).join(', ') : 'none'})`,
        { file: this.o.file, field: 'selectors' },
      );
  }

  /** The output features with their types and shapes, in output order (geometry features last). */
  info(): ColumnInfo[] {
    const out: ColumnInfo[] = this.columns.map(({ name, type, shape, records }) => ({ name, type, shape, records }));
    const records = this.geometryRecords;
    if (this.o.geometry === 'wkt') out.push({ name: 'geometry', type: 'string', shape: [], records });
    if (this.o.geometry === 'lonlat')
      out.push({ name: 'longitude', type: 'float', shape: [], records }, { name: 'latitude', type: 'float', shape: [], records });
    return out;
  }
}

/** The `tf.io` parse spec an EE user would write for a column (scalars as `[1]`, like EE's guides). */
export function columnParseSpec(c: ColumnInfo): string {
  if (c.type === 'string') return c.shape.length ? `tf.io.FixedLenFeature([${c.shape.join(', ')}], tf.string)` : 'tf.io.FixedLenFeature([], tf.string)';
  return `tf.io.FixedLenFeature([${(c.shape.length ? c.shape : [1]).join(', ')}], tf.float32)`;
}
