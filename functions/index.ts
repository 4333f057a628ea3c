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
 */
import * as functions from '@google-cloud/functions-framework';
import { planExport } from './plan-export.js';
import { exportShard } from './export-shard.js';
import { finalizeExport } from './finalize-export.js';
import { ingestPredictions } from './ingest-predictions.js';
import { deadLetter } from './dead-letter.js';

export { planExport, exportShard, finalizeExport, ingestPredictions, deadLetter };

/** Names of every registered target (the stack serves each one). */
export const TARGETS = ['planExport', 'exportShard', 'finalizeExport', 'ingestPredictions', 'deadLetter'] as const;

functions.http('planExport', planExport);
functions.cloudEvent('exportShard', exportShard);
functions.cloudEvent('finalizeExport', finalizeExport);
functions.cloudEvent('ingestPredictions', ingestPredictions);
functions.cloudEvent('deadLetter', deadLetter);
