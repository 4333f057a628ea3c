import type { Command } from 'commander';
import { action } from '../main.js';
import { GeotfrError } from '../../shared/errors.js';

/** `geotfr ingest-image` (SPEC §9). */
export function register(program: Command): void {
  program
    .command('ingest-image')
    .description('not implemented yet')
    .allowUnknownOption()
    .argument('[args...]')
    .action(action(async () => {
      throw new GeotfrError('INTERNAL', 'ingest-image is not implemented yet');
    }));
}
