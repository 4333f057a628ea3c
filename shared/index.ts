/**
 * `geotfr`: the supported library surface. The CLI (cli/) and the Cloud Functions (functions/, the
 * `geotfr/functions` subpath) are clients of these same functions; `geotfr/tfrecord` is the codec
 * alone. Anything not exported here is internal and may change between versions.
 *
 * Runners take a request object exactly like Earth Engine's (docs/semantics.md §2, §8) and return a
 * summary; bad input throws `GeotfrError` with a stable `code` (docs/codec.md lists them).
 */

// Image export on one machine (docs/export.md) …
export { runImageExport, type ExportSummary, type RunOptions } from './export/run.js';
export {
  DEFAULTS,
  parseImageExportRequest,
  type BandRequest,
  type FormatOptions,
  type ImageExportRequest,
  type ImageSpec,
  type Region,
} from './export/request.js';
// … or fanned out (docs/cloud.md): plan once, write each shard anywhere, then the mixer and manifest.
export {
  PLAN_VERSION,
  planFromSource,
  planImageExport,
  shardChunks,
  shardName,
  type ChunkTask,
  type ExportPlan,
  type PlanOptions,
  type ShardPlan,
} from './export/plan.js';
export { writeShard, type ShardSink, type WriteShardOptions } from './export/shard.js';
export { makeManifest, writeExportMetadata, type ExportManifest } from './export/finalize.js';
export type { ExportGrid } from './export/grid.js';
export type { FeatureLayout, OutBand, ValueKind } from './export/layout.js';

// Prediction ingest: records → Cloud-Optimized GeoTIFF (docs/ingest.md).
export { ingestImage, type IngestImageOptions, type IngestSummary } from './ingest/image.js';
export { kernelFromManifest, type ManifestKernel } from './ingest/manifest.js';

// … or in strips, fanned out (docs/ingest.md, docs/semantics.md §13): plan strips, fill each anywhere, assemble.
export { planStrips, fillStrip, cogOptionsOf, type IngestLayout, type PlanStripsOptions, type StripPlan } from './ingest/strips.js';

// Patches around points and sampled patches (docs/patches.md, docs/semantics.md §12).
export { runPatchExport, type PatchExportOptions, type PatchExportSummary } from './patches/run.js';
export { parsePatchExportRequest, type PatchExportRequest, type PointsSpec } from './patches/request.js';

// Tables (docs/table.md).
export { runTableExport, type TableExportOptions, type TableExportSummary } from './table/export.js';
export { parseTableExportRequest, type TableExportRequest } from './table/request.js';
export { ingestTable, type IngestTableOptions, type IngestTableSummary } from './table/ingest.js';

// The mixer (docs/semantics.md §6) and inspection of any TFRecord file (docs/codec.md).
export { formatMixer, parseMixer, type Affine, type Mixer } from './mixer.js';
export {
  formatReport,
  inspectFiles,
  parseSpec,
  type FeatureListSummary,
  type FeatureSummary,
  type InspectOptions,
  type InspectReport,
} from './inspect.js';

// Raster sources (docs/raster.md).
export { openImage, type OpenImageOptions } from './raster/open.js';
export { regionToPixelWindow, type PixelWindow } from './raster/crs.js';
export type { BandInfo, ImageSource, PixelGrid, ReadWindowOptions, SampleType, WindowData } from './raster/types.js';

// Every limit and the memory budget (docs/limits.md).
export { LIMITS } from './limits.js';
export { memoryBudgetBytes } from './budget.js';

// The streaming Cloud-Optimized GeoTIFF writer on its own (docs/ingest.md).
export { CogWriter, type CogOptions } from './cog/writer.js';

// Storage port and its implementations (docs/gcs.md).
export { checkKey, isPreconditionFailed, PreconditionFailed, type BlobInfo, type BlobStore, type BlobWriter, type WriteOptions } from './storage/port.js';
export { LocalBlobStore } from './storage/local.js';
export { GcsBlobStore, type GcsStoreOptions } from './storage/gcs.js';
export { openBucket, resolveUri, type Location } from './storage/open.js';

// Queue port and its implementations (docs/cloud.md).
export type { Attributes, Queue, QueueHandler, QueueMessage, SubscribeOptions } from './queue/port.js';
export { InProcessQueue } from './queue/memory.js';
export { PubSubQueue } from './queue/pubsub.js';
export { decodePushMessage } from './queue/push.js';

// The TFRecord + Example codec (also alone as `geotfr/tfrecord`) and the error type.
export * from './tfrecord/index.js';
export { asGeotfrError, type ErrorContext } from './errors.js';
