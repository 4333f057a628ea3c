/**
 * Points of a patch export (docs/semantics.md §12): each becomes the grid pixel that contains it, its
 * properties already encoded as table export encodes them (docs/semantics.md §8), and optionally its
 * pixel centre in EPSG:4326. Tables stream in batches, so a table of any length is never held in
 * memory; points outside the image or without coordinates are counted and dropped here (dropNulls),
 * points with a masked centre later, when their window is read (chunk.ts).
 */
import { GeotfrError, asGeotfrError } from '../errors.js';
import { crsTransformer, normalizeCrs, SNAP_TOLERANCE_PX, worldToPixel } from '../raster/crs.js';
import type { PixelGrid } from '../raster/types.js';
import { TableEncoder, columnParseSpec, type ColumnInfo } from '../table/encode.js';
import { openTable } from '../table/source.js';
import type { TableRow } from '../table/row.js';
import type { PatchExportRequest } from './request.js';

/** One point, resolved to the grid. */
export interface PatchPoint {
  /** 0-based position among the input points (table feature index, or sample order). */
  index: number;
  /** The containing pixel (may lie outside the image when dropNulls is false). */
  col: number;
  row: number;
  /** Pixel centre in EPSG:4326 (geometries: true). */
  lon?: number;
  lat?: number;
  /** The properties' serialized Example map entries (table export's encoding), if any. */
  props?: Uint8Array;
}

/** Why points were dropped (dropNulls; docs/semantics.md §12). */
export interface DropCounts {
  /** The containing pixel is outside the image. */
  outside: number;
  /** The centre pixel is masked in at least one band. */
  masked: number;
  /** A table row without a Point geometry or without coordinate cells. */
  noCoordinates: number;
}

export const noDrops = (): DropCounts => ({ outside: 0, masked: 0, noCoordinates: 0 });

/** A stream of resolved points, with what it learned on the way. */
export interface PointStream {
  /** Points in input order, in batches. */
  batches: AsyncGenerator<PatchPoint[]>;
  /** Points read from the input (before any drop). */
  readonly inputPoints: () => number;
  /** Checks end-of-input conditions (unknown properties, no coordinates at all); call after the last batch. */
  finish(): void;
  /** The property features written, with their parse specs. */
  columns(): (ColumnInfo & { spec: string })[];
  /** Closes the input early (on failure). */
  close(): Promise<void>;
}

/** Maps world coordinates in `crs` to the containing pixel and back to the pixel centre's longitude/latitude. */
export class PixelLocator {
  private readonly toGrid: (x: number, y: number) => [number, number];
  private readonly toLonLat: ((x: number, y: number) => [number, number]) | undefined;

  constructor(
    private readonly grid: PixelGrid,
    pointsCrs: string,
    lonLat: boolean,
    what: { file?: string; field: string },
  ) {
    try {
      this.toGrid = crsTransformer(pointsCrs, grid.crs);
      this.toLonLat = lonLat ? crsTransformer(grid.crs, 'EPSG:4326') : undefined;
    } catch (err) {
      const e = asGeotfrError(err);
      throw new GeotfrError('BAD_REQUEST', `points in CRS ${JSON.stringify(pointsCrs)} cannot be read: ${e.message.replace(/^field region: /, '')}`, {
        file: what.file,
        field: what.field,
      });
    }
  }

  /** The pixel containing (x, y): the §1 snapping tolerance keeps a point on a grid line in the pixel to its right/below. */
  pixel(x: number, y: number): [number, number] {
    const [wx, wy] = this.toGrid(x, y);
    const [c, r] = worldToPixel(this.grid.affine, wx, wy);
    return [Math.floor(c + SNAP_TOLERANCE_PX), Math.floor(r + SNAP_TOLERANCE_PX)];
  }

  inside(col: number, row: number): boolean {
    return col >= 0 && row >= 0 && col < this.grid.width && row < this.grid.height;
  }

  /** The pixel centre in EPSG:4326 (only with geometries). */
  centre(p: PatchPoint): void {
    if (!this.toLonLat) return;
    const [a, b, c, d, e, f] = this.grid.affine;
    const x = p.col + 0.5,
      y = p.row + 0.5;
    const [lon, lat] = this.toLonLat(a * x + b * y + c, d * x + e * y + f);
    p.lon = lon;
    p.lat = lat;
  }
}

