import type { Command } from 'commander';
import { action, commandSignal } from '../main.js';
import { HELP } from '../help.js';

/**
 * `geotfr inspect FILE… [--json]` (docs/semantics.md §9): record count, features with type and length, and the
 * TensorFlow parse spec. Prints a readable report, or with `--json` one JSON line
 * `{"files", "records", "features": {NAME: {type, length, …}}, …}` (features in first-record order).
 */
export function register(program: Command): void {
  program
    .command('inspect')
    .addHelpText('after', HELP.inspect)
    .description('records, features, types, lengths, and the TensorFlow parse spec to use')
    .argument('[files...]', 'TFRecord files (plain or gzip; local path, file:// or gs://)')
    .option('--json', 'print one line of JSON instead of the report')
    .action(
      action(async (files: string[], o: { json?: boolean }) => {
        const { formatReport, inspectFiles } = await import('../../shared/inspect.js');
        const report = await inspectFiles(files, { signal: commandSignal(), progress: true });
        if (o.json) return report;
        process.stdout.write(formatReport(report));
      }),
    );
}
