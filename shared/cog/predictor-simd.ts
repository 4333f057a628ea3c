/**
 * Predictor 3 for float32 tiles in WebAssembly SIMD (predictor.wat): the bytes of
 * `float32PredictedTile`, three times as fast for three bands, so the COG writer's main thread keeps
 * up with DEFLATE on two cores (docs/ingest.md, "How the speed was found"). One instance per thread, made on first use;
 * where WebAssembly or its SIMD is missing, `predictFloat32Tile` says so and the caller takes the
 * JavaScript path.
 *
 * The tile's samples are copied into the instance's memory a run of rows at a time, band by band,
 * predicted there and copied out into the caller's tile buffer (the caller deflates it
 * asynchronously, so it cannot stay in memory the next run overwrites). The instance's memory,
 * which never shrinks, holds two runs of rows (256 KiB each, or one row where a row is longer) and
 * two rows' scratch: a tile of many bands does not leave a tile-sized block behind on every thread.
 */
import { WASM_BASE64 } from './predictor-wasm.js';

interface PredictorExports {
  memory: WebAssembly.Memory;
  predict(nb: number, ts: number, rows: number, input: number, bandStride: number, ilv: number, tmp: number, out: number): void;
}

/** Rows per call: as many as fit this many bytes of input (at least one). */
const RUN_BYTES = 256 * 1024;
/** Layouts larger than this (four rows at least: input, interleaved, planes, output) take the JavaScript path. */
const MAX_MEMORY_BYTES = 256 * 1024 * 1024;

let instance: PredictorExports | null | undefined;

function predictor(): PredictorExports | null {
  if (instance === undefined) {
    try {
      const mod = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
      instance = new WebAssembly.Instance(mod).exports as unknown as PredictorExports;
    } catch {
      instance = null; // no WebAssembly SIMD in this runtime
    }
  }
  return instance;
}

/** Whether this runtime runs the WebAssembly predictor (tests assert it does on ours). */
export function simdPredictorAvailable(): boolean {
  return predictor() !== null;
}

const align16 = (n: number) => (n + 15) & ~15;

/**
 * Predictor 3 over one float32 tile: `lanes[b]` are the bands' samples as 32-bit words in rows
 * `width` long; the tile starts at column `x0` and holds `w` columns and `rows` rows of real
 * pixels; the rest of the `ts`×`ts` tile is zero. Writes all of `out` (ts·ts·bands·4 bytes) and
 * returns true, or returns false without touching `out` when the WebAssembly path cannot run.
 * `ts` must be a multiple of 16, as every COG tile size is.
 */
export function predictFloat32Tile(lanes: Uint32Array[], width: number, x0: number, w: number, rows: number, ts: number, out: Uint8Array): boolean {
  const nb = lanes.length;
  if (ts % 16 !== 0 || nb === 0) return false;
  const rowWords = ts * nb;
  const rowBytes = rowWords * 4;
  if (out.length !== ts * rowBytes) return false;
  const run = Math.max(1, Math.min(rows, Math.floor(RUN_BYTES / rowBytes)));
  const input = 0; // nb bands × run rows × ts words
  const bandStride = run * ts * 4;
  const ilv = input + run * rowBytes;
  const tmp = ilv + rowBytes + align16(nb); // after ≥ nb zero bytes
  const output = tmp + rowBytes;
  const total = output + run * rowBytes;
  if (total > MAX_MEMORY_BYTES) return false;
  const p = predictor();
  if (!p) return false;
  const mem = p.memory;
  if (mem.buffer.byteLength < total) mem.grow(Math.ceil((total - mem.buffer.byteLength) / 65536));
  const words = new Uint32Array(mem.buffer);
  const bytes = new Uint8Array(mem.buffer);
  bytes.fill(0, ilv + rowBytes, tmp); // the zeros the row's first bytes subtract (an earlier, larger layout may have left data there)
  for (let y0 = 0; y0 < rows; y0 += run) {
    const n = Math.min(run, rows - y0);
    for (let b = 0; b < nb; b++) {
      const lane = lanes[b]!;
      for (let y = 0; y < n; y++) {
        const at = (input + b * bandStride) / 4 + y * ts;
        const from = (y0 + y) * width + x0;
        words.set(lane.subarray(from, from + w), at);
        if (w < ts) words.fill(0, at + w, at + ts);
      }
    }
    p.predict(nb, ts, n, input, bandStride, ilv, tmp, output);
    out.set(bytes.subarray(output, output + n * rowBytes), y0 * rowBytes);
  }
  out.fill(0, rows * rowBytes);
  return true;
}
