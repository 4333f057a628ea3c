/**
 * The JSON "mixer" sidecar (docs/semantics.md §6): georeferencing of an export's patch grid, byte for byte as
 * Earth Engine writes it (2-space indent, inline arrays, Java doubles, no trailing newline).
 */
import { GeotfrError, type ErrorContext } from './errors.js';
import { javaDouble } from './javadouble.js';
import { checkJsonDepth } from './limits.js';

export type Affine = [xScale: number, xShear: number, xTranslation: number, yShear: number, yScale: number, yTranslation: number];

export interface Mixer {
  projection: { crs: string; affine: { doubleMatrix: Affine } };
  patchDimensions: [width: number, height: number];
  patchesPerRow: number;
  totalPatches: number;
}

/** Serializes a mixer exactly as Earth Engine does. */
export function formatMixer(m: Mixer): string {
  const dm = m.projection.affine.doubleMatrix.map(javaDouble).join(', ');
  return [
    '{',
    '  "projection": {',
    `    "crs": ${JSON.stringify(m.projection.crs)},`,
    '    "affine": {',
    `      "doubleMatrix": [${dm}]`,
    '    }',
    '  },',
    `  "patchDimensions": [${m.patchDimensions[0]}, ${m.patchDimensions[1]}],`,
    `  "patchesPerRow": ${m.patchesPerRow},`,
    `  "totalPatches": ${m.totalPatches}`,
    '}',
  ].join('\n');
}

/** A positive integer (JSON validation). */
export const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** Parses and validates a mixer; errors name the file and the offending field. */
export function parseMixer(text: string, file?: string): Mixer {
  const ctx = (field?: string): ErrorContext => ({ file, field });
  let j: any;
  checkJsonDepth(text, { file });
  try {
    j = JSON.parse(text);
  } catch (err) {
    throw new GeotfrError('BAD_INPUT', `mixer is not valid JSON (${(err as Error).message})`, ctx());
  }
  const bad = (field: string, why: string): never => {
    throw new GeotfrError('BAD_INPUT', `invalid mixer: ${why}`, ctx(field));
  };
  if (!j || typeof j !== 'object' || Array.isArray(j)) bad('(root)', 'expected a JSON object');
  const crs = j.projection?.crs;
  if (typeof crs !== 'string' || !crs) bad('projection.crs', 'expected a CRS string such as "EPSG:4326"');
  const dm = j.projection?.affine?.doubleMatrix;
  if (!Array.isArray(dm) || dm.length !== 6 || !dm.every((x: unknown) => typeof x === 'number' && Number.isFinite(x)))
    bad('projection.affine.doubleMatrix', 'expected 6 finite numbers');
  if (dm[0] === 0 || dm[4] === 0) bad('projection.affine.doubleMatrix', 'pixel size must not be zero');
  const pd = j.patchDimensions;
  if (!Array.isArray(pd) || pd.length !== 2 || !pd.every(isPosInt)) bad('patchDimensions', 'expected [width, height] of positive integers');
  if (!isPosInt(j.patchesPerRow)) bad('patchesPerRow', `expected a positive integer, got ${JSON.stringify(j.patchesPerRow)}`);
  if (!isPosInt(j.totalPatches)) bad('totalPatches', `expected a positive integer, got ${JSON.stringify(j.totalPatches)}`);
  if (j.totalPatches % j.patchesPerRow !== 0)
    bad('totalPatches', `${j.totalPatches} is not a multiple of patchesPerRow ${j.patchesPerRow}`);
  return {
    projection: { crs, affine: { doubleMatrix: dm as Affine } },
    patchDimensions: [pd[0], pd[1]],
    patchesPerRow: j.patchesPerRow,
    totalPatches: j.totalPatches,
  };
}
