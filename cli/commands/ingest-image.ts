import type { Command } from 'commander';
import { action, commandSignal, parsePair } from '../main.js';
import { ingestImage } from '../../shared/ingest/image.js';
import { GeotfrError } from '../../shared/errors.js';

/**
 * `geotfr ingest-image --mixer MIXER.json --out OUT.tif [--kernel-size X,Y] [--tile-size PX] FILE...` (docs/semantics.md §7, §9):
 * prediction TFRecords + the export's mixer → a Cloud-Optimized GeoTIFF.
 */
export function register(program: Command): void {
  program
    .command('ingest-image')
    .description('turn prediction TFRecords (one tf.train.Example per patch, in patch order) and the export mixer into a Cloud-Optimized GeoTIFF')
    .requiredOption('--mixer <file>', "the export's mixer JSON (local, file:// or gs://)")
    .requiredOption('--out <file>', 'output GeoTIFF (local, file:// or gs://); written atomically')
    .option('--kernel-size <x,y>', 'kernel of tile-sized predictions, whose floor(k/2) margins are cropped (default: from the export manifest)')
    .option('--tile-size <px>', 'COG tile size, a multiple of 16 (default 512, as the cloud ingest)')
    .argument('<files...>', 'prediction TFRecord files (plain or gzip), read in the given order')
    .action(
      action(async (files: string[], o: { mixer: string; out: string; kernelSize?: string; tileSize?: string }) => {
        const kernelSize = o.kernelSize === undefined ? undefined : parsePair(o.kernelSize, '--kernel-size');
        const tileSize = o.tileSize === undefined ? undefined : Number(o.tileSize);
        if (tileSize !== undefined && !(Number.isInteger(tileSize) && tileSize >= 16 && tileSize % 16 === 0 && tileSize <= 4096))
          throw new GeotfrError('BAD_REQUEST', `--tile-size must be a multiple of 16 up to 4096, got ${o.tileSize}`, { field: '--tile-size' });
        return ingestImage({ files, mixer: o.mixer, out: o.out, kernelSize, tileSize, signal: commandSignal(), progress: true });
      }),
    );
}
