/**
 * CRC-32C (Castagnoli) and TFRecord's masked form.
 *
 * The native `@node-rs/crc32` runs at ~5.8 GB/s here (ECOSYSTEM.md); a slice-by-8 JS fallback keeps
 * geotfr working where the prebuilt binary is missing for the platform.
 */
import { createRequire } from 'node:module';
import { option } from '../options.js';

type Crc32c = (data: Uint8Array, initial?: number) => number;

const POLY = 0x82f63b78;
const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = [];
  for (let k = 0; k < 8; k++) t.push(new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[0][n];
    for (let k = 1; k < 8; k++) {
      c = t[0][c & 0xff] ^ (c >>> 8);
      t[k][n] = c >>> 0;
    }
  }
  return t;
})();

/** Pure-JS slice-by-8 CRC-32C. `initial` continues a running CRC (pass the previous result). */
export function crc32cJs(data: Uint8Array, initial = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let crc = ~initial >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = (crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    crc = t7[a & 0xff] ^ t6[(a >>> 8) & 0xff] ^ t5[(a >>> 16) & 0xff] ^ t4[a >>> 24] ^ t3[data[i + 4]] ^ t2[data[i + 5]] ^ t1[data[i + 6]] ^ t0[data[i + 7]];
  }
  for (; i < n; i++) crc = t0[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

function loadNative(): Crc32c | undefined {
  if (option('crc32c') === 'js') return undefined;
  try {
    const req = createRequire(import.meta.url);
    const mod = req('@node-rs/crc32') as { crc32c: (d: Uint8Array, init?: number) => number };
    return (d, init = 0) => mod.crc32c(d, init) >>> 0;
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** CRC-32C of `data`, continuing from `initial`. Uses the native implementation when present. */
export const crc32c: Crc32c = native ?? crc32cJs;
export const crc32cImplementation: 'native' | 'js' = native ? 'native' : 'js';

const MASK_DELTA = 0xa282ead8;

/** TFRecord's masked CRC: rotate right by 15 and add a constant (tensorflow/core/lib/hash/crc32c.h). */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

export function maskedCrc32c(data: Uint8Array): number {
  return maskCrc(crc32c(data));
}
