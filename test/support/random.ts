/**
 * Seeded randomness for property tests: mulberry32, small, fast and good enough for test vectors.
 * One implementation for every test, so a seed printed by a failing test reproduces it anywhere.
 */

/** A generator of floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` seeded random bytes (the low byte of each 32-bit draw). */
export function randomBytes(seed: number, n: number): Buffer {
  const next = mulberry32(seed);
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 4294967296) & 0xff;
  return out;
}

/** Ranges to draw test samples of each type from: the full range for integers, wide but finite for floats. */
export const SAMPLE_RANGES = {
  uint8: [0, 255],
  int8: [-128, 127],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
  float32: [-1e6, 1e6],
  float64: [-1e12, 1e12],
} as const satisfies Record<string, readonly [number, number]>;
