/**
 * Locates the cross-implementation oracles (TensorFlow, GDAL, Earth Engine's real files).
 *
 * Outside CI a missing oracle skips the test loudly (a warning on stderr and a skip reason);
 * under CI=true it fails the test: CI must prove compatibility, not skip it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (works from both test/ and dist/test/). */
export const repoRoot = (() => {
  let d = here;
  while (!existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();
export const sharedDir = process.env.GEOTFR_SHARED ?? path.resolve(repoRoot, '..', 'shared');
export const eeRealDir = path.join(sharedDir, 'fixtures', 'ee-real', 'phen_asynch');
export const inCI = process.env.CI === 'true' || process.env.CI === '1';

const pythonPath = process.env.GEOTFR_PYTHON ?? path.join(repoRoot, '.venv', 'bin', 'python');

/** Returns false (after skipping `t` loudly) when the oracle is missing; throws under CI. */
function need(t: TestContext, ok: boolean, what: string, how: string): boolean {
  if (ok) return true;
  const msg = `${what} is not available (${how})`;
  if (inCI) throw new Error(`CI requires ${msg}`);
  process.stderr.write(`\n*** SKIPPING "${t.name}": ${msg} ***\n`);
  t.skip(msg);
  return false;
}

let tfChecked: boolean | undefined;
export function hasTensorFlow(): boolean {
  if (tfChecked === undefined) tfChecked = existsSync(pythonPath);
  return tfChecked;
}
export const needTensorFlow = (t: TestContext) =>
  need(t, hasTensorFlow(), 'TensorFlow', `expected a Python with tensorflow at ${pythonPath}; run .ci/run or set GEOTFR_PYTHON`);

let gdalChecked: boolean | undefined;
export function hasGdal(): boolean {
  if (gdalChecked === undefined) {
    try {
      execFileSync('gdalinfo', ['--version'], { stdio: 'ignore' });
      gdalChecked = true;
    } catch {
      gdalChecked = false;
    }
  }
  return gdalChecked;
}
export const needGdal = (t: TestContext) => need(t, hasGdal(), 'GDAL', 'apt-get install gdal-bin');

export const needEeFixtures = (t: TestContext) => need(t, existsSync(eeRealDir), "Earth Engine's real files", `expected ${eeRealDir}`);

export interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
}

/** Runs a command, feeding `input` on stdin; rejects on a non-zero exit unless `allowFail`. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv; allowFail?: boolean; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const r = { stdout: Buffer.concat(out), stderr: err, code };
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${err}`));
      else resolve(r);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a Python script (text) with the TensorFlow interpreter; returns stdout as a string. */
export async function python(script: string, args: string[] = [], input?: Uint8Array | string): Promise<string> {
  const r = await run(pythonPath, ['-c', script, ...args], { input, env: { TF_CPP_MIN_LOG_LEVEL: '3', PYTHONWARNINGS: 'ignore' } });
  return r.stdout.toString();
}

/** The compiled tree this test runs from (dist/, or dist-NAME/ while developing in parallel). */
export const distRoot = path.resolve(here, '..', '..');
/** The built CLI: the bundled bin (DIST/bundle/geotfr.js, cli/bundle.ts), what users run. */
export const cliPath = path.join(distRoot, 'bundle', 'geotfr.js');
export function geotfr(args: string[], opts: { input?: string; allowFail?: boolean; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return run(process.execPath, [cliPath, ...args], { allowFail: true, ...opts });
}
