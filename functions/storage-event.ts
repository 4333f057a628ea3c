/**
 * Decodes a Cloud Storage `object.finalized` event (Eventarc CloudEvent data = the object's metadata).
 */
import { resolveUri } from '../shared/storage/open.js';
import { GeotfrError } from '../shared/errors.js';

export interface StorageObjectEvent {
  bucket: string;
  name: string;
  generation: string;
  size: number;
  timeCreated?: string;
}

export function decodeStorageEvent(data: unknown): StorageObjectEvent {
  const d = data as Record<string, unknown> | undefined;
  if (!d || typeof d.bucket !== 'string' || typeof d.name !== 'string')
    throw new GeotfrError('BAD_REQUEST', 'not a Cloud Storage object event: expected data.bucket and data.name');
  return {
    bucket: d.bucket,
    name: d.name,
    generation: String(d.generation ?? '0'),
    size: Number(d.size ?? 0),
    timeCreated: typeof d.timeCreated === 'string' ? d.timeCreated : undefined,
  };
}

/** Reads a dropped JSON document (its current generation; a request is written once and not edited). */
export async function readDroppedJson(obj: StorageObjectEvent): Promise<unknown> {
  const uri = `gs://${obj.bucket}/${obj.name}`;
  const { store, key } = await resolveUri(uri, 'name');
  const text = (await store.read(key)).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GeotfrError('BAD_REQUEST', `request is not valid JSON (${(err as Error).message})`, { file: uri });
  }
}
