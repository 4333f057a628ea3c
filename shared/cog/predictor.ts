/**
 * TIFF predictors applied before DEFLATE, exactly as libtiff's encoders (tif_predict.c) so that
 * GDAL and every libtiff-based reader undo them:
 * - 2 (horizontal differencing) for integer samples: per row, each sample minus the same
 *   sample of the previous pixel, wrapping in the sample type;
 * - 3 (floating point, Adobe TN3) for float samples: per row, bytes split into planes from the most
 *   significant byte to the least, then byte-wise differencing with a stride of samples-per-pixel.
 */

export type IntArray = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array;

/** Predictor 2 in place over a tile of `rows` rows of `rowSamples` samples, `spp` samples per pixel. */
export function horizontalDiff(data: IntArray, rows: number, rowSamples: number, spp: number): void {
  for (let r = 0; r < rows; r++) {
    const start = r * rowSamples;
    // Back to front so each difference uses the original left neighbour; typed-array stores wrap.
    for (let i = start + rowSamples - 1; i >= start + spp; i--) data[i] = data[i] - data[i - spp];
  }
}

/**
 * Predictor 3 over a tile of float samples (`bytesPerSample` 4 or 8), returning the predicted bytes.
 * `src` holds the samples' little-endian bytes; `out` (same length) receives the result.
 */
export function floatingPointDiff(src: Uint8Array, rows: number, rowSamples: number, spp: number, bytesPerSample: number, out: Uint8Array): void {
  const rowBytes = rowSamples * bytesPerSample;
  for (let r = 0; r < rows; r++) {
    const base = r * rowBytes;
    // Byte planes: plane 0 holds the most significant byte of every sample (big-endian order).
    for (let b = 0; b < bytesPerSample; b++) {
      const plane = base + (bytesPerSample - 1 - b) * rowSamples;
      let s = base + b;
      for (let i = 0; i < rowSamples; i++, s += bytesPerSample) out[plane + i] = src[s];
    }
    for (let i = base + rowBytes - 1; i >= base + spp; i--) out[i] = (out[i] - out[i - spp]) & 0xff;
  }
}
