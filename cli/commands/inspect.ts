import type { Command } from 'commander';
import { action } from '../main.js';
import { GeotfrError } from '../../shared/errors.js';

/** `geotfr inspect` (SPEC §9). */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('not implemented yet')
    .allowUnknownOption()
    .argument('[args...]')
    .action(action(async () => {
      throw new GeotfrError('INTERNAL', 'inspect is not implemented yet');
    }));
}
