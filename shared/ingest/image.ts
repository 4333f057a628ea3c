/**
 * Prediction ingest (docs/semantics.md §7, issue 4): TFRecords of tf.train.Examples + the export's mixer →
 * a Cloud-Optimized GeoTIFF with the mixer's grid.
 *
 * Example i fills patch row `i // patchesPerRow`, column `i % patchesPerRow`. Every feature becomes a
 * band (first record's order); a feature of `pw*ph` values is a patch, one of `tw*th` values a tile
 * whose `floor(k/2)` margins are cropped (kernel from the caller or the export manifest).
 *
 * Streaming: one row of patches is held (per band `patchesPerRow*pw × ph` samples) and handed to the
 * COG writer, which keeps one row of tiles per level and spills compressed tiles to disk. Predictions
 * with int64_list features need their value range before the first byte is written (docs/semantics.md §7: the
 * smallest integer type holding the values), so they are read twice: a validating scan for the range,
 * then the write.
 * The output is published atomically at the end (BlobStore writer); any error leaves no output.
 */
import { checkOutput, missingInput, resolveUri } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';
import { decodeExample, type Feature, type FeatureKind, type Features } from '../tfrecord/example.js';
import { limit } from '../limits.js';
import { parseMixer, type Mixer } from '../mixer.js';
import { Progress } from '../progress.js';
import { SAMPLE_ARRAYS, type PixelArray, type SampleType } from '../raster/types.js';
import { checkBuffer } from '../budget.js';
import { CogWriter, allocPixels } from '../cog/writer.js';
import { requireGeoTiffEpsg } from '../cog/geokeys.js';
import { IntRange, smallestIntType } from './bandtype.js';
import { kernelFromManifest } from './manifest.js';
import { recordsOf, type LocatedRecord } from './records.js';

export interface IngestImageOptions {
  /** Prediction TFRecord files (local, file://, gs://), read in this order. */
  files: string[];
  /** The export's mixer JSON (docs/semantics.md §6). */
  mixer: string;
  /** Output GeoTIFF (local, file://, gs://). */
  out: string;
  /** Kernel of tile-sized features; default from the export manifest, else none (patches only). */
  kernelSize?: [number, number];
  signal?: AbortSignal;
  /** Progress on stderr. */
  progress?: boolean;
  /** COG tile size (default 512) and zlib level (default 6). */
  tileSize?: number;
  compressionLevel?: number;
  /** Where compressed tiles spill (default the OS temp dir). */
  tmpDir?: string;
  /** Written as GDAL_NODATA (and left out of overview averages); must fit the band type (docs/semantics.md §13). */
  nodata?: number;
  /** Depth D of `[D, h, w]` features: such a feature becomes D bands `NAME_0` … `NAME_{D-1}`. */
  depth?: number;
}

export interface IngestSummary {
  out: string;
  width: number;
  height: number;
  type: SampleType;
  bands: { name: string; kind: FeatureKind }[];
  patches: number;
  files: number;
  kernelSize: [number, number] | null;
  /** Where the kernel came from. */
  kernelFrom: 'option' | 'manifest' | 'none';
  overviews: number;
  bytes: number;
  /** Compressed tiles that went through temporary files (beyond the writer's share of the memory budget). */
  spilledBytes: number;
  seconds: number;
}

/** What every record must look like: the first record's features, kinds and order. */
export interface Schema {
  names: string[];
  kinds: FeatureKind[];
  /** Per feature: 1, or D for a `[D, h, w]` feature (from its length in the first record). */
  depths?: number[];
}

/** The bands a schema makes: a feature per band, or D bands `NAME_0` … for a `[D, h, w]` feature. */
export function bandNamesOf(schema: Schema): string[] {
  return schema.names.flatMap((n, i) => {
    const d = schema.depths?.[i] ?? 1;
    return d === 1 ? [n] : Array.from({ length: d }, (_, k) => `${n}_${k}`);
  });
}

