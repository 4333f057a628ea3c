/**
 * The import graph of the shipped entry points (the compiled JS that `npm pack` ships):
 * `geotfr/tfrecord` reaches no cloud SDK or other heavy dependency (only node: built-ins, and the
 * native CRC-32C through a guarded require), and nothing reachable from any entry point or the bin
 * lives outside the packaged folders (dist/shared, dist/functions, dist/cli).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { repoRoot } from '../support/oracles.js';

const dist = path.join(repoRoot, 'dist');

/** Every local module reachable from `entry` and every bare specifier they import. */
function walk(entry: string): { local: Set<string>; bare: Map<string, string> } {
  const local = new Set<string>();
  const bare = new Map<string, string>(); // specifier → first importer
  const todo = [entry];
  while (todo.length) {
    const file = todo.pop()!;
    if (local.has(file)) continue;
    local.add(file);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    for (const { fileName: spec } of importedFiles) {
      if (spec.startsWith('.')) {
        const target = path.resolve(path.dirname(file), spec);
        assert.ok(existsSync(target), `${path.relative(dist, file)} imports ${spec}, which does not exist`);
        todo.push(target);
      } else if (!bare.has(spec)) bare.set(spec, path.relative(dist, file));
    }
  }
  return { local, bare };
}

test('geotfr/tfrecord imports only node: built-ins and its own modules', () => {
  const { local, bare } = walk(path.join(dist, 'shared', 'tfrecord', 'index.js'));
  for (const [spec, from] of bare) assert.match(spec, /^node:/, `${from} imports ${spec}: the codec subpath must not pull in dependencies`);
  const files = [...local].map((f) => path.relative(dist, f)).sort();
  // The codec folder plus the leaf modules it checks against: the error type, the options table
  // (GEOTFR_CRC32C) and the limits table (maxRecordBytes); nothing else of the project.
  for (const f of files) assert.match(f, /^shared\/(tfrecord\/[a-z0-9]+|errors|options|limits)\.js$/, `geotfr/tfrecord reaches ${f}`);
  assert.ok(files.includes('shared/tfrecord/framing.js') && files.includes('shared/tfrecord/example.js'));
});

test('every entry point and the bin stay inside the packaged folders', () => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { default: string }>;
    bin: Record<string, string>;
    dependencies: Record<string, string>;
  };
  const entries = [
    ...Object.values(pkg.exports)
      .map((e) => (typeof e === 'string' ? e : e.default))
      .filter((e) => e.endsWith('.js')),
    ...Object.values(pkg.bin),
  ];
  assert.ok(entries.length >= 4);
  for (const e of entries) {
    const { local, bare } = walk(path.join(repoRoot, e));
    for (const f of local)
      assert.match(path.relative(dist, f), /^(shared|functions|cli|bundle)\//, `${e} reaches ${path.relative(repoRoot, f)}, which is not packaged`);
    for (const [spec, from] of bare) {
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      assert.ok(spec.startsWith('node:') || name in pkg.dependencies, `${from} imports ${spec}, which is not a dependency`);
    }
  }
});
