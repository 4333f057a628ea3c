/**
 * Opens a table input (local path, file:// or gs://, through the BlobStore port) as a stream of
 * UTF-8 text chunks. Gzip-compressed inputs are detected from their magic bytes, not their name.
 * Nothing here holds more than one chunk: a 2 GB input streams in bounded memory.
 */
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { missingInput, resolveUri } from '../storage/open.js';
import { GeotfrError, asGeotfrError } from '../errors.js';

export interface TextStreamOptions {
  signal?: AbortSignal;
  /** Called with the number of (compressed) input bytes read so far. */
  onBytes?: (bytesIn: number) => void;
}

/** An opened input: its display name, size when known, and its text. */
export interface TextInput {
  file: string;
  size?: number;
  text: AsyncIterable<string>;
}

/** Resolves `uri` and streams its text. Fails with NOT_FOUND (naming the file) when it is missing. */
export async function openText(uri: string, opts: TextStreamOptions = {}): Promise<TextInput> {
  const { store, key } = await resolveUri(uri, 'collection');
  const file = store.uri(key);
  const info = await store.stat(key);
  if (!info) throw await missingInput(store, key, uri);
  return { file, size: info.size, text: decodeText(store.readStream(key), file, opts) };
}

async function* decodeText(raw: Readable, file: string, opts: TextStreamOptions): AsyncGenerator<string> {
  let bytesIn = 0;
  let bytes: AsyncIterable<Buffer> = raw;
  const counted = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const c of src) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new GeotfrError('CANCELLED', 'cancelled');
      bytesIn += c.length;
      opts.onBytes?.(bytesIn);
      yield c;
    }
  };
  const it = counted(bytes)[Symbol.asyncIterator]();
  let first: IteratorResult<Buffer>;
  try {
    first = await it.next();
  } catch (err) {
    throw asGeotfrError(err, { file });
  }
  if (first.done) return;
  const isGzip = first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b;
  const rest: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: async function* () {
      yield first.value;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    },
  };
  if (isGzip) {
    const gunzip = zlib.createGunzip({ chunkSize: 1 << 20 });
    const src = Readable.from(rest, { objectMode: false });
    src.on('error', (e) => gunzip.destroy(e));
    src.pipe(gunzip);
    bytes = gunzip;
  } else bytes = rest;
  // fatal: false would silently turn bad bytes into U+FFFD; EE rejects non-UTF-8 uploads, so do we.
  // ignoreBOM keeps a byte-order mark in the text: the readers skip it themselves and count its
  // 3 bytes, so the byte offsets they report match the file.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  let offset = 0;
  try {
    for await (const chunk of bytes) {
      let s: string;
      try {
        s = decoder.decode(chunk, { stream: true });
      } catch {
        throw new GeotfrError('BAD_INPUT', `not valid UTF-8 text (within input bytes ${offset}..${offset + chunk.length})`, { file });
      }
      offset += chunk.length;
      if (s.length) yield s;
    }
    let tail: string;
    try {
      tail = decoder.decode();
    } catch {
      throw new GeotfrError('BAD_INPUT', 'not valid UTF-8 text (truncated character at end of input)', { file });
    }
    if (tail.length) yield tail;
  } catch (err) {
    throw asGeotfrError(err, { file });
  } finally {
    raw.destroy();
  }
}
