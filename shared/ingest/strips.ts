/**
 * Prediction ingest cut into strips (docs/semantics.md §13): the planning scan and the work of one
 * strip, with no cloud in them (shared/jobs/ingest-strips.ts runs them as a job).
 *
 * Planning reads every record once (lengths and CRCs, not the Examples; integer predictions are
 * decoded too, for their value range, as `ingestImage` does) and keeps, per strip, where its records
 * start and end in each file: the byte offset of its first record's header and of the record after
 * its last. A strip worker then reads just those byte ranges of plain files. A gzip file cannot be
 * entered in the middle: a strip whose records start inside one decompresses that file from its
 * start and skips what comes before, so a gzip file spanning k strips is decompressed up to k times
 * (each time only up to the end of that strip's records).
 *
 * Strips hold whole COG tile rows, not whole patch rows: a patch row cut by a strip boundary is
 * read by both strips (each keeps its own rows of it), so those records are read twice.
 */
import { Readable } from 'node:stream';
import { GeotfrError } from '../errors.js';
import { resolveUri } from '../storage/open.js';
import { readRecords } from '../tfrecord/record.js';
import type { Affine } from '../mixer.js';
import type { PixelArray, SampleType } from '../raster/types.js';
import { requireGeoTiffEpsg } from '../cog/geokeys.js';
import { StripWriter, stripGeometry, type StripGeometry } from '../cog/strips.js';
import { allocPixels } from '../cog/tiles.js';
import type { CogOptions } from '../cog/writer.js';
import { IntRange, smallestIntType } from './bandtype.js';
import { checkBuffer } from '../budget.js';
import { RecordChecker, bandNamesOf, checkNodata, loadMixer, readSchema, schemaShape, type Schema } from './image.js';
import { kernelFromManifest } from './manifest.js';
import { recordsOf, type LocatedRecord } from './records.js';

/** Where one strip's records are in one file. */
export interface StripSegment {
  /** Index into `IngestLayout.files`. */
  file: number;
  /** Index within the file of the first record, and how many. */
  record0: number;
  count: number;
  /** Byte range [start, end) of those records in the (uncompressed) file. */
  start: number;
  end: number;
  /** Patch number of the first record. */
  patch0: number;
}

export interface StripPlan {
  index: number;
  /** Full-resolution rows [y0, y1). */
  y0: number;
  y1: number;
  /** Patches [patch0, patch1) covering those rows (whole patch rows). */
  patch0: number;
  patch1: number;
  segments: StripSegment[];
}

/** Everything a strip worker and the finalizer need, fixed at planning (stored as the job's plan). */
export interface IngestLayout {
  files: { uri: string; records: number; gzip: boolean }[];
  mixerUri: string;
  crs: string;
  affine: Affine;
  patchDimensions: [number, number];
  patchesPerRow: number;
  totalPatches: number;
  kernelSize: [number, number] | null;
  kernelFrom: 'option' | 'manifest' | 'none';
  schema: Schema;
  type: SampleType;
  width: number;
  height: number;
  tileSize: number;
  compressionLevel?: number;
  nodata?: number;
  geometry: StripGeometry;
  strips: StripPlan[];
}

export interface PlanStripsOptions {
  files: string[];
  mixer: string;
  kernelSize?: [number, number];
  tileSize?: number;
  compressionLevel?: number;
  nodata?: number;
  /** Depth of `[D, h, w]` features (see `ingestImage`). */
  depth?: number;
  /** Tile rows per strip (a power of two); or derived from `workers`; or from `maxStripBytes`. */
  stripTileRows?: number;
  workers?: number;
  /** Uncompressed pixel bytes one strip may hold (default 4 GB) when neither of the above is given. */
  maxStripBytes?: number;
  /** Largest width×height accepted (LIMIT beyond). */
  maxPixels?: number;
  signal?: AbortSignal;
}

const BYTES: Record<SampleType, number> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 };

