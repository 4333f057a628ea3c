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
