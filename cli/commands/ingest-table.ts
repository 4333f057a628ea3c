import type { Command } from 'commander';
import { action } from '../main.js';
import { GeotfrError } from '../../shared/errors.js';

/** `geotfr ingest-table` (SPEC §9). */
export function register(program: Command): void {
  program
    .command('ingest-table')
    .description('not implemented yet')
    .allowUnknownOption()
    .argument('[args...]')
    .action(action(async () => {
      throw new GeotfrError('INTERNAL', 'ingest-table is not implemented yet');
    }));
}
