#!/usr/bin/env node
/**
 * The entry point of the bundled CLI (`dist/bundle/geotfr.js`, the package's bin; built by
 * cli/bundle.ts): tells the thread pools where the bundled worker entry points are, then runs the
 * CLI. The unbundled `dist/cli/geotfr.js` runs the same code from its separate module files.
 */
(globalThis as { geotfrWorkerEntries?: Record<string, URL> }).geotfrWorkerEntries = {
  export: new URL('./shared/export/pool-worker.js', import.meta.url),
  patches: new URL('./shared/patches/pool-worker.js', import.meta.url),
};
await import('./geotfr.js');
