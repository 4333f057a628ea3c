import type { Command } from 'commander';
import { action, commandSignal, parsePair } from '../main.js';
import { HELP } from '../help.js';
import { ingestImage } from '../../shared/ingest/image.js';

/**
 * `geotfr ingest-image --mixer MIXER.json --out OUT.tif [--kernel-size X,Y] FILE...` (docs/semantics.md §7, §9):
 * prediction TFRecords + the export's mixer → a Cloud-Optimized GeoTIFF.
 */
export function register(program: Command): void {
  program
    .command('ingest-image')
    .addHelpText('after', HELP.ingestImage)
    .description('turn prediction TFRecords (one tf.train.Example per patch, in patch order) and the export mixer into a Cloud-Optimized GeoTIFF')
    .requiredOption('--mixer <file>', "the export's mixer JSON (local, file:// or gs://)")
    .requiredOption('--out <file>', 'output GeoTIFF (local, file:// or gs://); written atomically')
    .option('--kernel-size <x,y>', 'kernel of tile-sized predictions, whose floor(k/2) margins are cropped (default: from the export manifest)')
    .argument('<files...>', 'prediction TFRecord files (plain or gzip), read in the given order')
    .action(
      action(async (files: string[], o: { mixer: string; out: string; kernelSize?: string }) => {
        const kernelSize = o.kernelSize === undefined ? undefined : parsePair(o.kernelSize, '--kernel-size');
        return ingestImage({ files, mixer: o.mixer, out: o.out, kernelSize, signal: commandSignal(), progress: true });
      }),
    );
}
