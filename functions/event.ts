/**
 * The one event rule of functions/ (docs/semantics.md §10): every function is a `Handler` that this
 * module wraps. The wrapper decodes the event (a Pub/Sub push as a CloudEvent or a raw push body, a
 * Cloud Storage `object.finalized` CloudEvent in binary or structured mode, or a plain HTTP request),
 * drops events older than `GEOTFR_MAX_EVENT_AGE_SECONDS`, runs the handler and settles the outcome:
 *
 * | outcome                        | CloudEvent function | HTTP function (events)  | HTTP function (plain POST) |
 * |--------------------------------|---------------------|-------------------------|----------------------------|
 * | done                           | return (ack)        | 200                     | 202                        |
 * | not ours (another object)      | return (ack)        | 204                     | 204                        |
 * | permanent error (recorded)     | return (ack)        | 200                     | `httpStatus(code)`         |
 * | retryable error                | throw (redelivery)  | 503                     | 503                        |
 * | too old                        | return (ack), job failed with the reason (a permanent `LIMIT`) |  |          |
 *
 * Events are acknowledged with 200, not 202: the Pub/Sub emulator treats only 200/204 as an ack.
 * Following the functions-framework samples (STYLE.md): throw to get a redelivery, drop what is too
 * old or permanently bad.
 */
import type { CloudEvent, HttpFunction, Request } from '@google-cloud/functions-framework';
import { GeotfrError, asGeotfrError } from '../shared/errors.js';
import type { QueueMessage } from '../shared/queue/port.js';
import { decodePushMessage } from '../shared/queue/push.js';
import { checkRequestSize } from '../shared/jobs/policy.js';
import type { JobDeps } from '../shared/jobs/planner.js';
import { isRetryable } from '../shared/jobs/status.js';
import { decodeStorageEvent, type StorageObjectEvent } from './storage-event.js';
import { deps, log } from './context.js';

export const PUBSUB_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';
export const STORAGE_FINALIZED = 'google.cloud.storage.object.v1.finalized';

/** One decoded invocation. Handlers fill in `jobId` (and `request`) as soon as they know them. */
export interface FunctionEvent {
  via: 'http' | 'pubsub' | 'bucket';
  id: string;
  /** When the event was first produced (publish time, object creation); none for a plain HTTP request. */
  time?: Date;
  message?: QueueMessage;
  object?: StorageObjectEvent;
  /** Plain HTTP only. */
  http?: { method: string; body: unknown; query: Record<string, unknown>; contentLength?: number };
  jobId?: string;
  request?: unknown;
}

/** What a function does with an event. */
export interface Handler {
  /** Exempt from the age cutoff (the dead-letter handler: settling old failures is its job). */
  anyAge?: boolean;
  /**
   * Cheap first step: validate the message and name the job (`ev.jobId`, `ev.request`), so a stale or
   * failing event can be recorded against it. Returns false when the event is not for this function.
   */
  prepare?(ev: FunctionEvent, deps: JobDeps): Promise<boolean>;
  /** The work: calls the core and returns what the answer carries (and the log line). */
  run(ev: FunctionEvent, deps: JobDeps): Promise<{ body: Record<string, unknown>; message: string }>;
  /** Records a permanent failure where the user looks; returns where, for the answer. */
  recordFailure?(ev: FunctionEvent, e: GeotfrError, deps: JobDeps): Promise<{ destination?: string } | undefined>;
  /** Best effort before a retry (e.g. the last error, which a dead-letter reason quotes). */
  recordRetry?(ev: FunctionEvent, e: GeotfrError, deps: JobDeps): Promise<void>;
}

/** HTTP status of a permanent error (a retryable one is always 503). */
export function httpStatus(e: GeotfrError): number {
  if (isRetryable(e)) return 503;
  const byCode: Partial<Record<string, number>> = { BAD_REQUEST: 400, BAD_INPUT: 400, LIMIT: 400, FORBIDDEN: 403, NOT_FOUND: 404, CONFLICT: 409 };
  return byCode[e.code] ?? 500;
}

