/** The mixer sidecar (docs/semantics.md §6): Earth Engine's bytes reproduced, round trips, and clear errors. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { formatMixer, parseMixer, type Mixer } from '../../shared/mixer.js';
import { GeotfrError } from '../../shared/errors.js';
import { eeRealDir, needEeFixtures } from '../support/oracles.js';
import { mulberry32 } from '../support/random.js';

const EE_MIXER = 'TEST_coeff_output_SIF_C_S_Amer-mixer.json';

test("Earth Engine's real mixer round-trips byte for byte", (t) => {
  if (!needEeFixtures(t)) return;
  const file = path.join(eeRealDir, EE_MIXER);
  const text = readFileSync(file, 'utf8');
  const m = parseMixer(text, file);
  assert.deepEqual(m, {
    projection: { crs: 'EPSG:4326', affine: { doubleMatrix: [0.050000000000004256, 0, -105.00000000000894, 0, -0.050000000000004256, 20.0000000000017] } },
    patchDimensions: [256, 256],
    patchesPerRow: 3,
    totalPatches: 15,
  });
  assert.equal(formatMixer(m), text);
  assert.ok(!text.endsWith('\n'));
});

const rng = mulberry32;

test('formatMixer/parseMixer round-trip random mixers; output is EE-layout JSON (seed 41)', () => {
  const next = rng(41);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const val = () => (next() < 0.2 ? 0 : (next() - 0.5) * 10 ** int(-6, 9));
  for (let i = 0; i < 2000; i++) {
    const ppr = int(1, 50);
    const m: Mixer = {
      projection: {
        crs: next() < 0.5 ? 'EPSG:4326' : `EPSG:${int(2000, 32760)}`,
        affine: { doubleMatrix: [val() || 1, val(), val(), val(), val() || -1, val()] },
      },
      patchDimensions: [int(1, 4096), int(1, 4096)],
      patchesPerRow: ppr,
      totalPatches: ppr * int(1, 50),
    };
    const text = formatMixer(m);
    assert.deepEqual(parseMixer(text), m);
    assert.deepEqual(JSON.parse(text), m, 'valid JSON with the same numbers');
    assert.equal(formatMixer(parseMixer(text)), text);
    const lines = text.split('\n');
    assert.equal(lines.length, 11);
    assert.match(lines[4], /^ {6}"doubleMatrix": \[-?\d+\.\d+(E-?\d+)?(, -?\d+\.\d+(E-?\d+)?){5}\]$/);
    assert.match(lines[7], /^ {2}"patchDimensions": \[\d+, \d+\],$/);
  }
});

test('parseMixer: invalid mixers are BAD_INPUT errors naming the file and field', () => {
  const good = JSON.parse(
    formatMixer({
      projection: { crs: 'EPSG:4326', affine: { doubleMatrix: [1, 0, 0, 0, -1, 0] } },
      patchDimensions: [2, 2],
      patchesPerRow: 2,
      totalPatches: 4,
    }),
  );
  const cases: [unknown, string][] = [
    ['{not json', '(root)'],
    [[], '(root)'],
    [{ ...good, projection: { ...good.projection, crs: '' } }, 'projection.crs'],
    [{ ...good, projection: { ...good.projection, affine: { doubleMatrix: [1, 0, 0, 0, -1] } } }, 'projection.affine.doubleMatrix'],
    [{ ...good, projection: { ...good.projection, affine: { doubleMatrix: [0, 0, 0, 0, -1, 0] } } }, 'projection.affine.doubleMatrix'],
    [{ ...good, patchDimensions: [2, 0] }, 'patchDimensions'],
    [{ ...good, patchesPerRow: 1.5 }, 'patchesPerRow'],
    [{ ...good, totalPatches: 0 }, 'totalPatches'],
    [{ ...good, totalPatches: 5 }, 'totalPatches'],
  ];
  for (const [input, field] of cases) {
    const text = typeof input === 'string' ? input : JSON.stringify(input);
    assert.throws(
      () => parseMixer(text, 'gs://b/x-mixer.json'),
      (e: unknown) =>
        e instanceof GeotfrError &&
        e.code === 'BAD_INPUT' &&
        e.message.startsWith('gs://b/x-mixer.json') &&
        (field === '(root)' && typeof input === 'string' ? true : e.context.field === field),
      `${text} -> ${field}`,
    );
  }
});
