import type { Command } from 'commander';
import { action, commandSignal, readRequest } from '../main.js';
import { HELP } from '../help.js';
import { GeotfrError } from '../../shared/errors.js';
import { describeCache } from '../budget.js';

/** `geotfr export-image REQUEST.json [--workers N]` (docs/semantics.md §2, §9). */
export function register(program: Command): void {
  program
    .command('export-image')
    .addHelpText('after', HELP.exportImage)
    .description('export a GeoTIFF/COG to Earth Engine-compatible TFRecord patches and mixer (request: docs/semantics.md §2; "-" reads stdin)')
    .argument('<request>', 'export request JSON file, or - for stdin')
    .option('--workers <n>', 'worker threads (default: none on 1–2 cores, else one per core; 0 = none; docs/export.md "Threads")')
    .option('--overwrite', 'replace an earlier export under the same prefix, once the new one is complete (docs/semantics.md §5)')
    .option('--verbose', 'report the source block cache: hits, decodes, re-decodes (stderr and the summary)')
    .option('--dry-run', 'resolve the grid and print files, patches, shards, bytes and a time estimate; read no pixel, write nothing')
    .action(
      action(async (file: string, opts: { workers?: string; overwrite?: boolean; verbose?: boolean; dryRun?: boolean }) => {
        let workers: number | undefined;
        if (opts.workers !== undefined) {
          workers = Number(opts.workers);
          if (!/^\d+$/.test(opts.workers) || workers > 256)
            throw new GeotfrError('BAD_REQUEST', `--workers expects an integer 0..256, got ${JSON.stringify(opts.workers)}`, { field: '--workers' });
        }
        const request = await readRequest(file);
        // The worker threads start loading while this thread loads the exporter and plans.
        const { defaultWorkers, prestartWorkers, dropPrestarted } = await import('../../shared/export/spawn.js');
        if (!opts.dryRun) prestartWorkers(workers ?? defaultWorkers());
        const { dryRunImageExport, runImageExport, wantsDryRun } = await import('../../shared/export/run.js');
        if (opts.dryRun || wantsDryRun(request)) {
          await dropPrestarted();
          return dryRunImageExport(request, { workers, signal: commandSignal() });
        }
        const summary = await runImageExport(request, { workers, signal: commandSignal(), progress: true, verbose: opts.verbose, overwrite: opts.overwrite });
        if (opts.verbose && summary.blockCache) process.stderr.write(`geotfr export-image: ${describeCache(summary.blockCache)}\n`);
        return summary;
      }),
    );
}
