/**
 * 2× overview reduction of one output row from two input rows (the second may be missing at the
 * bottom of an odd-height image; an odd width leaves a last column of one pixel).
 *
 * `average` (floats): mean of the valid pixels of each 2×2 block, where NaN and `nodata` are not
 * valid; a block with none gives `nodata` (or NaN). `nearest` (integers, e.g. class maps, where a
 * mean would invent classes): the block's top-left pixel, like GDAL's NEAREST.
 */
export type OverviewResampling = 'average' | 'nearest';

type Row = ArrayLike<number> & { [i: number]: number };

export function reduceRow(r0: Row, r1: Row | undefined, srcWidth: number, out: Row, outOffset: number, how: OverviewResampling, nodata?: number): void {
  const ow = Math.ceil(srcWidth / 2);
  if (how === 'nearest') {
    for (let x = 0; x < ow; x++) out[outOffset + x] = r0[2 * x];
    return;
  }
  const fill = nodata ?? NaN;
  const hasNodata = nodata !== undefined && !Number.isNaN(nodata);
  for (let x = 0; x < ow; x++) {
    const x0 = 2 * x;
    const pair = x0 + 1 < srcWidth;
    let sum = 0;
    let n = 0;
    // Inlined on purpose (hot loop over every pixel): v === v is false only for NaN.
    let v = r0[x0];
    if (v === v && !(hasNodata && v === nodata)) (sum += v), n++;
    if (pair) {
      v = r0[x0 + 1];
      if (v === v && !(hasNodata && v === nodata)) (sum += v), n++;
    }
    if (r1) {
      v = r1[x0];
      if (v === v && !(hasNodata && v === nodata)) (sum += v), n++;
      if (pair) {
        v = r1[x0 + 1];
        if (v === v && !(hasNodata && v === nodata)) (sum += v), n++;
      }
    }
    out[outOffset + x] = n ? sum / n : fill;
  }
}
