/**
 * The demo's "any grid" step (docs/grid.md): the scene's 10 m bands, a 20 m band in its own file and
 * a DEM in EPSG:4326, stacked onto one 20 m UTM grid in a single export with `crs` and `scale` — what
 * an Earth Engine user writes as `Export.image.toCloudStorage({image, crs: 'EPSG:32633', scale: 20})`.
 * No gdalwarp step: the 10 m bands are averaged 2×2, the 20 m band is copied (its grid is the export
 * grid), the DEM is resampled bilinearly from lon/lat.
 */
import { createWriteStream, promises as fs } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { CogWriter } from '../shared/cog/writer.js';
import type { Affine } from '../shared/mixer.js';
import { dryRunImageExport, runImageExport, type ExportSummary } from '../shared/export/run.js';
import type { DryRun } from '../shared/export/dryrun.js';

async function writeCog(
  file: string,
  width: number,
  height: number,
  band: Float32Array,
  crs: string,
  affine: Affine,
  name: string,
  nodata?: number,
): Promise<void> {
  const cog = await CogWriter.create({
    width,
    height,
    bands: 1,
    type: 'float32',
    crs,
    affine,
    bandNames: [name],
    ...(nodata !== undefined ? { nodata } : {}),
    tileSize: 256,
    file,
  });
  try {
    await cog.writeRows([band], height);
    const stream = createWriteStream(file);
    await cog.finish(stream);
    stream.end();
    await once(stream, 'finish');
  } finally {
    await cog.close();
  }
}

/**
 * Writes a 20 m SWIR band and a lon/lat DEM next to the 10 m scene (`scene`: W×H at 10 m from
 * (x0, y0) in EPSG:32633), then exports the stack. Returns the dry run and the export summary.
 */
export async function demoGrid(opts: {
  outDir: string;
  scene: string;
  width: number;
  height: number;
  x0: number;
  y0: number;
}): Promise<{ dry: DryRun; summary: ExportSummary; request: object }> {
  const { outDir, scene, width: W, height: H, x0, y0 } = opts;
  await fs.mkdir(outDir, { recursive: true });
  // A 20 m band as Sentinel-2 ships B11: its own file on a 20 m grid over the same tile.
  const w20 = W / 2,
    h20 = H / 2;
  const swir = Float32Array.from({ length: w20 * h20 }, (_, k) => 0.15 + 0.06 * Math.sin((k % w20) / 30) * Math.cos(Math.floor(k / w20) / 40));
  const swirFile = path.join(outDir, 'B11_20m.tif');
  await writeCog(swirFile, w20, h20, swir, 'EPSG:32633', [20, 0, x0, 0, -20, y0], 'B11');
  // A DEM in lon/lat (~0.0003° ≈ 25–33 m) covering the tile with room to spare.
  const dw = 600,
    dh = 300;
  const dem = Float32Array.from({ length: dw * dh }, (_, k) => 400 + 150 * Math.sin((k % dw) / 37) + 80 * Math.cos(Math.floor(k / dw) / 23));
  const demFile = path.join(outDir, 'dem_4326.tif');
  await writeCog(demFile, dw, dh, dem, 'EPSG:4326', [0.0003, 0, 13.69, 0, -0.0003, 45.17], 'elevation');
  const request = {
    image: {
      bands: [
        { name: 'B4', uri: scene, band: 3, reduce: 'mean' },
        { name: 'B8', uri: scene, band: 4, reduce: 'mean' },
        { name: 'B11', uri: swirFile },
        { name: 'elevation', uri: demFile, resample: 'bilinear' },
      ],
    },
    crs: 'EPSG:32633',
    scale: 20,
    bucket: path.join(outDir, 'bucket'),
    fileNamePrefix: 'demo/stack',
    formatOptions: { patchDimensions: [64, 64], kernelSize: [8, 8], defaultValue: -1 },
  };
  await fs.writeFile(path.join(outDir, 'request.json'), JSON.stringify(request, null, 2) + '\n');
  const dry = await dryRunImageExport(request);
  const summary = await runImageExport(request, { progress: true });
  return { dry, summary, request };
}
