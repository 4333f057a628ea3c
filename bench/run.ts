/**
 * `npm run bench`: runs every benchmark in turn (each is also runnable alone as `node dist/bench/NAME.js`)
 * and leaves their markdown tables on stdout. `GEOTFR_BENCH=codec,export` selects some.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const all = ['codec', 'export', 'ingest', 'cog-deflate', 'ingest-cloud', 'memory', 'table', 'patches', 'cloud'];
const chosen = process.env.GEOTFR_BENCH ? process.env.GEOTFR_BENCH.split(',') : all;
let failed = 0;
for (const name of chosen) {
  const file = path.join(here, `${name}.js`);
  if (!existsSync(file)) {
    console.error(`bench ${name}: ${file} not found`);
    failed++;
    continue;
  }
  console.log(`\n## bench: ${name}\n`);
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit', env: { GEOTFR_PROGRESS: '0', ...process.env } });
  if (r.status !== 0) {
    console.error(`bench ${name} exited ${r.status}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
