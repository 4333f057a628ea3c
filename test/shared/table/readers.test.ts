/**
 * The streaming readers (issue 5): CSV against Python's csv module, FeatureCollection and NDJSON
 * against JSON.parse, each fed in random chunk sizes (down to one character) so every state of the
 * scanners meets a chunk boundary; malformed input reports the line and column where it breaks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { parseCsv, readCsv } from '../../../shared/table/csv.js';
import { readFeatureCollection } from '../../../shared/table/geojson.js';
import { readNdjson } from '../../../shared/table/ndjson.js';
import { findJsonError, lineColumn } from '../../../shared/table/jsonerror.js';
import { GeotfrError } from '../../../shared/errors.js';
import { needTensorFlow, python } from '../../support/oracles.js';
import { randomFloat, randomText, rng } from './helpers.js';

/** Splits text into random chunks (1..maxChunk characters). */
function* chunks(text: string, r: () => number, maxChunk: number): Generator<string> {
  for (let i = 0; i < text.length; ) {
    const n = 1 + Math.floor(r() * maxChunk);
    yield text.slice(i, i + n);
    i += n;
  }
}
async function* toAsync<T>(it: Iterable<T>): AsyncGenerator<T> {
  yield* it;
}
/** Collects a reader's batches into one list (checking that no batch is empty). */
async function collect<T>(g: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of g) {
    assert.ok(batch.length > 0, 'readers never yield an empty batch');
    out.push(...batch);
  }
  return out;
}
async function failure(p: Promise<unknown>): Promise<GeotfrError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof GeotfrError, `expected a GeotfrError, got ${e}`);
    return e;
  }
  assert.fail('expected an error');
}