/** Checks `nodata` against the band type (an integer band cannot hold a fraction or NaN). */
export function checkNodata(nodata: number | undefined, type: SampleType): void {
  if (nodata === undefined || type.startsWith('float')) return;
  if (!Number.isInteger(nodata)) throw new GeotfrError('BAD_REQUEST', `nodata ${nodata} does not fit ${type} predictions (integers only)`, { field: 'nodata' });
}

/** Number of values of a feature (bytes_list: all its bytes, as raw uint8 samples). */
export function valueCount(f: Feature): number {
  if (f.kind !== 'bytes_list') return f.value.length;
  let n = 0;
  for (const b of f.value) n += b.length;
  return n;
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  return Buffer.concat(parts);
}

export async function loadMixer(uri: string): Promise<Mixer> {
  let text: string;
  try {
    const loc = await resolveUri(uri, 'mixer');
    if (!(await loc.store.stat(loc.key))) throw await missingInput(loc.store, loc.key, uri, 'mixer', 'mixer');
    text = (await loc.store.read(loc.key)).toString('utf8');
  } catch (err) {
    throw asGeotfrError(err, { file: uri });
  }
  return parseMixer(text, uri);
}

/** Checks one record against the schema and the patch/tile sizes; returns its decoded features. */
export class RecordChecker {
  readonly patchLen: number;
  readonly tileLen: number | undefined;
  readonly tileW: number;
  readonly mx: number;
  readonly my: number;

  constructor(
    readonly schema: Schema,
    readonly pw: number,
    readonly ph: number,
    readonly kernel: [number, number] | undefined,
  ) {
    this.patchLen = pw * ph;
    this.mx = kernel ? Math.floor(kernel[0] / 2) : 0;
    this.my = kernel ? Math.floor(kernel[1] / 2) : 0;
    this.tileW = pw + 2 * this.mx;
    this.tileLen = kernel ? this.tileW * (ph + 2 * this.my) : undefined;
  }

  /**
   * The longest record a patch or tile of these features can be, however it is encoded (packed or
   * not, floats 5 bytes a value at most, int64 varints 11, bytes 3 a byte when every byte is its own
   * entry, plus the entry's name and length prefixes): later records are refused at their header
   * when they claim more, before they are buffered (docs/limits.md).
   */
  maxRecordBytes(): { bytes: number; reason: string } {
    const n = Math.max(this.patchLen, this.tileLen ?? 0);
    const perValue: Record<FeatureKind, number> = { float_list: 5, int64_list: 11, bytes_list: 3 };
    let bytes = 0;
    this.schema.names.forEach((name, b) => (bytes += Buffer.byteLength(name) + 64 + perValue[this.schema.kinds[b]!] * n));
    const shape = this.tileLen !== undefined ? `${this.tileW}×${this.ph + 2 * this.my} tile` : `${this.pw}×${this.ph} patch`;
    const hint = this.kernel ? '' : '; tile-sized predictions need --kernel-size or the export manifest';
    return { bytes, reason: `any record a ${shape} of the first record's ${this.schema.names.length} feature(s) can be (mixer${hint})` };
  }

