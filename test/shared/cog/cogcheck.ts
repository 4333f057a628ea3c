/**
 * Checks on written COGs shared by the tiff and ingest tests: GDAL's own COG validator
 * (validate_cloud_optimized_geotiff.py from python3-gdal, run with the system Python that has the
 * bindings) where it is installed, and overview facts from `gdalinfo -json`.
 */
import { existsSync } from 'node:fs';
import { run } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';

const VALIDATOR_PATHS = [
  '/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py',
  '/usr/share/doc/python3-gdal/examples/validate_cloud_optimized_geotiff.py',
];

let validator: { python: string; script: string } | null | undefined;

/** The validator and a Python that can import osgeo, or null. */
export async function findCogValidator(): Promise<{ python: string; script: string } | null> {
  if (validator !== undefined) return validator;
  validator = null;
  const script = VALIDATOR_PATHS.find((p) => existsSync(p));
  if (script) {
    for (const python of ['/usr/bin/python3', 'python3']) {
      const r = await run(python, ['-c', 'from osgeo import gdal'], { allowFail: true }).catch(() => undefined);
      if (r && r.code === 0) {
        validator = { python, script };
        break;
      }
    }
  }
  return validator;
}

/**
 * Runs GDAL's COG validator with the full check (tile leaders/trailers); returns its output, or
 * null (after a loud note) when python3-gdal is not installed. Throws when the file is not a valid COG.
 */
export async function validateCog(file: string): Promise<string | null> {
  const v = await findCogValidator();
  if (!v) {
    process.stderr.write(`\n*** NOTE: GDAL's COG validator (python3-gdal) is not installed; relying on gdalinfo LAYOUT=COG for ${file} ***\n`);
    return null;
  }
  const r = await run(v.python, [v.script, '--full-check=yes', file], { allowFail: true });
  const out = r.stdout.toString() + r.stderr;
  if (r.code !== 0 || !/is a valid cloud optimized GeoTIFF/.test(out)) throw new Error(`COG validator rejected ${file}:\n${out}`);
  return out;
}

/** Overview sizes and IMAGE_STRUCTURE metadata as GDAL reports them. */
export async function gdalStructure(file: string): Promise<{ overviews: [number, number][]; imageStructure: Record<string, string> }> {
  const info = JSON.parse((await run('gdalinfo', ['-json', file])).stdout.toString());
  const b = info.bands[0];
  return {
    overviews: (b.overviews ?? []).map((o: { size: [number, number] }) => o.size),
    imageStructure: info.metadata?.IMAGE_STRUCTURE ?? {},
  };
}

/** Seeded PRNG (mulberry32): reproducible random rasters. */
export const rng = mulberry32;
