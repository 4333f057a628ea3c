/**
 * Progress on stderr for long work (docs/semantics.md §9): a redrawn line on a terminal, a line every few seconds
 * otherwise (logs, CI). Silent when `GEOTFR_PROGRESS=0` or `--progress 0` (shared/options.ts).
 */
import { option } from './options.js';

export interface ProgressOptions {
  label: string;
  /** Total units (patches, records, bytes…) if known. */
  total?: number;
  unit?: string;
  stream?: NodeJS.WriteStream;
  /** Minimum milliseconds between updates. */
  intervalMs?: number;
}

export class Progress {
  private done = 0;
  private bytes = 0;
  private readonly start = performance.now();
  private last = 0;
  private readonly tty: boolean;
  private readonly enabled: boolean;
  private readonly stream: NodeJS.WriteStream;

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
    this.enabled = option('progress');
  }

  /** Adds `units` done and `bytes` processed. */
  tick(units = 1, bytes = 0): void {
    this.done += units;
    this.bytes += bytes;
    const now = performance.now();
    if (now - this.last >= (this.o.intervalMs ?? (this.tty ? 200 : 5000))) {
      this.last = now;
      this.render(false);
    }
  }

  /** Sets absolute figures (for sources that report totals). */
  set(done: number, bytes = this.bytes): void {
    this.done = done;
    this.bytes = bytes;
    this.tick(0, 0);
  }

  finish(): void {
    this.render(true);
  }

  private render(final: boolean): void {
    if (!this.enabled) return;
    const secs = (performance.now() - this.start) / 1000;
    const unit = this.o.unit ?? 'items';
    const parts = [`${this.o.label}:`];
    if (this.o.total) {
      const pct = Math.min(100, (100 * this.done) / this.o.total);
      const width = 24;
      const fill = Math.round((pct / 100) * width);
      if (this.tty) parts.push(`[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`);
      parts.push(`${this.done}/${this.o.total} ${unit} (${pct.toFixed(0)}%)`);
    } else parts.push(`${this.done} ${unit}`);
    if (this.bytes) parts.push(`${(this.bytes / 1e6 / Math.max(secs, 1e-3)).toFixed(1)} MB/s`);
    if (this.o.total && this.done > 0 && !final) {
      const eta = (secs / this.done) * (this.o.total - this.done);
      parts.push(`ETA ${formatSecs(eta)}`);
    }
    if (final) parts.push(`in ${formatSecs(secs)}`);
    const line = parts.join(' ');
    if (this.tty) this.stream.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
    else this.stream.write(`${line}\n`);
  }
}

function formatSecs(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}
