/**
 * `npm run demo`: a self-contained tour with no network and no cloud account.
 *
 * 1. Generates a realistic 6-band float32 scene (smooth terrain-like reflectances, a river, cloud
 *    holes as nodata) and writes it as a COG with geotfr's own writer (shared/cog/writer.ts).
 * 2. Exports it like `Export.image.toCloudStorage(…, fileFormat: 'TFRecord')` with a kernel margin
 *    and gzip into ./demo-out/ (patch 128, kernel 32 → 160-px tiles).
 * 3. Prints what was written (`geotfr inspect`'s report) and writes ./demo-out/quicklook.png: a few
 *    exported tiles, margins dimmed, the patch core outlined, masked pixels in magenta.
 * 4. Closes the loop (cli/demo-ingest.ts): a tiny "model" reads the records, writes predictions as
 *    TFRecords, and `geotfr ingest-image` turns them into a georeferenced COG with quicklooks.
 * 5. Patches around labelled points (cli/demo-patches.ts): 300 points labelled water / vegetation /
 *    bare from the scene, `geotfr export-patches`, `inspect`, and a contact sheet PNG with the labels.
 * 6. Any grid (cli/demo-grid.ts): 10 m bands, a 20 m band in its own file and a lon/lat DEM stacked
 *    onto one 20 m UTM grid with `crs` and `scale`, without a gdalwarp step.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { CogWriter } from '../shared/cog/writer.js';
import { runImageExport } from '../shared/export/run.js';
import { formatReport, inspectFiles } from '../shared/inspect.js';
import { decodeExample } from '../shared/tfrecord/example.js';
import { readRecordFile } from '../shared/tfrecord/record.js';
import { quicklook, type QuicklookTile } from './quicklook.js';
import { demoIngest } from './demo-ingest.js';
import { demoPatches } from './demo-patches.js';
import { demoGrid } from './demo-grid.js';

const out = path.resolve(process.argv[2] ?? 'demo-out');
const W = 768;
const H = 640;
const NODATA = -9999;
const names = ['B2', 'B3', 'B4', 'B8', 'B11', 'B12'];

/** The ground truth the patch step labels points with: 0 river, 1 vegetation, 2 bare; -1 under cloud (as in scene()). */
function classOf(x: number, y: number): number {
  const terrain = Math.sin(x / 53) * Math.cos(y / 71) + 0.5 * Math.sin((x + 2 * y) / 23) + 0.25 * Math.cos((3 * x - y) / 11);
  const cloud = (x - 200) ** 2 / 3600 + (y - 150) ** 2 / 1600 < 1 || (x - 560) ** 2 / 900 + (y - 470) ** 2 / 2500 < 1;
  if (cloud) return -1;
  if (Math.abs(y - (H / 2 + 60 * Math.sin(x / 90))) < 6 + 2 * Math.sin(x / 17)) return 0;
  return terrain > 0.4 ? 1 : 2;
}

/** Terrain-ish reflectances: a few octaves of smooth waves, a meandering river, vegetation in B8, clouds → nodata. */
function scene(): Float32Array[] {
  const bands = names.map(() => new Float32Array(W * H));
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const terrain = Math.sin(x / 53) * Math.cos(y / 71) + 0.5 * Math.sin((x + 2 * y) / 23) + 0.25 * Math.cos((3 * x - y) / 11);
      const river = Math.abs(y - (H / 2 + 60 * Math.sin(x / 90))) < 6 + 2 * Math.sin(x / 17);
      const veg = Math.max(0, terrain) * 0.3;
      const cloud = (x - 200) ** 2 / 3600 + (y - 150) ** 2 / 1600 < 1 || (x - 560) ** 2 / 900 + (y - 470) ** 2 / 2500 < 1;
      const refl = [
        0.05 + 0.02 * terrain,
        0.07 + 0.03 * terrain + veg * 0.2,
        0.06 + 0.04 * terrain - veg * 0.1,
        0.2 + veg + 0.05 * terrain,
        0.15 + 0.06 * terrain,
        0.1 + 0.05 * terrain,
      ];
      bands.forEach((b, k) => (b[i] = cloud ? NODATA : river ? [0.04, 0.05, 0.03, 0.02, 0.01, 0.01][k] : refl[k]));
    }
  return bands;
}

