/**
 * Finishing an export (docs/semantics.md §5–6): the mixer beside the shards (only when maskedThreshold is 1) and
 * the export manifest under `.geotfr/manifests/` at the bucket root — job metadata never goes beside
 * the shards, where EE tutorials look for "the file ending in .json".
 */
import { isPreconditionFailed, type BlobStore } from '../storage/port.js';
import { GeotfrError } from '../errors.js';
import { openBucket } from '../storage/open.js';
import { formatMixer } from '../mixer.js';
import type { ExportPlan } from './plan.js';
import { latticeShift } from '../grid/lattice.js';

/** The manifest ingest uses to find the kernel size of a mixer's export (contracts: ingestImage). */
export interface ExportManifest {
  version: 1;
  fileNamePrefix: string;
  patchDimensions: [number, number];
  kernelSize: [number, number];
  tileDimensions: [number, number];
  totalPatches: number;
  patchesPerRow: number;
  shards: string[];
  /** `array`: an array band (a `[D, th, tw]` feature); absent in manifests written before it existed. */
  bands: { name: string; type: string; depth: number; array?: boolean }[];
  compressed: boolean;
  mixer: string | null;
  formatOptions: ExportPlan['request']['formatOptions'];
  /** The export grid (docs/semantics.md §11): the mixer's projection plus its size and the rule that made it. */
  grid: {
    crs: string;
    affine: number[];
    width: number;
    height: number;
    rule: string;
    native: { crs: string; affine: number[]; width: number; height: number };
  };
  /** Each band's files (mosaic order, the last valid on top), copied onto the grid or warped with its kernel. */
  bandSources: { name: string; resample: string; reduce: string | null; sources: { uri: string; mode: 'copy' | 'warp'; shift?: [number, number] }[] }[] | null;
}

export function makeManifest(plan: ExportPlan): ExportManifest {
  const fo = plan.request.formatOptions;
  return {
    version: 1,
    fileNamePrefix: plan.request.fileNamePrefix,
    patchDimensions: plan.patchDimensions,
    kernelSize: plan.kernelSize,
    tileDimensions: plan.tileDimensions,
    totalPatches: plan.totalPatches,
    patchesPerRow: plan.patchesPerRow,
    shards: plan.shards.map((s) => s.name),
    bands: plan.layout.bands.map((b) => ({ name: b.name, type: b.kind === 'float' ? 'float32' : b.type, depth: b.depth, array: b.array })),
    compressed: fo.compressed,
    mixer: plan.mixerKey,
    formatOptions: fo,
    grid: { ...plan.source, rule: plan.gridRule, native: plan.nativeGrid },
    bandSources: plan.image
      ? plan.image.bands.map((b) => ({
          name: b.name,
          resample: b.resample,
          reduce: b.reduce,
          sources: b.files.map((i) => {
            const f = plan.image!.files[i]!;
            const shift = latticeShift(f.grid, plan.source);
            return shift ? { uri: f.uri, mode: 'copy' as const, shift } : { uri: f.uri, mode: 'warp' as const };
          }),
        }))
      : null,
  };
}

/**
 * Writes the mixer (if any) and the manifest. Call once every shard exists. With `createOnly` (the cloud
 * finalizer, where several may run at once) the mixer is written create-once: finding the same bytes
 * means another finalizer wrote it; different bytes mean the prefix holds another export (a CONFLICT).
 */
export async function writeExportMetadata(
  plan: ExportPlan,
  opts: { store?: BlobStore; createOnly?: boolean; onWritten?: (key: string) => void } = {},
): Promise<{ mixerKey?: string; manifestKey: string }> {
  const store = opts.store ?? (await openBucket(plan.request.bucket));
  const out: { mixerKey?: string; manifestKey: string } = { manifestKey: plan.manifestKey };
  if (plan.mixer && plan.mixerKey) {
    const bytes = formatMixer(plan.mixer);
    try {
      await store.write(plan.mixerKey, bytes, { contentType: 'application/json', ifNotExists: opts.createOnly === true });
    } catch (err) {
      if (!opts.createOnly || !isPreconditionFailed(err)) throw err;
      if ((await store.read(plan.mixerKey)).toString('utf8') !== bytes)
        throw new GeotfrError('CONFLICT', `${store.uri(plan.mixerKey)} already exists with different contents; export to a new fileNamePrefix`, {
          file: store.uri(plan.mixerKey),
        });
    }
    opts.onWritten?.(plan.mixerKey);
    out.mixerKey = plan.mixerKey;
  }
  await store.write(plan.manifestKey, JSON.stringify(makeManifest(plan), null, 2) + '\n', { contentType: 'application/json' });
  opts.onWritten?.(plan.manifestKey);
  return out;
}
