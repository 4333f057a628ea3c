/** Statistics shared by the benchmarks. */

/** Median of `xs`: the mean of the two middle values for an even count, NaN for none. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
