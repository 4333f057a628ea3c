#!/usr/bin/env node
/**
 * `geotfr`: the command line (docs/semantics.md §9). Each command lives in `cli/commands/` and imports
 * what it runs only when it runs, so start-up loads one command's modules, not every command's.
 */
import { Command } from 'commander';
import { OPTIONS, setFlagValues, type OptionName, type OptionSpec } from '../shared/options.js';
import { register as inspect } from './commands/inspect.js';
import { register as exportImage } from './commands/export-image.js';
import { register as ingestImage } from './commands/ingest-image.js';
import { register as exportTable } from './commands/export-table.js';
import { register as ingestTable } from './commands/ingest-table.js';
import { register as exportPatches } from './commands/export-patches.js';

const program = new Command('geotfr')
  .description('Earth Engine-compatible TFRecord export and ingest for your own rasters and tables')
  .version('0.1.0')
  .showHelpAfterError()
  // Set before the commands are added so that subcommands inherit it: usage errors exit 2.
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });
// Settings that have a flag (shared/options.ts) are global options; a flag wins over its env var.
const flagged = (Object.entries(OPTIONS) as [OptionName, OptionSpec<unknown>][]).filter(([, o]) => o.flag);
for (const [, o] of flagged) program.option(`${o.flag} <value>`, `${o.doc} (env ${o.env}; docs/cloud.md, Configuration)`);
program.hook('preAction', (cmd) => {
  const opts = cmd.optsWithGlobals() as Record<string, string | undefined>;
  const camel = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
  setFlagValues(Object.fromEntries(flagged.map(([name, o]) => [name, opts[camel(o.flag!)]])));
});
for (const reg of [exportImage, ingestImage, exportTable, ingestTable, exportPatches, inspect]) reg(program);
await program.parseAsync(process.argv);
