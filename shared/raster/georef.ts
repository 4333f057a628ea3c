/**
 * Georeferencing of a GeoTIFF image, read the way GDAL reads it: the affine from ModelTransformation
 * or ModelPixelScale + ModelTiepoint, shifted half a pixel for PixelIsPoint rasters (GDAL's default,
 * GTIFF_POINT_GEO_IGNORE=FALSE), and the CRS as "EPSG:n" from the GeoKeys.
 */
import type { GeoTIFFImage } from 'geotiff';
import { GeotfrError } from '../errors.js';
import { geoKeysProj4 } from '../grid/crs.js';
import type { Affine } from '../mixer.js';

const USER_DEFINED = 32767;
const MODEL_PROJECTED = 1;
const MODEL_GEOGRAPHIC = 2;
const RASTER_PIXEL_IS_POINT = 2;

/** Affine in the mixer's order (docs/semantics.md §6) for the full-resolution image. */
export function readAffine(image: GeoTIFFImage, uri: string): Affine {
  const fd = image.getFileDirectory();
  const transform = fd.getValue('ModelTransformation') as ArrayLike<number> | undefined;
  const tie = fd.getValue('ModelTiepoint') as ArrayLike<number> | undefined;
  const scale = fd.getValue('ModelPixelScale') as ArrayLike<number> | undefined;
  let a: number, b: number, c: number, d: number, e: number, f: number;
  if (transform && transform.length >= 16) {
    [a, b, c, d, e, f] = [transform[0]!, transform[1]!, transform[3]!, transform[4]!, transform[5]!, transform[7]!];
  } else if (tie && tie.length >= 6 && scale && scale.length >= 2) {
    if (tie.length > 6)
      throw new GeotfrError(
        'BAD_INPUT',
        `has ${tie.length / 6} tiepoints and no pixel scale model; only one tiepoint + scale or a transformation matrix is supported`,
        { file: uri },
      );
    const [i, j, , x, y] = [tie[0]!, tie[1]!, tie[2]!, tie[3]!, tie[4]!];
    [a, b, d, e] = [scale[0]!, 0, 0, -scale[1]!];
    c = x - i * a;
    f = y - j * e;
  } else {
    throw new GeotfrError('BAD_INPUT', 'is not georeferenced (no ModelTransformation or ModelPixelScale+ModelTiepoint tags)', { file: uri });
  }
  const keys = image.getGeoKeys() ?? {};
  if (keys.GTRasterTypeGeoKey === RASTER_PIXEL_IS_POINT) {
    // The tiepoint names the centre of pixel (0,0); GDAL moves it to the pixel's corner.
    c -= 0.5 * a + 0.5 * b;
    f -= 0.5 * d + 0.5 * e;
  }
  const m: Affine = [a, b, c, d, e, f];
  if (!m.every(Number.isFinite) || a * e - b * d === 0) throw new GeotfrError('BAD_INPUT', `has a degenerate geotransform ${JSON.stringify(m)}`, { file: uri });
  return m;
}

/** The image CRS as "EPSG:n", or a proj string for a user-defined CRS its GeoKeys describe (shared/grid/crs.ts). */
export function readCrs(image: GeoTIFFImage, uri: string): string {
  const keys = image.getGeoKeys();
  if (!keys) throw new GeotfrError('BAD_INPUT', 'has no GeoKeys (no CRS); assign one, e.g. gdal_edit.py -a_srs EPSG:4326', { file: uri });
  const model = keys.GTModelTypeGeoKey;
  const projected = keys.ProjectedCSTypeGeoKey as number | undefined;
  const geographic = keys.GeographicTypeGeoKey as number | undefined;
  if (model === MODEL_PROJECTED || (model === undefined && projected !== undefined)) {
    if (projected !== undefined && projected !== USER_DEFINED) return `EPSG:${projected}`;
    // A projection the GeoKeys spell out (docs/semantics.md §11), as a proj string.
    return geoKeysProj4(keys as Record<string, unknown>, uri);
  }
  if (model === MODEL_GEOGRAPHIC || (model === undefined && geographic !== undefined)) {
    if (geographic !== undefined && geographic !== USER_DEFINED) return `EPSG:${geographic}`;
    return geoKeysProj4(keys as Record<string, unknown>, uri);
  }
  throw new GeotfrError('BAD_INPUT', `has an unsupported CRS model (GTModelTypeGeoKey=${String(model)})`, { file: uri });
}
