/**
 * Bundles the CLI and its worker threads' entry points into `dist/bundle/` after `tsc` (`npm run
 * build`): `geotfr.js` (the bin), `shared/export/pool-worker.js`, `shared/patches/pool-worker.js`
 * and the chunks they share. Start-up is about a quarter of a small export's time on two cores, and most of
 * it was Node resolving, reading and linking ~300 module files (zod alone loads 95); one file per
 * entry and per lazily loaded command cut 70–90 ms of a 0.9–1.1 s export (docs/export.md, "Start-up: a bundled bin").
 *
 * Left outside the bundle, loaded from node_modules as before: packages that find files of their
 * own at run time (lerc's and zstddec's WebAssembly, @node-rs/crc32's native addon, epsg-index's
 * definitions), the Google Cloud clients (never loaded by local commands), protobufjs and pako.
 * The library (`dist/shared/`) is not bundled: importers get its module files, typed.
 */
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  absWorkingDir: dist,
  entryPoints: {
    geotfr: 'cli/bundled.js',
    'shared/export/pool-worker': 'shared/export/pool-worker.js',
    'shared/patches/pool-worker': 'shared/patches/pool-worker.js',
  },
  outdir: 'bundle',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['lerc', 'zstddec', '@node-rs/crc32', 'epsg-index', '@google-cloud/*', 'protobufjs', 'protobufjs/*', 'pako'],
  // Bundled CommonJS packages (commander, proj4) call require() for Node's built-ins.
  banner: { js: "import { createRequire as __geotfrCreateRequire } from 'node:module'; const require = __geotfrCreateRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
