/**
 * Formats doubles exactly as Java's `Double.toString` (JDK 19+: shortest round-trip digits), which is
 * how Earth Engine's mixer prints its affine (SPEC §6): always a decimal point (`0.0`, `10.0`), and
 * scientific form `d.dddE-n` below 1e-3 and at or above 1e7 in magnitude.
 */
export function javaDouble(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (d === Infinity) return 'Infinity';
  if (d === -Infinity) return '-Infinity';
  if (d === 0) return Object.is(d, -0) ? '-0.0' : '0.0';
  const sign = d < 0 ? '-' : '';
  const a = Math.abs(d);
  // toExponential() with no argument gives the shortest digits that round-trip.
  const [mant, expStr] = a.toExponential().split('e');
  const exp = Number(expStr);
  const digits = mant.replace('.', '');
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