/** Decodes a CloudEvent as the functions-framework hands it to a `cloudEvent` function. */
export function fromCloudEvent(event: CloudEvent<unknown>, maxMessageBytes: number): FunctionEvent {
  if (event.type === STORAGE_FINALIZED) return fromStorage(event.data, event.id, event.time);
  if (event.type === PUBSUB_TYPE || (event.data && typeof event.data === 'object' && 'message' in event.data))
    return fromPush(event.data, event.id, event.time, maxMessageBytes);
  throw new GeotfrError('BAD_REQUEST', `unexpected event type ${JSON.stringify(event.type)}`);
}

/** Decodes an HTTP request: CloudEvent headers (binary mode), a structured CloudEvent, a raw Pub/Sub push, or a plain request. */
export function fromHttp(req: Request, maxMessageBytes: number): FunctionEvent {
  const h = req.headers;
  const body = req.body as Record<string, unknown> | undefined;
  const header = (k: string) => (typeof h[k] === 'string' ? (h[k] as string) : undefined);
  const ceType = header('ce-type');
  if (ceType !== undefined) return fromTyped(ceType, body, header('ce-id') ?? '', header('ce-time'), maxMessageBytes);
  if (body && typeof body.specversion === 'string' && typeof body.type === 'string')
    return fromTyped(body.type, body.data, String(body.id ?? ''), body.time as string | undefined, maxMessageBytes);
  if (body && typeof body.subscription === 'string' && body.message && typeof body.message === 'object') return fromPush(body, '', undefined, maxMessageBytes);
  const length = Number(h['content-length']);
  return {
    via: 'http',
    id: '',
    http: { method: req.method, body: req.body, query: req.query as Record<string, unknown>, contentLength: Number.isFinite(length) ? length : undefined },
  };
}

function fromTyped(type: string, data: unknown, id: string, time: string | undefined, maxMessageBytes: number): FunctionEvent {
  if (type === STORAGE_FINALIZED) return fromStorage(data, id, time);
  if (type === PUBSUB_TYPE) return fromPush(data, id, time, maxMessageBytes);
  throw new GeotfrError('BAD_REQUEST', `unexpected event type ${JSON.stringify(type)}`);
}

const dateOf = (s: unknown): Date | undefined => {
  const d = typeof s === 'string' ? new Date(s) : undefined;
  return d && Number.isFinite(d.getTime()) ? d : undefined;
};

function fromPush(data: unknown, id: string, time: string | undefined, maxMessageBytes: number): FunctionEvent {
  const raw = (data as { message?: { data?: unknown; publishTime?: unknown } } | undefined)?.message;
  // Checked before decoding: a message is as bounded as a request document.
  if (typeof raw?.data === 'string') checkRequestSize(Math.floor((raw.data.length * 3) / 4), { maxRequestBytes: maxMessageBytes }, 'message');
  const message = decodePushMessage(data);
  return { via: 'pubsub', id: message.id || id, time: dateOf(raw?.publishTime) ?? dateOf(time), message };
}

function fromStorage(data: unknown, id: string, time: string | undefined): FunctionEvent {
  const object = decodeStorageEvent(data);
  return { via: 'bucket', id, time: dateOf(object.timeCreated) ?? dateOf(time), object };
}

/** Refuses an event older than the configured age (a permanent LIMIT: recorded, acknowledged). */
export function checkEventAge(ev: FunctionEvent, maxAgeSeconds: number, now = new Date()): void {
  if (!ev.time) return;
  const age = (now.getTime() - ev.time.getTime()) / 1000;
  if (age > maxAgeSeconds)
    throw new GeotfrError(
      'LIMIT',
      `event ${ev.id || '(no id)'} is ${Math.round(age)} s old, older than GEOTFR_MAX_EVENT_AGE_SECONDS=${maxAgeSeconds}: dropped, not retried`,
      { field: 'eventTime' },
    );
}

interface Outcome {
  status: number;
  body?: Record<string, unknown>;
  retry?: GeotfrError;
}

