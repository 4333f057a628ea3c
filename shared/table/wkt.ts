/** GeoJSON geometry → Well-Known Text (OGC 06-103r4), for `"geometry": "wkt"` table exports (docs/semantics.md §8). */
import type { Geometry } from './row.js';

/** Formats a GeoJSON geometry as WKT, e.g. `POINT (-105.5 40.25)`. Throws on a malformed geometry. */
export function toWkt(g: Geometry): string {
  const pos = (p: unknown): string => {
    if (!Array.isArray(p) || p.length < 2 || !p.every((x) => typeof x === 'number')) throw new Error(`bad position ${JSON.stringify(p)}`);
    return p.join(' ');
  };
  const list = (ps: unknown, f: (x: unknown) => string): string => {
    if (!Array.isArray(ps)) throw new Error(`expected an array of coordinates, found ${JSON.stringify(ps)}`);
    return ps.length ? `(${ps.map(f).join(', ')})` : 'EMPTY';
  };
  const line = (ps: unknown) => list(ps, pos);
  const poly = (rs: unknown) => list(rs, line);
  const z = (c: unknown): string => {
    // Dimension from the first position found; GeoJSON allows an optional third (height) value.
    let p = c;
    while (Array.isArray(p) && Array.isArray(p[0])) p = p[0];
    return Array.isArray(p) && p.length >= 3 ? ' Z' : '';
  };
  const c = g.coordinates;
  switch (g.type) {
    case 'Point':
      return Array.isArray(c) && c.length === 0 ? 'POINT EMPTY' : `POINT${z(c)} (${pos(c)})`;
    case 'MultiPoint':
      return `MULTIPOINT${z(c)} ${list(c, (p) => `(${pos(p)})`)}`;
    case 'LineString':
      return `LINESTRING${z(c)} ${line(c)}`;
    case 'MultiLineString':
      return `MULTILINESTRING${z(c)} ${list(c, line)}`;
    case 'Polygon':
      return `POLYGON${z(c)} ${poly(c)}`;
    case 'MultiPolygon':
      return `MULTIPOLYGON${z(c)} ${list(c, poly)}`;
    case 'GeometryCollection': {
      const gs = g.geometries;
      if (!Array.isArray(gs)) throw new Error('GeometryCollection without "geometries"');
      return gs.length ? `GEOMETRYCOLLECTION (${gs.map(toWkt).join(', ')})` : 'GEOMETRYCOLLECTION EMPTY';
    }
    default:
      throw new Error(`unknown geometry type ${JSON.stringify(g.type)}`);
  }
}
