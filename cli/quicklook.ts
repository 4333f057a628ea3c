/**
 * Quicklook PNGs for the demo: exported tiles two by two, the patch core outlined so the kernel
 * margins are visible, masked pixels (the defaultValue) in magenta. Encoded as 8-bit RGB by the
 * hand-written `encodePng` (shared/ingest/quicklook.ts): no image dependency for a picture.
 */
import { encodePng } from '../shared/ingest/quicklook.js';

export interface QuicklookTile {
  /** Three channels (R, G, B) of `tw*th` values each, as exported (row-major). */
  channels: [Float32Array, Float32Array, Float32Array];
}

/**
 * Renders tiles in rows of two with a gap; each channel stretched between its 2nd and 98th
 * percentile over the valid pixels of all tiles; `masked` values painted magenta; the core (tile minus
 * margins) outlined. The picture is enlarged by a whole factor until its long side is ≥ `minSize`.
 */
export function quicklook(tiles: QuicklookTile[], tw: number, th: number, margin: [number, number], masked: number, minSize = 512): Buffer {
  const gap = 8;
  const perRow = Math.min(2, tiles.length);
  const rows = Math.ceil(tiles.length / perRow);
  const w0 = perRow * tw + (perRow + 1) * gap;
  const h0 = rows * th + (rows + 1) * gap;
  const zoom = Math.max(1, Math.ceil(minSize / Math.max(w0, h0)));
  const small = new Uint8Array(w0 * h0 * 3).fill(255);
  const stretch = [0, 1, 2].map((c) => {
    const vals: number[] = [];
    for (const t of tiles) for (let i = 0; i < t.channels[c].length; i += 7) if (t.channels[c][i] !== masked) vals.push(t.channels[c][i]);
    vals.sort((a, b) => a - b);
    const lo = vals[Math.floor(vals.length * 0.02)] ?? 0;
    const hi = vals[Math.floor(vals.length * 0.98)] ?? 1;
    return [lo, hi > lo ? hi : lo + 1];
  });
  tiles.forEach((t, k) => {
    const ox = gap + (k % perRow) * (tw + gap);
    const oy = gap + Math.floor(k / perRow) * (th + gap);
    for (let y = 0; y < th; y++)
      for (let x = 0; x < tw; x++) {
        const o = ((oy + y) * w0 + ox + x) * 3;
        const i = y * tw + x;
        if (t.channels[0][i] === masked) {
          small.set([255, 0, 255], o);
          continue;
        }
        for (let c = 0; c < 3; c++) {
          const [lo, hi] = stretch[c];
          small[o + c] = Math.max(0, Math.min(255, Math.round(((t.channels[c][i] - lo) / (hi - lo)) * 255)));
        }
        // Dim the margins so the patch core stands out.
        const inCore = x >= margin[0] && x < tw - margin[0] && y >= margin[1] && y < th - margin[1];
        if (!inCore) for (let c = 0; c < 3; c++) small[o + c] = Math.round(small[o + c] * 0.55);
        const onEdge = inCore && (x === margin[0] || x === tw - margin[0] - 1 || y === margin[1] || y === th - margin[1] - 1);
        if (onEdge) small.set([255, 220, 0], o);
      }
  });
  const W = w0 * zoom;
  const H = h0 * zoom;
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const s = (Math.floor(y / zoom) * w0 + Math.floor(x / zoom)) * 3;
      rgb.set(small.subarray(s, s + 3), (y * W + x) * 3);
    }
  return encodePng(W, H, rgb, 3);
}
