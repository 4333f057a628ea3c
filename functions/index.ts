/**
 * The Cloud Functions entry points (docs/semantics.md §10), registered with the functions-framework. Each file in
 * this directory only names its job and calls the core in `shared/jobs/` (STYLE.md §1); how every event
 * is decoded and settled (ack, retry, failure record, HTTP status, age cutoff) is functions/event.ts.
 *
 * To add a function: write its `Handler` in a new file and append one row to `FUNCTIONS`.
 *
 * | target              | signature  | trigger                                                    |
 * |---------------------|------------|------------------------------------------------------------|
 * | `planExport`        | HTTP       | HTTP POST; Pub/Sub push (request topic); GCS finalize of `requests/*.json` |
 * | `exportShard`       | CloudEvent | Pub/Sub worker topic (one shard, or one table export, per message) |
 * | `finalizeExport`    | CloudEvent | Pub/Sub finalize topic (one message per finished shard)    |
 * | `ingestPredictions` | CloudEvent | GCS finalize of `ingest/*.json`                            |
 * | `deadLetter`        | CloudEvent | Pub/Sub dead-letter topic                                  |
 * | `planIngest`        | HTTP       | HTTP POST; Pub/Sub push (ingest request topic); GCS finalize of `ingest/*.json` (§13) |
 * | `ingestStrip`       | CloudEvent | Pub/Sub strip topic (one strip per message)                |
 * | `finalizeIngest`    | HTTP       | Pub/Sub push (ingest finalize topic), long timeout         |
 */
import * as functions from '@google-cloud/functions-framework';
import { cloudEventFunction, httpFunction, type Handler } from './event.js';
import { planExportHandler } from './plan-export.js';
import { exportShardHandler } from './export-shard.js';
import { finalizeExportHandler } from './finalize-export.js';
import { ingestPredictionsHandler } from './ingest-predictions.js';
import { deadLetterHandler } from './dead-letter.js';
import { planIngestHandler } from './plan-ingest.js';
import { ingestStripHandler } from './ingest-strip.js';
import { finalizeIngestHandler } from './finalize-ingest.js';
import { tuneHeapGrowth } from './heap.js';
import { prestartStripThread } from '../shared/jobs/strip-build.js';

// Before any request: a function instance's collections are tuned for its small heap and large buffers.
tuneHeapGrowth();
// The strip worker's build thread starts with the instance, not inside its first strip.
if (process.env.FUNCTION_TARGET === 'ingestStrip') prestartStripThread();

/** Every function: its target name, signature and handler. */
export const FUNCTIONS: { target: string; signature: 'http' | 'cloudEvent'; handler: Handler }[] = [
  { target: 'planExport', signature: 'http', handler: planExportHandler },
  { target: 'exportShard', signature: 'cloudEvent', handler: exportShardHandler },
  { target: 'finalizeExport', signature: 'cloudEvent', handler: finalizeExportHandler },
  { target: 'ingestPredictions', signature: 'cloudEvent', handler: ingestPredictionsHandler },
  { target: 'deadLetter', signature: 'cloudEvent', handler: deadLetterHandler },
  { target: 'planIngest', signature: 'http', handler: planIngestHandler },
  { target: 'ingestStrip', signature: 'cloudEvent', handler: ingestStripHandler },
  { target: 'finalizeIngest', signature: 'http', handler: finalizeIngestHandler },
];

/** Names of every registered target (the stack serves each one). */
export const TARGETS = FUNCTIONS.map((f) => f.target);

/** The wrapped entry points by target, as registered (for callers that import rather than serve them). */
export const entryPoints: Record<string, ReturnType<typeof httpFunction> | ReturnType<typeof cloudEventFunction>> = {};

for (const f of FUNCTIONS) {
  if (f.signature === 'http') {
    const fn = httpFunction(f.target, f.handler);
    functions.http(f.target, fn);
    entryPoints[f.target] = fn;
  } else {
    const fn = cloudEventFunction(f.target, f.handler);
    functions.cloudEvent(f.target, fn);
    entryPoints[f.target] = fn;
  }
}

// Named exports of the entry points (the registry above is what the framework serves; these let a
// deployment or a test import a target by name). A new row above adds its name here too.
const { planExport, exportShard, finalizeExport, ingestPredictions, deadLetter, planIngest, ingestStrip, finalizeIngest } = entryPoints;
export { planExport, exportShard, finalizeExport, ingestPredictions, deadLetter, planIngest, ingestStrip, finalizeIngest };
