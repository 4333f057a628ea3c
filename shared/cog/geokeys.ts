/**
 * GeoTIFF georeferencing tags (GeoTIFF 1.0 / OGC 19-008) for an EPSG CRS and an affine transform in
 * the mixer's order (docs/semantics.md §6): `[xScale, xShear, xTranslation, yShear, yScale, yTranslation]`.
 */
import proj4 from 'proj4';
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import { FieldType, TiffTag, type IfdEntry } from './ifd.js';

const GTModelTypeGeoKey = 1024;
const GTRasterTypeGeoKey = 1025;
const GeographicTypeGeoKey = 2048;
const ProjectedCSTypeGeoKey = 3072;
const ModelTypeProjected = 1;
const ModelTypeGeographic = 2;
const RasterPixelIsArea = 1;

/**
 * Whether an EPSG code names a geographic (lon/lat) CRS. proj4 knows 4326, 4269, 3857 and every UTM
 * zone; other codes fall back to EPSG's numbering, where geographic 2D CRSs live in 4000–4999.
 */
export function isGeographicEpsg(code: number): boolean {
  try {
    const def = proj4.defs(`EPSG:${code}`) as unknown as { projName?: string } | undefined;
    if (def?.projName) return def.projName === 'longlat';
  } catch {
    // unknown to proj4: use the numbering rule below
  }
  return code >= 4000 && code < 5000;
}

/** Parses "EPSG:n" (case-insensitive); returns undefined for anything else (e.g. WKT). */
export function epsgCode(crs: string): number | undefined {
  const m = /^\s*EPSG:(\d+)\s*$/i.exec(crs);
  return m ? Number(m[1]) : undefined;
}

/**
 * The EPSG code a GeoTIFF can carry for `crs` (GeoKeys hold 16-bit codes), or a BAD_INPUT error naming
 * the file and `projection.crs`. Ingest calls it up front so a bad mixer fails before any work.
 */
export function requireGeoTiffEpsg(crs: string, file?: string): number {
  const code = epsgCode(crs);
  if (code === undefined || code > 65535) {
    throw new GeotfrError('BAD_INPUT', `unsupported CRS ${JSON.stringify(crs)}: the GeoTIFF writer needs an EPSG code (EPSG:n, n ≤ 65535)`, {
      file,
      field: 'projection.crs',
    });
  }
  return code;
}

/**
 * TiffTag entries placing the raster: ModelPixelScale + ModelTiepoint for north-up grids (what GDAL
 * writes, and what most readers understand), ModelTransformation when the grid is sheared or
 * south-up; then the GeoKey directory for the EPSG code.
 */
export function geoTags(crs: string, affine: Affine, file?: string): IfdEntry[] {
  const [a, b, c, d, e, f] = affine;
  const tags: IfdEntry[] = [];
  if (b === 0 && d === 0 && e < 0 && a > 0) {
    tags.push({ tag: TiffTag.ModelPixelScale, type: FieldType.DOUBLE, values: [a, -e, 0] });
    tags.push({ tag: TiffTag.ModelTiepoint, type: FieldType.DOUBLE, values: [0, 0, 0, c, f, 0] });
  } else {
    tags.push({ tag: TiffTag.ModelTransformation, type: FieldType.DOUBLE, values: [a, b, 0, c, d, e, 0, f, 0, 0, 0, 0, 0, 0, 0, 1] });
  }
  const code = requireGeoTiffEpsg(crs, file);
  const geographic = isGeographicEpsg(code);
  // Keys sorted by id; each is [KeyID, TIFFTagLocation (0 = value inline), Count, Value].
  const keys = [
    [GTModelTypeGeoKey, 0, 1, geographic ? ModelTypeGeographic : ModelTypeProjected],
    [GTRasterTypeGeoKey, 0, 1, RasterPixelIsArea],
    [geographic ? GeographicTypeGeoKey : ProjectedCSTypeGeoKey, 0, 1, code],
  ];
  tags.push({ tag: TiffTag.GeoKeyDirectory, type: FieldType.SHORT, values: [1, 1, 0, keys.length, ...keys.flat()] });
  return tags;
}
