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

const HIGH_BITS = 0x80808080 | 0;
const LOW_BITS = 0x7f7f7f7f;

/**
 * Predictor 3 for float32 fused with pixel interleaving (the hot path of prediction ingest), four
 * bytes at a time: same bytes as `floatingPointDiff` over the interleaved tile, one pass over the
 * samples and no intermediate tile.
 *
 * Predictor 3 subtracts from each byte of a row's byte planes the byte `nb` positions earlier. In
 * a plane that byte belongs to the same band's previous pixel, so the four differences of a sample
 * are one byte-wise (SWAR) subtraction of its neighbour's 32 bits; only a plane's first pixel takes
 * its byte from the previous plane's last pixel, i.e. from the last sample shifted down one byte.
 * The differences of a row go into `diff` (interleaved, one word per sample), then a 4×4 byte
 * transpose writes them to the four planes, most significant byte first, as whole words.
 *
 * `lanes[b]` are the bands' samples as 32-bit words, `width` wide; the tile starts at column `x0`
 * and holds `w` columns and `rows` rows of real pixels, the rest of the `ts`×`ts` tile is zero.
 * `out` (ts·ts·nb words) is written entirely; `diff` is scratch of ts·nb words.
 */
export function float32PredictedTile(
  lanes: Uint32Array[],
  width: number,
  x0: number,
  w: number,
  rows: number,
  ts: number,
  out: Uint32Array,
  diff: Uint32Array,
): void {
  const nb = lanes.length;
  const rowSamples = ts * nb; // a multiple of 4: the tile size is a multiple of 16
  const q = rowSamples >>> 2;
  for (let y = 0; y < rows; y++) {
    for (let b = 0; b < nb; b++) {
      const src = lanes[b];
      const s0 = y * width + x0;
      let prev = src[s0];
      const last = w === ts ? src[s0 + ts - 1] >>> 8 : 0; // padding is zero
      // Byte-wise a - b without borrows between bytes: ((a | H) - (b & ~H)) ^ ((a ^ ~b) & H).
      diff[b] = ((prev | HIGH_BITS) - (last & LOW_BITS)) ^ ((prev ^ ~last) & HIGH_BITS);
      let i = b + nb;
      for (let s = s0 + 1, end = s0 + w; s < end; s++, i += nb) {
        const v = src[s];
        diff[i] = ((v | HIGH_BITS) - (prev & LOW_BITS)) ^ ((v ^ ~prev) & HIGH_BITS);
        prev = v;
      }
      if (w < ts) {
        diff[i] = (HIGH_BITS - (prev & LOW_BITS)) ^ (~prev & HIGH_BITS); // 0 - the last real pixel
        for (i += nb; i < rowSamples; i += nb) diff[i] = 0;
      }
    }
    const o0 = y * rowSamples; // a row is rowSamples words: four planes of q words
    const o1 = o0 + q;
    const o2 = o1 + q;
    const o3 = o2 + q;
    for (let j = 0, k = 0; j < q; j++, k += 4) {
      const a = diff[k];
      const b = diff[k + 1];
      const c = diff[k + 2];
      const d = diff[k + 3];
      out[o0 + j] = (a >>> 24) | ((b >>> 16) & 0xff00) | ((c >>> 8) & 0xff0000) | (d & 0xff000000);
      out[o1 + j] = ((a >>> 16) & 0xff) | ((b >>> 8) & 0xff00) | (c & 0xff0000) | ((d << 8) & 0xff000000);
      out[o2 + j] = ((a >>> 8) & 0xff) | (b & 0xff00) | ((c << 8) & 0xff0000) | ((d << 16) & 0xff000000);
      out[o3 + j] = (a & 0xff) | ((b << 8) & 0xff00) | ((c << 16) & 0xff0000) | (d << 24);
    }
  }
  out.fill(0, rows * rowSamples);
}
