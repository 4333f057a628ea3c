/**
 * Storage benchmark: what the Cloud Storage adapter (shared/storage/gcs.ts) costs over the local-directory
 * store, through the real `@google-cloud/storage` client against our GCS JSON API server
 * (test/gcs-server/, run in its own process as in `npm run stack`), bodies in memory or on disk.
 * Baseline: LocalBlobStore on the same machine.
 *
 * Per store: streamed write through createWriter (1 MiB writes; GCS: resumable, 16 MiB chunks),
 * whole read(), readStream(), and 64 random 1 MiB readRange() calls (COG-style access).
 * Medians of GEOTFR_BENCH_RUNS (default 3) runs over a GEOTFR_BENCH_MB (default 128) MiB object.
 * Run: `node dist/bench/gcs.js` (or `GEOTFR_BENCH=gcs npm run bench`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BlobStore } from '../shared/storage/port.js';
import { LocalBlobStore } from '../shared/storage/local.js';
import { median } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const sizeMiB = Number(process.env.GEOTFR_BENCH_MB ?? 128);
const runs = Number(process.env.GEOTFR_BENCH_RUNS ?? 3);

/** Seeded, incompressible-ish bytes (no store compresses, but keep it honest). */
function payload(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let s = 42;
  for (let i = 0; i < n; i += 4) {
    s = (s * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(s, i);
  }
  return b;
}

async function startServer(dir?: string): Promise<{ host: string; proc: ChildProcess }> {
  const args = [path.join(here, '..', 'test', 'gcs-server', 'main.js'), '--bucket', 'bench-bucket', ...(dir ? ['--dir', dir] : [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const host = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /GCS READY (\{.*\})/.exec(buf);
      if (m) resolve((JSON.parse(m[1]) as { host: string }).host);
    });
    proc.once('exit', (code) => reject(new Error(`gcs server exited ${code}`)));
  });
  return { host, proc };
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function measure(store: BlobStore, data: Buffer): Promise<Record<string, number>> {
  const res: Record<string, number[]> = { write: [], read: [], readStream: [], readRange: [] };
  const mb = data.length / MiB;
  for (let r = 0; r < runs; r++) {
    const key = `bench/obj-${r}.bin`;
    res.write.push(
      mb /
        (await timeIt(async () => {
          const w = await store.createWriter(key);
          for (let o = 0; o < data.length; o += MiB) {
            if (!w.stream.write(data.subarray(o, o + MiB))) await new Promise((ok) => w.stream.once('drain', ok));
          }
          await w.commit();
        })),
    );
    res.read.push(
      mb /
        (await timeIt(async () => {
          const b = await store.read(key);
          if (b.length !== data.length) throw new Error('short read');
        })),
    );
    res.readStream.push(
      mb /
        (await timeIt(async () => {
          let n = 0;
          for await (const c of store.readStream(key)) n += (c as Buffer).length;
          if (n !== data.length) throw new Error('short stream');
        })),
    );
    let s = 7 + r;
    const ranges = Array.from({ length: 64 }, () => (s = (s * 1103515245 + 12345) >>> 0) % (data.length - MiB));
    res.readRange.push(
      64 /
        (await timeIt(async () => {
          for (const start of ranges) {
            const b = await store.readRange(key, start, start + MiB);
            if (b.length !== MiB) throw new Error('short range');
          }
        })),
    );
    await store.delete(key);
  }
  return Object.fromEntries(Object.entries(res).map(([k, v]) => [k, median(v)]));
}

async function main(): Promise<void> {
  const data = payload(sizeMiB * MiB);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'geotfr-bench-gcs-'));
  const rows: [string, Record<string, number>][] = [];
  try {
    rows.push(['LocalBlobStore (baseline)', await measure(new LocalBlobStore(path.join(tmp, 'local')), data)]);
    for (const mode of ['memory', 'dir'] as const) {
      const srv = await startServer(mode === 'dir' ? path.join(tmp, 'srv') : undefined);
      try {
        process.env.STORAGE_EMULATOR_HOST = srv.host;
        const { GcsBlobStore } = await import('../shared/storage/gcs.js');
        rows.push([`GcsBlobStore → test server (${mode})`, await measure(new GcsBlobStore('bench-bucket'), data)]);
      } finally {
        srv.proc.kill('SIGTERM');
        await new Promise((r) => srv.proc.once('exit', r));
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const fmt = (x: number) => x.toFixed(0);
  console.log(
    `Object ${sizeMiB} MiB, medians of ${runs} runs, ${os.cpus().length} cores, Node ${process.version}; MB/s (MiB/s); readRange: 1 MiB ranges per second.\n`,
  );
  console.log('| store | write (createWriter) | read() | readStream() | readRange 1 MiB/s |');
  console.log('|---|---|---|---|---|');
  for (const [name, r] of rows) console.log(`| ${name} | ${fmt(r.write)} | ${fmt(r.read)} | ${fmt(r.readStream)} | ${fmt(r.readRange)} |`);
}

await main();
