/**
 * Records of several TFRecord files read one after the other, in the given order (docs/semantics.md §7), each
 * tagged with where it came from so every error can name file, record index and byte offset.
 */
import { missingInput, resolveUri } from '../storage/open.js';
import { asGeotfrError } from '../errors.js';
import { readRecords } from '../tfrecord/record.js';

export interface LocatedRecord {
  data: Uint8Array;
  /** The file's URI as given. */
  file: string;
  /** Index within its file. */
  index: number;
  /** Byte offset of the record's header in the (uncompressed) file. */
  offset: number;
  /** Index across all files: the patch number. */
  patch: number;
}

export interface FileEnd {
  file: string;
  records: number;
  /** Uncompressed bytes parsed (offset just past the last record). */
  endOffset: number;
}

/**
 * Yields every record of `files` in order (plain or gzip, detected by `readRecords` from the bytes).
 * `onFileEnd` reports each file's record count; `onBytes` the input bytes read so far (compressed
 * bytes for gzip). `field` names the files in errors about their URIs (default `files`).
 */
export async function* recordsOf(
  files: string[],
  opts: {
    signal?: AbortSignal;
    onFileEnd?: (e: FileEnd) => void;
    onBytes?: (total: number) => void;
    field?: string;
    /** Longest record accepted, refused at its header (readRecords' options of the same names). */
    maxRecordBytes?: number;
    maxRecordBytesReason?: string;
    /** A record's data is valid only until the next is asked for (readRecords' option). */
    reuseBuffer?: boolean;
  } = {},
): AsyncGenerator<LocatedRecord> {
  let patch = 0;
  let before = 0;
  for (const file of files) {
    opts.signal?.throwIfAborted();
    let loc;
    try {
      loc = await resolveUri(file, opts.field ?? 'files');
    } catch (err) {
      throw asGeotfrError(err, { file });
    }
    const info = await loc.store.stat(loc.key);
    if (!info) throw await missingInput(loc.store, loc.key, file);
    const stream = loc.store.readStream(loc.key);
    let records = 0;
    let endOffset = 0;
    let fileBytes = 0;
    try {
      for await (const r of readRecords(stream, {
        file,
        signal: opts.signal,
        maxRecordBytes: opts.maxRecordBytes,
        maxRecordBytesReason: opts.maxRecordBytesReason,
        reuseBuffer: opts.reuseBuffer,
        onProgress: (b) => ((fileBytes = b), opts.onBytes?.(before + b)),
      })) {
        opts.signal?.throwIfAborted();
        yield { data: r.data, file, index: r.index, offset: r.offset, patch: patch++ };
        records++;
        endOffset = r.offset + r.data.length + 16;
      }
    } finally {
      stream.destroy();
    }
    before += fileBytes;
    opts.onFileEnd?.({ file, records, endOffset });
  }
}
