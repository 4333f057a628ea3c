/**
 * Output features of an export (docs/semantics.md §4): which feature each band becomes, its value type, its depth
 * and the masked-pixel default converted to the band's type. Decided once at planning time and
 * carried in the plan, so every worker encodes the same way.
 */
import { GeotfrError } from '../errors.js';
import type { BandInfo, SampleType } from '../raster/types.js';
import type { FormatOptions } from './request.js';

export type ValueKind = 'float' | 'int64' | 'bytes';

export interface OutBand {
  name: string;
  type: SampleType;
  /** Values per pixel in the source (1 = scalar band). */
  sourceDepth: number;
  /** Values per pixel in the output: `tensorDepths[name]` for array bands, else 1. */
  depth: number;
  /** True for array bands (built from several source bands, or listed in tensorDepths). */
  array: boolean;
  kind: ValueKind;
  /** `defaultValue` as this band stores it: truncated toward zero and clamped for integer types (docs/semantics.md §4). */
  fill: number;
}

export interface FeatureLayout {
  bands: OutBand[];
  /** collapseBands: the single feature's kind (promotion bytes → int64 → float, docs/semantics.md §4). */
  collapsedKind: ValueKind;
}

const INT_RANGE: Partial<Record<SampleType, [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
};

/** Range of an integer sample type, or undefined for floats. */
export function intRange(type: SampleType): [number, number] | undefined {
  return INT_RANGE[type];
}

/** `defaultValue` converted to a band type: fraction dropped, then clamped (uint8 with 300 → 255; int16 with -3.7 → -3). */
export function fillFor(type: SampleType, defaultValue: number): number {
  const r = INT_RANGE[type];
  if (!r) return type === 'float32' ? Math.fround(defaultValue) : defaultValue;
  return Math.min(r[1], Math.max(r[0], Math.trunc(defaultValue)));
}

function nativeKind(type: SampleType): ValueKind {
  if (type === 'uint8' || type === 'int8') return 'bytes';
  if (INT_RANGE[type]) return 'int64';
  return 'float';
}

const RANK: Record<ValueKind, number> = { bytes: 0, int64: 1, float: 2 };

/** Builds the feature layout, checking tensorDepths against the image's bands. */
export function makeLayout(bands: BandInfo[], fo: FormatOptions): FeatureLayout {
  const names = new Set(bands.map((b) => b.name));
  for (const name of Object.keys(fo.tensorDepths))
    if (!names.has(name))
      throw new GeotfrError('BAD_REQUEST', `tensorDepths names ${JSON.stringify(name)}, which is not a band of the image (bands: ${[...names].join(', ')})`, {
        field: `formatOptions.tensorDepths.${name}`,
      });
  const out = bands.map((b): OutBand => {
    const td = fo.tensorDepths[b.name];
    // tensorDepths applies to array bands only (EE: "a mapping from array band names to depths"): a
    // depth on a scalar band would silently pad it into a D-deep feature.
    if (td !== undefined && b.depth === 1)
      throw new GeotfrError(
        'BAD_REQUEST',
        `tensorDepths names ${JSON.stringify(b.name)}, which is not an array band (one value per pixel); array bands are built with "bands": [i, j, …] (docs/semantics.md §4)`,
        { field: `formatOptions.tensorDepths.${b.name}` },
      );
    const array = b.depth > 1;
    if (array && td === undefined)
      throw new GeotfrError(
        'BAD_REQUEST',
        `array band ${JSON.stringify(b.name)} (${b.depth} values per pixel) needs an entry in tensorDepths (docs/semantics.md §4)`,
        {
          field: 'formatOptions.tensorDepths',
        },
      );
    const kind = fo.bandTypes === 'native' ? nativeKind(b.type) : 'float';
    return { name: b.name, type: b.type, sourceDepth: b.depth, depth: array ? td! : 1, array, kind, fill: fillFor(b.type, fo.defaultValue) };
  });
  let collapsedKind: ValueKind = 'bytes';
  for (const b of out) if (RANK[b.kind] > RANK[collapsedKind]) collapsedKind = b.kind;
  return { bands: out, collapsedKind };
}
