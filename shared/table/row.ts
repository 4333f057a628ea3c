/**
 * One row of an input table, whatever its format: a GeoJSON Feature's properties and geometry, or
 * a CSV line's cells. `index` and `line` travel with it so every later error can name the feature
 * and where it is in the file (issue 5).
 */
import { GeotfrError } from '../errors.js';

/** A GeoJSON geometry object (RFC 7946), kept as parsed. */
export interface Geometry {
  type: string;
  coordinates?: unknown;
  geometries?: Geometry[];
}

export interface TableRow {
  /** Property values as parsed (JSON values; CSV cells already typed). Missing and null both mean absent. */
  properties: Record<string, unknown>;
  /** The feature's geometry; undefined for CSV rows, null for a Feature without geometry. */
  geometry?: Geometry | null;
  /** 0-based feature index in the input. */
  index: number;
  /** 1-based line where the feature starts. */
  line: number;
  /** Byte offset where the feature starts, in the (uncompressed) UTF-8 text; the readers set it. */
  offset?: number;
}

/** Where a row came from, for error messages. */
export interface RowPlace {
  file: string;
  index: number;
  line: number;
  column?: number;
  offset?: number;
}

export const where = (p: RowPlace) => `feature ${p.index} (line ${p.line}${p.column !== undefined ? `, column ${p.column}` : ''})`;

/** Turns a parsed GeoJSON value into a row, insisting it is a Feature (RFC 7946 §3.2). */
export function featureToRow(value: unknown, place: RowPlace): TableRow {
  const fail = (msg: string): never => {
    throw new GeotfrError('BAD_INPUT', `${where(place)}: ${msg}`, { file: place.file, record: place.index });
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`expected a GeoJSON Feature object, found ${describe(value)}`);
  const f = value as { type?: unknown; properties?: unknown; geometry?: unknown };
  if (f.type !== 'Feature') fail(`expected a GeoJSON Feature ("type": "Feature"), found "type": ${JSON.stringify(f.type ?? null)}`);
  let properties: Record<string, unknown> = {};
  if (f.properties !== undefined && f.properties !== null) {
    if (typeof f.properties !== 'object' || Array.isArray(f.properties)) fail(`"properties" must be an object or null, found ${describe(f.properties)}`);
    properties = f.properties as Record<string, unknown>;
  }
  let geometry: Geometry | null = null;
  if (f.geometry !== undefined && f.geometry !== null) {
    const g = f.geometry as Geometry;
    if (typeof g !== 'object' || Array.isArray(g) || typeof g.type !== 'string')
      fail(`"geometry" must be a GeoJSON geometry object or null, found ${describe(f.geometry)}`);
    geometry = g;
  }
  return { properties, geometry, index: place.index, line: place.line, offset: place.offset };
}

/** A short description of a JSON value's type for messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `a string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `a ${typeof v} (${String(v)})`;
}
