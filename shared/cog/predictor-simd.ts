/**
 * Predictor 3 for float32 tiles in WebAssembly SIMD (predictor.wat): the bytes of
 * `float32PredictedTile`, about five times faster, so the COG writer's main thread keeps up with
 * DEFLATE on two cores (docs/ingest.md, "COG tiles"). One instance per thread, made on first use;
 * where WebAssembly or its SIMD is missing, `predictFloat32Tile` says so and the caller takes the
 * JavaScript path.
 *
 * The tile's samples are copied into the instance's memory band by band, row by row, predicted
 * there and copied out into the caller's tile buffer (the caller deflates it asynchronously, so it
 * cannot stay in memory the next tile overwrites). The memory grows to the largest tile seen: two
 * tiles' bytes and two rows' scratch.
 */
import { WASM_BASE64 } from './predictor-wasm.js';

interface PredictorExports {
  memory: WebAssembly.Memory;
  predict(nb: number, ts: number, rows: number, input: number, ilv: number, tmp: number, out: number): void;
}

/** Tiles whose input and output together exceed this take the JavaScript path (wasm32 memory is at most 4 GiB). */
const MAX_MEMORY_BYTES = 1 << 30;

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
  const planeWords = ts * ts;
  const tileBytes = planeWords * nb * 4;
  const rowBytes = ts * nb * 4;
  const input = 0;
  const ilv = input + tileBytes;
  const tmp = ilv + rowBytes + align16(nb); // after ≥ nb zero bytes
  const output = tmp + rowBytes;
  const total = output + tileBytes;
  if (total > MAX_MEMORY_BYTES || out.length !== tileBytes) return false;
  const p = predictor();
  if (!p) return false;
  const mem = p.memory;
  if (mem.buffer.byteLength < total) mem.grow(Math.ceil((total - mem.buffer.byteLength) / 65536));
  const words = new Uint32Array(mem.buffer);
  for (let b = 0; b < nb; b++) {
    const lane = lanes[b]!;
    for (let y = 0; y < rows; y++) {
      const at = input / 4 + b * planeWords + y * ts;
      const from = y * width + x0;
      words.set(lane.subarray(from, from + w), at);
      if (w < ts) words.fill(0, at + w, at + ts);
    }
  }
  const bytes = new Uint8Array(mem.buffer);
  bytes.fill(0, ilv + rowBytes, tmp); // the zeros the row's first bytes subtract (an earlier, larger layout may have left data there)
  p.predict(nb, ts, rows, input, ilv, tmp, output);
  out.set(bytes.subarray(output, output + tileBytes));
  return true;
}
