/**
 * Shared CLI plumbing: every command prints progress on stderr, one line of JSON on stdout at the end,
 * and exits 0 only on success (docs/semantics.md §9). Errors print `geotfr: CODE: message` and exit 1 (2 for a bad
 * request), never leaving partial output (each command cleans up its own temporaries).
 */
import { promises as fs } from 'node:fs';
import { GeotfrError, asGeotfrError } from '../shared/errors.js';
import { checkJsonDepth } from '../shared/limits.js';
import { option } from '../shared/options.js';

/** Wraps a command action: prints its summary as one JSON line, maps errors to exit codes. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<object | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const controller = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      if (controller.signal.aborted) process.exit(130);
      process.stderr.write(`\ngeotfr: ${sig}: stopping, removing partial output (again to force)\n`);
      controller.abort(new GeotfrError('CANCELLED', `stopped by ${sig}`));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    currentSignal = controller.signal;
    try {
      const summary = await fn(...args);
      if (summary) process.stdout.write(JSON.stringify(summary) + '\n');
    } catch (err) {
      const e = asGeotfrError(err);
      process.stderr.write(`geotfr: ${e.code}: ${e.message}\n`);
      if (option('debug') && e.stack) process.stderr.write(e.stack + '\n');
      process.exitCode = e.code === 'BAD_REQUEST' ? 2 : e.code === 'CANCELLED' ? 130 : 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  };
}

let currentSignal: AbortSignal | undefined;
/** The running command's cancellation signal (Ctrl-C / SIGTERM). */
export function commandSignal(): AbortSignal {
  return currentSignal ?? new AbortController().signal;
}

/** Reads a request document: a JSON file path, or `-` for stdin. */
export async function readRequest(file: string): Promise<unknown> {
  let text: string;
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw asGeotfrError(err, { file });
  }
  checkJsonDepth(text, { file });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GeotfrError('BAD_REQUEST', `request is not valid JSON (${(err as Error).message})`, { file });
  }
}

/** Parses "X,Y" into two positive integers (e.g. --kernel-size 60,60). */
export function parsePair(v: string, name: string): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
    throw new GeotfrError('BAD_REQUEST', `${name} expects two positive integers like 60,60, got ${JSON.stringify(v)}`, { field: name });
  return [Number(m[1]), Number(m[2])];
}
