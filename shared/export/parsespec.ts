/**
 * The TensorFlow parse spec of an image export, from its manifest (docs/semantics.md §4): what the
 * export summary prints and what `geotfr inspect` uses when it finds the manifest. The shapes come
 * from the export itself (tile size, band depths, collapseBands), never from a record's length.
 */
import type { ExportManifest } from './finalize.js';

export type SpecKind = 'float' | 'int64' | 'bytes';

/** One Example feature of an export: its value kind and its `tf.io.FixedLenFeature` shape. */
export interface SpecFeature {
  name: string;
  kind: SpecKind;
  shape: number[];
}

const DTYPE: Record<SpecKind, string> = { float: 'tf.float32', int64: 'tf.int64', bytes: 'tf.string' };

/** The kind a band is written as (docs/semantics.md §4 bandTypes). */
function kindOf(type: string, bandTypes: string | undefined): SpecKind {
  if (bandTypes !== 'native') return 'float';
  if (type === 'uint8' || type === 'int8') return 'bytes';
  return type === 'float32' || type === 'float64' ? 'float' : 'int64';
}

const RANK: Record<SpecKind, number> = { bytes: 0, int64: 1, float: 2 };

/**
 * The features of one Example record of an export, in record order; undefined for `sequenceData`
 * exports (whose records are per pixel, with one value per feature or step).
 */
export function exportFeatures(m: Pick<ExportManifest, 'bands' | 'tileDimensions' | 'formatOptions'>): SpecFeature[] | undefined {
  const fo = m.formatOptions;
  if (fo.sequenceData) return undefined;
  const [tw, th] = m.tileDimensions;
  // An 8-bit band in native mode is one string of raw bytes: a scalar tf.string to decode_raw.
  const shapeOf = (kind: SpecKind, depth: number, array: boolean): number[] => (kind === 'bytes' ? [] : array || depth > 1 ? [depth, th, tw] : [th, tw]);
  if (fo.collapseBands) {
    let kind: SpecKind = 'bytes';
    let channels = 0;
    for (const b of m.bands) {
      const k = kindOf(b.type, fo.bandTypes);
      if (RANK[k] > RANK[kind]) kind = k;
      channels += b.depth;
    }
    return [{ name: m.bands[0].name, kind, shape: shapeOf(kind, channels, true) }];
  }
  return m.bands.map((b) => {
    const kind = kindOf(b.type, fo.bandTypes);
    return { name: b.name, kind, shape: shapeOf(kind, b.depth, b.array ?? b.depth > 1) };
  });
}

function py(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** Python to read an export's shards, e.g. `ds = tf.data.TFRecordDataset(files, compression_type="GZIP")` and the spec. */
export function exportParseSpec(m: Pick<ExportManifest, 'bands' | 'tileDimensions' | 'formatOptions' | 'compressed'>): string {
  const open = `ds = tf.data.TFRecordDataset(files${m.compressed ? ', compression_type="GZIP"' : ''})`;
  const feats = exportFeatures(m);
  if (feats) {
    const entries = feats.map((f) => `    ${py(f.name)}: tf.io.FixedLenFeature([${f.shape.join(', ')}], ${DTYPE[f.kind]}),`);
    return [open, `features = {\n${entries.join('\n')}\n}`, 'ds = ds.map(lambda r: tf.io.parse_single_example(r, features))'].join('\n');
  }
  // sequenceData: one SequenceExample per tile pixel; scalar bands in the context, array bands as lists.
  const one = (name: string) => `    ${py(name)}: tf.io.FixedLenFeature([1], tf.float32),`;
  const step = (name: string) => `    ${py(name)}: tf.io.FixedLenSequenceFeature([1], tf.float32),`;
  const collapsed = m.formatOptions.collapseBands;
  const context = collapsed ? [] : m.bands.filter((b) => !(b.array ?? b.depth > 1)).map((b) => one(b.name));
  const lists = collapsed ? [step(m.bands[0].name)] : m.bands.filter((b) => b.array ?? b.depth > 1).map((b) => step(b.name));
  const dict = (name: string, e: string[]) => (e.length ? `${name} = {\n${e.join('\n')}\n}` : `${name} = {}`);
  return [
    open,
    dict('context_features', context),
    dict('sequence_features', lists),
    'ds = ds.map(lambda r: tf.io.parse_single_sequence_example(r, context_features=context_features, sequence_features=sequence_features))',
  ].join('\n');
}
