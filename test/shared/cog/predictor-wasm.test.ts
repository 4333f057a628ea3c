/**
 * The WebAssembly predictor's committed bytes (shared/cog/predictor-wasm.ts) are the assembly of its
 * source (shared/cog/predictor.wat), so the reviewed text is what runs: wabt assembles the `.wat`
 * again here and the generated module must come out character for character.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleWat, wasmModuleSource } from '../../../cli/wat.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

test('predictor-wasm.ts is the assembly of predictor.wat (run `npm run wasm` after editing the .wat)', async () => {
  const wat = await fs.readFile(path.join(repo, 'shared/cog/predictor.wat'), 'utf8');
  const committed = await fs.readFile(path.join(repo, 'shared/cog/predictor-wasm.ts'), 'utf8');
  const bytes = await assembleWat('shared/cog/predictor.wat', wat);
  assert.ok(WebAssembly.validate(bytes), 'the assembled module does not validate');
  assert.equal(committed, wasmModuleSource('predictor.wat', bytes));
});