async function writeScene(file: string): Promise<void> {
  const cog = await CogWriter.create({
    width: W,
    height: H,
    bands: names.length,
    type: 'float32',
    crs: 'EPSG:32633',
    affine: [10, 0, 399960, 0, -10, 5000040],
    bandNames: names,
    nodata: NODATA,
    tileSize: 256,
    file,
  });
  try {
    await cog.writeRows(scene(), H);
    const stream = createWriteStream(file);
    await cog.finish(stream);
    stream.end(); // finish() leaves the stream open for the caller to commit
    await once(stream, 'finish');
  } finally {
    await cog.close();
  }
}

await fs.rm(out, { recursive: true, force: true });
await fs.mkdir(out, { recursive: true });
const src = path.join(out, 'scene.tif');
console.log(`1. writing a ${W}x${H} ${names.length}-band float32 COG with cloud holes (nodata ${NODATA}): ${src}`);
await writeScene(src);

const request = {
  image: src,
  bucket: path.join(out, 'bucket'),
  fileNamePrefix: 'demo/patches',
  formatOptions: { patchDimensions: [128, 128], kernelSize: [32, 32], compressed: true, defaultValue: -1, maxFileSize: 4 << 20 },
};
await fs.writeFile(path.join(out, 'request.json'), JSON.stringify(request, null, 2) + '\n');
console.log(`\n2. geotfr export-image ${path.join(out, 'request.json')}`);
const summary = await runImageExport(request, { progress: true });
console.log(JSON.stringify(summary));

console.log(`\n3. geotfr inspect ${summary.shards.map((s) => path.relative(process.cwd(), s)).join(' ')}`);
const report = await inspectFiles(summary.shards);
process.stdout.write(formatReport(report));
console.log(`\nmixer (${summary.mixer}):\n${await fs.readFile(summary.mixer!, 'utf8')}`);

// Quicklook: patches 7..10 (second row: a cloud hole, the river) as false colour B8/B4/B3.
const tiles: QuicklookTile[] = [];
const want = new Set([7, 8, 9, 10]);
let index = 0;
for (const shard of summary.shards)
  for await (const r of readRecordFile(shard)) {
    if (want.has(index)) {
      const f = decodeExample(r.data);
      const ch = (n: string) => Float32Array.from(f.get(n)!.value as Float32Array);
      tiles.push({ channels: [ch('B8'), ch('B4'), ch('B3')] });
    }
    index++;
  }
const png = path.join(out, 'quicklook.png');
await fs.writeFile(png, quicklook(tiles, 160, 160, [16, 16], -1));
console.log(`\nquicklook of patches ${[...want].join(', ')} (false colour B8/B4/B3, margins dimmed, core outlined, masked = magenta): ${png}`);

console.log('\n4. model → prediction TFRecords → geotfr ingest-image → Cloud-Optimized GeoTIFF');
const ingested = await demoIngest({ exportDir: request.bucket, prefix: request.fileNamePrefix, outDir: path.join(out, 'predictions') });
console.log(`prediction COG: ${ingested.predictionTif}`);
for (const p of ingested.pngs) console.log(`quicklook: ${p}`);

console.log('\n5. patches around labelled points: geotfr export-patches → inspect → contact sheet');
await demoPatches({ src, outDir: path.join(out, 'patches'), width: W, height: H, affine: [10, 0, 399960, 0, -10, 5000040], classOf });

console.log('\n6. any grid: 10 m bands (averaged), a 20 m band (copied) and a lon/lat DEM (bilinear) onto EPSG:32633 at scale 20');
const stack = await demoGrid({ outDir: path.join(out, 'stack'), scene: src, width: W, height: H, x0: 399960, y0: 5000040 });
console.log(`geotfr export-image ${path.join(out, 'stack', 'request.json')} --dry-run`);
const d = stack.dry;
console.log(
  `grid ${d.grid.crs} ${d.grid.width}x${d.grid.height} affine ${JSON.stringify(d.grid.affine)} (rule: ${d.grid.rule}); ${d.totalPatches} patches in ${d.shards} shard(s), ~${(d.bytesEstimated / 1e6).toFixed(1)} MB`,
);
for (const b of d.bands) console.log(`  ${b.name}: ${b.reduce ?? b.resample} from ${b.files.map((f) => `${path.basename(f.uri)} (${f.mode})`).join(', ')}`);
console.log(JSON.stringify(stack.summary));
