/**
 * Temporaries and their reclamation (docs/semantics.md §5 "Temporaries"): a run leaves nothing behind
 * on success, and the next run at the same place removes what a killed run left, once it is old and
 * its process is gone.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Age after which an orphaned temporary (its process gone) is reclaimed. */
export const STALE_TMP_MS = 60 * 60 * 1000;

/** Whether process `pid` exists on this machine (EPERM: it exists but belongs to another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A private temporary directory's name prefix carrying its owner's pid: `geotfr-cog-<pid>-`. */
export function ownedTmpPrefix(kind: string): string {
  return `geotfr-${kind}-${process.pid}-`;
}

/**
 * Removes `dir/geotfr-<kind>-<pid>-*` directories not modified for `maxAgeMs` whose process no longer
 * runs (an ingest killed while spilling tiles). Errors are ignored: reclaiming is best effort and must
 * never fail the run that does it.
 */
export async function reclaimOwnedTmpDirs(dir: string, kind: string, maxAgeMs = STALE_TMP_MS, now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const re = new RegExp(`^geotfr-${kind}-(\\d+)-`);
  const removed: string[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    const p = path.join(dir, name);
    try {
      const st = await fs.stat(p);
      // A spill file's writes do not touch its directory's mtime: look at the newest entry inside too.
      let newest = st.mtimeMs;
      if (st.isDirectory()) for (const f of await fs.readdir(p)) newest = Math.max(newest, (await fs.stat(path.join(p, f))).mtimeMs);
      if (now - newest < maxAgeMs) continue;
      await fs.rm(p, { recursive: true, force: true });
      removed.push(p);
    } catch {
      // vanished meanwhile, or not ours to remove
    }
  }
  return removed;
}
