// Runs every compiled test (dist/test/**/*.test.js) with node's own test runner.
// Emulator-backed tests live under dist/test/stack and need the services .ci/run starts;
// GEOTFR_TEST_FILTER=substring narrows the run while developing.
import { readdirSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', process.env.GEOTFR_DIST ?? 'dist', 'test');
const files = [];
(function walk(d) {
  for (const name of readdirSync(d).sort()) {
    const p = path.join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(root);
const filter = process.env.GEOTFR_TEST_FILTER;
const chosen = filter ? files.filter((f) => f.includes(filter)) : files;
if (!chosen.length) {
  console.error(`no test files under ${root}${filter ? ` matching ${filter}` : ''}`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...chosen], {
  stdio: 'inherit',
  env: { METADATA_SERVER_DETECTION: 'none', ...process.env },
});
process.exit(r.status ?? 1);
