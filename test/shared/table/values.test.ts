/**
 * Ingest's number printing: every float32 prints as the shortest decimal that reads back to the same
 * float32 (checked against a brute-force search over precisions, on seeded random floats of every
 * magnitude), so `0.1` comes back as `0.1` and never as `0.10000000149011612`.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { formatFloat32 } from '../../../shared/table/values.js';
import { rng } from './helpers.js';

test('formatFloat32 is the shortest round-tripping decimal (brute force over 100k seeded floats)', () => {
  const r = rng(32);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < 100000; i++) {
    // Half random bit patterns (every exponent, subnormals), half decimal-looking values.
    if (i % 2) u32[0] = Math.floor(r() * 2 ** 32);
    else f32[0] = Math.round((r() - 0.5) * 1e6) / 10 ** Math.floor(r() * 8);
    const v = f32[0];
    if (!Number.isFinite(v)) continue;
    const s = formatFloat32(v);
    assert.equal(Math.fround(Number(s)), v, `${s} reads back as ${v}`);
    let p = 1;
    while (Math.fround(Number(v.toPrecision(p))) !== v) p++;
    assert.ok(
      s.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length <= p,
      `${s} for ${v} is longer than ${p} digits`,
    );
  }
  assert.equal(formatFloat32(Math.fround(0.1)), '0.1');
  assert.equal(formatFloat32(-0), '0');
  assert.equal(formatFloat32(16777216), '16777216');
});