  /**
   * Decodes a record and checks it against the schema. The record's bytes are the caller's to
   * spend (every caller reads them straight from `recordsOf` and copies the values out before the
   * next record): misaligned float lists are moved into place inside them rather than copied into
   * fresh memory, which for a 3-band 256² patch was ~0.5 MB allocated per record and one garbage
   * collection every ~60 records (docs/ingest.md).
   */
  check(rec: LocatedRecord): Features {
    const ctx = { file: rec.file, record: rec.index, offset: rec.offset };
    const features = decodeExample(rec.data, ctx, { inPlace: true });
    const { names, kinds } = this.schema;
    if (features.size !== names.length || names.some((n) => !features.has(n))) {
      const missing = names.filter((n) => !features.has(n));
      const extra = [...features.keys()].filter((n) => !names.includes(n));
      throw new GeotfrError(
        'BAD_INPUT',
        `features differ from the first record's [${names.join(', ')}]` +
          (missing.length ? `; missing: ${missing.join(', ')}` : '') +
          (extra.length ? `; unexpected: ${extra.join(', ')}` : ''),
        ctx,
      );
    }
    for (let b = 0; b < names.length; b++) {
      const f = features.get(names[b])!;
      if (f.kind !== kinds[b]) throw new GeotfrError('BAD_INPUT', `is a ${f.kind}, but a ${kinds[b]} in the first record`, { ...ctx, field: names[b] });
      const n = valueCount(f);
      const d = this.schema.depths?.[b] ?? 1;
      if (n !== this.patchLen * d && n !== (this.tileLen ?? NaN) * d) {
        const of = d === 1 ? '' : `${d} × `;
        const tile = this.tileLen !== undefined ? ` or ${of}a ${this.tileW}×${this.ph + 2 * this.my} tile (${this.tileLen * d})` : '';
        const hint = this.kernel ? '' : ' (tile-sized predictions need --kernel-size or the export manifest)';
        throw new GeotfrError('BAD_INPUT', `has ${n} values; expected ${of}a ${this.pw}×${this.ph} patch (${this.patchLen * d})${tile}${hint}`, {
          ...ctx,
          field: names[b],
        });
      }
    }
    return features;
  }

  /**
   * Copies a feature's core into a row-of-patches buffer at patch column `col`; for a `[D, h, w]`
   * feature of `depth` layers, layer `layer` (the features are row-major, so a layer is contiguous).
   */
  place(f: Feature, dst: PixelArray, rowWidth: number, col: number, layer = 0, depth = 1): void {
    const { pw, ph } = this;
    const n = valueCount(f) / depth;
    const srcW = n === this.patchLen ? pw : this.tileW;
    const x0 = n === this.patchLen ? 0 : this.mx;
    const y0 = n === this.patchLen ? 0 : this.my;
    const base = layer * n;
    const dx = col * pw;
    if (f.kind === 'int64_list') {
      const v = f.value;
      for (let y = 0; y < ph; y++) {
        let s = base + (y + y0) * srcW + x0;
        let d = y * rowWidth + dx;
        for (let x = 0; x < pw; x++) dst[d++] = Number(v[s++]);
      }
      return;
    }
    const v: Float32Array | Uint8Array = f.kind === 'float_list' ? f.value : concatBytes(f.value);
    for (let y = 0; y < ph; y++) {
      const s = base + (y + y0) * srcW + x0;
      dst.set(v.subarray(s, s + pw) as ArrayLike<number>, y * rowWidth + dx);
    }
  }

  /** Places every band of a record (features in schema order, `[D, h, w]` ones layer by layer). */
  placeAll(f: Features, rowBufs: PixelArray[], rowWidth: number, col: number): void {
    const { names, depths } = this.schema;
    let band = 0;
    for (let b = 0; b < names.length; b++) {
      const d = depths?.[b] ?? 1;
      const feat = f.get(names[b])!;
      for (let k = 0; k < d; k++) this.place(feat, rowBufs[band++], rowWidth, col, k, d);
    }
  }
}

/**
 * Reads the first record to learn the features (names, kinds, order). With `depth` D, a feature of D
 * patches' or tiles' worth of values is a `[D, h, w]` feature.
 */
