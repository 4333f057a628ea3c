/**
 * gdalwarp as the oracle for the resampling kernels (test/support/py/gdal_warp.py), run with the
 * system Python that has GDAL's bindings (python3-gdal; CI installs it). All jobs of a test go to one
 * Python process.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { Affine } from '../../shared/mixer.js';
import { inCI, repoRoot, run } from './oracles.js';
import { tempDir } from './rasters.js';

const gdalPython = process.env.GEOTFR_GDAL_PYTHON ?? '/usr/bin/python3';
const script = path.join(repoRoot, 'test', 'support', 'py', 'gdal_warp.py');

let checked: boolean | undefined;
/** False (after skipping `t` loudly) without GDAL's Python bindings; throws under CI. */
export function needGdalPython(t: TestContext): boolean {
  if (checked === undefined) {
    try {
      execFileSync(gdalPython, ['-c', 'from osgeo import gdal'], { stdio: 'ignore' });
      checked = true;
    } catch {
      checked = false;
    }
  }
  if (checked) return true;
  const msg = `GDAL's Python bindings are not available (${gdalPython} -c 'from osgeo import gdal' failed; apt-get install python3-gdal or set GEOTFR_GDAL_PYTHON)`;
  if (inCI) throw new Error(`CI requires ${msg}`);
  process.stderr.write(`\n*** SKIPPING "${t.name}": ${msg} ***\n`);
  t.skip(msg);
  return false;
}

export type GdalAlg = 'near' | 'bilinear' | 'cubic' | 'average' | 'mode' | 'min' | 'max';

export interface WarpJob {
  /** An in-memory raster, or one band (1-based) of GeoTIFF files mosaicked in order (the last valid wins). */
  src:
    | { width: number; height: number; affine: Affine; crs: string; nodata?: number; values: Float64Array }
    | { files: string[]; band?: number; nodata?: number };
  dst: { width: number; height: number; affine: Affine; crs: string };
  alg: GdalAlg;
}

/** Mixer order [a, b, c, d, e, f] → GDAL's geotransform [c, a, b, f, d, e]. */
const gt = (m: Affine) => [m[2], m[0], m[1], m[5], m[3], m[4]];

/** Runs every job through gdal.Warp; per job the destination values, NaN where GDAL wrote none. */
export async function gdalWarp(jobs: WarpJob[]): Promise<Float64Array[]> {
  const dir = await tempDir('geotfr-warp-');
  try {
    const spec = await Promise.all(
      jobs.map(async (j, i) => {
        let src: object;
        if ('files' in j.src) src = { files: j.src.files, band: j.src.band ?? 1, nodata: j.src.nodata ?? null };
        else {
          const file = path.join(dir, `src${i}.f64`);
          await fs.writeFile(file, Buffer.from(j.src.values.buffer, j.src.values.byteOffset, j.src.values.byteLength));
          src = { path: file, width: j.src.width, height: j.src.height, gt: gt(j.src.affine), crs: j.src.crs, nodata: j.src.nodata ?? null };
        }
        return {
          src,
          dst: { path: path.join(dir, `dst${i}.f64`), width: j.dst.width, height: j.dst.height, gt: gt(j.dst.affine), crs: j.dst.crs },
          alg: j.alg,
        };
      }),
    );
    const manifest = path.join(dir, 'jobs.json');
    await fs.writeFile(manifest, JSON.stringify({ jobs: spec }));
    await run(gdalPython, [script, manifest]);
    // Awaited here: returning the pending reads let `finally` delete the directory under them.
    return await Promise.all(
      spec.map(async (s) => {
        const b = await fs.readFile(s.dst.path);
        return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      }),
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
