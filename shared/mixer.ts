/**
 * The JSON "mixer" sidecar (docs/semantics.md §6): georeferencing of an export's patch grid, byte for byte as
 * Earth Engine writes it (2-space indent, inline arrays, Java doubles, no trailing newline).
 */
import * as z from 'zod';
import { GeotfrError } from './errors.js';
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

const posInt = z.number().int('expected a positive integer').positive('expected a positive integer');
const finite = z.number().refine(Number.isFinite, 'expected a finite number');

/** The mixer as a document the project reads (zod; the same rules as EE's writer, STYLE.md §5). */
export const mixerSchema = z
  .object(
    {
      projection: z.object({
        crs: z.string('expected a CRS string such as "EPSG:4326"').min(1, 'expected a CRS string such as "EPSG:4326"'),
        affine: z.object({
          doubleMatrix: z
            .tuple([finite, finite, finite, finite, finite, finite], 'expected 6 finite numbers')
            .refine((dm) => dm[0] !== 0 && dm[4] !== 0, 'pixel size must not be zero'),
        }),
      }),
      patchDimensions: z.tuple([posInt, posInt], 'expected [width, height] of positive integers'),
      patchesPerRow: posInt,
      totalPatches: posInt,
    },
    'expected a JSON object',
  )
  .refine((m) => m.totalPatches % m.patchesPerRow === 0, { path: ['totalPatches'], message: 'totalPatches is not a multiple of patchesPerRow' });

/** Parses and validates a mixer; errors name the file and the offending field. */
export function parseMixer(text: string, file?: string): Mixer {
  let j: unknown;
  checkJsonDepth(text, { file });
  try {
    j = JSON.parse(text);
  } catch (err) {
    throw new GeotfrError('BAD_INPUT', `mixer is not valid JSON (${(err as Error).message})`, { file });
  }
  const r = mixerSchema.safeParse(j);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    // The field is the named part of the path: an array element's problem is its array's.
    const named = issue.path.filter((k) => typeof k === 'string');
    const field = named.join('.') || '(root)';
    throw new GeotfrError('BAD_INPUT', `invalid mixer: ${issue.message}`, { file, field });
  }
  const m = r.data;
  return {
    projection: { crs: m.projection.crs, affine: { doubleMatrix: [...m.projection.affine.doubleMatrix] as Affine } },
    patchDimensions: [m.patchDimensions[0], m.patchDimensions[1]],
    patchesPerRow: m.patchesPerRow,
    totalPatches: m.totalPatches,
  };
}
