/** The request model (docs/semantics.md §2): defaults in one place, EE's names, unknown keys, errors naming field and value. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, parseImageExportRequest } from '../../../shared/export/request.js';
import { GeotfrError } from '../../../shared/errors.js';

const base = { image: 'gs://b/scene.tif', bucket: 'my-bucket', fileNamePrefix: 'exports/run1/patches', formatOptions: { patchDimensions: [256, 256] } };

const fails = (json: unknown, code: string, field: string, message: RegExp) =>
  assert.throws(
    () => parseImageExportRequest(json),
    (e: unknown) => e instanceof GeotfrError && e.code === code && e.context.field === field && message.test(e.message),
  );

test('defaults are applied as docs/semantics.md §2-5 state', () => {
  const r = parseImageExportRequest(base);
  assert.deepEqual(r.formatOptions, {
    patchDimensions: [256, 256],
    kernelSize: [1, 1],
    compressed: true,
    compressionLevel: 6,
    maxFileSize: 2 ** 30,
    defaultValue: 0,
    tensorDepths: {},
    sequenceData: false,
    collapseBands: false,
    maskedThreshold: 1,
    bandTypes: 'float',
  });
  assert.equal(r.maxPixels, 1e8);
  assert.equal(r.fileFormat, 'TFRecord');
  assert.equal(r.region, undefined);
  assert.equal(parseImageExportRequest({ ...base, fileNamePrefix: undefined, description: 'job7' }).fileNamePrefix, 'job7');
  assert.equal(parseImageExportRequest({ ...base, fileNamePrefix: undefined }).fileNamePrefix, DEFAULTS.fileNamePrefix);
  assert.equal(parseImageExportRequest({ ...base, fileFormat: 'tfrecord' }).fileFormat, 'TFRecord');
});

test('{date} in fileNamePrefix becomes the UTC date (scheduled exports)', () => {
  const r = parseImageExportRequest({ ...base, fileNamePrefix: 'daily/{date}/p' }, { now: new Date('2026-03-04T23:59:59Z') });
  assert.equal(r.fileNamePrefix, 'daily/2026-03-04/p');
});

test('unknown keys are rejected everywhere, as EE does', () => {
  fails({ ...base, formatOptions: { ...base.formatOptions, foo: 1 } }, 'BAD_REQUEST', 'formatOptions', /^field formatOptions: Unknown format options: foo$/);
  fails({ ...base, colour: 'red' }, 'BAD_REQUEST', '(request)', /Unknown request fields: colour/);
  fails({ ...base, crs_transform: [1, 0, 0, 0, -1, 0] }, 'BAD_REQUEST', '(request)', /Unknown request fields: crs_transform \(the field is crsTransform/);
  fails({ ...base, image: { bands: [{ name: 'a', uri: 'x.tif', resample: 'cubic' }] } }, 'BAD_REQUEST', 'image.bands.0.resample', /got "cubic"/);
  fails(
    { ...base, image: { stac: 'item.json', bands: [{ name: 'a', assett: 'B04' }] } },
    'BAD_REQUEST',
    'image.bands.0',
    /Unknown fields in image.bands.0: assett/,
  );
  fails({ ...base, image: { bands: [{ name: 'a', uri: 'x.tif', bnad: 2 }] } }, 'BAD_REQUEST', 'image.bands.0', /Unknown fields in image.bands.0: bnad/);
});

test('errors name the field and the bad value', () => {
  fails({ ...base, formatOptions: { patchDimensions: [256, -1] } }, 'BAD_REQUEST', 'formatOptions.patchDimensions.1', /got -1/);
  fails({ ...base, formatOptions: { patchDimensions: [256.5, 2] } }, 'BAD_REQUEST', 'formatOptions.patchDimensions.0', /got 256.5/);
  fails({ ...base, formatOptions: {} }, 'BAD_REQUEST', 'formatOptions.patchDimensions', /required/);
  fails({ ...base, formatOptions: { ...base.formatOptions, compressionLevel: 11 } }, 'BAD_REQUEST', 'formatOptions.compressionLevel', /got 11/);
  fails({ ...base, formatOptions: { ...base.formatOptions, maskedThreshold: 1.5 } }, 'BAD_REQUEST', 'formatOptions.maskedThreshold', /got 1.5/);
  fails({ ...base, formatOptions: { ...base.formatOptions, bandTypes: 'int' } }, 'BAD_REQUEST', 'formatOptions.bandTypes', /got "int"/);
  fails({ ...base, region: [10, 0, 5, 5] }, 'BAD_REQUEST', 'region', /got \[10,0,5,5\]/);
  fails({ ...base, fileFormat: 'GeoTIFF' }, 'BAD_REQUEST', 'fileFormat', /TFRecord.*got "GeoTIFF"/);
  fails({ ...base, bucket: undefined }, 'BAD_REQUEST', 'bucket', /required/);
  fails({ ...base, fileNamePrefix: 'a/../../etc/p' }, 'FORBIDDEN', 'fileNamePrefix', /\.\./);
  fails({ ...base, fileNamePrefix: 'dir/' }, 'BAD_REQUEST', 'fileNamePrefix', /directory/);
  fails(
    {
      ...base,
      image: {
        bands: [
          { name: 'a', uri: 'x.tif' },
          { name: 'a', uri: 'y.tif' },
        ],
      },
    },
    'BAD_REQUEST',
    'image.bands',
    /duplicate band name "a"/,
  );
  fails([1, 2], 'BAD_REQUEST', '(request)', /JSON object/);
});

test('regions: bbox or GeoJSON geometry', () => {
  assert.deepEqual(parseImageExportRequest({ ...base, region: [0, 1, 2, 3] }).region, [0, 1, 2, 3]);
  const poly = {
    type: 'Polygon',
    coordinates: [
      [
        [0, 0],
        [1, 0],
        [1, 1],
        [0, 0],
      ],
    ],
  };
  assert.deepEqual(parseImageExportRequest({ ...base, region: poly }).region, poly);
  fails({ ...base, region: { type: 'Blob' } }, 'BAD_REQUEST', 'region.type', /got "Blob"/);
});

test('the export grid fields (docs/semantics.md §11) are carried through; their interplay is left to the resolver', () => {
  const r = parseImageExportRequest({ ...base, crs: 'EPSG:3035', scale: 20, resample: 'bilinear', dryRun: true });
  assert.deepEqual([r.crs, r.scale, r.resample, r.dryRun], ['EPSG:3035', 20, 'bilinear', true]);
  assert.deepEqual(
    parseImageExportRequest({ ...base, crs: 'EPSG:32633', crsTransform: [10, 0, 0, 0, -10, 0], dimensions: '64x32' }).crsTransform,
    [10, 0, 0, 0, -10, 0],
  );
  assert.deepEqual(parseImageExportRequest({ ...base, dimensions: [64, 32] }).dimensions, [64, 32]);
  const bands = { bands: [{ name: 'a', uri: ['x.tif', 'dir/*.tif'], resample: 'bicubic', reduce: 'mode' }] };
  assert.deepEqual(parseImageExportRequest({ ...base, image: bands }).image, bands);
  const stac = { stac: 'gs://b/item.json', bands: ['B04', { name: 'swir', asset: 'B11', resample: 'bilinear' }] };
  assert.deepEqual(parseImageExportRequest({ ...base, image: stac }).image, stac);
  fails({ ...base, scale: -1 }, 'BAD_REQUEST', 'scale', /got -1/);
  fails({ ...base, crsTransform: [1, 2, 3] }, 'BAD_REQUEST', 'crsTransform', /got \[1,2,3\]/);
  fails({ ...base, image: { bands: [{ name: 'a', uri: 'x.tif', reduce: 'median' }] } }, 'BAD_REQUEST', 'image.bands.0.reduce', /got "median"/);
});

test("EE's no-effect export fields are accepted and listed, not rejected (docs/semantics.md §2)", () => {
  const r = parseImageExportRequest({ ...base, priority: 100, shardSize: 256, skipEmptyTiles: true, fileDimensions: [1024, 1024] });
  assert.deepEqual(r.ignored, ['priority', 'shardSize', 'skipEmptyTiles', 'fileDimensions']);
  assert.equal(parseImageExportRequest(base).ignored, undefined, 'a request without them records nothing');
  // Still validated: a wrong type is an error naming the field, and typos stay unknown fields.
  fails({ ...base, skipEmptyTiles: 'yes' }, 'BAD_REQUEST', 'skipEmptyTiles', /boolean/);
  fails({ ...base, shardSize: -1 }, 'BAD_REQUEST', 'shardSize', /./);
  fails({ ...base, skipEmptyTile: true }, 'BAD_REQUEST', '(request)', /Unknown request fields: skipEmptyTile/);
});
