/**
 * The text after each command's `--help`: the fields of its request (or options) and of the JSON
 * summary it prints, and where the project's own docs describe them. The field lists are typed as
 * records over the core's types, so a field added to a request or summary fails the build until it
 * is described here.
 */
import type { ExportSummary } from '../shared/export/run.js';
import type { FormatOptions, ImageExportRequest } from '../shared/export/request.js';
import type { IngestSummary } from '../shared/ingest/image.js';
import type { InspectReport } from '../shared/inspect.js';
import type { TableExportRequest } from '../shared/table/request.js';
import type { TableExportSummary } from '../shared/table/export.js';
import type { IngestTableSummary } from '../shared/table/ingest.js';
import type { PatchExportRequest } from '../shared/patches/request.js';
import type { PatchExportSummary } from '../shared/patches/run.js';

/** Paths are relative to the root of the geotfr repository (they ship with its source, not the npm package). */
type Doc = `docs/${string}.md${string}`;

function section(title: string, fields: Record<string, string>): string {
  const width = Math.max(...Object.keys(fields).map((k) => k.length));
  return [`${title}:`, ...Object.entries(fields).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)].join('\n');
}

function helpText(parts: { request?: Record<string, string>; formatOptions?: Record<string, string>; summary: Record<string, string>; docs: Doc[] }): string {
  const out = [''];
  if (parts.request) out.push(section('Request fields (JSON)', parts.request), '');
  if (parts.formatOptions) out.push(section('formatOptions fields', parts.formatOptions), '');
  out.push(section('Summary (one JSON line on stdout)', parts.summary), '');
  out.push(`Docs (in the geotfr repository): ${parts.docs.join(', ')}`);
  return out.join('\n');
}

const exportImageRequest: Record<keyof ImageExportRequest, string> = {
  image:
    'raster URI (local path, file://, gs://, or a glob), {"bands": [{"name", "uri" (or a list/glob: a mosaic), "band"|"bands", "nodata", "resample", "reduce"}]}, or {"stac": URI, "bands": [...]}',
  region: "[xmin, ymin, xmax, ymax] in the grid CRS, or a GeoJSON geometry (default: the first band's footprint)",
  crs: 'export CRS, any EPSG code ("EPSG:32633"), a proj string or WKT (docs/grid.md)',
  crsTransform: '[xScale, xShear, xTranslation, yShear, yScale, yTranslation] of the export grid (needs crs)',
  scale: 'metres per pixel, square north-up pixels (degrees = scale / 111319.49 in a geographic CRS)',
  dimensions: 'N (the larger side), "WxH" or [W, H]: the region split into that many pixels (not with scale)',
  resample: '"nearest" (default), "bilinear" or "bicubic" for every band (a band\'s own wins)',
  dryRun: 'describe the export (grid, files, patches, shards, bytes, time) without reading pixels or writing',
  bucket: 'output: a GCS bucket name, gs://name, or a local directory',
  fileNamePrefix: 'output object prefix; {date} becomes the UTC date (default myExportImageTask)',
  description: "Earth Engine's task description (accepted, reported, not used)",
  fileFormat: '"TFRecord" (the only format)',
  maxPixels: 'refuse exports of more output pixels than this (default 1e8)',
  overwrite: 'replace an earlier export under the prefix once the new one is complete (default false; CLI --overwrite)',
  formatOptions: "Earth Engine's TFRecord format options (below)",
  ignored: 'priority, shardSize, skipEmptyTiles, fileDimensions: Earth Engine fields accepted with a warning; they change nothing here',
};

const formatOptions: Record<keyof FormatOptions, string> = {
  patchDimensions: '[width, height] of a patch (required)',
  kernelSize: '[x, y]: tiles are patch + 2*floor(k/2), margins read beyond the region (default [1, 1])',
  compressed: 'gzip the shards (default true)',
  compressionLevel: 'zlib level 1-9 (default 6)',
  maxFileSize: 'uncompressed framed bytes per shard (default 1 GiB)',
  defaultValue: 'value of masked pixels (default 0)',
  tensorDepths: '{band: depth} for array bands',
  sequenceData: 'one SequenceExample per patch, pixels as steps (default false)',
  collapseBands: 'one feature holding every band (default false)',
  maskedThreshold: 'drop patches whose masked fraction exceeds this (default 1: keep all)',
  bandTypes: '"float" (every band a float_list, like Earth Engine) or "native"',
};

const exportSummary: Record<keyof ExportSummary, string> = {
  files: 'shards written',
  patches: 'patches written',
  skippedPatches: 'patches dropped by maskedThreshold',
  bytes: 'bytes stored (compressed when compressed)',
  bytesFramed: 'uncompressed framed bytes',
  seconds: 'wall time',
  mixer: 'URI of the mixer JSON (null when maskedThreshold < 1)',
  shards: 'URIs of the shards',
  manifest: 'URI of the export manifest (read by ingest-image)',
  blockCache: 'with --verbose: source block cache hits, decodes and re-decodes within the memory budget',
  exportedPx: '[width, height] exported: whole patches only',
  regionPx: '[width, height] of the region asked for (partial right/bottom patches are dropped)',
  replaced: 'files of an earlier export removed by overwrite',
  parseSpec: 'Python that reads the shards: TFRecordDataset (GZIP when compressed) and the parse spec',
  warnings: 'what was not exported or changed (partial patches, a clamped defaultValue); also on stderr',
};

