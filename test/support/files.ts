/**
 * What a directory tree holds, for the "nothing left behind" checks.
 */
import { promises as fs } from 'node:fs';
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
