/**
 * What a directory tree holds, for the "nothing left behind" checks.
 */
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Paths under `dir`, relative to it and sorted: every file at any depth (hidden ones such as
 * `.geotfr/…` included), plus the directories with `dirs: true` (otherwise an empty directory
 * leaves no trace). [] if `dir` does not exist. Safe to call while a process writes and removes
 * files there.
 */
export async function listFiles(dir: string, opts: { dirs?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // not there, or removed mid-walk
      throw err;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (!e.isDirectory()) out.push(path.relative(dir, p));
      else {
        if (opts.dirs) out.push(path.relative(dir, p));
        await walk(p);
      }
    }
  };
  await walk(dir);
  return out.sort();
}

const made: string[] = [];
let hooked = false;

/** Removes `dir` when the test file's process exits (pass or fail); returns it. */
export function removeOnExit(dir: string): string {
  made.push(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const m of made) rmSync(m, { recursive: true, force: true });
    });
  }
  return dir;
}

/**
 * A fresh `$TMPDIR/geotfr-<tag>-XXXXXX` directory, removed when the test file's process exits, so a
 * test run leaves no `geotfr-*` folders behind (test/run.mjs checks).
 */
export function tempDir(tag: string): string {
  return removeOnExit(mkdtempSync(path.join(tmpdir(), `geotfr-${tag}-`)));
}
