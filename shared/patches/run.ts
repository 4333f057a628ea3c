/**
 * `geotfr export-patches` on this machine (docs/semantics.md §12): request → points (a streamed table,
 * or a seeded sample) → chunks (plan.ts) → a pool of threads reading windows and framing records →
 * the shards written in plan order. A failed or cancelled run removes whatever it wrote.
 *
 * Memory is bounded whatever the number of points: the table streams, at most `pool.depth` chunks
 * (~4 MiB of records each) are in flight, and decoded blocks live in one cache of fixed budget.
 */
import { availableParallelism } from 'node:os';
import { once } from 'node:events';
import { type BlobInfo, type BlobStore, type BlobWriter } from '../storage/port.js';
import { openBucket } from '../storage/open.js';
import { GeotfrError, abortable, asGeotfrError } from '../errors.js';
import { GZIP_HEADER, GzipTrailer } from '../export/gzipchunks.js';
import { Progress } from '../progress.js';
import { blockCacheShare } from '../budget.js';
import { option } from '../options.js';
import { planGridImage, type PlannedImage, type SourceCheck } from '../grid/image.js';
import { GridImageSource } from '../grid/source.js';
import type { ImageSource } from '../raster/types.js';
import { pyString } from '../inspect.js';
import type { PatchChunkResult } from './chunk.js';
import { bandParseSpec, patchBands, PatchRecordEncoder } from './encode.js';
import { chunkPoints, patchFileName, PATCH_PLAN_VERSION, type PatchChunk, type PatchPlan } from './plan.js';
import { noDrops, tablePoints, type DropCounts, type PointStream } from './points.js';
import { inProcessPatchPool, threadPatchPool, type PatchPool } from './pool.js';
import { makePatchManifest, writePatchManifest } from './manifest.js';
import { SharedBlockServer } from './image.js';
import { parsePatchExportRequest, type PatchExportRequest } from './request.js';
import { samplePoints, stratifiedPoints, type ClassCount } from './sample.js';

/** Decoded-block cache of the image the points are read from: `--tile-cache-mb`, else the budget's block share. */
function patchBlockCacheBytes(): number {
  const mb = option('tileCacheMb');
  return mb > 0 ? mb * 2 ** 20 : blockCacheShare();
}

export interface PatchExportOptions {
  /** Worker threads (default: the core count); 0 reads and encodes on the calling thread. */
  workers?: number;
  signal?: AbortSignal;
  progress?: boolean;
  now?: Date;
}

export interface PatchFeature {
  name: string;
  spec: string;
}

export interface PatchExportSummary {
  files: number;
  shards: string[];
  /** Records written. */
  records: number;
  /** Points in the input (table rows, or sampled pixels). */
  inputPoints: number;
  /** Points not written, by reason (dropNulls). */
  dropped: DropCounts;
  /** stratified: per class value, available / requested / selected pixels. */
  classes?: ClassCount[];
  bytes: number;
  bytesFramed: number;
  seconds: number;
  kernelSize: [number, number];
  /** Features in record order with their `tf.io` parse spec. */
  features: PatchFeature[];
  /** The parse spec to paste (Python). */
  parseSpec: string;
  /** The patch manifest (`.geotfr/manifests/<prefix>.json`): where `geotfr inspect` finds the shapes. */
  manifest: string;
}

/** An opened patch export: plan, image (on the resolved grid, its blocks served by `blocks`), and the point stream. */
export interface OpenedPatchExport {
  plan: PatchPlan;
  source: ImageSource;
  /** Decodes each block of the plan's files once, for `source` and for worker threads. */
  blocks: SharedBlockServer;
  points: PointStream;
  drops: DropCounts;
  encoder: PatchRecordEncoder;
  classes?: ClassCount[];
  /** Closes the image and the block server. */
  close(): Promise<void>;
}

/** Blending kernels: a class value averaged with its neighbours is no class. */
const BLENDING = new Set(['bilinear', 'bicubic', 'mean']);

/**
 * The stratified class band is read with nearest (docs/patches.md): the top-level `resample` does not
 * apply to it, its own `resample`/`reduce` may pick (nearest, mode, min, max) but not blend.
 */
function classBandNearest(image: PlannedImage, req: PatchExportRequest, classBand: string): PlannedImage {
  const k = image.bands.findIndex((b) => b.name === classBand);
  if (k < 0) return image; // stratifiedPoints names the missing band
  const spec = req.image;
  const i = typeof spec === 'object' ? spec.bands.findIndex((b) => (typeof b === 'string' ? b : b.name) === classBand) : -1;
  const own = i >= 0 && typeof spec === 'object' ? (spec.bands[i] as { resample?: string; reduce?: string }) : {};
  for (const key of ['resample', 'reduce'] as const)
    if (typeof own === 'object' && own[key] !== undefined && BLENDING.has(own[key]!))
      throw new GeotfrError(
        'BAD_REQUEST',
        `classBand ${JSON.stringify(classBand)} is sampled by class value, so it must not be blended (${key} ${JSON.stringify(own[key])}); use nearest or mode`,
        { field: `image.bands.${i}.${key}` },
      );
  if (typeof own === 'object' && (own.resample !== undefined || own.reduce !== undefined)) return image;
  return { ...image, bands: image.bands.map((b, j) => (j === k ? { ...b, resample: 'nearest' as const, reduce: null } : b)) };
}

