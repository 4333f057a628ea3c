/**
 * The patch plan (docs/semantics.md §12): everything a thread or a cloud worker needs to turn a list
 * of points into bytes, as plain JSON, plus the rule that cuts the point stream into shards and chunks.
 *
 * Shards: with `maxFileSize`, points are packed in input order into a shard while its planned framed
 * size stays within the limit. **Planned** sizes count every point that survived the table pass
 * (outside-image and coordinate-less points are already gone) as if none were dropped for a masked
 * centre: the planner can then fix every shard without reading pixels, and a shard whose points are
 * partly masked comes out smaller. Without `maxFileSize` there is one file, `PREFIX.tfrecord.gz`.
 *
 * Chunks: within a shard, consecutive points up to CHUNK_TARGET_BYTES of planned framed bytes. A
 * chunk is the unit of work on the thread pool and one independently deflated piece of the gzip
 * stream (export/gzipchunks.ts), so the bytes depend on this rule only, never on the worker count.
 */
import { GeotfrError } from '../errors.js';
import type { PixelGrid } from '../raster/types.js';
import type { PlannedImage } from '../grid/image.js';
import type { GridRule } from '../grid/resolve.js';
import type { PatchBand } from './encode.js';
import type { PatchPoint } from './points.js';
import type { PatchExportRequest } from './request.js';

/** 2: the plan carries the resolved grid and the image's files (docs/semantics.md §11). */
export const PATCH_PLAN_VERSION = 2;
/** Planned framed bytes per chunk: large enough to deflate well, small enough to keep many in flight. */
export const CHUNK_TARGET_BYTES = 4 * 1024 * 1024;

export interface PatchPlan {
  version: number;
  request: PatchExportRequest;
  /** The pixel grid the patches are cut on: the resolved grid (docs/semantics.md §11); workers check they read the same. */
  source: PixelGrid;
  bands: PatchBand[];
  /** Which grid rule applied, and the first band's native grid it started from. */
  gridRule?: GridRule;
  nativeGrid?: PixelGrid;
  /**
   * Each band's files (headers read once at plan time, files missing the grid pruned) and
   * resampling: workers open these, and only when a window touches them. Absent in plans built
   * around a custom source (tests) and in version 1 plans, whose workers open `request.image`.
   */
  image?: PlannedImage;
}

/** A chunk of points as typed arrays (cheap to post to a thread and to store for cloud workers). */
export interface PatchChunk {
  shard: number;
  /** Position of the chunk within its shard. */
  seq: number;
  index: Float64Array;
  col: Int32Array;
  row: Int32Array;
  /** Pixel centres in EPSG:4326 (empty without geometries). */
  lon: Float64Array;
  lat: Float64Array;
  /** The points' property entries, concatenated; point i's are propsAt[i]..propsAt[i+1]. */
  props: Uint8Array;
  propsAt: Uint32Array;
}

/** The output object name of shard `i` (docs/semantics.md §12: one file, or -ddddd shards with maxFileSize). */
export function patchFileName(req: Pick<PatchExportRequest, 'fileNamePrefix' | 'maxFileSize'>, shard: number): string {
  if (req.maxFileSize === undefined) return `${req.fileNamePrefix}.tfrecord.gz`;
  if (shard > 99999)
    throw new GeotfrError('LIMIT', `more than 100,000 shards would exceed the 5-digit shard names of docs/semantics.md §5; raise maxFileSize`, {
      field: 'maxFileSize',
    });
  return `${req.fileNamePrefix}-${String(shard).padStart(5, '0')}.tfrecord.gz`;
}

function toChunk(points: PatchPoint[], shard: number, seq: number, geometries: boolean): PatchChunk {
  const n = points.length;
  const c: PatchChunk = {
    shard,
    seq,
    index: new Float64Array(n),
    col: new Int32Array(n),
    row: new Int32Array(n),
    lon: new Float64Array(geometries ? n : 0),
    lat: new Float64Array(geometries ? n : 0),
    props: new Uint8Array(points.reduce((s, p) => s + (p.props?.length ?? 0), 0)),
    propsAt: new Uint32Array(n + 1),
  };
  let at = 0;
  points.forEach((p, i) => {
    c.index[i] = p.index;
    c.col[i] = p.col;
    c.row[i] = p.row;
    if (geometries) {
      c.lon[i] = p.lon!;
      c.lat[i] = p.lat!;
    }
    if (p.props) {
      c.props.set(p.props, at);
      at += p.props.length;
    }
    c.propsAt[i + 1] = at;
  });
  return c;
}

