/**
 * The bound the gzip benchmarks compare against (issue 14): node:zlib at a given level on N cores,
 * over the very bytes the export frames. N worker threads each gzip one contiguous Nth of the input
 * (zlib's defaults otherwise: memLevel 8, 32 KiB window), all started together; the time is from
 * handing them their parts to the last one finishing, so thread start-up and reading the input are
 * not in it. MB/s are of uncompressed input, like the export's MB/s of framed bytes.
 *
 * The same threads measure the export's floor (`chunkSeconds`, `inflateSeconds`): the export's own
 * chunk deflater and the source's tile inflate, each alone, so a benchmark can tell the work every
 * export must do from what its pipeline adds.
 *
 * Each thread also reports the CPU time it spent (Linux: /proc/thread-self/stat), so a benchmark on
 * a loaded machine, where two busy threads do not get two cores, can still compare work done.
 */
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const fs = require('node:fs');
// utime + stime of this thread in clock ticks (fields 14, 15 after the parenthesized name); NaN off Linux.
const ticks = () => {
  try {
    const f = fs.readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
};
// The export's own chunk deflater (shared/export/gzipchunks.ts), for the floor's 'chunks' work.
const chunks = workerData.gzipChunks ? import(workerData.gzipChunks) : undefined;
parentPort.on('message', async ({ op, parts, level, memLevel, outBytes }) => {
  const deflateChunk = op === 'chunks' ? (await chunks).deflateChunk : undefined;
  const t0 = ticks();
  let size = 0;
  for (const part of parts) {
    if (op === 'gzip') size += zlib.gzipSync(part, { level, memLevel }).length;
    else if (op === 'chunks') size += deflateChunk(part, level).data.length;
    // 'inflate': each part one source tile, inflated into one buffer of its decoded size plus a byte (zlib-decoder.ts).
    else size += zlib.inflateSync(part, { chunkSize: Math.max(64, outBytes + 1) }).length;
  }
  parentPort.postMessage({ size, cpuTicks: ticks() - t0 });
});
`;

/** Work one thread does: its parts, handed over (transferred) when the clock starts. */
type Message = { op: 'gzip' | 'chunks' | 'inflate'; parts: Uint8Array[]; level?: number; memLevel?: number; outBytes?: number };

/** What N threads took for their share: wall seconds from handing out the work to the last one done, and their CPU. */
export type Timing = { seconds: number; cpuSeconds: number; compressedBytes: number };

/** N warm threads that gzip their part of a buffer (or deflate chunks, or inflate tiles) on demand. */
export class ZlibBound {
  private readonly workers: Worker[];

  /** `gzipChunks`: URL of the built shared/export/gzipchunks.js, for `chunkSeconds` (the export's own deflater). */
  constructor(
    readonly threads: number,
    opts: { gzipChunks?: string } = {},
  ) {
    this.workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true, workerData: { gzipChunks: opts.gzipChunks } }));
  }

  /** Seconds to gzip `buf` at `level`, split into `threads` contiguous parts, one per thread. */
  /** Also the CPU seconds all threads spent (clock ticks of 10 ms: coarse, fine for seconds). */
  /** `memLevel`: zlib's default (8) unless given; the export's own chunks use 9 (shared/export/gzipchunks.ts). */
  seconds(buf: Uint8Array, level: number, memLevel = 8): Promise<Timing> {
    const step = Math.ceil(buf.length / this.threads);
    return this.run(this.workers.map((_, i) => ({ op: 'gzip', parts: [buf.subarray(i * step, Math.min(buf.length, (i + 1) * step))], level, memLevel })));
  }

  /**
   * The export's DEFLATE alone: `chunks` (the framed bytes cut as the plan cuts them) deflated by
   * the export's own `deflateChunk`, dealt round-robin to the threads, with nothing else to do.
   */
  chunkSeconds(chunks: Uint8Array[], level: number): Promise<Timing> {
    return this.run(this.workers.map((_, i) => ({ op: 'chunks', parts: chunks.filter((_, k) => k % this.threads === i), level })));
  }

  /** Inflating a source's tiles alone (zlib streams of `outBytes` each), dealt round-robin to the threads. */
  inflateSeconds(tiles: Uint8Array[], outBytes: number): Promise<Timing> {
    return this.run(this.workers.map((_, i) => ({ op: 'inflate', parts: tiles.filter((_, k) => k % this.threads === i), outBytes })));
  }

  private async run(messages: Message[]): Promise<Timing> {
    // Copies made before the clock starts, each with its own ArrayBuffer to transfer (Buffer's slice() is a view).
    const owned = messages.map((m) => ({ ...m, parts: m.parts.map((p) => new Uint8Array(p)) }));
    const t0 = performance.now();
    const done = await Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise<{ size: number; cpuTicks: number }>((resolve, reject) => {
            const done = (r: { size: number; cpuTicks: number }) => {
              w.off('error', fail);
              resolve(r);
            };
            const fail = (err: unknown) => {
              w.off('message', done);
              reject(err);
            };
            w.once('message', done);
            w.once('error', fail);
            w.postMessage(
              owned[i],
              owned[i].parts.map((p) => p.buffer as ArrayBuffer),
            );
          }),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    // Linux's USER_HZ is 100 on every common configuration.
    return { seconds, cpuSeconds: done.reduce((a, r) => a + r.cpuTicks, 0) / 100, compressedBytes: done.reduce((a, r) => a + r.size, 0) };
  }

  close(): Promise<number[]> {
    return Promise.all(this.workers.map((w) => w.terminate()));
  }
}