/** Runs one invocation through the rule above. Never throws; `retry` says the platform should redeliver. */
async function invoke(name: string, handler: Handler, decode: (d: JobDeps) => FunctionEvent): Promise<Outcome> {
  let ev: FunctionEvent | undefined;
  let d: JobDeps | undefined;
  try {
    d = deps();
    ev = decode(d);
    if (handler.prepare && !(await handler.prepare(ev, d))) return { status: 204 };
    if (!handler.anyAge) checkEventAge(ev, d.config.maxEventAgeSeconds, d.now?.());
    const r = await handler.run(ev, d);
    log('INFO', `${name}: ${r.message}`, { id: ev.id, jobId: ev.jobId, via: ev.via });
    return { status: ev.via === 'http' ? 202 : 200, body: r.body };
  } catch (err) {
    const e = asGeotfrError(err);
    const fields = { id: ev?.id, jobId: ev?.jobId, via: ev?.via, code: e.code };
    if (isRetryable(e)) {
      log('WARNING', `${name}: retryable error, asking for redelivery: ${e.code}: ${e.message}`, fields);
      if (ev && d) await handler.recordRetry?.(ev, e, d).catch(() => {});
      return { status: 503, body: { error: e.toJSON(), jobId: ev?.jobId }, retry: e };
    }
    let recorded: { destination?: string } | undefined;
    if (ev && d)
      recorded = await handler.recordFailure?.(ev, e, d).catch((err2: unknown) => {
        log('ERROR', `${name}: could not record the failure: ${asGeotfrError(err2).message}`, fields);
        return undefined;
      });
    log('ERROR', `${name}: permanent error, acknowledged: ${e.code}: ${e.message}`, fields);
    // Events are acknowledged (2xx) so they are not redelivered forever; HTTP callers get the code.
    const status = !ev || ev.via === 'http' ? httpStatus(e) : 200;
    return { status, body: { error: e.toJSON(), jobId: ev?.jobId, state: 'failed', ...(recorded?.destination ? { destination: recorded.destination } : {}) } };
  }
}

/**
 * Runs `fn` outside the `domain` the functions-framework opens around every request. While a domain
 * is current, node's domain hook tags every async resource made (each promise of a strip or shard:
 * hundreds of thousands) with it and enters and exits it around each callback; with no domain
 * current, the hook finds nothing to do. That bookkeeping was about a tenth of a strip worker's busy
 * time (docs/cloud.md#distributed-ingest-benchmark-benchingest-cloudts). Resources made while `fn` starts
 * synchronously carry no domain, so neither do their continuations. `invoke` catches every error
 * itself; an exception that escapes the promise chain (a bug) reaches the framework's
 * `uncaughtException` handler, which answers the request with a 500 and restarts the instance, and
 * the event is redelivered.
 */
export function outsideDomain<T>(fn: () => Promise<T>): Promise<T> {
  const proc = process as NodeJS.Process & { domain?: object | null };
  const saved = proc.domain;
  if (!saved) return fn();
  proc.domain = null;
  try {
    return fn();
  } finally {
    proc.domain = saved;
  }
}

/** A `cloudEvent` function: returns to acknowledge, throws to get a redelivery. */
export function cloudEventFunction(name: string, handler: Handler): (event: CloudEvent<unknown>) => Promise<void> {
  return async (event) => {
    const out = await outsideDomain(() => invoke(name, handler, (d) => fromCloudEvent(event, d.config.policy.maxRequestBytes)));
    if (out.retry) throw out.retry;
  };
}

/** An `http` function (also receiving push deliveries and CloudEvents): the outcome as an HTTP status. */
export function httpFunction(name: string, handler: Handler): HttpFunction {
  return async (req, res) => {
    const out = await outsideDomain(() => invoke(name, handler, (d) => fromHttp(req, d.config.policy.maxRequestBytes)));
    if (out.body === undefined) res.status(out.status).send('');
    else res.status(out.status).json(out.body);
  };
}

/**
 * The request in an HTTP call to a planner: a POST whose JSON body is within the policy's size limit.
 * `what` names the request kind in the messages ("export", "ingest").
 */
export function httpRequestBody(http: NonNullable<FunctionEvent['http']>, maxRequestBytes: number, what: string): unknown {
  if (http.method !== 'POST') throw new GeotfrError('BAD_REQUEST', `POST an ${what} request (got ${http.method})`);
  checkRequestSize(http.contentLength ?? Buffer.byteLength(JSON.stringify(http.body ?? '')), { maxRequestBytes });
  if (http.body === undefined || typeof http.body !== 'object' || Buffer.isBuffer(http.body))
    throw new GeotfrError('BAD_REQUEST', `the body must be a JSON ${what} request (Content-Type: application/json)`);
  return http.body;
}
