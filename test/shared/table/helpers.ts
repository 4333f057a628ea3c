/** Shared pieces of the table tests: seeded randomness, temp dirs, and TensorFlow parsing of our output. */
import { python } from '../../support/oracles.js';
import { mulberry32 } from '../../support/random.js';
import { tempDir } from '../../support/files.js';

/** mulberry32: small, seeded, reproducible. */
export const rng = mulberry32;

/** A temporary directory removed when the test process exits. */
export const tmp = (tag = 'table') => tempDir(tag);

/** Random text with the characters that break naive CSV/JSON handling (quotes, commas, newlines, braces, non-ASCII). */
export function randomText(r: () => number, maxLen = 12): string {
  const alphabet = ['a', 'b', 'Z', ' ', ',', '"', '\n', '{', '}', '[', ']', '\\', 'é', '水', '😀', ':', "'", '\t', 'x', '-'];
  const n = 1 + Math.floor(r() * maxLen);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  // A string that looks like a number would be typed as one by a CSV reader: keep strings strings.
  return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s) ? `s${s}` : s;
}

/** Random float with varied magnitude and sign. */
export const randomFloat = (r: () => number) => (r() - 0.5) * 10 ** Math.floor(r() * 8 - 3);

export interface TfSpec {
  [name: string]: { shape: number[]; type: 'float' | 'string' };
}
export type TfValue = { shape: number[]; values: number[] } | string | string[];

const PARSE = `
import json, sys
import tensorflow as tf
path, spec = sys.argv[1], json.loads(sys.argv[2])
feats = {k: tf.io.FixedLenFeature(v['shape'], tf.float32 if v['type'] == 'float' else tf.string) for k, v in spec.items()}
out = []
for rec in tf.data.TFRecordDataset(path, compression_type='GZIP'):
    ex = tf.io.parse_single_example(rec, feats)
    row = {}
    for k, t in ex.items():
        a = t.numpy()
        if t.dtype == tf.string:
            row[k] = a.decode('utf-8') if isinstance(a, bytes) else [x.decode('utf-8') for x in a.reshape(-1)]
        else:
            row[k] = {'shape': list(a.shape), 'values': [float(x) for x in a.reshape(-1)]}
    out.append(row)
print(json.dumps(out))
`;

/** Parses a gzip TFRecord file with TensorFlow using `FixedLenFeature` specs, as an EE user would. */
export async function tfParse(file: string, spec: TfSpec): Promise<Record<string, TfValue>[]> {
  return JSON.parse(await python(PARSE, [file, JSON.stringify(spec)]));
}

/** Flattens a nested numeric array row-major. */
export const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