export async function readSchema(files: string[], signal?: AbortSignal, shape?: { patchLen: number; tileLen?: number; depth?: number }): Promise<Schema> {
  const it = recordsOf(files, { signal });
  try {
    const first = await it.next();
    if (first.done) throw new GeotfrError('BAD_INPUT', `no records in ${files.length} file(s)`, { file: files[files.length - 1] });
    const r = first.value;
    const f = decodeExample(r.data, { file: r.file, record: r.index, offset: r.offset });
    if (!f.size) throw new GeotfrError('BAD_INPUT', 'the first record has no features', { file: r.file, record: r.index, offset: r.offset });
    const d = shape?.depth ?? 1;
    const depths = [...f.values()].map((x) => {
      const n = valueCount(x);
      return d > 1 && shape && (n === d * shape.patchLen || (shape.tileLen !== undefined && n === d * shape.tileLen)) ? d : 1;
    });
    return { names: [...f.keys()], kinds: [...f.values()].map((x) => x.kind), ...(d > 1 ? { depths } : {}) };
  } finally {
    await it.return(undefined);
  }
}

/**
 * Iterates all records, enforcing the schema and exactly `total` records (docs/semantics.md §7), calling `fn`
 * with each record's features.
 */
async function forEachPatch(
  files: string[],
  total: number,
  checker: RecordChecker,
  signal: AbortSignal | undefined,
  progress: Progress | undefined,
  fn: (rec: LocatedRecord, f: Features) => Promise<void> | void,
): Promise<void> {
  let count = 0;
  let last: { file: string; records: number; endOffset: number } | undefined;
  const max = checker.maxRecordBytes();
  const bound = max.bytes < limit('maxRecordBytes') ? { maxRecordBytes: max.bytes, maxRecordBytesReason: max.reason } : {};
  // Records are done with once `fn` has copied their values into the row of patches.
  for await (const rec of recordsOf(files, { signal, onFileEnd: (e) => (last = e), reuseBuffer: true, ...bound })) {
    if (rec.patch >= total)
      throw new GeotfrError('BAD_INPUT', `more records than the mixer's totalPatches (${total})`, { file: rec.file, record: rec.index, offset: rec.offset });
    await fn(rec, checker.check(rec));
    count++;
    progress?.tick(1, rec.data.length);
  }
  if (count !== total)
    throw new GeotfrError(
      'BAD_INPUT',
      `wrong record count: ${count} records in ${files.length} file(s), but the mixer's totalPatches is ${total}`,
      last ? { file: last.file, record: last.records, offset: last.endOffset } : {},
    );
}

/** The lengths `readSchema` needs to recognize `[D, h, w]` features. */
export function schemaShape(pw: number, ph: number, kernel: [number, number] | undefined, depth: number | undefined) {
  const tileLen = kernel ? (pw + 2 * Math.floor(kernel[0] / 2)) * (ph + 2 * Math.floor(kernel[1] / 2)) : undefined;
  if (depth !== undefined && !(Number.isInteger(depth) && depth >= 1 && depth <= 65535))
    throw new GeotfrError('BAD_REQUEST', `depth must be an integer from 1 to 65535, got ${depth}`, { field: 'depth' });
  return { patchLen: pw * ph, tileLen, depth };
}

