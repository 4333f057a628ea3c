/**
 * Corruption never passes silently (issue 2): every single-bit flip in a length, a length CRC or a
 * data CRC, sampled payload bits, and truncation anywhere give a BAD_INPUT GeotfrError naming the
 * record and its byte offset; garbage and gzip bombs fail fast in bounded memory.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { frameRecords, gzipSync, parseRecordsSync, readRecords, framedSize, recordHeader } from '../../shared/tfrecord/record.js';
import { GeotfrError } from '../../shared/errors.js';
import { LIMITS } from '../../shared/limits.js';
import { mulberry32 } from '../support/random.js';

function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255))) };
}

const r0 = rng(21);
const PAYLOADS = [0, 1, 37, 300, 5].map((n) => r0.bytes(n));
const FRAMED = frameRecords(PAYLOADS);
/** Header offset of each record, and the end. */
const OFFSETS = PAYLOADS.reduce<number[]>((acc, p) => [...acc, acc[acc.length - 1] + framedSize(p.length)], [0]);

interface Outcome {
  yielded: Uint8Array[];
  error?: unknown;
}

async function readAll(buf: Uint8Array, opts: { maxRecordBytes?: number } = {}): Promise<Outcome> {
  const yielded: Uint8Array[] = [];
  try {
    // Small chunks so headers and payloads span chunk boundaries.
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < buf.length; i += 97) chunks.push(buf.subarray(i, i + 97));
    for await (const rec of readRecords(chunks, { file: 'bad.tfrecord', ...opts })) yielded.push(Buffer.from(rec.data));
    return { yielded };
  } catch (error) {
    return { yielded, error };
  }
}

function syncAll(buf: Uint8Array): Outcome {
  const yielded: Uint8Array[] = [];
  try {
    for (const rec of parseRecordsSync(buf, { file: 'bad.tfrecord' })) yielded.push(rec.data);
    return { yielded };
  } catch (error) {
    return { yielded, error };
  }
}

/** The error is BAD_INPUT at record `index` (its header offset) and every earlier record was intact. */
function assertFailsAt(o: Outcome, index: number, what: string, offset = OFFSETS[index]): void {
  assert.ok(o.error instanceof GeotfrError, `${what}: expected a GeotfrError, got ${o.error ?? 'no error'}`);
  const e = o.error;
  assert.equal(e.code, 'BAD_INPUT', what);
  assert.equal(e.context.record, index, `${what}: ${e.message}`);
  assert.equal(e.context.offset, offset, `${what}: ${e.message}`);
  assert.ok(e.message.includes('bad.tfrecord') && e.message.includes(`record ${index}`) && e.message.includes(`byte offset ${offset}`), e.message);
  assert.equal(o.yielded.length, index, `${what}: records before the damage are yielded, none after`);
  for (const [i, p] of o.yielded.entries()) assert.ok(Buffer.from(p).equals(PAYLOADS[i]), `${what}: record ${i} intact`);
}

function flip(buf: Uint8Array, bit: number): Buffer {
  const b = Buffer.from(buf);
  b[bit >> 3] ^= 1 << (bit & 7);
  return b;
}

test('every single-bit flip in each length, length CRC and data CRC is reported at its record (stream, sync, gzip)', async () => {
  let cases = 0;
  for (const [i, start] of OFFSETS.slice(0, -1).entries()) {
    const len = PAYLOADS[i].length;
    const regions: [string, number, number][] = [
      ['length', start, start + 8],
      ['length CRC', start + 8, start + 12],
      ['data CRC', start + 12 + len, start + 16 + len],
    ];
    for (const [name, from, to] of regions) {
      for (let bit = from * 8; bit < to * 8; bit++) {
        const bad = flip(FRAMED, bit);
        const what = `record ${i} ${name} bit ${bit - from * 8}`;
        assertFailsAt(await readAll(bad), i, what);
        assertFailsAt(syncAll(bad), i, `${what} (sync)`);
        if (bit % 7 === 0) assertFailsAt(await readAll(gzipSync(bad)), i, `${what} (gzip)`);
        cases++;
      }
    }
  }
  assert.equal(cases, PAYLOADS.length * (64 + 32 + 32));
});

test('payload bit flips (all bits of small records, 200 sampled in larger ones) are data CRC errors (seed 22)', async () => {
  const r = rng(22);
  for (const [i, start] of OFFSETS.slice(0, -1).entries()) {
    const bits = PAYLOADS[i].length * 8;
    const sample = bits <= 400 ? Array.from({ length: bits }, (_, k) => k) : Array.from({ length: 200 }, () => r.int(0, bits - 1));
    for (const k of sample) {
      const bad = flip(FRAMED, (start + 12) * 8 + k);
      const o = await readAll(bad);
      assertFailsAt(o, i, `record ${i} payload bit ${k}`);
      assert.match((o.error as Error).message, /data CRC mismatch/);
    }
  }
});

