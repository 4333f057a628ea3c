/**
 * CRSs by name, offline (docs/semantics.md §11): every EPSG code of the `epsg-index` registry beside
 * proj4's built-ins (4326, 3857, the WGS84 UTM zones), WKT and proj strings, and the user-defined
 * projections a GeoTIFF's GeoKeys describe without an EPSG code.
 *
 * EPSG definitions are read one code at a time from `epsg-index/s/CODE.json` (a few hundred bytes
 * each) the first time the code is used, never the 8 MB `all.json`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import proj4 from 'proj4';
import { GeotfrError } from '../errors.js';

/** proj4's projection object (its type declarations do not name every field we read). */
interface ProjInfo {
  projName?: string;
  units?: string;
  to_meter?: number;
}

/**
 * Normalizes a CRS name to something proj4 can look up: "EPSG:n" (also from
 * `urn:ogc:def:crs:EPSG::n` and `epsg:n`), CRS84 → EPSG:4326 (both lon/lat here), or WKT/proj strings as is.
 */
export function normalizeCrs(name: string): string {
  const s = name.trim();
  if (/^(urn:ogc:def:crs:OGC:(1\.3)?:CRS84|OGC:CRS84|CRS84)$/i.test(s)) return 'EPSG:4326';
  const m = s.match(/^(?:urn:ogc:def:crs:EPSG:[\d.]*:|EPSG:+)(\d+)$/i);
  if (m) return `EPSG:${Number(m[1])}`;
  return s;
}

/** The EPSG code of "EPSG:n" (any spelling normalizeCrs accepts), else undefined. */
export function epsgCodeOf(crs: string): number | undefined {
  const m = /^EPSG:(\d+)$/.exec(normalizeCrs(crs));
  return m ? Number(m[1]) : undefined;
}

let registryDir: string | undefined;
/** `node_modules/epsg-index/s`, found the way Node resolves the package (the Functions runtime has it too). */
function registry(): string {
  registryDir ??= path.join(path.dirname(createRequire(import.meta.url).resolve('epsg-index/package.json')), 's');
  return registryDir;
}

/** The registry's proj4 string for an EPSG code, or undefined when the code is not a CRS it knows. */
export function registryProj4(code: number): string | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(registry(), `${code}.json`), 'utf8');
  } catch {
    return undefined;
  }
  const entry = JSON.parse(text) as { proj4?: unknown };
  return typeof entry.proj4 === 'string' && entry.proj4.trim() ? entry.proj4.trim() : undefined;
}

const projCache = new Map<string, ProjInfo>();

/**
 * A CRS name proj4 can use ("EPSG:n" registered from the registry on first use, or the WKT/proj string
 * itself), or a BAD_REQUEST naming `field` and the CRS.
 */
export function crsDefinition(crs: string, field: string): string {
  const n = normalizeCrs(crs);
  const code = epsgCodeOf(n);
  if (code !== undefined) {
    if (!proj4.defs(n)) {
      const def = registryProj4(code);
      if (!def) throw new GeotfrError('BAD_REQUEST', `unknown CRS ${n}: EPSG has no coordinate reference system with code ${code}`, { field });
      proj4.defs(n, withoutGrids(n, def));
    }
  } else if (/^\+proj=/i.test(n)) {
    if (!projCache.has(n)) proj4.defs(n, withoutGrids(n, n));
  } else if (!/^(PROJCS|GEOGCS|PROJCRS|GEOGCRS)/i.test(n)) {
    throw new GeotfrError('BAD_REQUEST', `unrecognized CRS ${JSON.stringify(crs)}; use "EPSG:n", a WKT or a proj string`, { field });
  }
  projInfo(n, field);
  return n;
}

/**
 * CRSs whose datum is tied to WGS84 only through a shift grid geotfr does not ship (EPSG:27700's
 * OSTN15, NAD27's conus…): name → their datum parameters. Within such a datum no shift is needed;
 * across datums proj4 would fail (or print and return NaN), so pointTransformer refuses instead.
 */
const gridDatums = new Map<string, { grids: string; datum: string }>();

/** A proj4 string with its mandatory `+nadgrids` removed (recorded in gridDatums); optional (`@`) grids stay optional. */
function withoutGrids(name: string, def: string): string {
  const tokens = def.split(/\s+/);
  const grids = tokens.find((t) => t.startsWith('+nadgrids='))?.slice('+nadgrids='.length);
  if (!grids || grids.split(',').every((g) => g.startsWith('@') || g === 'null')) return def;
  const datum = tokens
    .filter((t) => /^\+(datum|ellps|a|b|rf|nadgrids|towgs84|pm)=/.test(t))
    .sort()
    .join(' ');
  gridDatums.set(name, { grids, datum });
  return tokens.filter((t) => !t.startsWith('+nadgrids=')).join(' ');
}