/** The serialized map entries of an Example body (the Example bytes minus field 1's tag and length). */
function entriesOf(example: Buffer): Uint8Array | undefined {
  if (!example.length) return undefined;
  let p = 1;
  while (example[p]! & 0x80) p++;
  return example.subarray(p + 1);
}

/**
 * Points from a GeoJSON / NDJSON / CSV table (docs/semantics.md §8 readers). Coordinates: a Point
 * geometry, or the CSV columns `xColumn`/`yColumn`; EPSG:4326 unless a FeatureCollection carries a
 * `crs` member (which must come before `features`, so that the stream never has to go back).
 */
export async function tablePoints(
  req: PatchExportRequest,
  uri: string,
  grid: PixelGrid,
  reserved: Set<string>,
  drops: DropCounts,
  signal?: AbortSignal,
): Promise<PointStream> {
  let crs = 'EPSG:4326';
  let rowsSeen = 0;
  let header: string[] | undefined;
  let crsError: GeotfrError | undefined;
  const src = await openTable(uri, {
    signal,
    onMember: (key, value, at) => {
      if (key !== 'crs') return;
      const name = (value as { properties?: { name?: unknown } } | null)?.properties?.name;
      if (typeof name !== 'string')
        crsError = new GeotfrError(
          'BAD_REQUEST',
          `the "crs" member at line ${at.line} has no properties.name (expected {"type": "name", "properties": {"name": "EPSG:n"}})`,
          { file: uri, field: 'crs' },
        );
      else if (rowsSeen)
        crsError = new GeotfrError(
          'BAD_REQUEST',
          `the "crs" member at line ${at.line} comes after the features; put it before "features" so the points can be read as they stream`,
          { file: uri, field: 'crs' },
        );
      else crs = normalizeCrs(name);
    },
    onHeader: (cols) => (header = cols),
  });
  const file = src.file;
  const csv = src.format === 'csv';
  const selectors = req.properties;
  for (const p of selectors ?? [])
    if (reserved.has(p))
      throw new GeotfrError('BAD_REQUEST', `property ${JSON.stringify(p)} clashes with a band or geometry feature of the same name`, {
        file,
        field: 'properties',
      });
  const encoder = new TableEncoder({ file, selectors });
  let located = 0;
  let locator: PixelLocator | undefined;
  let columns = 0;
  const { xColumn, yColumn } = req;
  const batches = async function* (): AsyncGenerator<PatchPoint[]> {
    for await (const rows of src.rows) {
      if (crsError) throw crsError;
      if (csv && rowsSeen === 0 && header && !(header.includes(xColumn) && header.includes(yColumn))) {
        const missing = header.includes(xColumn) ? yColumn : xColumn;
        throw new GeotfrError(
          'BAD_REQUEST',
          `the CSV has no coordinate column ${JSON.stringify(missing)} (its columns: ${header.join(', ')}); name the columns with xColumn/yColumn`,
          {
            file,
            field: missing === xColumn ? 'xColumn' : 'yColumn',
          },
        );
      }
      locator ??= new PixelLocator(grid, crs, req.geometries, { file, field: csv ? 'xColumn' : 'crs' });
      const out: PatchPoint[] = [];
      for (const row of rows) {
        rowsSeen++;
        const xy = coordinates(row, csv, xColumn, yColumn, file);
        if (!xy) {
          if (!req.dropNulls)
            throw new GeotfrError('BAD_REQUEST', `feature ${row.index} (line ${row.line}) has no coordinates (set dropNulls to skip such points)`, {
              file,
              record: row.index,
              offset: row.offset,
              field: csv ? xColumn : 'geometry',
            });
          drops.noCoordinates++;
          continue;
        }
        located++;
        const [col, r] = locator.pixel(xy[0], xy[1]);
        if (!Number.isFinite(col) || !Number.isFinite(r))
          throw new GeotfrError(
            'BAD_INPUT',
            `feature ${row.index} (line ${row.line}): coordinates ${JSON.stringify(xy)} cannot be projected from ${crs} to ${grid.crs}`,
            { file, record: row.index, offset: row.offset, field: 'geometry' },
          );
        // Encode the properties even for a point dropped as outside: types and shapes are checked on every row.
        const props = entriesOf(encodeRow(encoder, row));
        if (!locator.inside(col, r) && req.dropNulls) {
          drops.outside++;
          continue;
        }
        const p: PatchPoint = { index: row.index, col, row: r, ...(props ? { props: new Uint8Array(props) } : {}) };
        locator.centre(p);
        out.push(p);
      }
      if (!selectors) {
        // Every property mode: a new column must not take a band's (or longitude/latitude's) name.
        const info = encoder.info();
        if (info.length !== columns) {
          columns = info.length;
          const clash = info.find((c) => reserved.has(c.name));
          if (clash)
            throw new GeotfrError(
              'BAD_REQUEST',
              `property ${JSON.stringify(clash.name)} clashes with a band or geometry feature of the same name (choose the properties to write with "properties")`,
              { file, field: 'properties' },
            );
        }
      }
      if (out.length) yield out;
    }
    if (crsError) throw crsError;
  };
  return {
    batches: batches(),
    inputPoints: () => rowsSeen,
    finish() {
      if (rowsSeen === 0) throw new GeotfrError('BAD_INPUT', 'the point table has no features: nothing to export', { file });
      if (located === 0)
        throw new GeotfrError(
          'BAD_REQUEST',
          csv
            ? `no row has coordinates in columns ${JSON.stringify(xColumn)}/${JSON.stringify(yColumn)}`
            : 'no feature has a Point geometry: the table has no coordinates',
          {
            file,
            field: csv ? 'xColumn' : 'geometry',
          },
        );
      try {
        encoder.finish();
      } catch (err) {
        const e = asGeotfrError(err);
        if (e.context.field !== 'selectors') throw e;
        throw new GeotfrError(
          'BAD_REQUEST',
          e.message
            .replace(/^.*?: unknown selector/, 'unknown property')
            .replace('these properties', 'them')
            .replace('this property', 'it'),
          { file, field: 'properties' },
        );
      }
    },
    columns: () =>
      encoder
        .info()
        .filter((c) => c.type !== undefined)
        .map((c) => ({ ...c, spec: columnParseSpec(c) })),
    close: async () => {
      await src.rows.return(undefined).catch(() => {});
    },
  };
}

