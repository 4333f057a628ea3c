import type { Command } from 'commander';
import { action, commandSignal, parsePair } from '../main.js';
import { HELP } from '../help.js';
import { GeotfrError } from '../../shared/errors.js';

/**
 * `geotfr ingest-image --mixer MIXER.json --out OUT.tif [--kernel-size X,Y] [--tile-size PX] FILE...` (docs/semantics.md §7, §9):
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
    .option('--tile-size <px>', 'COG tile size, a multiple of 16 (default 512, as the cloud ingest)')
    .option('--nodata <value>', 'written as GDAL_NODATA and left out of overview averages (a number, or nan)')
    .option('--depth <D>', 'features of D patches (or tiles) of values are [D, h, w]: D bands NAME_0 … NAME_{D-1}')
    .argument('<files...>', 'prediction TFRecord files (plain or gzip), read in the given order')
    .action(
      action(async (files: string[], o: { mixer: string; out: string; kernelSize?: string; tileSize?: string; nodata?: string; depth?: string }) => {
        const kernelSize = o.kernelSize === undefined ? undefined : parsePair(o.kernelSize, '--kernel-size');
        const tileSize = o.tileSize === undefined ? undefined : Number(o.tileSize);
        if (tileSize !== undefined && !(Number.isInteger(tileSize) && tileSize >= 16 && tileSize % 16 === 0 && tileSize <= 4096))
          throw new GeotfrError('BAD_REQUEST', `--tile-size must be a multiple of 16 up to 4096, got ${o.tileSize}`, { field: '--tile-size' });
        let nodata: number | undefined;
        if (o.nodata !== undefined) {
          const v = o.nodata.trim();
          nodata = /^nan$/i.test(v) ? NaN : v === '' ? NaN : Number(v);
          if (Number.isNaN(nodata) && !/^nan$/i.test(v))
            throw new GeotfrError('BAD_REQUEST', `--nodata must be a number or nan, got ${JSON.stringify(o.nodata)}`, { field: '--nodata' });
        }
        const depth = o.depth === undefined ? undefined : Number(o.depth);
        if (depth !== undefined && !(Number.isInteger(depth) && depth >= 1))
          throw new GeotfrError('BAD_REQUEST', `--depth must be a positive integer, got ${o.depth}`, { field: '--depth' });
        const { ingestImage } = await import('../../shared/ingest/image.js');
        return ingestImage({ files, mixer: o.mixer, out: o.out, kernelSize, tileSize, nodata, depth, signal: commandSignal(), progress: true });
      }),
    );
}
