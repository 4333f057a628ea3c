/**
 * Round-trip property (issue 4): export a random GeoTIFF (random size, type, patch and kernel sizes,
 * sometimes a region) → an identity "model" that returns each tile (or its core) → ingest, with the
 * kernel found through the export manifest, reproduces the exported grid area of the source exactly,
 * with the mixer's transform and CRS, as GDAL reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { decodeExample, encodeExample, floatFeature, type Feature } from '../../../shared/tfrecord/example.js';
import { runImageExport } from '../../../shared/export/run.js';
import { parseMixer } from '../../../shared/mixer.js';
import { frameRecords, gzipSync, readRecordFile } from '../../../shared/tfrecord/record.js';
import { ingestImage } from '../../../shared/ingest/image.js';
import type { SampleType } from '../../../shared/raster/types.js';
import { needGdal } from '../../support/oracles.js';
import { readRasterWithGdal, tempDir, writeGeoTiff } from '../../support/rasters.js';
import { rng } from '../cog/cogcheck.js';

const SEEDS = [1, 2, 3, 4, 5, 6];

for (const seed of SEEDS) {
  test(`round trip export → identity model → ingest reproduces the source grid (seed ${seed})`, async (t) => {
    if (!needGdal(t)) return;
    const rand = rng(seed * 7919);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const dir = await tempDir('geotfr-ingest-rt-');
    try {
      const W = int(30, 90);
      const H = int(25, 80);
      const nb = int(1, 3);
      const type = (['uint8', 'int16', 'float32'] as SampleType[])[seed % 3];
      const bands = Array.from({ length: nb }, () =>
        Float64Array.from({ length: W * H }, () =>
          type === 'float32' ? Math.fround((rand() - 0.5) * 1000) : type === 'uint8' ? int(0, 255) : int(-32768, 32767),
        ),
      );
      const src = path.join(dir, 'src.tif');
      const geographic = seed % 2 === 0;
      const affine: [number, number, number, number, number, number] = geographic ? [0.01, 0, 10, 0, -0.01, 50] : [10, 0, 500000, 0, -10, 4000000];
      await writeGeoTiff(src, {
        width: W,
        height: H,
        bands,
        type,
        affine,
        crs: geographic ? 'EPSG:4326' : 'EPSG:32633',
        bandNames: bands.map((_, b) => `b${b}_${seed}`),
      });

      const pw = int(4, 20);
      const ph = int(4, 20);
      const kernel: [number, number] = [int(1, 9), int(1, 9)];
      // Half the seeds export a sub-region (whole pixels, so the grid offset is exact).
      const useRegion = seed % 2 === 1;
      const rx0 = useRegion ? int(0, Math.max(0, W - pw - 1)) : 0;
      const ry0 = useRegion ? int(0, Math.max(0, H - ph - 1)) : 0;
      const rw = useRegion ? int(pw, W - rx0) : W;
      const rh = useRegion ? int(ph, H - ry0) : H;
      const px = (x: number) => affine[2] + x * affine[0];
      const py = (y: number) => affine[5] + y * affine[4];
      const region = useRegion ? [px(rx0), py(ry0 + rh), px(rx0 + rw), py(ry0)] : undefined;
      const bucket = path.join(dir, 'bucket');
      await fs.mkdir(bucket);
      const summary = await runImageExport({
        image: src,
        bucket,
        fileNamePrefix: 'exports/rt',
        ...(region ? { region } : {}),
        formatOptions: { patchDimensions: [pw, ph], kernelSize: kernel, compressed: rand() < 0.5, maxFileSize: int(2000, 20000) },
      });
      const mixerPath = path.join(bucket, 'exports', 'rt-mixer.json');
      const mixer = parseMixer(await fs.readFile(mixerPath, 'utf8'));
      const ppr = mixer.patchesPerRow;
      const rows = mixer.totalPatches / ppr;
      assert.equal(ppr, Math.floor(rw / pw));
      assert.equal(rows, Math.floor(rh / ph));

      // Identity model: every exported tile back as a prediction, whole (cropped by ingest) or its core.
      const shards = (await fs.readdir(path.join(bucket, 'exports'))).filter((f) => /^rt-\d{5}\.tfrecord/.test(f)).sort();
      assert.equal(shards.length, summary.files);
      const mx = Math.floor(kernel[0] / 2);
      const my = Math.floor(kernel[1] / 2);
      const tw = pw + 2 * mx;
      const coreOnly = rand() < 0.5;
      const preds: Buffer[] = [];
      for (const s of shards)
        for await (const r of readRecordFile(path.join(bucket, 'exports', s))) {
          const out = new Map<string, Feature>();
          for (const [name, f] of decodeExample(r.data)) {
            const v = (f as { value: Float32Array }).value;
            if (!coreOnly) out.set(name, floatFeature(Float32Array.from(v)));
            else {
              const core = new Float32Array(pw * ph);
              for (let y = 0; y < ph; y++) core.set(v.subarray((y + my) * tw + mx, (y + my) * tw + mx + pw), y * pw);
              out.set(name, floatFeature(core));
            }
          }
          preds.push(encodeExample(out));
        }
      assert.equal(preds.length, mixer.totalPatches);
      // Spread unevenly over three files, plain and gzip.
      const cut1 = int(0, preds.length);
      const cut2 = int(cut1, preds.length);
      const files = [preds.slice(0, cut1), preds.slice(cut1, cut2), preds.slice(cut2)].map((p, i) => {
        const f = path.join(dir, `pred-${i}.tfrecord${i === 1 ? '.gz' : ''}`);
        return { f, data: i === 1 ? gzipSync(frameRecords(p)) : frameRecords(p) };
      });
      for (const { f, data } of files) await fs.writeFile(f, data);

      const out = path.join(dir, 'pred.tif');
      const s = await ingestImage({ files: files.map((x) => x.f), mixer: mixerPath, out, tileSize: 16 });
      assert.equal(s.kernelFrom, 'manifest', 'kernel found through the export manifest');
      assert.deepEqual(s.kernelSize, kernel);

      const g = await readRasterWithGdal(out);
      assert.equal(g.width, ppr * pw);
      assert.equal(g.height, rows * ph);
      assert.equal(g.crs, geographic ? 'EPSG:4326' : 'EPSG:32633');
      assert.deepEqual(g.affine, mixer.projection.affine.doubleMatrix);
      for (let i = 0; i < 6; i++) assert.ok(Math.abs(g.affine[i] - [affine[0], 0, px(rx0), 0, affine[4], py(ry0)][i]) < 1e-9, `affine[${i}]`);
      assert.deepEqual(
        g.bandNames,
        bands.map((_, b) => `b${b}_${seed}`),
      );
      for (let b = 0; b < nb; b++) {
        const want = new Float64Array(g.width * g.height);
        for (let y = 0; y < g.height; y++) for (let x = 0; x < g.width; x++) want[y * g.width + x] = bands[b][(ry0 + y) * W + rx0 + x];
        assert.deepEqual(
          g.bands[b],
          want,
          `band ${b} (seed ${seed}, ${W}×${H} ${type}, patch ${pw}×${ph}, kernel ${kernel}, region ${useRegion}, coreOnly ${coreOnly})`,
        );
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}
