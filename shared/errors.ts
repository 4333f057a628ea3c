/**
 * One error type for the whole library (STYLE.md §4: errors as data).
 *
 * `code` is stable and machine-readable; the message names the file, record, field or offset
 * involved. `retryable` separates transient failures (throw, let Pub/Sub redeliver) from
 * permanent ones (record the failure and acknowledge).
 */
export type ErrorCode =
  | 'BAD_REQUEST' // a request or option is invalid
  | 'BAD_INPUT' // an input file is malformed (CRC, truncation, wrong length...)
  | 'NOT_FOUND' // an input does not exist
  | 'IO' // reading or writing failed (usually retryable)
  | 'LIMIT' // a size or pixel limit was exceeded
  | 'FORBIDDEN' // a path or bucket outside what is allowed
  | 'CONFLICT' // a name (job id, prefix) is already taken by something else
  | 'CANCELLED' // the user or the runtime stopped the work
  | 'INTERNAL'; // a bug in geotfr

export interface ErrorContext {
  file?: string;
  record?: number;
  offset?: number;
  field?: string;
}

export class GeotfrError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, opts: { retryable?: boolean; cause?: unknown } = {}) {
    super(formatMessage(message, context), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GeotfrError';
    this.code = code;
    this.context = context;
    this.retryable = opts.retryable ?? code === 'IO';
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retryable: this.retryable, ...this.context };
  }
}

function formatMessage(message: string, ctx: ErrorContext): string {
  const where: string[] = [];
  if (ctx.file !== undefined) where.push(ctx.file);
  if (ctx.record !== undefined) where.push(`record ${ctx.record}`);
  if (ctx.offset !== undefined) where.push(`byte offset ${ctx.offset}`);
  if (ctx.field !== undefined) where.push(`field ${ctx.field}`);
  return where.length ? `${where.join(', ')}: ${message}` : message;
}

/** Wraps anything thrown into a GeotfrError, keeping GeotfrErrors as they are. */
export function asGeotfrError(err: unknown, ctx: ErrorContext = {}): GeotfrError {
  if (err instanceof GeotfrError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    if (e.code === 'ENOENT') return new GeotfrError('NOT_FOUND', `no such file (${e.message})`, ctx, { cause: err });
    if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS')
      return new GeotfrError('FORBIDDEN', `permission denied (${e.message})`, ctx, { cause: err });
    if (e.code.startsWith('Z_')) return new GeotfrError('BAD_INPUT', `gzip stream is corrupt (${e.message})`, ctx, { cause: err });
    return new GeotfrError('IO', e.message, ctx, { cause: err });
  }
  return new GeotfrError('INTERNAL', err instanceof Error ? err.message : String(err), ctx, { cause: err });
}

/** A GeotfrError as posted between threads (structured clone drops the class); the message already names its context. */
export interface WireError {
  code: string;
  message: string;
  context: Record<string, unknown>;
  /** As the error had it (an `IO` error may be permanent: a 403 or 404 from Cloud Storage); absent: from the code. */
  retryable?: boolean;
}

export function toWireError(err: unknown): WireError {
  const e = asGeotfrError(err);
  return { code: e.code, message: e.message, context: { ...e.context }, retryable: e.retryable };
}

export function fromWireError(e: WireError): GeotfrError {
  return new GeotfrError(e.code as ErrorCode, e.message, {}, { retryable: e.retryable });
}

/**
 * `p`, or a rejection with `reason()` (default: the signal's reason) as soon as `signal` aborts,
 * whichever comes first; `p` itself keeps running. Without a signal, `p` as it is.
 */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined, reason: () => unknown = () => signal?.reason): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