/** Ingests predictions into a COG (see the module comment). */
export async function ingestImage(opts: IngestImageOptions): Promise<IngestSummary> {
  const t0 = performance.now();
  const { files, signal } = opts;
  if (!files.length) throw new GeotfrError('BAD_REQUEST', 'no prediction files given', { field: 'files' });
  // The output is checked before any work: a directory there is an error now, not after the ingest.
  const out = await resolveUri(opts.out, 'out');
  await checkOutput(out, opts.out);
  const mixer = await loadMixer(opts.mixer);
  requireGeoTiffEpsg(mixer.projection.crs, opts.mixer);
  const [pw, ph] = mixer.patchDimensions;
  const ppr = mixer.patchesPerRow;
  const total = mixer.totalPatches;
  const rows = total / ppr; // parseMixer guarantees a whole number
  const width = ppr * pw;
  const height = rows * ph;

  let kernel = opts.kernelSize;
  let kernelFrom: IngestSummary['kernelFrom'] = kernel ? 'option' : 'none';
  if (!kernel) {
    const m = await kernelFromManifest(opts.mixer, mixer);
    if (m) {
      kernel = m.kernelSize;
      kernelFrom = 'manifest';
    }
  }

  const schema = await readSchema(files, signal, schemaShape(pw, ph, kernel, opts.depth));
  const checker = new RecordChecker(schema, pw, ph, kernel);
  const bandNames = bandNamesOf(schema);
  let type: SampleType;
  if (schema.kinds.includes('float_list')) type = 'float32';
  else if (!schema.kinds.includes('int64_list'))
    type = 'uint8'; // bytes_list only: raw uint8, no scan needed
  else {
    // Integer-only: a validating first pass finds the range (see module comment). Bytes are always
    // 0..255, so a bytes_list feature widens the range by [0, 255] (same type as scanning its bytes).
    const range = new IntRange();
    if (schema.kinds.includes('bytes_list')) range.addRange(0, 0xff);
    // The band type must hold the nodata value too.
    if (opts.nodata !== undefined && Number.isInteger(opts.nodata)) range.addRange(opts.nodata, opts.nodata);
    const scan = opts.progress ? new Progress({ label: 'ingest-image (scanning integer range)', total, unit: 'patches' }) : undefined;
    await forEachPatch(files, total, checker, signal, scan, (_rec, f) => {
      for (const v of f.values()) if (v.kind === 'int64_list') range.addBigInts(v.value);
    });
    scan?.finish();
    type = smallestIntType(range.min, range.max);
  }
  if (type === 'uint8' && opts.nodata !== undefined && Number.isInteger(opts.nodata) && (opts.nodata < 0 || opts.nodata > 255))
    throw new GeotfrError('BAD_REQUEST', `nodata ${opts.nodata} does not fit uint8 (bytes_list) predictions`, { field: 'nodata' });
  checkNodata(opts.nodata, type);
  checkBuffer(
    bandNames.length * width * ph * SAMPLE_ARRAYS[type].BYTES_PER_ELEMENT,
    `a row of patches (${width}×${ph} px × ${bandNames.length} bands of ${type})`,
  );

  const cog = await CogWriter.create({
    width,
    height,
    bands: bandNames.length,
    type,
    crs: mixer.projection.crs,
    affine: mixer.projection.affine.doubleMatrix,
    bandNames,
    tileSize: opts.tileSize,
    compressionLevel: opts.compressionLevel,
    nodata: opts.nodata,
    tmpDir: opts.tmpDir,
    file: opts.out,
  });
  let blob: Awaited<ReturnType<typeof out.store.createWriter>> | undefined;
  try {
    const rowBufs = bandNames.map(() => allocPixels(type, width * ph));
    const progress = opts.progress ? new Progress({ label: 'ingest-image', total, unit: 'patches' }) : undefined;
    await forEachPatch(files, total, checker, signal, progress, async (rec, f) => {
      const col = rec.patch % ppr;
      checker.placeAll(f, rowBufs, width, col);
      if (col === ppr - 1) await cog.writeRows(rowBufs, ph);
    });
    blob = await out.store.createWriter(out.key, { contentType: 'image/tiff' });
    const res = await cog.finish(blob.stream, signal);
    const info = await blob.commit();
    blob = undefined;
    progress?.finish();
    return {
      out: out.store.uri(out.key),
      width,
      height,
      type,
      bands: schema.names.flatMap((name, i) => {
        const d = schema.depths?.[i] ?? 1;
        return (d === 1 ? [name] : Array.from({ length: d }, (_, k) => `${name}_${k}`)).map((n) => ({ name: n, kind: schema.kinds[i] }));
      }),
      patches: total,
      files: files.length,
      kernelSize: kernel ?? null,
      kernelFrom,
      overviews: res.overviews,
      bytes: info.size,
      spilledBytes: cog.spilledBytes,
      seconds: Math.round((performance.now() - t0) / 10) / 100,
    };
  } catch (err) {
    await blob?.abort();
    throw err;
  } finally {
    await cog.close();
  }
}
