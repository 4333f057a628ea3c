/** Statistics and measuring shared by the benchmarks. */
import { spawnSync } from 'node:child_process';

/** Median of `xs`: the mean of the two middle values for an even count, NaN for none. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One whole-process measurement: wall seconds, CPU seconds (all threads), peak RSS, stdout. */
export interface Measure {
  seconds: number;
  /** User + system CPU seconds of the whole process (all threads). */
  cpuSeconds: number;
  rssMB: number;
  out: string;
}

/** Runs a command under /usr/bin/time (progress off): whole-process wall and CPU seconds, peak RSS. Throws if it fails. */
export function timed(cmd: string, argv: string[]): Measure {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'RSSKB=%M CPU=%U+%S', cmd, ...argv], {
    encoding: 'utf8',
    env: { ...process.env, GEOTFR_PROGRESS: '0', TF_CPP_MIN_LOG_LEVEL: '3' },
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const m = /RSSKB=(\d+) CPU=([\d.]+)\+([\d.]+)/.exec(r.stderr);
  return { seconds, rssMB: m ? Number(m[1]) / 1024 : NaN, cpuSeconds: m ? Number(m[2]) + Number(m[3]) : NaN, out: r.stdout };
}
