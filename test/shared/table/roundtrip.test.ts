/**
 * Round trips over seeded random tables (issue 5): GeoJSON, NDJSON and CSV → export-table →
 * ingest-table gives back the original properties (numbers as their float32 values, booleans as 1/0,
 * missing stays missing) and the points; ingest's CSV reads back with Python's csv module. The
 * in-place Example writer is byte-identical to the reference encoder (`encodeExample`).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runTableExport } from '../../../shared/table/export.js';
import { ingestTable } from '../../../shared/table/ingest.js';
import { TableEncoder } from '../../../shared/table/encode.js';
import { encodeExample, type Feature } from '../../../shared/tfrecord/example.js';
import { needTensorFlow, python } from '../../support/oracles.js';
import { randomFloat, randomText, rng, tmp } from './helpers.js';

type Props = Record<string, unknown>;
interface Table {
  rows: { properties: Props; lonlat: [number, number] | null }[];
}

/** A random table: numeric, string, boolean and (GeoJSON only) array columns, with holes. */
function randomTable(seed: number, forCsv: boolean): Table {
  const r = rng(seed);
  const cols: { name: string; kind: 'num' | 'int' | 'str' | 'bool' | 'arr'; len: number }[] = [];
  const ncols = 2 + Math.floor(r() * 6);
  for (let c = 0; c < ncols; c++) {
    const kinds = forCsv ? (['num', 'int', 'str'] as const) : (['num', 'int', 'str', 'bool', 'arr'] as const);
    cols.push({ name: `p${c}_${randomText(r, 3).replace(/[^a-zA-Z]/g, '')}`, kind: kinds[Math.floor(r() * kinds.length)], len: 2 + Math.floor(r() * 4) });
  }
  const rows = Array.from({ length: 1 + Math.floor(r() * 60) }, () => {
    const properties: Props = {};
    for (const c of cols) {
      if (r() < 0.15) {
        if (!forCsv && r() < 0.5) properties[c.name] = null;
        continue;
      }
      properties[c.name] =
        c.kind === 'num'
          ? randomFloat(r)
          : c.kind === 'int'
            ? Math.floor((r() - 0.5) * 2e6)
            : c.kind === 'str'
              ? randomText(r)
              : c.kind === 'bool'
                ? r() < 0.5
                : Array.from({ length: c.len }, () => randomFloat(r));
    }
    return { properties, lonlat: r() < 0.1 ? null : ([r() * 360 - 180, r() * 180 - 90] as [number, number]) };
  });
  return { rows };
}

/** What ingest must give back for an exported value (docs/semantics.md §8): float32 numbers, booleans as 1/0. */
const expectValue = (v: unknown): unknown =>
  typeof v === 'number' ? Math.fround(v) : typeof v === 'boolean' ? (v ? 1 : 0) : Array.isArray(v) ? v.map(expectValue) : v;
/** Ingested numbers are shortest float32 decimals: compare them through float32. */
const asF32 = (v: unknown): unknown =>
  typeof v === 'number'
    ? Math.fround(v)
    : Array.isArray(v)
      ? v.map(asF32)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asF32(x)]))
        : v;

function expectedProps(p: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(p)) if (v !== null && v !== undefined) out[k] = expectValue(v);
  return out;
}

function writeInput(dir: string, t: Table, format: 'geojson' | 'ndjson' | 'csv'): string {
  const feats = t.rows.map((x) => ({ type: 'Feature', geometry: x.lonlat && { type: 'Point', coordinates: x.lonlat }, properties: x.properties }));
  if (format === 'geojson') {
    const file = path.join(dir, 'in.geojson');
    writeFileSync(file, JSON.stringify({ type: 'FeatureCollection', features: feats }, null, 1));
    return file;
  }
  if (format === 'ndjson') {
    const file = path.join(dir, 'in.geojsonl');
    writeFileSync(file, feats.map((f) => JSON.stringify(f)).join('\n'));
    return file;
  }
  const names = [...new Set(t.rows.flatMap((x) => Object.keys(x.properties)))];
  const q = (v: unknown) => (v === undefined ? '' : typeof v === 'string' ? `"${v.replace(/"/g, '""')}"` : String(v));
  const file = path.join(dir, 'in.csv');
  writeFileSync(file, [names.join(','), ...t.rows.map((x) => names.map((n) => q(x.properties[n])).join(','))].join('\n') + '\n');
  return file;
}

