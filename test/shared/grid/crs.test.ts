/**
 * The CRS registry (shared/grid/crs.ts): EPSG codes proj4 does not build in (3035, 3413, 3031,
 * 2154, 27700, 5070) transform like GDAL (PROJ, `gdaltransform`); unknown codes are BAD_REQUEST
 * naming the code and the field; GeoTIFFs whose GeoKeys define a projection without an EPSG code
 * (written by GDAL itself from proj strings: Transverse Mercator, LAEA, polar stereographic A and B,
 * Albers, Lambert Conformal Conic 1SP/2SP, a UTM zone on a custom ellipsoid, US survey feet) read
 * back as proj4 strings that place points where GDAL places them.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fromFile } from 'geotiff';
import { GeotfrError } from '../../../shared/errors.js';
import { crsDefinition, geoKeysProj4, isGeographic, metresPerUnit, normalizeCrs, pointTransformer } from '../../../shared/grid/crs.js';
import { needGdal, run } from '../../support/oracles.js';
import { tempDir } from '../../support/rasters.js';
import { mulberry32 } from '../../support/random.js';

/** Transforms points with GDAL (PROJ), the oracle for proj4. */
async function gdalTransform(from: string, to: string, pts: [number, number][]): Promise<[number, number][]> {
  const out = (
    await run('gdaltransform', ['-s_srs', from, '-t_srs', to, '-output_xy'], { input: pts.map((p) => `${p[0]} ${p[1]}`).join('\n') + '\n' })
  ).stdout.toString();
  return out
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
}

const isBadRequest = (field: string, re: RegExp) => (e: unknown) =>
  e instanceof GeotfrError && e.code === 'BAD_REQUEST' && e.context.field === field && re.test(e.message);

test('names normalize; unknown codes and non-CRS strings are BAD_REQUEST naming the code and the field', () => {
  assert.equal(normalizeCrs('urn:ogc:def:crs:EPSG::3035'), 'EPSG:3035');
  assert.equal(normalizeCrs('epsg:4326'), 'EPSG:4326');
  assert.equal(normalizeCrs('OGC:CRS84'), 'EPSG:4326');
  assert.equal(crsDefinition('EPSG:3035', 'crs'), 'EPSG:3035');
  assert.throws(() => crsDefinition('EPSG:999999', 'crs'), isBadRequest('crs', /unknown CRS EPSG:999999/));
  // 7030 is an ellipsoid, not a CRS.
  assert.throws(() => crsDefinition('EPSG:7030', 'image.bands[0].crs'), isBadRequest('image.bands[0].crs', /unknown CRS EPSG:7030/));
  assert.throws(() => crsDefinition('WGS84 please', 'crs'), isBadRequest('crs', /unrecognized CRS "WGS84 please"/));
  assert.equal(isGeographic('EPSG:4326'), true);
  assert.equal(isGeographic('EPSG:4258'), true);
  assert.equal(isGeographic('EPSG:3035'), false);
  // British National Grid reaches WGS84 only through the OSTN15 grid: refused across datums, fine within OSGB36.
  assert.throws(() => pointTransformer('EPSG:4326', 'EPSG:27700', 'region'), isBadRequest('region', /EPSG:27700.*OSTN15_NTv2_OSGBtoETRS\.gsb/));
  const [e, n] = pointTransformer('EPSG:4277', 'EPSG:27700')(-2, 49);
  assert.ok(Math.abs(e - 400000) < 1e-6 && Math.abs(n + 100000) < 1e-6, `true origin of the National Grid: ${e}, ${n}`);
  assert.equal(metresPerUnit('EPSG:4326'), 111319.49079327357);
  assert.equal(metresPerUnit('EPSG:32633'), 1);
  // NAD83 / Texas Central (ftUS).
  assert.equal(metresPerUnit('EPSG:2277'), 1200 / 3937);
});

test('EPSG codes beyond proj4 built-ins transform like GDAL (PROJ) within a millimetre', async (t) => {
  if (!needGdal(t)) return;
  const r = mulberry32(31);
  const cases: { crs: string; lon: [number, number]; lat: [number, number] }[] = [
    { crs: 'EPSG:3035', lon: [-5, 25], lat: [38, 65] },
    { crs: 'EPSG:3413', lon: [-80, 20], lat: [62, 85] },
    { crs: 'EPSG:3031', lon: [-180, 180], lat: [-85, -62] },
    { crs: 'EPSG:2154', lon: [-4, 8], lat: [42, 51] },
    { crs: 'EPSG:5070', lon: [-120, -75], lat: [28, 48] },
    { crs: 'EPSG:32755', lon: [141, 147], lat: [-40, -10] },
  ];
  for (const c of cases) {
    const pts: [number, number][] = Array.from({ length: 40 }, () => [c.lon[0] + (c.lon[1] - c.lon[0]) * r(), c.lat[0] + (c.lat[1] - c.lat[0]) * r()]);
    const fwd = pointTransformer('EPSG:4326', c.crs);
    const gdal = await gdalTransform('EPSG:4326', c.crs, pts);
    pts.forEach((p, i) => {
      const o = fwd(p[0], p[1]);
      assert.ok(Math.hypot(o[0] - gdal[i]![0], o[1] - gdal[i]![1]) < 1e-3, `${c.crs} at ${p}: proj4 ${o}, GDAL ${gdal[i]}`);
    });
  }
});