/** Tile rows per strip: given, or the largest power of two giving at least `workers` strips, or fitting the byte budget. */
function chooseStripTileRows(o: PlanStripsOptions, width: number, height: number, tileSize: number, rowBytes: number): number {
  if (o.stripTileRows !== undefined) return o.stripTileRows;
  const tileRows = Math.ceil(height / tileSize);
  let m = 0;
  if (o.workers !== undefined) {
    while (2 ** (m + 1) <= tileRows / o.workers) m++;
    return 2 ** m;
  }
  const budget = o.maxStripBytes ?? 4e9;
  while (2 ** (m + 1) < tileRows && 2 ** (m + 1) * tileSize * rowBytes * width <= budget) m++;
  return 2 ** m;
}

/** Plans an ingest into strips: validates the grid, the schema and the record count (see the module comment). */
export async function planStrips(o: PlanStripsOptions): Promise<IngestLayout> {
  const { files, signal } = o;
  if (!files.length) throw new GeotfrError('BAD_REQUEST', 'no prediction files given', { field: 'files' });
  const mixer = await loadMixer(o.mixer);
  requireGeoTiffEpsg(mixer.projection.crs, o.mixer);
  const [pw, ph] = mixer.patchDimensions;
  const ppr = mixer.patchesPerRow;
  const total = mixer.totalPatches;
  const width = ppr * pw;
  const height = (total / ppr) * ph;
  if (o.maxPixels !== undefined && width * height > o.maxPixels)
    throw new GeotfrError('LIMIT', `the mixer's grid is ${width}×${height} = ${width * height} pixels, more than the limit of ${o.maxPixels}`, {
      file: o.mixer,
      field: 'patchesPerRow',
    });
  if (width >= 2 ** 31 || height >= 2 ** 31)
    throw new GeotfrError('LIMIT', `the mixer's grid ${width}×${height} is too large for a GeoTIFF`, { file: o.mixer });
  const tileSize = o.tileSize ?? 512;
  if (!(Number.isInteger(tileSize) && tileSize >= 16 && tileSize % 16 === 0))
    throw new GeotfrError('BAD_REQUEST', `tileSize must be a multiple of 16, got ${tileSize}`, { field: 'tileSize' });

  let kernel = o.kernelSize;
  let kernelFrom: IngestLayout['kernelFrom'] = kernel ? 'option' : 'none';
  if (!kernel) {
    const m = await kernelFromManifest(o.mixer, mixer);
    if (m) {
      kernel = m.kernelSize;
      kernelFrom = 'manifest';
    }
  }
  const schema = await readSchema(files, signal, schemaShape(pw, ph, kernel, o.depth));
  const checker = new RecordChecker(schema, pw, ph, kernel);
  const ints = schema.kinds.includes('int64_list') && !schema.kinds.includes('float_list');
  const range = new IntRange();
  if (ints && schema.kinds.includes('bytes_list')) range.addRange(0, 0xff);
  // As `ingestImage`: the band type must hold the nodata value too.
  if (ints && o.nodata !== undefined && Number.isInteger(o.nodata)) range.addRange(o.nodata, o.nodata);

  // Strips first (they depend on the grid only), so the scan knows which offsets to keep.
  const provisionalType: SampleType = schema.kinds.includes('float_list') ? 'float32' : 'uint8';
  const rowBytes = bandNamesOf(schema).length * BYTES[ints ? 'int32' : provisionalType];
  const g = stripGeometry(width, height, tileSize, chooseStripTileRows(o, width, height, tileSize, rowBytes));
  const strips: StripPlan[] = [];
  const boundaries = new Set<number>();
  for (let s = 0; s < g.strips; s++) {
    const y0 = s * g.stripRows;
    const y1 = Math.min(height, y0 + g.stripRows);
    const patch0 = Math.floor(y0 / ph) * ppr;
    const patch1 = Math.ceil(y1 / ph) * ppr;
    strips.push({ index: s, y0, y1, patch0, patch1, segments: [] });
    boundaries.add(patch0).add(patch1);
  }

  // The scan: one file at a time, so each record's file, index and offset are known.
  const offsets = new Map<number, number>(); // boundary patch → offset of its record's header
  const fileInfo: IngestLayout['files'] = [];
  const base: number[] = [];
  const endOffset: number[] = [];
  let count = 0;
  for (const file of files) {
    base.push(count);
    let end = 0;
    let records = 0;
    for await (const rec of recordsOf([file], { signal, onFileEnd: (e) => ((end = e.endOffset), (records = e.records)) })) {
      const patch = count + rec.index;
      if (patch >= total)
        throw new GeotfrError('BAD_INPUT', `more records than the mixer's totalPatches (${total})`, { file: rec.file, record: rec.index, offset: rec.offset });
      if (boundaries.has(patch)) offsets.set(patch, rec.offset);
      if (ints) for (const v of checker.check(rec).values()) if (v.kind === 'int64_list') range.addBigInts(v.value);
    }
    count += records;
    endOffset.push(end);
    fileInfo.push({ uri: file, records, gzip: await isGzip(file) });
  }
  if (count !== total)
    throw new GeotfrError('BAD_INPUT', `wrong record count: ${count} records in ${files.length} file(s), but the mixer's totalPatches is ${total}`, {
      file: files[files.length - 1],
      record: fileInfo[fileInfo.length - 1]!.records,
      offset: endOffset[endOffset.length - 1],
    });

  for (const st of strips) {
    for (let f = 0; f < files.length; f++) {
      const n = fileInfo[f]!.records;
      const lo = Math.max(st.patch0, base[f]!);
      const hi = Math.min(st.patch1, base[f]! + n);
      if (lo >= hi) continue;
      st.segments.push({
        file: f,
        record0: lo - base[f]!,
        count: hi - lo,
        start: lo === base[f] ? 0 : offsets.get(lo)!,
        end: hi === base[f]! + n ? endOffset[f]! : offsets.get(hi)!,
        patch0: lo,
      });
    }
  }

  let type: SampleType;
  if (schema.kinds.includes('float_list')) type = 'float32';
  else if (!ints) type = 'uint8';
  else type = smallestIntType(range.min, range.max);
  if (type === 'uint8' && o.nodata !== undefined && Number.isInteger(o.nodata) && (o.nodata < 0 || o.nodata > 255))
    throw new GeotfrError('BAD_REQUEST', `nodata ${o.nodata} does not fit uint8 (bytes_list) predictions`, { field: 'nodata' });
  checkNodata(o.nodata, type);
  // A strip worker holds one row of patches across the full width (fillStrip).
  checkBuffer(bandNamesOf(schema).length * width * ph * BYTES[type], `a row of patches (${width}×${ph} px × ${bandNamesOf(schema).length} bands of ${type})`);
  return {
    files: fileInfo,
    mixerUri: o.mixer,
    crs: mixer.projection.crs,
    affine: mixer.projection.affine.doubleMatrix,
    patchDimensions: [pw, ph],
    patchesPerRow: ppr,
    totalPatches: total,
    kernelSize: kernel ?? null,
    kernelFrom,
    schema,
    type,
    width,
    height,
    tileSize,
    ...(o.compressionLevel !== undefined ? { compressionLevel: o.compressionLevel } : {}),
    ...(o.nodata !== undefined ? { nodata: o.nodata } : {}),
    geometry: g,
    strips,
  };
}