for (const format of ['geojson', 'ndjson', 'csv'] as const) {
  test(`round trip ${format} → export-table → ingest-table returns the original properties (seeded random tables)`, async () => {
    for (let seed = 1; seed <= 12; seed++) {
      const dir = tmp('rt');
      const table = randomTable(seed * 101 + format.length, format === 'csv');
      if (!table.rows.some((x) => Object.values(x.properties).some((v) => v !== null))) continue;
      const collection = writeInput(dir, table, format);
      const geometry = format === 'csv' ? undefined : 'lonlat';
      const s = await runTableExport({ collection, bucket: path.join(dir, 'out'), fileNamePrefix: 'rt', fileFormat: 'TFRecord', geometry });
      assert.equal(s.features, table.rows.length);
      const back = await ingestTable({ files: [s.file], out: path.join(dir, 'back.geojson') });
      assert.equal(back.features, table.rows.length);
      const fc = JSON.parse(readFileSync(back.file, 'utf8')) as { type: string; features: { geometry: { coordinates: number[] } | null; properties: Props }[] };
      assert.equal(fc.type, 'FeatureCollection');
      fc.features.forEach((f, i) => {
        const orig = table.rows[i];
        assert.deepEqual(asF32(f.properties), expectedProps(orig.properties), `seed ${seed} feature ${i}`);
        if (geometry)
          assert.deepEqual(f.geometry && asF32(f.geometry.coordinates), orig.lonlat && orig.lonlat.map(Math.fround), `seed ${seed} feature ${i} geometry`);
        else assert.equal(f.geometry, null);
      });
    }
  });
}

test('ingest-table CSV output reads back with Python csv: same cells as the GeoJSON output', async (t) => {
  if (!needTensorFlow(t)) return;
  const dir = tmp('rtcsv');
  const table = randomTable(777, false);
  const collection = writeInput(dir, table, 'ndjson');
  const s = await runTableExport({ collection, bucket: path.join(dir, 'out'), fileNamePrefix: 'x', geometry: 'lonlat' });
  const csv = await ingestTable({ files: [s.file, s.file], out: path.join(dir, 'back.csv') }); // two inputs: read in order
  assert.equal(csv.features, 2 * table.rows.length);
  const rows = JSON.parse(
    await python('import csv, json, sys\nprint(json.dumps(list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))))', [csv.file]),
  ) as Record<string, string>[];
  assert.equal(rows.length, 2 * table.rows.length);
  rows.forEach((row, j) => {
    const orig = table.rows[j % table.rows.length];
    const want = expectedProps(orig.properties);
    for (const [k, cell] of Object.entries(row)) {
      if (k === 'longitude' || k === 'latitude') {
        assert.equal(cell === '' ? null : Math.fround(Number(cell)), orig.lonlat ? Math.fround(orig.lonlat[k === 'longitude' ? 0 : 1]) : null);
        continue;
      }
      const w = want[k];
      if (w === undefined) assert.equal(cell, '', `row ${j} ${k}`);
      else if (typeof w === 'string') assert.equal(cell, w, `row ${j} ${k}`);
      else if (Array.isArray(w)) assert.deepEqual(asF32(JSON.parse(cell)), w, `row ${j} ${k}`);
      else assert.equal(Math.fround(Number(cell)), w, `row ${j} ${k}`);
    }
  });
});

test('the in-place Example writer is byte-identical to encodeExample', () => {
  for (let trial = 0; trial < 20; trial++) {
    const table = randomTable(trial, false);
    const selectors = trial % 3 === 0 ? [...new Set(table.rows.flatMap((x) => Object.keys(x.properties)))].reverse() : undefined;
    const enc = new TableEncoder({ file: 'x', selectors, geometry: trial % 2 ? 'lonlat' : 'wkt' });
    const order: string[] = selectors ? [...selectors] : [];
    table.rows.forEach((row, index) => {
      const geometry = row.lonlat && { type: 'Point', coordinates: row.lonlat };
      const got = enc.encode({ properties: row.properties, geometry, index, line: index + 1 });
      for (const k of Object.keys(row.properties)) if (!order.includes(k)) order.push(k);
      const feats: [string, Feature][] = [];
      for (const k of order) {
        const v = row.properties[k];
        if (v === null || v === undefined) continue;
        if (typeof v === 'string') feats.push([k, { kind: 'bytes_list', value: [Buffer.from(v)] }]);
        else feats.push([k, { kind: 'float_list', value: Float32Array.from([v].flat() as number[], (x) => Number(x)) }]);
      }
      if (geometry && trial % 2)
        feats.push(
          ['longitude', { kind: 'float_list', value: Float32Array.of(row.lonlat![0]) }],
          ['latitude', { kind: 'float_list', value: Float32Array.of(row.lonlat![1]) }],
        );
      if (geometry && !(trial % 2)) feats.push(['geometry', { kind: 'bytes_list', value: [Buffer.from(`POINT (${row.lonlat![0]} ${row.lonlat![1]})`)] }]);
      assert.deepEqual(got, encodeExample(feats), `trial ${trial} row ${index}`);
    });
  }
});