/**
 * Cuts a point stream into chunks, deciding shard boundaries on the way (the rule above). `framed`
 * gives a point's planned framed bytes. Pure and sequential: the CLI and the cloud planner both run it.
 */
export async function* chunkPoints(
  batches: AsyncIterable<PatchPoint[]> | Iterable<PatchPoint[]>,
  framed: (propsBytes: number) => number,
  opts: { maxFileSize?: number; geometries: boolean },
): AsyncGenerator<PatchChunk> {
  const limit = opts.maxFileSize ?? Infinity;
  let shard = 0;
  let seq = 0;
  let shardBytes = 0;
  let cur: PatchPoint[] = [];
  let curBytes = 0;
  for await (const batch of batches) {
    for (const p of batch) {
      const size = framed(p.props?.length ?? 0);
      if (shardBytes > 0 && shardBytes + size > limit) {
        if (cur.length) yield toChunk(cur, shard, seq, opts.geometries);
        cur = [];
        curBytes = 0;
        shard++;
        seq = 0;
        shardBytes = 0;
      } else if (cur.length && curBytes + size > CHUNK_TARGET_BYTES) {
        yield toChunk(cur, shard, seq++, opts.geometries);
        cur = [];
        curBytes = 0;
      }
      cur.push(p);
      curBytes += size;
      shardBytes += size;
    }
  }
  if (cur.length) yield toChunk(cur, shard, seq, opts.geometries);
}

/** A chunk as bytes (cloud: the planner stores each shard's chunks for its worker). */
export function serializeChunk(c: PatchChunk): Buffer {
  const n = c.index.length;
  const head = Buffer.alloc(16);
  head.writeUInt32LE(c.shard, 0);
  head.writeUInt32LE(c.seq, 4);
  head.writeUInt32LE(n, 8);
  head.writeUInt32LE(c.lon.length ? 1 : 0, 12);
  const parts = [head, c.index, c.col, c.row, c.lon, c.lat, c.propsAt, c.props].map((a) =>
    Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength),
  );
  const body = Buffer.concat(parts);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(body.length);
  return Buffer.concat([len, body]);
}

/** Reads chunks back from `serializeChunk` output concatenated. */
export function* deserializeChunks(buf: Buffer, file: string): Generator<PatchChunk> {
  let p = 0;
  while (p < buf.length) {
    if (p + 4 > buf.length) throw new GeotfrError('BAD_INPUT', 'truncated point chunk', { file, offset: p });
    const len = buf.readUInt32LE(p);
    const body = buf.subarray(p + 4, p + 4 + len);
    if (body.length !== len) throw new GeotfrError('BAD_INPUT', 'truncated point chunk', { file, offset: p });
    const n = body.readUInt32LE(8);
    const geo = body.readUInt32LE(12) === 1;
    let o = 16;
    const take = <T>(C: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number }, count: number): T => {
      const bytes = count * C.BYTES_PER_ELEMENT;
      const copy = new ArrayBuffer(bytes);
      new Uint8Array(copy).set(body.subarray(o, o + bytes));
      o += bytes;
      return new C(copy);
    };
    const index = take(Float64Array, n);
    const col = take(Int32Array, n);
    const row = take(Int32Array, n);
    const lon = take(Float64Array, geo ? n : 0);
    const lat = take(Float64Array, geo ? n : 0);
    const propsAt = take(Uint32Array, n + 1);
    const props = take(Uint8Array, propsAt[n]!);
    yield { shard: body.readUInt32LE(0), seq: body.readUInt32LE(4), index, col, row, lon, lat, props, propsAt };
    p += 4 + len;
  }
}
