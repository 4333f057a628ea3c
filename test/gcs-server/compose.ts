/**
 * The JSON API's `objects.compose` request (https://cloud.google.com/storage/docs/json_api/v1/objects/compose)
 * and the CRC-32C algebra behind it: a composite's `crc32c` is derived from its sources' checksums
 * and sizes, without reading their bytes, as Cloud Storage does (composite objects have no MD5).
 */
import { HttpError } from './store.js';

/** At most this many sources per request (a 400 beyond it, like GCS). */
export const MAX_COMPOSE_SOURCES = 32;
/** `componentCount` saturates here (GCS documents no limit on the count itself, only this ceiling). */
export const MAX_COMPONENT_COUNT = 2_147_483_647;

export interface ComposeSource {
  name: string;
  /** Only this generation (404 if the live object has another). */
  generation?: string;
  /** `objectPreconditions.ifGenerationMatch`: 412 if the live source has another generation. */
  ifGenerationMatch?: string;
}

export interface ComposeRequest {
  sources: ComposeSource[];
  /** From `destination`: the composite's metadata. */
  contentType?: string;
  metadata?: Record<string, string>;
  /** Delete the sources (the generations composed) once the composite exists. */
  deleteSourceObjects: boolean;
}

/** A generation as clients send it: a decimal string or a JSON number (the Node client sends numbers). */
function generationField(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || !/^\d+$/.test(s)) throw new HttpError(400, `Invalid value for ${what}: ${JSON.stringify(v)}`);
  return s;
}

/** Validates a compose request body; throws the 400s GCS answers before looking at any object. */
export function parseComposeRequest(json: Record<string, unknown>): ComposeRequest {
  const list = json.sourceObjects;
  if (list === undefined || list === null) throw new HttpError(400, 'Required field: sourceObjects', 'required');
  if (!Array.isArray(list)) throw new HttpError(400, 'sourceObjects must be a list');
  if (list.length === 0) throw new HttpError(400, 'You must provide at least one source component.', 'required');
  if (list.length > MAX_COMPOSE_SOURCES)
    throw new HttpError(400, `The number of source components provided (${list.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES}).`);
  const sources = list.map((item: unknown, i): ComposeSource => {
    if (!item || typeof item !== 'object') throw new HttpError(400, `sourceObjects[${i}] is not an object`);
    const o = item as Record<string, unknown>;
    if (typeof o.name !== 'string' || o.name === '') throw new HttpError(400, `Required field: sourceObjects[${i}].name`, 'required');
    // Sources are names in the destination's bucket: the request has no way to name another bucket.
    const pre = o.objectPreconditions;
    return {
      name: o.name,
      generation: generationField(o.generation, `sourceObjects[${i}].generation`),
      ifGenerationMatch:
        pre && typeof pre === 'object'
          ? generationField((pre as Record<string, unknown>).ifGenerationMatch, `sourceObjects[${i}].objectPreconditions.ifGenerationMatch`)
          : undefined,
    };
  });
  // `destination.crc32c` and `md5Hash` are not checked: gcloud's parallel composite upload sends the
  // FIRST component's hashes there (copied from its metadata) and real GCS accepts that, so GCS must
  // ignore them; the composite's crc32c is always the one derived below, and it has no MD5.
  const dest = json.destination && typeof json.destination === 'object' ? (json.destination as Record<string, unknown>) : {};
  const md = dest.metadata;
  return {
    sources,
    contentType: typeof dest.contentType === 'string' ? dest.contentType : undefined,
    metadata: md && typeof md === 'object' ? Object.fromEntries(Object.entries(md).map(([k, v]) => [k, String(v)])) : undefined,
    deleteSourceObjects: json.deleteSourceObjects === true,
  };
}

// CRC-32C combination (the method of zlib's crc32_combine): CRC(A‖B) = CRC(A)·x^(8·|B|) ⊕ CRC(B)
// in GF(2)[x] modulo the Castagnoli polynomial, bit-reflected. The pre- and post-inversions of the
// standard CRC cancel out in that identity, so it applies to finished checksums as GCS reports them.
const POLY = 0x82f63b78;

/** a·b modulo the polynomial (both reflected: bit 31 is x^0). */
function multModP(a: number, b: number): number {
  let p = 0;
  for (let m = 0x80000000; m !== 0 && a !== 0; m >>>= 1) {
    if (a & m) {
      p ^= b;
      a ^= m;
    }
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod P, grown on demand (each entry squares the previous one). */
const X2N: number[] = [0x40000000]; // x^1

/** x^(8·bytes) mod P: the factor that shifts a CRC past `bytes` zero bytes. */
function shiftFactor(bytes: number): number {
  let p = 0x80000000; // x^0
  // 8·bytes as a bit string, least significant first; X2N[k + 3] is x^(8·2^k). Division (not >>>)
  // keeps sizes beyond 2^32 bytes exact.
  let k = 3;
  for (let n = bytes; n > 0; n = Math.floor(n / 2), k++) {
    while (X2N.length <= k) X2N.push(multModP(X2N[X2N.length - 1], X2N[X2N.length - 1]));
    if (n % 2) p = multModP(X2N[k], p);
  }
  return p;
}

/** The CRC-32C of A‖B from CRC(A), CRC(B) and |B|. */
export function crc32cCombine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(shiftFactor(lengthB), crcA >>> 0) ^ crcB) >>> 0;
}

/** Decodes GCS's base64 big-endian `crc32c` field. */
export function crc32cFromBase64(b64: string): number {
  return Buffer.from(b64, 'base64').readUInt32BE(0);
}

export function crc32cToBase64(crc: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc >>> 0);
  return b.toString('base64');
}
