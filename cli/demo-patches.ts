/**
 * The demo's patch step (`npm run demo`, step 5; docs/semantics.md §12): a few hundred labelled points
 * over the demo scene (water, vegetation, bare ground, from the scene itself), `geotfr export-patches`
 * around them, `geotfr inspect` of the result, and a contact sheet PNG of the first patches in false
 * colour (B8/B4/B3) with each label drawn in its corner and masked pixels in magenta.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { formatReport, inspectFiles } from '../shared/inspect.js';
import { encodePng } from '../shared/ingest/quicklook.js';
import { runPatchExport, type PatchExportSummary } from '../shared/patches/run.js';
import { decodeExample } from '../shared/tfrecord/example.js';
import { readRecordFile } from '../shared/tfrecord/record.js';

const LABELS = ['water', 'vegetation', 'bare'];
/** Label colours for the corner tag: blue, green, tan. */
const COLOURS: [number, number, number][] = [
  [40, 110, 255],
  [40, 200, 60],
  [210, 170, 110],
];
/** 3×5 bitmaps of the digits 0–9, one row of 3 bits per entry. */
const DIGITS = [
  '111101101101111',
  '010110010010111',
  '111001111100111',
  '111001111001111',
  '101101111001001',
  '111100111001111',
  '111100111101111',
  '111001001001001',
  '111101111101111',
  '111101111001111',
];

export interface DemoPatchesOptions {
  /** The demo scene (6 bands B2…B12, EPSG:32633, 10 m). */
  src: string;
  outDir: string;
  /** Scene size and georeferencing, to place points on pixels. */
  width: number;
  height: number;
  affine: [number, number, number, number, number, number];
  /** Per pixel: 0 water, 1 vegetation, 2 bare, -1 cloud (no point there). */
  classOf: (x: number, y: number) => number;
}

export async function demoPatches(o: DemoPatchesOptions): Promise<{ summary: PatchExportSummary; png: string }> {
  await fs.mkdir(o.outDir, { recursive: true });
  // Deterministic points: a scrambled walk over the scene, 100 per class, in EPSG:32633 coordinates.
  const per = [0, 0, 0];
  const features: object[] = [];
  const [a, , c, , e, f] = o.affine;
  for (let k = 0; features.length < 300 && k < 200000; k++) {
    const x = (k * 7919) % o.width,
      y = Math.floor((k * 104729) / o.width) % o.height;
    const cls = o.classOf(x, y);
    if (cls < 0 || per[cls]! >= 100) continue;
    per[cls]!++;
    features.push({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [c + a * (x + 0.5), f + e * (y + 0.5)] },
      properties: { label: cls, name: LABELS[cls] },
    });
  }
  const points = path.join(o.outDir, 'labels.geojson');
  await fs.writeFile(points, JSON.stringify({ type: 'FeatureCollection', crs: { type: 'name', properties: { name: 'EPSG:32633' } }, features }));
  const request = {
    image: o.src,
    points,
    properties: ['label', 'name'],
    kernelSize: [32, 32],
    defaultValue: -1,
    bucket: path.join(o.outDir, 'bucket'),
    fileNamePrefix: 'demo/train',
  };
  await fs.writeFile(path.join(o.outDir, 'request.json'), JSON.stringify(request, null, 2) + '\n');
  console.log(`geotfr export-patches ${path.join(o.outDir, 'request.json')}   (${features.length} labelled points, 32×32 patches)`);
  const summary = await runPatchExport(request, { progress: true });
  console.log(JSON.stringify({ ...summary, parseSpec: undefined }));
  console.log(`\nparse spec:\n${summary.parseSpec}`);
  console.log(`\ngeotfr inspect ${summary.shards.join(' ')}`);
  process.stdout.write(formatReport(await inspectFiles(summary.shards)));

  // Contact sheet: 8 × 3 patches (the first 8 of each label), each 32×32 scaled ×3, 4-px gutters.
  const K = 32,
    S = 3,
    G = 4,
    cols = 8,
    rows = 3;
  const cell = K * S + G;
  const W = cols * cell + G,
    H = rows * cell + G;
  const px = new Uint8Array(W * H * 3).fill(24);
  const placed = [0, 0, 0];
  for await (const r of readRecordFile(summary.shards[0]!)) {
    const ex = decodeExample(r.data);
    const label = (ex.get('label')!.value as Float32Array)[0]!;
    if (placed[label]! >= cols) continue;
    const ox = G + placed[label]! * cell,
      oy = G + label * cell;
    placed[label]!++;
    const ch = ['B8', 'B4', 'B3'].map((n) => ex.get(n)!.value as Float32Array);
    for (let y = 0; y < K * S; y++)
      for (let x = 0; x < K * S; x++) {
        const i = Math.floor(y / S) * K + Math.floor(x / S);
        const p = ((oy + y) * W + ox + x) * 3;
        if (ch[0]![i] === -1) px.set([255, 0, 255], p);
        else for (let k = 0; k < 3; k++) px[p + k] = Math.max(0, Math.min(255, Math.round((ch[k]![i]! / [0.7, 0.14, 0.14][k]!) * 255)));
      }
    // The label: a coloured tag with its digit in the top-left corner.
    for (let y = 0; y < 13; y++) for (let x = 0; x < 11; x++) px.set(COLOURS[label]!, ((oy + y) * W + ox + x) * 3);
    const glyph = DIGITS[label]!;
    for (let gy = 0; gy < 5; gy++)
      for (let gx = 0; gx < 3; gx++)
        if (glyph[gy * 3 + gx] === '1')
          for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) px.set([255, 255, 255], ((oy + 1 + gy * 2 + dy) * W + ox + 2 + gx * 2 + dx) * 3);
    if (placed.every((n) => n >= cols)) break;
  }
  const png = path.join(o.outDir, 'contact-sheet.png');
  await fs.writeFile(png, encodePng(W, H, px, 3));
  console.log(`\ncontact sheet (rows: ${LABELS.map((l, i) => `${i} = ${l}`).join(', ')}; false colour B8/B4/B3; masked = magenta): ${png}`);
  return { summary, png };
}