const ingestImageSummary: Record<keyof IngestSummary, string> = {
  out: 'the COG written',
  width: 'pixels',
  height: 'pixels',
  type: 'sample type of the COG',
  bands: 'one band per feature: [{name, kind}]',
  patches: 'patches read',
  files: 'input files read',
  kernelSize: 'kernel cropped from tile-sized predictions, or null',
  kernelFrom: '"option", "manifest" or "none"',
  overviews: 'overview levels written',
  bytes: 'size of the COG',
  spilledBytes: 'compressed tiles that went through temporary files (beyond 3/16 of the memory budget)',
  seconds: 'wall time',
};

const exportTableRequest: Record<keyof TableExportRequest, string> = {
  collection: 'input table: GeoJSON FeatureCollection, newline-delimited GeoJSON or CSV (local, file://, gs://)',
  bucket: 'output: a GCS bucket name, gs://name, or a local directory',
  fileNamePrefix: 'output object name without extension (writes PREFIX.tfrecord.gz)',
  fileFormat: '"TFRecord" (the only format)',
  selectors: 'properties to export, in this order (array or comma-separated string)',
  geometry: '"wkt" (bytes feature geometry) or "lonlat" (float features longitude, latitude; points only)',
  description: "Earth Engine's task description (accepted, reported, not used)",
};

const exportTableSummary: Record<keyof TableExportSummary, string> = {
  file: 'URI of the one output file',
  format: 'input format read',
  features: 'records written',
  bytes: 'compressed bytes written',
  bytesFramed: 'uncompressed framed bytes',
  seconds: 'wall time',
  columns: 'output features in record order: [{name, type, shape, records, spec}] (spec: the tf.io parse spec)',
};

const ingestTableSummary: Record<keyof IngestTableSummary, string> = {
  file: 'the table written',
  format: '"geojson", "ndjson" or "csv"',
  features: 'features written',
  points: 'features with a point geometry from the x/y columns',
  columns: 'property names',
  seconds: 'wall time',
  warnings: 'e.g. no record had the coordinate features (also on stderr)',
};

const exportPatchesRequest: Record<keyof PatchExportRequest, string> = {
  image: exportImageRequest.image,
  points: 'a point table URI (GeoJSON, NDJSON, CSV), {"sample": {"numPixels", "seed", "region"}} or {"stratified": {"classBand", "numPoints", ...}}',
  properties: 'table properties to write, in order (default: every one; [] for none)',
  xColumn: 'CSV longitude column (default longitude)',
  yColumn: 'CSV latitude column (default latitude)',
  kernelSize: '[kx, ky] or one number: the patch around each point (at most 1024)',
  defaultValue: 'value of masked or outside pixels (default 0)',
  dropNulls: 'drop points outside the grid, without coordinates, or with a masked centre (default true)',
  geometries: 'add longitude/latitude of the pixel centre (default false)',
  tensorDepths: '{band: depth} for array bands',
  crs: "the patch grid's CRS, as in export-image (default: the first band's grid)",
  crsTransform: exportImageRequest.crsTransform,
  scale: exportImageRequest.scale,
  dimensions: 'N, "WxH" or [W, H]: the first band\'s footprint split into that many pixels (not with scale)',
  resample: `${exportImageRequest.resample}; a stratified classBand is read with nearest`,
  bucket: exportImageRequest.bucket,
  fileNamePrefix: 'output prefix: PREFIX.tfrecord.gz; {date} becomes the UTC date (default myExportTableTask)',
  description: "Earth Engine's task description: the prefix when fileNamePrefix is absent",
  fileFormat: exportImageRequest.fileFormat,
  maxFileSize: 'shards PREFIX-00000.tfrecord.gz… of at most this many uncompressed bytes (default one file)',
};

const exportPatchesSummary: Record<keyof PatchExportSummary, string> = {
  files: 'files written',
  shards: 'URIs of the files',
  records: 'records written (one per point kept)',
  inputPoints: 'points read (table rows or sampled pixels)',
  dropped: '{outside, masked, noCoordinates}: points not written and why',
  classes: 'stratified: [{value, available, requested, selected}]',
  bytes: 'bytes stored (gzip)',
  bytesFramed: 'uncompressed framed bytes',
  seconds: 'wall time',
  kernelSize: '[kx, ky]',
  features: 'features in record order, each with its tf.io parse spec',
  parseSpec: 'the Python parse spec to paste',
  manifest: 'the patch manifest, where geotfr inspect finds the [ky, kx] shapes',
};

type InspectJson = Record<keyof InspectReport, string>;
const inspectSummary: InspectJson = {
  files: 'the files read',
  kind: '"Example" or "SequenceExample"',
  records: 'records read',
  payloadBytes: 'bytes of record payloads',
  features: 'per feature: kind, value counts, records holding it',
  featureLists: 'per feature list (SequenceExamples)',
  parseSpec: 'the TensorFlow parse spec to paste (shapes from the export manifest, else flat)',
  manifest: 'the export manifest the shapes come from, or null (shapes unknown)',
};

export const HELP = {
  exportImage: helpText({
    request: exportImageRequest,
    formatOptions,
    summary: exportSummary,
    docs: ['docs/export.md', 'docs/semantics.md §2–§6', 'docs/raster.md'],
  }),
  exportPatches: helpText({
    request: exportPatchesRequest,
    summary: exportPatchesSummary,
    docs: ['docs/patches.md', 'docs/semantics.md §11–§12', 'docs/grid.md'],
  }),
  ingestImage: helpText({ summary: ingestImageSummary, docs: ['docs/ingest.md', 'docs/semantics.md §7'] }),
  exportTable: helpText({ request: exportTableRequest, summary: exportTableSummary, docs: ['docs/table.md', 'docs/semantics.md §8'] }),
  ingestTable: helpText({ summary: ingestTableSummary, docs: ['docs/table.md'] }),
  inspect: helpText({ summary: inspectSummary, docs: ['docs/codec.md'] }),
};
