/**
 * The manifest of a patch export (docs/patches.md): written at `.geotfr/manifests/<prefix>.json`
 * (like an image export's, never beside the files) once every file exists, so that `geotfr inspect`
 * of the files prints each band's `FixedLenFeature([ky, kx])` shape instead of a flat length.
 */
import type { BlobStore } from '../storage/port.js';
import type { SpecFeature } from '../export/parsespec.js';
import { bandShape, type PatchBand } from './encode.js';
import { manifestKey } from '../ingest/manifest.js';

export interface PatchManifest {
  version: 1;
  kind: 'patches';
  fileNamePrefix: string;
  /** [kx, ky] as requested (`Kernel.fixed(width, height)`). */
  kernelSize: [number, number];
  /** The files, in record order. */
  files: string[];
  /** Band features in record order with their parse shapes ([ky, kx], or [D, ky, kx] for array bands). */
  features: SpecFeature[];
}

export function makePatchManifest(prefix: string, kernel: [number, number], bands: PatchBand[], files: string[]): PatchManifest {
  return {
    version: 1,
    kind: 'patches',
    fileNamePrefix: prefix,
    kernelSize: kernel,
    files,
    features: bands.map((b) => ({ name: b.name, kind: 'float' as const, shape: bandShape(b, kernel) })),
  };
}

/** Writes the manifest (after the files) and returns its key. */
export async function writePatchManifest(store: BlobStore, m: PatchManifest): Promise<string> {
  const key = manifestKey(m.fileNamePrefix);
  await store.write(key, JSON.stringify(m, null, 2) + '\n', { contentType: 'application/json' });
  return key;
}

/** The band features of a parsed manifest when it is a patch manifest this version understands, else undefined. */
export function patchManifestFeatures(m: Record<string, unknown>): SpecFeature[] | undefined {
  if (m.kind !== 'patches' || m.version !== 1 || !Array.isArray(m.features)) return undefined;
  const out: SpecFeature[] = [];
  for (const f of m.features as unknown[]) {
    if (!f || typeof f !== 'object') return undefined;
    const { name, kind, shape } = f as Record<string, unknown>;
    if (typeof name !== 'string' || kind !== 'float' || !Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n > 0)) return undefined;
    out.push({ name, kind, shape: shape as number[] });
  }
  return out;
}
