/**
 * The bound the gzip benchmarks compare against (issue 14): node:zlib at a given level on N cores,
 * over the very bytes the export frames. N worker threads each gzip one contiguous Nth of the input
 * (zlib's defaults otherwise: memLevel 8, 32 KiB window), all started together; the time is from
 * handing them their parts to the last one finishing, so thread start-up and reading the input are
 * not in it. MB/s are of uncompressed input, like the export's MB/s of framed bytes.
 *
 * Each thread also reports the CPU time it spent (Linux: /proc/thread-self/stat), so a benchmark on
 * a loaded machine, where two busy threads do not get two cores, can still compare work done.
 */
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort } = require('node:worker_threads');
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
parentPort.on('message', ({ part, level, memLevel }) => {
  const t0 = ticks();
  const out = zlib.gzipSync(part, { level, memLevel });
  parentPort.postMessage({ size: out.length, cpuTicks: ticks() - t0 });
});
`;

/** N warm threads that gzip their part of a buffer on demand. */
export class ZlibBound {
  private readonly workers: Worker[];

  constructor(readonly threads: number) {
    this.workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true }));
  }

  /** Seconds to gzip `buf` at `level`, split into `threads` contiguous parts, one per thread. */
  /** Also the CPU seconds all threads spent (clock ticks of 10 ms: coarse, fine for seconds). */
  /** `memLevel`: zlib's default (8) unless given; the export's own chunks use 9 (shared/export/gzipchunks.ts). */
  async seconds(buf: Uint8Array, level: number, memLevel = 8): Promise<{ seconds: number; cpuSeconds: number; compressedBytes: number }> {
    const n = this.workers.length;
    const step = Math.ceil(buf.length / n);
    // Copies made before the clock starts, each with its own ArrayBuffer to transfer (Buffer's slice() is a view).
    const parts = this.workers.map((_, i) => new Uint8Array(buf.subarray(i * step, Math.min(buf.length, (i + 1) * step))));
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
            w.postMessage({ part: parts[i], level, memLevel }, [parts[i].buffer as ArrayBuffer]);
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