/** Whether a file starts with the gzip magic bytes (how `readRecords` decides, too). */
async function isGzip(uri: string): Promise<boolean> {
  const loc = await resolveUri(uri, 'files');
  const head = await loc.store.readRange(loc.key, 0, 2);
  return head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** The COG writer options of a planned ingest (the same ones `ingestImage` uses, so the bytes match). */
export function cogOptionsOf(l: IngestLayout, out: string, tmpDir?: string): CogOptions {
  return {
    width: l.width,
    height: l.height,
    bands: bandNamesOf(l.schema).length,
    type: l.type,
    crs: l.crs,
    affine: l.affine,
    bandNames: bandNamesOf(l.schema),
    tileSize: l.tileSize,
    compressionLevel: l.compressionLevel,
    nodata: l.nodata,
    tmpDir,
    file: out,
  };
}

/**
 * A byte range of an object as a stream of range reads (8 MiB each), the next one requested while
 * the current one is parsed (one read ahead: at most 16 MiB in memory). From Cloud Storage each read
 * comes as the chunks it arrived in (`readRangeChunks`): joining them into one 8 MiB buffer was a
 * copy of every input byte and, in a strip worker (whose heap holds the functions framework and the
 * storage client), about a quarter of its major garbage collections (docs/cloud.md).
 */
function rangeStream(uri: string, start: number, end: number): Readable {
  const CHUNK = 8 << 20;
  return Readable.from(
    (async function* () {
      const loc = await resolveUri(uri, 'files');
      const read = (p: number) => {
        const want = Math.min(end, p + CHUNK) - p;
        const r = loc.store.readRangeChunks(loc.key, p, p + want).then((chunks) => {
          const n = chunks.reduce((a, c) => a + c.length, 0);
          if (n !== want)
            throw new GeotfrError('BAD_INPUT', `file is shorter than when the ingest was planned (${p + Math.min(n, want)} of ${end} bytes)`, {
              file: uri,
              offset: p + Math.min(n, want),
            });
          return chunks;
        });
        r.catch(() => {}); // observed when awaited below
        return r;
      };
      let next = start < end ? read(start) : undefined;
      for (let p = start; p < end; p += CHUNK) {
        const chunks = await next!;
        next = p + CHUNK < end ? read(p + CHUNK) : undefined;
        yield* chunks;
      }
    })(),
    { objectMode: false },
  );
}

/**
 * The records of one segment, each located in its file as in a whole-file read. A record's data is
 * valid until the next one is asked for (`fillStrip` copies it out at once): readRecords' reuseBuffer.
 */
async function* segmentRecords(l: IngestLayout, seg: StripSegment, signal?: AbortSignal): AsyncGenerator<LocatedRecord> {
  const f = l.files[seg.file]!;
  if (f.gzip) {
    // No random access into a gzip stream: decompress from the start, skip, stop after the last one.
    let i = 0;
    for await (const rec of recordsOf([f.uri], { signal, reuseBuffer: true })) {
      if (rec.index >= seg.record0 + seg.count) break;
      if (rec.index >= seg.record0) yield { ...rec, patch: seg.patch0 + i++ };
    }
    return;
  }
  let i = 0;
  for await (const r of readRecords(rangeStream(f.uri, seg.start, seg.end), { file: f.uri, signal, reuseBuffer: true })) {
    if (i >= seg.count) break;
    yield { data: r.data, file: f.uri, index: seg.record0 + r.index, offset: seg.start + r.offset, patch: seg.patch0 + i++ };
  }
  if (i !== seg.count)
    throw new GeotfrError('BAD_INPUT', `expected ${seg.count} records from byte ${seg.start}, found ${i}: the file changed since planning`, {
      file: f.uri,
      offset: seg.start,
    });
}

/**
 * Writes strip `s` of a planned ingest into `writer` (created by the caller with `cogOptionsOf`):
 * reads its records, checks each one as `ingestImage` does (schema, lengths), and hands the rows of
 * each patch row that fall inside the strip to the writer. Returns the records read.
 */
export async function fillStrip(l: IngestLayout, s: number, writer: StripWriter, signal?: AbortSignal): Promise<number> {
  const st = l.strips[s];
  if (!st) throw new GeotfrError('BAD_REQUEST', `the ingest has no strip ${s} (it has ${l.strips.length})`, { field: 'strip' });
  const [pw, ph] = l.patchDimensions;
  const ppr = l.patchesPerRow;
  const width = l.width;
  const checker = new RecordChecker(l.schema, pw, ph, l.kernelSize ?? undefined);
  const rowBufs: PixelArray[] = bandNamesOf(l.schema).map(() => allocPixels(l.type, width * ph));
  let read = 0;
  let expect = st.patch0;
  for (const seg of st.segments) {
    for await (const rec of segmentRecords(l, seg, signal)) {
      if (rec.patch !== expect) throw new GeotfrError('INTERNAL', `strip ${s}: got patch ${rec.patch}, expected ${expect}`);
      expect++;
      const f = checker.check(rec);
      const col = rec.patch % ppr;
      checker.placeAll(f, rowBufs, width, col);
      read++;
      if (col === ppr - 1) {
        // This patch row's rows inside the strip.
        const top = Math.floor(rec.patch / ppr) * ph;
        const lo = Math.max(top, st.y0);
        const hi = Math.min(top + ph, st.y1);
        if (hi > lo)
          await writer.writeRows(
            rowBufs.map((r) => r.subarray((lo - top) * width, (hi - top) * width)),
            hi - lo,
          );
      }
    }
  }
  if (expect !== st.patch1) throw new GeotfrError('INTERNAL', `strip ${s}: read patches up to ${expect}, planned ${st.patch1}`);
  return read;
}