test('GeoKeys of user-defined projections (written by GDAL) read back as proj4 strings that place points like GDAL', async (t) => {
  if (!needGdal(t)) return;
  const dir = await tempDir('geotfr-geokeys-');
  try {
    const projections: { srs: string; lon: number; lat: number }[] = [
      { srs: '+proj=tmerc +lat_0=10 +lon_0=13 +k=0.9995 +x_0=200000 +y_0=100 +ellps=GRS80 +units=m', lon: 14, lat: 30 },
      { srs: '+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m', lon: 5, lat: 48 },
      { srs: '+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +x_0=0 +y_0=0 +datum=WGS84 +units=m', lon: -40, lat: 72 },
      { srs: '+proj=stere +lat_0=-90 +k=0.994 +lon_0=0 +x_0=2000000 +y_0=2000000 +datum=WGS84 +units=m', lon: 60, lat: -80 },
      { srs: '+proj=aea +lat_0=23 +lon_0=-96 +lat_1=29.5 +lat_2=45.5 +x_0=0 +y_0=0 +datum=NAD83 +units=m', lon: -100, lat: 40 },
      { srs: '+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +units=m', lon: 2, lat: 47 },
      { srs: '+proj=lcc +lat_1=18 +lat_0=18 +lon_0=-77 +k_0=1 +x_0=250000 +y_0=150000 +ellps=clrk66 +units=us-ft', lon: -77.3, lat: 18.2 },
      { srs: '+proj=tmerc +lat_0=0 +lon_0=9 +k=0.9996 +x_0=500000 +y_0=0 +a=6378000 +rf=297 +units=m', lon: 10, lat: 50 },
      { srs: '+proj=longlat +a=6378000 +rf=297 +no_defs', lon: 10, lat: 50 },
    ];
    const r = mulberry32(7);
    for (const [i, p] of projections.entries()) {
      const file = path.join(dir, `p${i}.tif`);
      await run('gdal_create', ['-q', '-outsize', '4', '4', '-a_srs', p.srs, '-a_ullr', '0', '100', '100', '0', file]);
      const keys = (await (await fromFile(file)).getImage()).getGeoKeys() as Record<string, unknown>;
      assert.ok(keys.ProjectedCSTypeGeoKey === 32767 || keys.GeographicTypeGeoKey === 32767, `${p.srs}: GDAL wrote an EPSG code: ${JSON.stringify(keys)}`);
      const ours = geoKeysProj4(keys, file);
      const wkt = (await run('gdalsrsinfo', ['-o', 'wkt1', file])).stdout.toString().trim();
      const pts: [number, number][] = Array.from({ length: 12 }, () => [p.lon + (r() - 0.5) * 2, p.lat + (r() - 0.5) * 2]);
      const gdal = await gdalTransform('EPSG:4326', wkt, pts);
      const fwd = pointTransformer('EPSG:4326', ours);
      pts.forEach((q, k) => {
        const o = fwd(q[0], q[1]);
        assert.ok(Math.hypot(o[0] - gdal[k]![0], o[1] - gdal[k]![1]) < 1e-3, `${p.srs} → ${ours} at ${q}: ours ${o}, GDAL ${gdal[k]}`);
      });
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('GeoKeys geotfr cannot read are BAD_INPUT naming the file', () => {
  const keys = { GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32767, GeographicTypeGeoKey: 4326, ProjCoordTransGeoKey: 21 };
  assert.throws(
    () => geoKeysProj4(keys, 'x.tif'),
    (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && e.context.file === 'x.tif' && /ProjCoordTransGeoKey=21/.test(e.message),
  );
  assert.throws(
    () => geoKeysProj4({ GTModelTypeGeoKey: 1, ProjectedCSTypeGeoKey: 32767, ProjCoordTransGeoKey: 1 }, 'y.tif'),
    (e: unknown) => e instanceof GeotfrError && e.code === 'BAD_INPUT' && /no known geographic CRS/.test(e.message),
  );
});
