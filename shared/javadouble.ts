/**
 * Formats doubles exactly as Java's `Double.toString` (JDK 19+: shortest round-trip digits), which is
 * how Earth Engine's mixer prints its affine (docs/semantics.md §6): always a decimal point (`0.0`, `10.0`), and
 * scientific form `d.dddE-n` below 1e-3 and at or above 1e7 in magnitude.
 */
export function javaDouble(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (d === 0) return Object.is(d, -0) ? '-0.0' : '0.0';
  const sign = d < 0 ? '-' : '';
  const a = Math.abs(d);
  // toExponential() with no argument gives the shortest digits that round-trip (closest to the
  // value when several are shortest), which is Java's choice too, except for the case below.
  const [mant, expStr] = a.toExponential().split('e');
  let exp = Number(expStr);
  let digits = mant.replace('.', '');
  if (digits.length === 1 && a < MIN_NORMAL) [digits, exp] = javaTwoDigits(a, digits, exp);
  if (a >= 1e-3 && a < 1e7) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1) || '0';
      return `${sign}${intPart}.${frac}`;
    }
    return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  }
  const frac = digits.slice(1) || '0';
  return `${sign}${digits[0]}.${frac}E${exp}`;
}

const MIN_NORMAL = 2.2250738585072014e-308;

/**
 * Java's one deviation from "shortest": when a single digit suffices, it picks the decimal of one
 * *or two* digits closest to the value (JDK 19 `Double.toString` spec), so `Double.MIN_VALUE` prints
 * `4.9E-324` where JavaScript prints `5e-324`. Only subnormals are imprecise enough for a two-digit
 * decimal to round-trip and be closer than the one-digit one. Compared exactly with BigInt:
 * a subnormal is m·2^-1074 and a candidate c·10^q (q < 0), so compare |c·2^1074 − m·10^-q|.
 */
function javaTwoDigits(a: number, digit: string, exp: number): [string, number] {
  const m = BigInt(Math.round(a / 2 ** -1074)); // exact: subnormals are integer multiples of 2^-1074
  // Distance of c·10^q from the value, scaled by 2^1074·10^(exp+2) to stay integral (q ≥ exp-2).
  const dist = (c: bigint, q: number) => {
    const v = c * 2n ** 1074n * 10n ** BigInt(q - exp + 2) - m * 10n ** BigInt(-exp + 2);
    return v < 0n ? -v : v;
  };
  let best = { c: BigInt(digit), q: exp };
  let bestDist = dist(best.c, best.q);
  // Two-digit decimals on both sides of d·10^exp: c·10^(exp-1) and, just below a power of ten, c·10^(exp-2).
  for (const q of [exp - 2, exp - 1]) {
    for (let c = 10n; c <= 99n; c++) {
      if (c % 10n === 0n || Number(`${c}e${q}`) !== a) continue; // must round-trip; c0 is a one-digit decimal
      const dc = dist(c, q);
      if (dc < bestDist || (dc === bestDist && c % 2n === 0n)) {
        best = { c, q };
        bestDist = dc;
      }
    }
  }
  const s = best.c.toString();
  return [s, best.q + s.length - 1];
}