/** Parsed projection of a CRS (cached), or BAD_REQUEST when proj4 cannot use its definition. */
function projInfo(n: string, field: string): ProjInfo {
  let p = projCache.get(n);
  if (!p) {
    try {
      p = new proj4.Proj(n) as unknown as ProjInfo;
    } catch (err) {
      throw new GeotfrError('BAD_REQUEST', `CRS ${n.length > 120 ? `${n.slice(0, 117)}...` : n} cannot be used: ${(err as Error).message}`, { field });
    }
    if (!p.projName) throw new GeotfrError('BAD_REQUEST', `CRS ${n} has no projection proj4 knows`, { field });
    projCache.set(n, p);
  }
  return p;
}

/** Whether a CRS is geographic (lon/lat in degrees). */
export function isGeographic(crs: string, field = 'crs'): boolean {
  return projInfo(crsDefinition(crs, field), field).projName === 'longlat';
}

/** EE's nominal metres per degree (the equatorial circumference / 360), used to turn `scale` into degrees. */
export const METRES_PER_DEGREE = 111319.49079327357;

/** Metres per CRS unit: degrees count EE's nominal metre per degree; projected units their `to_meter`. */
export function metresPerUnit(crs: string, field = 'crs'): number {
  const p = projInfo(crsDefinition(crs, field), field);
  if (p.projName === 'longlat') return METRES_PER_DEGREE;
  return typeof p.to_meter === 'number' && p.to_meter > 0 ? p.to_meter : 1;
}

/** Whether two CRS names denote the same CRS by name (normalized). Different names for one CRS count as different. */
export function sameCrs(a: string, b: string): boolean {
  return normalizeCrs(a) === normalizeCrs(b);
}

export type PointTransform = (x: number, y: number) => [number, number];

const converters = new Map<string, PointTransform>();

/**
 * An exact point transformer between two CRSs (proj4; identity for the same CRS). Points proj4 cannot
 * place come back non-finite. `field` names the request field in errors about unknown CRSs.
 */
