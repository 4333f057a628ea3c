import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { action, commandSignal } from '../main.js';
import { GeotfrError, asGeotfrError } from '../../shared/errors.js';
import { runTableExport } from '../../shared/table/export.js';

/** `geotfr export-table REQUEST.json` (SPEC §8, §9): a table → one `PREFIX.tfrecord.gz`. */
export function register(program: Command): void {
  program
    .command('export-table')
    .description('export a GeoJSON / newline-delimited GeoJSON / CSV table as PREFIX.tfrecord.gz (one tf.train.Example per feature)')
    .argument('<request>', 'request JSON file ({"collection", "bucket", "fileNamePrefix", "fileFormat", "selectors", "geometry"}), or - for stdin')
    .action(
      action(async (requestPath: string) => {
        let text: string;
        try {
          text = requestPath === '-' ? await readStdin() : await fs.readFile(requestPath, 'utf8');
        } catch (err) {
          throw asGeotfrError(err, { file: requestPath });
        }
        let request: unknown;
        try {
          request = JSON.parse(text);
        } catch (err) {
          throw new GeotfrError('BAD_REQUEST', `request is not valid JSON (${(err as Error).message})`, { file: requestPath });
        }
        const s = await runTableExport(request, { signal: commandSignal(), progress: true });
        return { ...s } as Record<string, unknown>;
      }),
    );
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