test('truncation inside any record is an error at that record; at a boundary the earlier records are read exactly', async () => {
  for (let cut = 0; cut < FRAMED.length; cut++) {
    const bad = FRAMED.subarray(0, cut);
    const boundary = OFFSETS.indexOf(cut);
    for (const o of [await readAll(bad), syncAll(bad)]) {
      if (boundary >= 0) {
        // A plain TFRecord file has no trailer: a cut between records is a shorter valid file.
        // Callers that know the count (ingest: totalPatches, docs/semantics.md §7) catch it.
        assert.equal(o.error, undefined, `cut ${cut}`);
        assert.equal(o.yielded.length, boundary);
      } else {
        const i = OFFSETS.findIndex((off) => off > cut) - 1;
        assertFailsAt(o, i, `cut at ${cut}`);
        assert.match((o.error as Error).message, /truncated/);
      }
    }
  }
});

test('a gzip file cut at any byte (record boundaries included) is an error naming a record and offset', async () => {
  const gz = gzipSync(FRAMED);
  for (let cut = 1; cut < gz.length; cut++) {
    const o = await readAll(gz.subarray(0, cut));
    assert.ok(o.error instanceof GeotfrError, `cut ${cut}: no error`);
    const e = o.error;
    assert.equal(e.code, 'BAD_INPUT', `cut ${cut}`);
    assert.ok(e.context.record !== undefined && e.context.offset === OFFSETS[e.context.record], `cut ${cut}: ${e.message}`);
    assert.equal(o.yielded.length, e.context.record, `cut ${cut}`);
    assert.ok(o.yielded.length < PAYLOADS.length, `cut ${cut}: must not read everything`);
    for (const [i, p] of o.yielded.entries()) assert.ok(Buffer.from(p).equals(PAYLOADS[i]));
  }
  // Trailing garbage after the gzip stream is not ignored either.
  const o = await readAll(Buffer.concat([gz, Buffer.from('trailing junk')]));
  assert.ok(o.error instanceof GeotfrError && o.error.code === 'BAD_INPUT', String(o.error));
});

test('random garbage, plain or inside gzip, fails fast with BAD_INPUT at record 0 (seed 23)', async () => {
  const r = rng(23);
  // "Fast" is proven by what is read (nothing is yielded, record 0 fails), not by a wall clock that a
  // loaded machine would break (issue 11 item 20); a hang would be killed by test/run.mjs.
  for (let i = 0; i < 300; i++) {
    const junk = r.bytes(r.int(1, 4096));
    if (i % 3 === 0) junk[0] = 0x1f; // some look like gzip at first glance
    for (const buf of [junk, gzipSync(junk)]) {
      const o = await readAll(buf);
      assert.ok(o.error instanceof GeotfrError && o.error.code === 'BAD_INPUT', `garbage ${i}: ${o.error}`);
      assert.equal(o.yielded.length, 0);
    }
  }
});

/** The source's parts, counting how many the reader pulled. */
function counted(parts: Uint8Array[]): { source: Iterable<Uint8Array>; pulled: () => number } {
  let n = 0;
  return {
    source: (function* () {
      for (const p of parts) {
        n++;
        yield p;
      }
    })(),
    pulled: () => n,
  };
}

test('gzip bombs neither hang nor exhaust memory', async () => {
  // 1 GiB of zeros as 1,024 concatenated gzip members of 1 MiB (about 1 MiB compressed).
  const member = gzipSync(Buffer.alloc(1 << 20), 9);
  const bomb = Array.from({ length: 1024 }, () => member);
  const rss0 = process.memoryUsage().rss;
  let o: Outcome = { yielded: [] };
  const src = counted(bomb);
  try {
    for await (const _ of readRecords(src.source, { file: 'bomb.gz' })) o.yielded.push(_.data);
  } catch (error) {
    o = { ...o, error };
  }
  assert.ok(o.error instanceof GeotfrError && o.error.code === 'BAD_INPUT', String(o.error));
  assert.match((o.error as Error).message, /record 0, byte offset 0: length CRC mismatch/);
  // Not a wall clock (a loaded machine breaks those): the reader stopped after the first members.
  assert.ok(src.pulled() <= 64, `fails at the first header, without inflating the whole bomb (read ${src.pulled()} of 1024 members)`);
  assert.ok(process.memoryUsage().rss - rss0 < 256 << 20, 'memory stays bounded');

  // A valid header claiming a huge record, followed by the zeros: refused by maxRecordBytes before reading it.
  for (const [limit, opts] of [
    [LIMITS.maxRecordBytes.default, {}],
    [64 << 20, { maxRecordBytes: 64 << 20 }],
  ] as const) {
    const big = recordHeader(limit < LIMITS.maxRecordBytes.default ? 2 ** 30 : 3 * 2 ** 30); // 1 GiB or 3 GiB
    const parts = counted([gzipSync(big), ...bomb.slice(0, 64)]);
    let error: unknown;
    try {
      for await (const _ of readRecords(parts.source, { file: 'bad.tfrecord', ...opts })) void _;
    } catch (err) {
      error = err;
    }
    assert.ok(error instanceof GeotfrError && error.code === 'LIMIT', String(error));
    assert.match((error as Error).message, new RegExp(`exceeds the maxRecordBytes limit of ${limit.toLocaleString('en-US')}`));
    // Not a wall clock (issue 11 item 20): the reader stopped after the first parts.
    assert.ok(parts.pulled() <= 32, `refused before reading the record (read ${parts.pulled()} of 65 parts)`);
  }
  assert.ok(process.memoryUsage().rss - rss0 < 256 << 20, 'memory stays bounded');
});
