/**
 * The ingest half of the demo (issue 4): a tiny "model" reads the exported records with our reader,
 * computes the normalized difference of the first two bands, (b1 - b2) / (b1 + b2), on the core of
 * each tile (margins cropped with the kernel from the export manifest), writes one prediction
 * Example per patch to two gzip TFRecord files, ingests them into a COG with the export's mixer, and
 * writes quicklook PNGs of the input's first band and of the prediction.
 *
 * Masked input pixels (the export's `defaultValue`, from its manifest) are holes, not values: the
 * model predicts `PRED_NODATA` there, prediction.tif declares it as nodata, and both quicklooks show
 * holes in magenta and stretch over the valid pixels only.
 *
 * The demo keeps two small mosaics in memory for the quicklooks; `ingestImage` itself streams.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { GeotfrError } from '../shared/errors.js';
import { decodeExample, encodeExample, floatFeature } from '../shared/tfrecord/example.js';
import { shardName } from '../shared/export/plan.js';
import { ingestImage } from '../shared/ingest/image.js';
import { kernelFromManifest } from '../shared/ingest/manifest.js';
import { writeQuicklook } from '../shared/ingest/quicklook.js';
import { parseMixer } from '../shared/mixer.js';
import { RecordWriter, readRecordFile } from '../shared/tfrecord/record.js';

/** The prediction's nodata value (written into prediction.tif as GDAL_NODATA). */
export const PRED_NODATA = -9999;

export interface DemoIngestOptions {
  /** The export's bucket directory (shards, mixer, and `.geotfr/manifests/`). */
  exportDir: string;
  /** The export's fileNamePrefix (may contain `/`). */
  prefix: string;
  /** Where predictions, the GeoTIFF and the PNGs go. */
  outDir: string;
}

/** Runs model → predictions → ingest → quicklooks; returns the GeoTIFF and the PNG paths. */
export async function demoIngest(opts: DemoIngestOptions): Promise<{ predictionTif: string; pngs: string[] }> {
  const mixerPath = path.join(opts.exportDir, `${opts.prefix}-mixer.json`);
  const mixer = parseMixer(await fs.readFile(mixerPath, 'utf8'), mixerPath);
  const [pw, ph] = mixer.patchDimensions;
  const ppr = mixer.patchesPerRow;
  const total = mixer.totalPatches;
  const W = ppr * pw;
  const H = (total / ppr) * ph;
  const kernel = (await kernelFromManifest(mixerPath, mixer))?.kernelSize ?? [1, 1];
  // The value masked pixels were exported with (docs/semantics.md §4), when the manifest is there.
  const manifestPath = path.join(opts.exportDir, '.geotfr', 'manifests', `${opts.prefix}.json`);
  const fill: number | undefined = await fs
    .readFile(manifestPath, 'utf8')
    .then((t) => JSON.parse(t).formatOptions?.defaultValue)
    .catch(() => undefined);
  const mx = Math.floor(kernel[0] / 2);
  const my = Math.floor(kernel[1] / 2);
  const tw = pw + 2 * mx;

  const shardDir = path.join(opts.exportDir, path.dirname(opts.prefix));
  const base = path.basename(opts.prefix);
  const shardRe = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{5}\\.tfrecord(\\.gz)?$`);
  const shards = (await fs.readdir(shardDir)).filter((f) => shardRe.test(f)).sort();
  if (!shards.length) throw new GeotfrError('NOT_FOUND', `no shards named ${base}-NNNNN.tfrecord[.gz]`, { file: shardDir });

  await fs.mkdir(opts.outDir, { recursive: true });
  const predFiles = [0, 1].map((i) => path.join(opts.outDir, shardName('predictions', i, true)));
  const writers = predFiles.map((f) => new RecordWriter(createWriteStream(f), { compressed: true }));
  const inputMosaic = new Float32Array(W * H);
  const predMosaic = new Float32Array(W * H);
  let i = 0;
  for (const s of shards) {
    const file = path.join(shardDir, s);
    for await (const r of readRecordFile(file)) {
      const features = [...decodeExample(r.data, { file, record: r.index, offset: r.offset }).values()];
      const core = (k: number): Float32Array => {
        const f = features[Math.min(k, features.length - 1)];
        if (f.kind !== 'float_list') throw new GeotfrError('BAD_INPUT', `the demo model expects float bands, got ${f.kind}`, { file, record: r.index });
        if (f.value.length === pw * ph) return f.value;
        const out = new Float32Array(pw * ph);
        for (let y = 0; y < ph; y++) out.set(f.value.subarray((y + my) * tw + mx, (y + my) * tw + mx + pw), y * pw);
        return out;
      };
      const a = core(0);
      const b = core(1);
      const nd = new Float32Array(pw * ph);
      for (let k = 0; k < nd.length; k++) {
        const sum = a[k] + b[k];
        nd[k] = fill !== undefined && (a[k] === Math.fround(fill) || b[k] === Math.fround(fill)) ? PRED_NODATA : sum === 0 ? 0 : (a[k] - b[k]) / sum;
      }
      const row = Math.floor(i / ppr);
      const col = i % ppr;
      for (let y = 0; y < ph; y++) {
        inputMosaic.set(a.subarray(y * pw, (y + 1) * pw), (row * ph + y) * W + col * pw);
        predMosaic.set(nd.subarray(y * pw, (y + 1) * pw), (row * ph + y) * W + col * pw);
      }
      // Split over the two files: the first half of the patches, then the rest.
      await writers[i < total / 2 ? 0 : 1].write(encodeExample([['nd', floatFeature(nd)]]));
      i++;
    }
  }
  for (const w of writers) await w.close();

  const predictionTif = path.join(opts.outDir, 'prediction.tif');
  await ingestImage({ files: predFiles, mixer: mixerPath, out: predictionTif, kernelSize: kernel, nodata: PRED_NODATA });
  const pngs = [path.join(opts.outDir, 'input.png'), path.join(opts.outDir, 'prediction.png')];
  await writeQuicklook(pngs[0], inputMosaic, W, H, { nodata: fill === undefined ? undefined : Math.fround(fill) });
  await writeQuicklook(pngs[1], predMosaic, W, H, { nodata: PRED_NODATA });
  return { predictionTif, pngs };
}
