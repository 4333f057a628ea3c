/**
 * STAC input (docs/semantics.md §11): `"image": {"stac": URI, "bands": [...]}` where URI (local or
 * `gs://`) is a STAC Item or an ItemCollection. Each entry picks an asset by key or by an `eo:bands`
 * (or STAC 1.1 `bands`) name / common name; relative hrefs resolve against the item's URI; the CRS
 * comes from `proj:code` (else `proj:epsg`), the grid from `proj:transform` + `proj:shape` (asset
 * first, then item properties), else from the file. An ItemCollection's items are mosaicked in order,
 * the last on top.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GeotfrError } from '../errors.js';
import type { Affine } from '../mixer.js';
import { resolveUri } from '../storage/open.js';
import type { Reducer, Resampling } from './resample.js';

/** One entry of `image.bands` with a STAC image: a name, or an object. */
export type StacBandEntry = string | { name: string; asset?: string; resample?: Resampling; reduce?: Reducer; nodata?: number };

/** A grid a STAC asset declares (its file's own georeferencing is then not consulted). */
export interface StacGrid {
  crs?: string;
  affine?: Affine;
  width?: number;
  height?: number;
}

/** A band resolved from STAC: its files in mosaic order and the grid each declares. */
export interface StacBand {
  name: string;
  uris: string[];
  grids: StacGrid[];
  resample?: Resampling;
  reduce?: Reducer;
  nodata?: number;
}

interface StacAsset {
  href?: unknown;
  'eo:bands'?: { name?: unknown; common_name?: unknown }[];
  bands?: { name?: unknown; 'eo:common_name'?: unknown; common_name?: unknown }[];
  [k: string]: unknown;
}

interface StacItem {
  type?: unknown;
  id?: unknown;
  properties?: Record<string, unknown>;
  assets?: Record<string, StacAsset>;
}

/** `href` resolved against the document's URI (a gs:// URI, a file:// URI or a local path). */
export function resolveHref(href: string, base: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(href) || path.isAbsolute(href)) return href;
  if (base.startsWith('gs://')) return new URL(href, `https://x/${base.slice(5)}`).pathname.replace(/^\//, 'gs://');
  const dir = path.dirname(base.startsWith('file://') ? fileURLToPath(base) : path.resolve(base));
  return path.join(dir, href);
}

/** Reads a STAC document (JSON) from a local path, file:// or gs:// URI. */
async function readJson(uri: string, field: string): Promise<unknown> {
  const loc = await resolveUri(uri, field);
  let text: string;
  try {
    text = (await loc.store.read(loc.key)).toString('utf8');
  } catch (err) {
    if (err instanceof GeotfrError) throw err;
    throw new GeotfrError('NOT_FOUND', `cannot read the STAC document (${(err as Error).message})`, { file: uri, field });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GeotfrError('BAD_REQUEST', `the STAC document is not JSON (${(err as Error).message})`, { file: uri, field });
  }
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The grid an asset declares, asset fields first, then the item's properties. */
function assetGrid(asset: StacAsset, item: StacItem): StacGrid {
  const get = (k: string) => (asset[k] !== undefined ? asset[k] : item.properties?.[k]);
  const code = get('proj:code');
  const epsg = num(get('proj:epsg'));
  const crs = typeof code === 'string' && code ? code : epsg !== undefined ? `EPSG:${epsg}` : undefined;
  const t = get('proj:transform');
  const shape = get('proj:shape');
  const g: StacGrid = {};
  if (crs) g.crs = crs;
  if (Array.isArray(t) && (t.length === 6 || t.length === 9) && t.slice(0, 6).every((v) => num(v) !== undefined)) g.affine = t.slice(0, 6) as Affine;
  if (Array.isArray(shape) && shape.length === 2 && shape.every((v) => Number.isInteger(v) && v > 0)) [g.height, g.width] = shape as [number, number];
  return g;
}

/** The asset an entry names: by key, else by an eo:bands / bands name or common name. */
function findAsset(item: StacItem, key: string): StacAsset | undefined {
  const assets = item.assets ?? {};
  if (assets[key]) return assets[key];
  const named = (b: { name?: unknown; common_name?: unknown; 'eo:common_name'?: unknown }) =>
    b.name === key || b.common_name === key || b['eo:common_name'] === key;
  for (const a of Object.values(assets)) {
    const bands = [...(Array.isArray(a['eo:bands']) ? a['eo:bands'] : []), ...(Array.isArray(a.bands) ? a.bands : [])];
    // An asset holding several bands cannot stand for one of them here.
    if (bands.length === 1 && named(bands[0]!)) return a;
  }
  return undefined;
}

/** Resolves `image.bands` of a STAC image to files per band (mosaic order: the collection's item order). */
export async function stacBands(stacUri: string, entries: readonly StacBandEntry[], field = 'image'): Promise<StacBand[]> {
  if (typeof stacUri !== 'string' || !stacUri)
    throw new GeotfrError('BAD_REQUEST', 'expected the URI of a STAC Item or ItemCollection', { field: `${field}.stac` });
  if (!Array.isArray(entries) || entries.length === 0) throw new GeotfrError('BAD_REQUEST', 'expected at least one band', { field: `${field}.bands` });
  const doc = (await readJson(stacUri, `${field}.stac`)) as StacItem & { features?: unknown };
  let items: StacItem[];
  if (doc?.type === 'Feature') items = [doc];
  else if (doc?.type === 'FeatureCollection' && Array.isArray(doc.features)) items = doc.features as StacItem[];
  else throw new GeotfrError('BAD_REQUEST', `not a STAC Item or ItemCollection (type ${JSON.stringify(doc?.type)})`, { file: stacUri, field: `${field}.stac` });
  if (items.length === 0) throw new GeotfrError('BAD_REQUEST', 'the STAC ItemCollection has no items', { file: stacUri, field: `${field}.stac` });
  return entries.map((e, i) => {
    const f = `${field}.bands[${i}]`;
    const entry = typeof e === 'string' ? { name: e } : e;
    if (!entry || typeof entry.name !== 'string' || !entry.name) throw new GeotfrError('BAD_REQUEST', 'a STAC band needs a name', { field: f });
    const key = entry.asset ?? entry.name;
    const uris: string[] = [];
    const grids: StacGrid[] = [];
    for (const item of items) {
      const asset = findAsset(item, key);
      if (!asset) {
        const keys = Object.keys(item.assets ?? {});
        throw new GeotfrError(
          'BAD_REQUEST',
          `STAC item ${JSON.stringify(item.id)} has no asset or eo:bands name ${JSON.stringify(key)} (assets: ${keys.join(', ') || 'none'})`,
          { file: stacUri, field: f },
        );
      }
      if (typeof asset.href !== 'string' || !asset.href)
        throw new GeotfrError('BAD_REQUEST', `STAC asset ${JSON.stringify(key)} of item ${JSON.stringify(item.id)} has no href`, { file: stacUri, field: f });
      uris.push(resolveHref(asset.href, stacUri));
      grids.push(assetGrid(asset, item));
    }
    const out: StacBand = { name: entry.name, uris, grids };
    if (entry.resample !== undefined) out.resample = entry.resample;
    if (entry.reduce !== undefined) out.reduce = entry.reduce;
    if (entry.nodata !== undefined) out.nodata = entry.nodata;
    return out;
  });
}
