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
  const pairs = Math.floor(srcWidth / 2);
  let x = 0;
  if (r1 && !hasNodata) {
    // Full 2×2 blocks without a nodata value: the plain mean, unless a NaN makes the sum NaN, then
    // the general loop below for that block (same additions in the same order, so the same value).
    for (; x < pairs; x++) {
      const x0 = 2 * x;
      const sum = 0 + r0[x0] + r0[x0 + 1] + r1[x0] + r1[x0 + 1]; // 0 + first: as the general loop (-0 + -0 … would stay -0)
      if (sum === sum) out[outOffset + x] = sum / 4;
      else out[outOffset + x] = mean(r0, r1, x0, true, false, nodata, fill);
    }
  }
  for (; x < ow; x++) {
    const x0 = 2 * x;
    out[outOffset + x] = mean(r0, r1, x0, x0 + 1 < srcWidth, hasNodata, nodata, fill);
  }
}

/** Mean of the valid pixels of the block at `x0` (two columns when `pair`, two rows when `r1`), else `fill`. */
function mean(r0: Row, r1: Row | undefined, x0: number, pair: boolean, hasNodata: boolean, nodata: number | undefined, fill: number): number {
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
  return n ? sum / n : fill;
}
