/**
 * Worker-thread entry of `buildStrip` (strip-build.ts): builds one strip at a time and posts its
 * result, or its error as data.
 *
 * Messages in: `{ type: 'build', build }`, `{ type: 'abort', reason }`.
 * Messages out: `{ type: 'done', built }`, `{ type: 'error', error }`.
 */
import { parentPort } from 'node:worker_threads';
import { fromWireError, toWireError } from '../errors.js';
import { buildStripHere, type FromStripThread, type ToStripThread } from './strip-build.js';

if (parentPort) {
  const port = parentPort;
  let current: AbortController | undefined;
  port.on('message', (m: ToStripThread) => {
    if (m.type === 'abort') return current?.abort(fromWireError(m.reason));
    const ac = (current = new AbortController());
    buildStripHere(m.build, ac.signal).then(
      (built) => port.postMessage({ type: 'done', built } satisfies FromStripThread),
      (err) => port.postMessage({ type: 'error', error: toWireError(err) } satisfies FromStripThread),
    );
  });
}
