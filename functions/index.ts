/**
 * The Cloud Functions entry points (docs/semantics.md §10), registered with the functions-framework. Each file in
 * this directory only decodes its event and calls the core in `shared/jobs/` (STYLE.md §1).
 *
 * | target              | signature  | trigger                                                    |
 * |---------------------|------------|------------------------------------------------------------|
 * | `planExport`        | HTTP       | HTTP POST; Pub/Sub push (request topic); GCS finalize of `requests/*.json` |
 * | `exportShard`       | CloudEvent | Pub/Sub shard topic (one shard per message)                |
 * | `finalizeExport`    | CloudEvent | Pub/Sub finalize topic (one message per finished shard)    |
 * | `ingestPredictions` | CloudEvent | GCS finalize of `ingest/*.json`                            |
 * | `deadLetter`        | CloudEvent | Pub/Sub dead-letter topic                                  |
 * | `planIngest`        | HTTP       | HTTP POST; Pub/Sub push (ingest request topic); GCS finalize of `ingest/*.json` (§13) |
 * | `ingestStrip`       | CloudEvent | Pub/Sub strip topic (one strip per message)                |
 * | `finalizeIngest`    | HTTP       | Pub/Sub push (ingest finalize topic), long timeout         |
 */
import * as functions from '@google-cloud/functions-framework';
import { planExport } from './plan-export.js';
import { exportShard } from './export-shard.js';
import { finalizeExport } from './finalize-export.js';
import { ingestPredictions } from './ingest-predictions.js';
import { deadLetter } from './dead-letter.js';
import { planIngest } from './plan-ingest.js';
import { ingestStrip } from './ingest-strip.js';
import { finalizeIngest } from './finalize-ingest.js';

export { planExport, exportShard, finalizeExport, ingestPredictions, deadLetter, planIngest, ingestStrip, finalizeIngest };

/** Names of every registered target (the stack serves each one). */
export const TARGETS = ['planExport', 'exportShard', 'finalizeExport', 'ingestPredictions', 'deadLetter', 'planIngest', 'ingestStrip', 'finalizeIngest'] as const;

functions.http('planExport', planExport);
functions.cloudEvent('exportShard', exportShard);
functions.cloudEvent('finalizeExport', finalizeExport);
functions.cloudEvent('ingestPredictions', ingestPredictions);
functions.cloudEvent('deadLetter', deadLetter);
functions.http('planIngest', planIngest);
functions.cloudEvent('ingestStrip', ingestStrip);
functions.http('finalizeIngest', finalizeIngest);