export function pointTransformer(from: string, to: string, field = 'crs'): PointTransform {
  const a = crsDefinition(from, field);
  const b = crsDefinition(to, field);
  if (a === b) return (x, y) => [x, y];
  const ga = gridDatums.get(a),
    gb = gridDatums.get(b);
  if ((ga || gb) && ga?.datum !== gb?.datum) {
    const [name, g] = ga ? [a, ga] : [b, gb!];
    throw new GeotfrError(
      'BAD_REQUEST',
      `transforming between ${a} and ${b} needs the datum shift grid ${g.grids} of ${name}, which geotfr does not have; use CRSs on one datum (e.g. give the region in ${name})`,
      { field },
    );
  }
  const key = `${a}\u0000${b}`;
  let t = converters.get(key);
  if (!t) {
    const conv = proj4(a, b);
    t = (x, y) => {
      let p: number[];
      try {
        p = conv.forward([x, y]) as number[];
      } catch {
        return [NaN, NaN];
      }
      return [p[0]!, p[1]!];
    };
    converters.set(key, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// GeoTIFF GeoKeys (GeoTIFF 1.0 / OGC 19-008) describing a CRS without an EPSG code.

const USER_DEFINED = 32767;

/** GeoKeys as geotiff.js returns them (by name). */
export type GeoKeys = Record<string, unknown>;

/** EPSG ellipsoid codes GDAL writes, as proj4 ellipsoid names (explicit axes in the keys win). */
const ELLIPSOIDS: Record<number, string> = {
  7001: 'airy',
  7002: 'mod_airy',
  7004: 'bessel',
  7008: 'clrk66',
  7012: 'clrk80',
  7019: 'GRS80',
  7022: 'intl',
  7024: 'krass',
  7030: 'WGS84',
  7043: 'WGS72',
};

/** Linear units (EPSG unit codes) in metres. */
const LINEAR_UNITS: Record<number, number> = { 9001: 1, 9002: 0.3048, 9003: 1200 / 3937, 9036: 1000 };

/**
 * The datum part of a proj4 string (`+datum`, `+ellps`, `+a`, `+b`, `+rf`, `+towgs84`, `+nadgrids`, `+pm`)
 * for the geographic CRS of a GeoTIFF: its EPSG code, else its datum's, else explicit ellipsoid axes.
 */
function geographicPart(k: GeoKeys, file: string): string {
  const num = (name: string) => (typeof k[name] === 'number' && Number.isFinite(k[name]) ? (k[name] as number) : undefined);
  const fromRegistry = (code: number | undefined) => {
    if (code === undefined || code === USER_DEFINED) return undefined;
    const def = registryProj4(code);
    if (!def || !/\+proj=longlat\b/.test(def)) return undefined;
    const keep = def.split(/\s+/).filter((t) => /^\+(datum|ellps|a|b|rf|towgs84|nadgrids|pm)=/.test(t));
    return keep.length ? keep.join(' ') : undefined;
  };
  const byCode = fromRegistry(num('GeographicTypeGeoKey'));
  if (byCode) return byCode;
  // EPSG numbers a datum's geographic CRS 2000 below the datum (6326 → 4326, 6258 → 4258); checked against its WKT.
  const datum = num('GeogGeodeticDatumGeoKey');
  if (datum !== undefined && datum !== USER_DEFINED && datum >= 6000 && datum < 7000) {
    const code = datum - 2000;
    try {
      const entry = JSON.parse(readFileSync(path.join(registry(), `${code}.json`), 'utf8')) as { wkt?: string };
      if (entry.wkt?.includes(`AUTHORITY["EPSG","${datum}"]`)) {
        const part = fromRegistry(code);
        if (part) return part;
      }
    } catch {
      // not in the registry: fall back to the ellipsoid below
    }
  }
  const pmLong = num('GeogPrimeMeridianLongGeoKey');
  const pm = pmLong ? ` +pm=${pmLong}` : '';
  const a = num('GeogSemiMajorAxisGeoKey');
  const b = num('GeogSemiMinorAxisGeoKey');
  const rf = num('GeogInvFlatteningGeoKey');
  if (a !== undefined && rf !== undefined) return rf === 0 ? `+a=${a} +b=${a}${pm}` : `+a=${a} +rf=${rf}${pm}`;
  if (a !== undefined && b !== undefined) return `+a=${a} +b=${b}${pm}`;
  const ellps = num('GeogEllipsoidGeoKey');
  if (ellps !== undefined && ELLIPSOIDS[ellps]) return `+ellps=${ELLIPSOIDS[ellps]}${pm}`;
  throw new GeotfrError('BAD_INPUT', 'has a user-defined CRS whose GeoKeys name no known geographic CRS, datum or ellipsoid', { file });
}

/**
 * A proj4 string for the CRS a GeoTIFF's GeoKeys define without an EPSG code: a user-defined
 * geographic CRS, a UTM zone on a user-defined datum (ProjectionGeoKey 160zz/161zz), or one of the
 * coordinate transformations GDAL writes (ProjCoordTransGeoKey): Transverse Mercator, Mercator,
 * Lambert Conformal Conic (1SP, 2SP), Lambert Azimuthal Equal Area, Albers, Polar, oblique and plain
 * Stereographic, Equirectangular, Sinusoidal. BAD_INPUT naming the file for anything else.
 */
export function geoKeysProj4(k: GeoKeys, file: string): string {
  const num = (name: string) => (typeof k[name] === 'number' && Number.isFinite(k[name]) ? (k[name] as number) : undefined);
  const datum = geographicPart(k, file);
  const model = num('GTModelTypeGeoKey');
  if (model === 2 || (model === undefined && num('ProjectedCSTypeGeoKey') === undefined)) return `+proj=longlat ${datum} +no_defs`;
  const angular = num('GeogAngularUnitsGeoKey');
  if (angular !== undefined && angular !== 9102 && angular !== USER_DEFINED)
    throw new GeotfrError('BAD_INPUT', `has a user-defined CRS with angular unit ${angular}; only degrees (9102) are supported`, { file });
  const unitCode = num('ProjLinearUnitsGeoKey') ?? 9001;
  const toMeter = unitCode === USER_DEFINED ? num('ProjLinearUnitSizeGeoKey') : LINEAR_UNITS[unitCode];
  if (!toMeter) throw new GeotfrError('BAD_INPUT', `has a user-defined CRS with unknown linear unit ${unitCode}`, { file });
  const units = toMeter === 1 ? '+units=m' : `+to_meter=${toMeter}`;
  const projection = num('ProjectionGeoKey');
  if (projection !== undefined && projection !== USER_DEFINED) {
    // EPSG's UTM conversions: 16001..16060 north, 16101..16160 south.
    const zone = projection % 100;
    if ((projection - zone === 16000 || projection - zone === 16100) && zone >= 1 && zone <= 60)
      return `+proj=utm +zone=${zone}${projection >= 16100 ? ' +south' : ''} ${datum} ${units} +no_defs`;
    throw new GeotfrError(
      'BAD_INPUT',
      `has a user-defined CRS with projection code ${projection}, which geotfr cannot read; reproject the file (gdalwarp -t_srs EPSG:n)`,
      { file },
    );
  }
  const ct = num('ProjCoordTransGeoKey');
  // Angles in degrees; false eastings/northings in the file's linear unit, proj4's +x_0/+y_0 in metres.
  const first = (...names: string[]) => {
    for (const n of names) {
      const v = num(n);
      if (v !== undefined) return v;
    }
    return 0;
  };
  const fe = first('ProjFalseEastingGeoKey', 'ProjFalseOriginEastingGeoKey', 'ProjCenterEastingGeoKey') * toMeter;
  const fn = first('ProjFalseNorthingGeoKey', 'ProjFalseOriginNorthingGeoKey', 'ProjCenterNorthingGeoKey') * toMeter;
  const lat0 = first('ProjNatOriginLatGeoKey', 'ProjFalseOriginLatGeoKey', 'ProjCenterLatGeoKey');
  const lon0 = first('ProjNatOriginLongGeoKey', 'ProjFalseOriginLongGeoKey', 'ProjCenterLongGeoKey', 'ProjStraightVertPoleLongGeoKey');
  const k0 = num('ProjScaleAtNatOriginGeoKey') ?? num('ProjScaleAtCenterGeoKey') ?? 1;
  const sp1 = num('ProjStdParallel1GeoKey');
  const sp2 = num('ProjStdParallel2GeoKey');
  const tail = `+x_0=${fe} +y_0=${fn} ${datum} ${units} +no_defs`;
  switch (ct) {
    case 1: // CT_TransverseMercator
      return `+proj=tmerc +lat_0=${lat0} +lon_0=${lon0} +k_0=${k0} ${tail}`;
    case 7: // CT_Mercator (2SP when a standard parallel is given)
      return sp1 !== undefined ? `+proj=merc +lat_ts=${sp1} +lon_0=${lon0} ${tail}` : `+proj=merc +lon_0=${lon0} +k_0=${k0} ${tail}`;
    case 8: // CT_LambertConfConic_2SP
      return `+proj=lcc +lat_0=${lat0} +lon_0=${lon0} +lat_1=${sp1 ?? lat0} +lat_2=${sp2 ?? sp1 ?? lat0} ${tail}`;
    case 9: // CT_LambertConfConic_1SP
      return `+proj=lcc +lat_1=${lat0} +lat_0=${lat0} +lon_0=${lon0} +k_0=${k0} ${tail}`;
    case 10: // CT_LambertAzimEqualArea
      return `+proj=laea +lat_0=${lat0} +lon_0=${lon0} ${tail}`;
    case 11: // CT_AlbersEqualArea
      return `+proj=aea +lat_0=${lat0} +lon_0=${lon0} +lat_1=${sp1 ?? lat0} +lat_2=${sp2 ?? sp1 ?? lat0} ${tail}`;
    case 14: // CT_Stereographic
      return `+proj=stere +lat_0=${lat0} +lon_0=${lon0} +k_0=${k0} ${tail}`;
    case 15: {
      // CT_PolarStereographic. GDAL writes variant B's latitude of true scale as the origin latitude
      // (with scale 1) and variant A as a pole with a scale factor; it reads them back that way.
      const lon = num('ProjStraightVertPoleLongGeoKey') ?? lon0;
      const pole = lat0 < 0 ? -90 : 90;
      if (Math.abs(Math.abs(lat0) - 90) > 1e-8 && k0 === 1) return `+proj=stere +lat_0=${pole} +lat_ts=${lat0} +lon_0=${lon} ${tail}`;
      return `+proj=stere +lat_0=${pole} +lon_0=${lon} +k_0=${k0} ${tail}`;
    }
    case 16: // CT_ObliqueStereographic
      return `+proj=sterea +lat_0=${lat0} +lon_0=${lon0} +k_0=${k0} ${tail}`;
    case 17: // CT_Equirectangular
      return `+proj=eqc +lat_ts=${sp1 ?? lat0} +lon_0=${lon0} ${tail}`;
    case 24: // CT_Sinusoidal
      return `+proj=sinu +lon_0=${lon0} ${tail}`;
    default:
      throw new GeotfrError(
        'BAD_INPUT',
        `has a user-defined projection (ProjCoordTransGeoKey=${ct ?? 'missing'}) geotfr cannot read; reproject the file (gdalwarp -t_srs EPSG:n)`,
        { file },
      );
  }
}