function randomCsv(r: () => number, rows: number, cols: number, crlf: boolean): string {
  const q = (s: string) => (/[",\r\n]/.test(s) || r() < 0.2 ? `"${s.replace(/"/g, '""')}"` : s);
  const eol = crlf ? '\r\n' : '\n';
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const cells: string[] = [];
    for (let k = 0; k < cols; k++) {
      const kind = r();
      cells.push(kind < 0.3 ? String(randomFloat(r)) : kind < 0.4 ? '' : q(randomText(r).replace(/\r/g, '')));
    }
    lines.push(cells.join(','));
  }
  return lines.join(eol) + (r() < 0.5 ? eol : '');
}

test('CSV: records match Python csv module, whatever the chunking (quotes, doubled quotes, embedded newlines, CRLF)', async (t) => {
  if (!needTensorFlow(t)) return; // the TensorFlow interpreter is the Python we have
  const r = rng(42);
  for (let trial = 0; trial < 6; trial++) {
    const text = randomCsv(r, 40, 1 + Math.floor(r() * 5), trial % 2 === 1);
    const expected = JSON.parse(
      await python('import csv, io, json, sys\nprint(json.dumps([r for r in csv.reader(io.StringIO(sys.stdin.read(), newline=""))]))', [], text),
    ) as string[][];
    for (const maxChunk of [1, 3, 17, 1 << 16]) {
      const got = await collect(parseCsv(toAsync(chunks(text, r, maxChunk)), 'x.csv'));
      assert.deepEqual(
        got.map((g) => g.cells),
        expected,
        `trial ${trial}, chunks of ≤${maxChunk}`,
      );
    }
  }
});

test('CSV: cells are typed (numbers, strings, empty = missing) and record lines count embedded newlines', async () => {
  const text = 'a,b,c\n1,"x\ny",\n-2.5e3,007,"1"\n';
  const rows = await collect(readCsv(toAsync([text]), 'x.csv'));
  assert.deepEqual(
    rows.map((x) => [x.properties, x.line, x.index]),
    [
      [{ a: 1, b: 'x\ny' }, 2, 0],
      [{ a: -2500, b: 7, c: 1 }, 4, 1],
    ],
  );
});

test('CSV: malformed input names line and column', async () => {
  const cases: [string, RegExp][] = [
    ['a,b\n1,2\n3,"4\n', /line 3, column 3: unterminated quoted field/],
    ['a,b\n1,"2"x\n', /line 2, column 6: expected ',' or the end of the line after the closing quote/],
    ['a,b\n1,2"\n', /line 2, column 4: a quote inside an unquoted field/],
    ['a,b\n1,2\n3\n', /line 3: 1 fields, but the header has 2/],
    ['a,a\n1,2\n', /names column "a" twice/],
  ];
  for (const [text, re] of cases) {
    for (const size of [1, 2, 1000]) {
      const e = await failure(collect(readCsv(toAsync(chunks(text, rng(1), size)), 'bad.csv')));
      assert.match(e.message, re, JSON.stringify(text));
      assert.match(e.message, /^bad\.csv/);
      assert.equal(e.code, 'BAD_INPUT');
    }
  }
});

function randomFeature(r: () => number, i: number): unknown {
  return {
    type: 'Feature',
    id: i,
    geometry: r() < 0.2 ? null : { type: 'Point', coordinates: [randomFloat(r), randomFloat(r)] },
    properties: { s: randomText(r), n: randomFloat(r), a: [randomFloat(r), [randomText(r)]], o: { '}': '{', q: '"\\' }, z: null },
  };
}

test('FeatureCollection: streamed features equal JSON.parse of the whole, whatever the chunking and member order', async () => {
  const r = rng(9);
  for (let trial = 0; trial < 8; trial++) {
    const features = Array.from({ length: 30 }, (_, i) => randomFeature(r, i));
    const doc =
      trial % 2 ? { features, type: 'FeatureCollection', bbox: [1, 2, 3, 4] } : { type: 'FeatureCollection', name: 'x{"]', crs: { type: 'name' }, features };
    const text = JSON.stringify(doc, null, trial % 3 === 0 ? undefined : 2);
    for (const maxChunk of [1, 5, 64, 1 << 20]) {
      const rows = await collect(readFeatureCollection(toAsync(chunks(text, r, maxChunk)), 'fc.geojson'));
      assert.equal(rows.length, features.length);
      rows.forEach((row, i) => {
        const f = features[i] as { properties: unknown; geometry: unknown };
        assert.deepEqual(row.properties, f.properties);
        assert.deepEqual(row.geometry, f.geometry);
        assert.equal(row.index, i);
        // The reported line is where the feature's '{' is.
        const at = text.indexOf('"id":' + (text.includes('"id": ') ? ' ' : '') + i + ',');
        const open = text.lastIndexOf('{', text.lastIndexOf('"type"', at));
        assert.equal(row.line, lineColumn(text, open).line, `trial ${trial} feature ${i}`);
      });
    }
  }
});

test('FeatureCollection and NDJSON: a syntax error is reported at its line and column', async () => {
  const r = rng(3);
  const features = Array.from({ length: 12 }, (_, i) => JSON.stringify(randomFeature(r, i)));
  for (const [k, broken] of [
    [4, (s: string) => s.replace('"properties":', '"properties"')],
    [7, (s: string) => s.replace(/,"n":/, ',"n":,')],
    [11, (s: string) => s.slice(0, -1)],
  ] as const) {
    const lines = features.slice();
    lines[k] = broken(lines[k]);
    // NDJSON: one feature per line.
    const nd = lines.join('\n') + '\n';
    const err = findJsonError(lines[k])!;
    assert.ok(err, 'the validator finds the break');
    const e1 = await failure(collect(readNdjson(toAsync(chunks(nd, r, 50)), 'f.geojsonl')));
    assert.match(e1.message, new RegExp(`line ${k + 1}, column ${err.index + 1}:`), e1.message);
    // FeatureCollection, pretty-ish: header line, then one feature per line.
    const fc = '{"type": "FeatureCollection",\n"features": [\n' + lines.join(',\n') + '\n]}\n';
    // Where a whole-document parse breaks (for a truncated feature that is the next token, on the next line).
    const at = lineColumn(fc, findJsonError(fc)!.index);
    if (k !== 11) assert.deepEqual(at, lineColumn(fc, fc.indexOf(lines[k]) + err.index));
    const e2 = await failure(collect(readFeatureCollection(toAsync(chunks(fc, r, 50)), 'f.geojson')));
    assert.match(e2.message, new RegExp(`line ${at.line}, column ${at.column}:`), e2.message);
    assert.equal(e2.code, 'BAD_INPUT');
  }
  // JSON.parse's own verdict agrees with the validator on what is valid.
  for (const s of features) assert.equal(findJsonError(s), undefined);
  const e3 = await failure(collect(readFeatureCollection(toAsync(['{"type":"Feature","properties":{}}']), 'one.geojson')));
  assert.match(e3.message, /expected a FeatureCollection, found "type": "Feature"/);
  const e4 = await failure(collect(readNdjson(toAsync(['{"type":"Feature","properties":{}}\n[1]\n']), 'x.geojsonl')));
  assert.match(e4.message, /feature 1 \(line 2\): expected a GeoJSON Feature object, found an array/);
});
