/**
 * Runs the built CLI in a child process and reports its peak resident memory, for the memory-bomb
 * tests (docs/limits.md): a preloaded probe writes `process.resourceUsage().maxRSS` when the process
 * exits (also on an error exit), so memory is measured, not timed. A process killed by the V8 heap
 * cap writes nothing, and then `peakRssMiB` is undefined (the test fails: memory was not bounded).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { geotfr, type RunResult } from '../../support/oracles.js';
import { tempDir } from '../../support/rasters.js';

const PROBE = `'use strict';
process.on('exit', () => {
  try {
    require('node:fs').writeFileSync(require('node:path').join(process.env.GEOTFR_TEST_RSS_DIR, 'rss-' + process.pid), String(process.resourceUsage().maxRSS));
  } catch {}
});
`;

/**
 * Peak RSS a run may reach: a Node process with geotfr loaded (about 100 MiB here), plus room for
 * the small inputs, and far below what any of the bombs costs without its limit (≥ 512 MiB).
 */
export const RSS_BOUND_MIB = 200;

export interface MeasuredRun extends RunResult {
  /** Peak RSS of the CLI process (and of any process it started, the largest), MiB. */
  peakRssMiB: number | undefined;
}

/** `geotfr ARGS` with its peak RSS; the V8 heap is also capped (`--max-old-space-size`) so heap growth fails loudly. */
export async function geotfrMeasured(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<MeasuredRun> {
  const dir = await tempDir('geotfr-rss-');
  try {
    const probe = path.join(dir, 'probe.cjs');
    await fs.writeFile(probe, PROBE);
    const r = await geotfr(args, {
      cwd: opts.cwd ?? dir, // a run leaves nothing in the test's working directory, whatever it writes there
      env: { GEOTFR_PROGRESS: '0', ...opts.env, GEOTFR_TEST_RSS_DIR: dir, NODE_OPTIONS: `--require=${probe} --max-old-space-size=192` },
    });
    let peak: number | undefined;
    for (const f of await fs.readdir(dir)) {
      if (!f.startsWith('rss-')) continue;
      const kb = Number(await fs.readFile(path.join(dir, f), 'utf8'));
      peak = Math.max(peak ?? 0, kb / 1024);
    }
    return { ...r, peakRssMiB: peak };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
