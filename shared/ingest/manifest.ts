/**
 * Finds the kernel size of an export from its manifest (contracts: for a mixer at
 * `<D>/<rel>-mixer.json`, the manifest is `<D>/.geotfr/manifests/<rel>.json` for the bucket root D,
 * which may be any ancestor of the mixer). EE's mixer has no kernel field (docs/semantics.md §6), so without a
 * manifest or `--kernel-size` tile-sized predictions cannot be told apart from patches.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GeotfrError } from '../errors.js';
import { checkJsonDepth } from '../limits.js';
import { resolveUri } from '../storage/open.js';
import { isPosInt, type Mixer } from '../mixer.js';

const MIXER_SUFFIX = '-mixer.json';

/** Where an export's manifest lives, from the bucket root: image and patch exports alike. */
export const manifestKey = (prefix: string): string => `.geotfr/manifests/${prefix}.json`;

export interface ManifestKernel {
  kernelSize: [number, number];
}

/** Candidate manifest URIs for a mixer URI (gs://, file:// or a local path), nearest root first. */
function manifestCandidates(mixerUri: string): string[] {
  const out: string[] = [];
  if (mixerUri.startsWith('gs://')) {
    const slash = mixerUri.indexOf('/', 5);
    if (slash < 0 || !mixerUri.endsWith(MIXER_SUFFIX)) return out;
    const bucket = mixerUri.slice(0, slash); // gs://bucket
    const parts = mixerUri.slice(slash + 1).split('/');
    for (let k = parts.length - 1; k >= 0; k--) {
      const root = parts.slice(0, k).join('/');
      const rel = parts.slice(k).join('/').slice(0, -MIXER_SUFFIX.length);
      if (rel) out.push(`${bucket}/${root ? root + '/' : ''}${manifestKey(rel)}`);
    }
    return out;
  }
  const abs = path.resolve(mixerUri.startsWith('file://') ? fileURLToPath(mixerUri) : mixerUri);
  if (!abs.endsWith(MIXER_SUFFIX)) return out;
  const parts = abs.split(path.sep);
  for (let k = parts.length - 1; k >= 1; k--) {
    const root = parts.slice(0, k).join(path.sep) || path.sep;
    const rel = parts.slice(k).join('/').slice(0, -MIXER_SUFFIX.length);
    if (rel) out.push(path.join(root, manifestKey(rel)));
  }
  return out;
}

/**
 * The export manifest that belongs to a shard (`<rel>-00000.tfrecord[.gz]`, or a patch export's
 * `<rel>.tfrecord.gz`) or mixer URI, looked for
 * in every directory above it (nearest first), parsed; undefined when there is none or it is not JSON.
 */
export async function findManifest(uri: string): Promise<{ uri: string; manifest: Record<string, unknown> } | undefined> {
  // Shards and mixers of an image export, or a patch export's single `<rel>.tfrecord.gz`.
  const m = /^(.*)-(\d{5}\.tfrecord(\.gz)?|mixer\.json)$/.exec(uri) ?? /^(.*)\.tfrecord\.gz$/.exec(uri);
  if (!m) return undefined;
  for (const cand of manifestCandidates(m[1] + MIXER_SUFFIX)) {
    try {
      const loc = await resolveUri(cand, 'file');
      if (!(await loc.store.stat(loc.key))) continue;
      const j = JSON.parse((await loc.store.read(loc.key)).toString('utf8'));
      if (j && typeof j === 'object') return { uri: cand, manifest: j };
    } catch {
      // an unreadable candidate cannot describe these files
    }
  }
  return undefined;
}

/**
 * Looks for the export manifest next to (or above) the mixer and returns its kernel size, checking
 * that it describes the same grid as the mixer. Returns undefined when there is none.
 */
export async function kernelFromManifest(mixerUri: string, mixer: Mixer): Promise<ManifestKernel | undefined> {
  for (const uri of manifestCandidates(mixerUri)) {
    let loc;
    try {
      loc = await resolveUri(uri, 'mixer');
    } catch {
      continue; // not a valid key (e.g. an odd local path segment): cannot hold a manifest
    }
    if (!(await loc.store.stat(loc.key))) continue;
    const text = (await loc.store.read(loc.key)).toString('utf8');
    let j: any;
    checkJsonDepth(text, { file: uri });
    try {
      j = JSON.parse(text);
    } catch (err) {
      throw new GeotfrError('BAD_INPUT', `export manifest is not valid JSON (${(err as Error).message})`, { file: uri });
    }
    const k = j?.kernelSize;
    if (!Array.isArray(k) || k.length !== 2 || !k.every(isPosInt))
      throw new GeotfrError('BAD_INPUT', `export manifest has no valid kernelSize [kx, ky]: ${JSON.stringify(k)}`, { file: uri, field: 'kernelSize' });
    const pd = j.patchDimensions;
    if (Array.isArray(pd) && (pd[0] !== mixer.patchDimensions[0] || pd[1] !== mixer.patchDimensions[1]))
      throw new GeotfrError(
        'BAD_INPUT',
        `export manifest's patchDimensions ${JSON.stringify(pd)} differ from the mixer's ${JSON.stringify(mixer.patchDimensions)}: not the same export`,
        { file: uri, field: 'patchDimensions' },
      );
    if (typeof j.totalPatches === 'number' && j.totalPatches !== mixer.totalPatches)
      throw new GeotfrError('BAD_INPUT', `export manifest's totalPatches ${j.totalPatches} differs from the mixer's ${mixer.totalPatches}`, {
        file: uri,
        field: 'totalPatches',
      });
    return { kernelSize: [k[0], k[1]] };
  }
  return undefined;
}
