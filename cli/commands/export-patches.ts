import type { Command } from 'commander';
import { action, commandSignal, readRequest } from '../main.js';
import { GeotfrError } from '../../shared/errors.js';
import { HELP } from '../help.js';

/** `geotfr export-patches REQUEST.json [--workers N]` (docs/semantics.md §12, §9): patches around points or sampled pixels. */
export function register(program: Command): void {
  program
    .command('export-patches')
    .description('export K×K patches around labelled points, or sampled pixels, as PREFIX.tfrecord.gz (request: docs/semantics.md §12; "-" reads stdin)')
    .argument('<request>', 'patch export request JSON file, or - for stdin')
    .option('--workers <n>', 'worker threads (default: the number of cores; 0 = none)')
    .addHelpText('after', HELP.exportPatches)
    .action(
      action(async (file: string, opts: { workers?: string }) => {
        let workers: number | undefined;
        if (opts.workers !== undefined) {
          workers = Number(opts.workers);
          if (!/^\d+$/.test(opts.workers) || workers > 256)
            throw new GeotfrError('BAD_REQUEST', `--workers expects an integer 0..256, got ${JSON.stringify(opts.workers)}`, { field: '--workers' });
        }
        const request = await readRequest(file);
        const { runPatchExport } = await import('../../shared/patches/run.js');
        return runPatchExport(request, { workers, signal: commandSignal(), progress: true });
      }),
    );
}