/** Encodes a row's properties; a type or shape error gains the row's byte offset (table export's messages name the line only). */
function encodeRow(encoder: TableEncoder, row: TableRow): Buffer {
  try {
    return encoder.encode(row);
  } catch (err) {
    if (!(err instanceof GeotfrError) || row.offset === undefined || err.context.offset !== undefined) throw err;
    const c = err.context;
    const prefix = [c.file, c.record !== undefined ? `record ${c.record}` : undefined, c.field !== undefined ? `field ${c.field}` : undefined]
      .filter((x) => x !== undefined)
      .join(', ');
    const message = prefix && err.message.startsWith(prefix + ': ') ? err.message.slice(prefix.length + 2) : err.message;
    throw new GeotfrError(err.code, message, { ...c, offset: row.offset }, { cause: err });
  }
}

/** A row's coordinates, or undefined when it has none; CSV coordinate columns are taken out of the properties. */
function coordinates(row: TableRow, csv: boolean, xColumn: string, yColumn: string, file: string): [number, number] | undefined {
  const fail = (msg: string, field: string): never => {
    throw new GeotfrError('BAD_INPUT', `feature ${row.index} (line ${row.line}): ${msg}`, { file, record: row.index, offset: row.offset, field });
  };
  if (csv) {
    const x = row.properties[xColumn],
      y = row.properties[yColumn];
    delete row.properties[xColumn];
    delete row.properties[yColumn];
    if (x === undefined || y === undefined) return undefined;
    if (typeof x !== 'number' || !Number.isFinite(x)) fail(`column ${JSON.stringify(xColumn)} is not a number: ${JSON.stringify(x)}`, xColumn);
    if (typeof y !== 'number' || !Number.isFinite(y)) fail(`column ${JSON.stringify(yColumn)} is not a number: ${JSON.stringify(y)}`, yColumn);
    return [x as number, y as number];
  }
  const g = row.geometry;
  if (!g) return undefined;
  if (g.type !== 'Point') fail(`expected a Point geometry, found a ${g.type} (patches are cut around points)`, 'geometry');
  const c = g.coordinates;
  if (!Array.isArray(c) || c.length === 0) return undefined; // an empty Point
  if (c.length < 2 || typeof c[0] !== 'number' || typeof c[1] !== 'number' || !Number.isFinite(c[0]) || !Number.isFinite(c[1]))
    fail(`Point coordinates are not [x, y] finite numbers: ${JSON.stringify(c)}`, 'geometry');
  return [c[0] as number, c[1] as number];
}
