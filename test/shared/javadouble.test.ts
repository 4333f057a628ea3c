/** Java `Double.toString` formatting (docs/semantics.md §6): known Java outputs, and round trip on random doubles. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { javaDouble } from '../../shared/javadouble.js';
import { mulberry32 } from '../support/random.js';

// Java (JDK 19+) `Double.toString` outputs. Those marked EE appear in real Earth Engine mixers.
const KNOWN: [number, string][] = [
  [8.983152841195215e-4, '8.983152841195215E-4'], // EE: EPSG:4326 at ~100 m
  [0.050000000000004256, '0.050000000000004256'], // EE fixture
  [-105.00000000000894, '-105.00000000000894'], // EE fixture
  [20.0000000000017, '20.0000000000017'], // EE fixture
  [1e7, '1.0E7'],
  [9999999, '9999999.0'],
  [12345678, '1.2345678E7'],
  [0.001, '0.001'],
  [0.0005, '5.0E-4'],
  [1e-4, '1.0E-4'],
  [1e-7, '1.0E-7'],
  [100, '100.0'],
  [-100, '-100.0'],
  [0, '0.0'],
  [-0, '-0.0'],
  [1, '1.0'],
  [10, '10.0'],
  [0.1, '0.1'],
  [0.1 + 0.2, '0.30000000000000004'],
  [1 / 3, '0.3333333333333333'],
  [2 / 3, '0.6666666666666666'],
  [123456.789, '123456.789'],
  [Math.PI, '3.141592653589793'],
  [Math.E, '2.718281828459045'],
  [1e21, '1.0E21'],
  [1e23, '1.0E23'],
  [2e23, '2.0E23'], // JDK 19+ (JDK-4511638); older JDKs printed 1.9999999999999998E23
  [9.223372036854776e18, '9.223372036854776E18'], // (double) Long.MAX_VALUE
  [Number.MAX_VALUE, '1.7976931348623157E308'],
  [2.2250738585072014e-308, '2.2250738585072014E-308'], // Double.MIN_NORMAL
  [5e-324, '4.9E-324'], // Double.MIN_VALUE: Java's two-digit rule, JavaScript prints 5e-324
  [-5e-324, '-4.9E-324'],
  [30, '30.0'],
  [1234567.125, '1234567.125'],
  [NaN, 'NaN'],
  [Infinity, 'Infinity'],
  [-Infinity, '-Infinity'],
];

test('javaDouble matches known Java Double.toString outputs', () => {
  for (const [x, s] of KNOWN) assert.equal(javaDouble(x), s, `javaDouble(${x})`);
});

/** Seeded uint32 draws (exact: mulberry32's floats are multiples of 2^-32). */
function rng(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() * 4294967296;
}

test('javaDouble: Number(javaDouble(x)) === x, Java layout and shortest digits for 200,000 random doubles (seed 31)', () => {
  const next = rng(31);
  const dv = new DataView(new ArrayBuffer(8));
  let plain = 0;
  let sci = 0;
  for (let i = 0; i < 200_000; i++) {
    // Half random bit patterns (every exponent, subnormals), half "map-like" values (pixel sizes, coordinates).
    let x: number;
    if (i % 2) {
      dv.setUint32(0, next());
      dv.setUint32(4, next());
      x = dv.getFloat64(0);
      if (!Number.isFinite(x)) continue;
    } else x = (next() / 2 ** 32 - 0.5) * 10 ** ((next() % 20) - 8);
    const s = javaDouble(x);
    assert.ok(Object.is(Number(s), x), `${x} -> ${s} does not round-trip`);
    const m = /^-?(\d+)\.(\d+)(?:E(-?\d+))?$/.exec(s);
    assert.ok(m, `${x} -> ${s}: not Java's layout`);
    const a = Math.abs(x);
    const scientific = m[3] !== undefined;
    assert.equal(scientific, a !== 0 && (a < 1e-3 || a >= 1e7), `${x} -> ${s}: plain only in [1e-3, 1e7)`);
    if (scientific) {
      sci++;
      assert.equal(m[1].length, 1, `${s}: one digit before the point`);
      assert.ok(m[2] === '0' || !m[2].endsWith('0'), `${s}: no trailing zeros`);
    } else plain++;
    // Shortest digits: the same significant digits as JavaScript's shortest form (Java's only
    // deviation, the one-or-two-digit rule, concerns subnormals).
    if (a >= 2.2250738585072014e-308) {
      const jsDigits = a.toExponential().split('e')[0].replace('.', '');
      const javaDigits = (m[1] + m[2]).replace(/^0+/, '').replace(/0+$/, '') || '0';
      assert.equal(javaDigits, jsDigits.replace(/0+$/, ''), `${x} -> ${s}: not the shortest digits`);
    }
  }
  assert.ok(plain > 1000 && sci > 1000, 'both layouts exercised');
});
