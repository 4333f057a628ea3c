import type { Command } from 'commander';
import { action, commandSignal } from '../main.js';
import { HELP } from '../help.js';

/** `geotfr ingest-table --out OUT.geojson|OUT.csv FILE...` (docs/semantics.md §8, §9): TFRecords → a table. */
export function register(program: Command): void {
  program
    .command('ingest-table')
    .addHelpText('after', HELP.ingestTable)
    .description('turn TFRecord files of tf.train.Examples into a GeoJSON FeatureCollection or CSV (longitude/latitude → point geometry)')
    .requiredOption('--out <file>', 'output .geojson, .json, .geojsonl, .ndjson or .csv (local, file:// or gs://)')
    .option('--x-column <name>', 'feature holding the point x / longitude', 'longitude')
    .option('--y-column <name>', 'feature holding the point y / latitude', 'latitude')
    .argument('<files...>', 'TFRecord files (plain or gzip), read in order')
    .action(
      action(async (files: string[], o: { out: string; xColumn: string; yColumn: string }) => {
        const { ingestTable } = await import('../../shared/table/ingest.js');
        return ingestTable({ files, out: o.out, xColumn: o.xColumn, yColumn: o.yColumn, signal: commandSignal(), progress: true });
      }),
    );
}
