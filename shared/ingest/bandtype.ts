/**
 * The output sample type of an ingest (docs/semantics.md §7): Float32 if any feature is a float_list, else the
 * smallest integer type holding every value seen.
 */
import type { SampleType } from '../raster/types.js';

/** Running min/max over integer features. */
export class IntRange {
  min = Infinity;
  max = -Infinity;

  addBigInts(v: BigInt64Array): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < v.length; i++) {
      const x = Number(v[i]);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    this.min = lo;
    this.max = hi;
  }

  /** Widens the range to include [lo, hi] (e.g. [0, 255] for a bytes_list feature). */
  addRange(lo: number, hi: number): void {
    if (lo < this.min) this.min = lo;
    if (hi > this.max) this.max = hi;
  }
}

/**
 * Smallest integer type for [min, max]. Signed 8-bit is promoted to int16: GDAL before 3.7 reads
 * signed bytes as unsigned unless told otherwise, which would show users wrong values. Values
 * outside 32 bits become float64 (exact to 2^53; GeoTIFF readers rarely support 64-bit integers).
 */
export function smallestIntType(min: number, max: number): SampleType {
  if (!(min <= max)) return 'uint8'; // no values at all
  if (min >= 0) {
    if (max <= 0xff) return 'uint8';
    if (max <= 0xffff) return 'uint16';
    if (max <= 0xffffffff) return 'uint32';
    return 'float64';
  }
  if (min >= -0x8000 && max <= 0x7fff) return 'int16';
  if (min >= -0x80000000 && max <= 0x7fffffff) return 'int32';
  return 'float64';
}