/** Validates the request, plans the image on its grid and opens it and the points (the CLI runner and the cloud planner both start here). */
export async function openPatchExport(
  request: unknown,
  opts: { signal?: AbortSignal; now?: Date; checkSource?: SourceCheck } = {},
): Promise<OpenedPatchExport> {
  const req = parsePatchExportRequest(request, { now: opts.now });
  // The grid (docs/semantics.md §11): the request's grid fields over the first band; files farther
  // than half a kernel (plus the widest resampling kernel's reach) from it cannot show in a patch.
  const [kx, ky] = req.kernelSize;
  const marginPx = Math.max(Math.floor(kx / 2), Math.floor(ky / 2)) + 3;
  const params = { crs: req.crs, crsTransform: req.crsTransform, scale: req.scale, dimensions: req.dimensions };
  const planned = await planGridImage(req.image, params, { resample: req.resample, marginPx, signal: opts.signal, checkSource: opts.checkSource });
  const image = 'stratified' in req.points ? classBandNearest(planned.image, req, req.points.stratified.classBand) : planned.image;
  const grid = planned.grid;
  const blocks = new SharedBlockServer(
    image.files.map((f) => f.uri),
    { signal: opts.signal, cacheBytes: patchBlockCacheBytes() },
  );
  const source = new GridImageSource(image, grid, { signal: opts.signal, blockProvider: blocks.provider });
  const close = async () => {
    await source.close();
    await blocks.close();
  };
  try {
    const bands = patchBands(source.bands, req.tensorDepths, req.defaultValue);
    const plan: PatchPlan = {
      version: PATCH_PLAN_VERSION,
      request: req,
      source: { ...grid },
      bands,
      gridRule: planned.rule,
      nativeGrid: planned.native,
      image,
    };
    const encoder = new PatchRecordEncoder(bands, req.kernelSize, req.geometries);
    const drops = noDrops();
    const reserved = new Set([...bands.map((b) => b.name), ...(req.geometries ? ['longitude', 'latitude'] : [])]);
    const pts = req.points;
    let points: PointStream;
    let classes: ClassCount[] | undefined;
    if ('table' in pts) points = await tablePoints(req, pts.table, grid, reserved, drops, opts.signal);
    else if ('sample' in pts) points = samplePoints(req, pts.sample, source);
    else {
      const s = await stratifiedPoints(req, pts.stratified, source, opts.signal);
      points = s;
      classes = s.classes;
    }
    return { plan, source, blocks, points, drops, encoder, classes, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The features of a plan's records, in order, with their parse specs. */
export function patchFeatures(o: OpenedPatchExport): PatchFeature[] {
  const r = o.plan.request;
  return [
    ...o.plan.bands.map((b) => ({ name: b.name, spec: bandParseSpec(b, r.kernelSize) })),
    ...o.points.columns().map((c) => ({ name: c.name, spec: c.spec })),
    ...(r.geometries ? ['longitude', 'latitude'].map((name) => ({ name, spec: 'tf.io.FixedLenFeature([1], tf.float32)' })) : []),
  ];
}

/** The Python parse spec (the same shape `geotfr inspect` prints). */
export function patchParseSpec(features: PatchFeature[]): string {
  return [
    `features = {\n${features.map((f) => `    ${pyString(f.name)}: ${f.spec},`).join('\n')}\n}`,
    'parsed = tf.io.parse_single_example(serialized, features)',
  ].join('\n');
}

/** One output file being written: gzip header, chunks in order, trailer; published on commit. */
export class PatchFileSink {
  private readonly trailer = new GzipTrailer();
  private error: Error | undefined;
  private next = 0;

  private constructor(
    private readonly writer: BlobWriter,
    readonly key: string,
    private readonly uri: string,
  ) {
    writer.stream.on('error', (e) => (this.error ??= e));
  }

  static async open(store: BlobStore, key: string, opts: { createOnly?: boolean } = {}): Promise<PatchFileSink> {
    const w = await store.createWriter(key, { ifNotExists: opts.createOnly, contentType: 'application/octet-stream' });
    const s = new PatchFileSink(w, key, store.uri(key));
    await s.put(GZIP_HEADER);
    return s;
  }

  private async put(buf: Uint8Array): Promise<void> {
    if (this.error) throw asGeotfrError(this.error, { file: this.uri });
    if (!this.writer.stream.write(buf)) {
      // One abortable listener pair per wait, removed when it ends (no listener build-up over a long file).
      const ac = new AbortController();
      const failed = once(this.writer.stream, 'error', { signal: ac.signal }).then(([e]) => {
        throw asGeotfrError(e, { file: this.uri });
      });
      failed.catch(() => {});
      try {
        await Promise.race([once(this.writer.stream, 'drain', { signal: ac.signal }), failed]);
      } finally {
        ac.abort();
      }
    }
  }

  async write(r: PatchChunkResult): Promise<void> {
    if (r.seq !== this.next) throw new GeotfrError('INTERNAL', `chunk ${r.seq} arrived before chunk ${this.next}`, { file: this.uri });
    this.next++;
    this.trailer.add(r);
    if (r.data.length) await this.put(r.data);
  }

  async commit(): Promise<BlobInfo> {
    await this.put(this.trailer.finish());
    return this.writer.commit();
  }

  abort(): Promise<void> {
    return this.writer.abort();
  }
}

/** Runs a patch export request on this machine and returns its summary. Throws GeotfrError on any failure, leaving no output. */
export async function runPatchExport(request: unknown, opts: PatchExportOptions = {}): Promise<PatchExportSummary> {
  const t0 = performance.now();
  const signal = opts.signal;
  const opened = await openPatchExport(request, { signal, now: opts.now });
  const { plan, source, blocks, points, drops, encoder } = opened;
  const req = plan.request;
  const written: BlobInfo[] = [];
  let sink: PatchFileSink | undefined;
  let pool: PatchPool | undefined;
  let store: BlobStore | undefined;
  let manifestKey: string | undefined;
  let records = 0;
  let bytesFramed = 0;
  const progress = opts.progress ? new Progress({ label: 'export-patches', unit: 'patches' }) : undefined;
  try {
    store = await openBucket(req.bucket);
    // Open the first file before any heavy work: an unwritable destination fails at once.
    sink = await PatchFileSink.open(store, patchFileName(req, 0));
    const workers = Math.max(0, opts.workers ?? availableParallelism());
    pool = workers === 0 ? inProcessPatchPool(plan, source, signal) : await threadPatchPool(plan, blocks, workers, signal);
    const chunks = chunkPoints(points.batches, (n) => encoder.framedBytes(n), { maxFileSize: req.maxFileSize, geometries: req.geometries });
    const inFlight: { chunk: PatchChunk; result: Promise<PatchChunkResult> }[] = [];
    let ended = false;
    const fill = async () => {
      while (!ended && inFlight.length < pool!.depth) {
        const r = await chunks.next();
        if (r.done) {
          ended = true;
          break;
        }
        const result = pool!.run(r.value);
        result.catch(() => {}); // observed in order below
        inFlight.push({ chunk: r.value, result });
      }
    };
    await fill();
    let shard = 0;
    while (inFlight.length) {
      signal?.throwIfAborted();
      const { chunk, result } = inFlight.shift()!;
      const r = await abortable(result, signal);
      await fill();
      while (chunk.shard > shard) {
        // The shard is complete: publish it and open the next one.
        written.push(await sink!.commit());
        sink = undefined;
        shard++;
        sink = await PatchFileSink.open(store, patchFileName(req, shard));
      }
      await sink!.write(r);
      records += r.records;
      drops.masked += r.masked;
      bytesFramed += r.rawBytes;
      progress?.tick(r.records + r.masked, r.rawBytes);
    }
    points.finish();
    signal?.throwIfAborted();
    written.push(await sink!.commit());
    sink = undefined;
    // Last, once every file exists: what inspect reads the patch shapes from.
    const files = written.map((w) => w.key);
    manifestKey = await writePatchManifest(store, makePatchManifest(req.fileNamePrefix, req.kernelSize, plan.bands, files));
    progress?.finish();
  } catch (err) {
    await sink?.abort().catch(() => {});
    await pool?.close().catch(() => {});
    pool = undefined;
    await points.close();
    if (store) await Promise.all([...written.map((w) => w.key), ...(manifestKey ? [manifestKey] : [])].map((k) => store!.delete(k).catch(() => {})));
    throw signal?.aborted ? (signal.reason instanceof GeotfrError ? signal.reason : new GeotfrError('CANCELLED', 'export cancelled')) : asGeotfrError(err);
  } finally {
    await pool?.close();
    await opened.close();
  }
  const features = patchFeatures(opened);
  return {
    files: written.length,
    shards: written.map((w) => store!.uri(w.key)),
    records,
    inputPoints: points.inputPoints(),
    dropped: drops,
    ...(opened.classes ? { classes: opened.classes } : {}),
    bytes: written.reduce((s, w) => s + w.size, 0),
    bytesFramed,
    seconds: Math.round((performance.now() - t0) / 10) / 100,
    kernelSize: req.kernelSize,
    features,
    parseSpec: patchParseSpec(features),
    manifest: store!.uri(manifestKey!),
  };
}
