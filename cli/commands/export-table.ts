import type { Command } from 'commander';
import { action, commandSignal, readRequest } from '../main.js';
import { HELP } from '../help.js';

/** `geotfr export-table REQUEST.json` (docs/semantics.md §8, §9): a table → one `PREFIX.tfrecord.gz`. */
export function register(program: Command): void {
  program
    .command('export-table')
    .addHelpText('after', HELP.exportTable)
    .description('export a GeoJSON / newline-delimited GeoJSON / CSV table as PREFIX.tfrecord.gz (one tf.train.Example per feature)')
    .argument('<request>', 'request JSON file ({"collection", "bucket", "fileNamePrefix", "fileFormat", "selectors", "geometry"}), or - for stdin')
    .action(
      action(async (requestPath: string) => {
        const request = await readRequest(requestPath);
        const { runTableExport } = await import('../../shared/table/export.js');
        return runTableExport(request, { signal: commandSignal(), progress: true });
      }),
    );
}
