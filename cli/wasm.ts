/**
 * Assembles the WebAssembly sources into the TypeScript modules that carry their bytes
 * (`npm run wasm`, after editing a `.wat`): shared/cog/predictor.wat → shared/cog/predictor-wasm.ts.
 * The bytes travel in a module, not a `.wasm` file beside it, so the bundle and the library find
 * them without a file lookup; test/shared/cog/predictor-wasm.test.ts assembles the `.wat` again
 * and fails when the committed bytes are not its assembly.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleWat, wasmModuleSource } from './wat.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

for (const name of ['shared/cog/predictor']) {
  const wat = await fs.readFile(path.join(repo, `${name}.wat`), 'utf8');
  const bytes = await assembleWat(`${name}.wat`, wat);
  await fs.writeFile(path.join(repo, `${name}-wasm.ts`), wasmModuleSource(`${path.basename(name)}.wat`, bytes));
  process.stdout.write(`${name}-wasm.ts: ${bytes.length} bytes of WebAssembly\n`);
}
