/**
 * A least-recently-used cache bounded by a byte budget. Values are promises so concurrent readers of
 * the same block or tile share one fetch/decode instead of racing (geotiff.js's block cache idea).
 */
/** What a cache did: hits, first loads, and re-reads (loads of a key that was loaded before and dropped). */
export interface CacheStats {
  hits: number;
  misses: number;
  rereads: number;
  /** Largest total of `bytes` held at once. */
  peakBytes: number;
}

/** Stats of several caches added up (e.g. every file of a mosaic). */
export function sumCacheStats<T extends CacheStats>(all: T[]): CacheStats & { decodes: number } {
  const out = { hits: 0, misses: 0, rereads: 0, peakBytes: 0, decodes: 0 };
  for (const s of all) {
    out.hits += s.hits;
    out.misses += s.misses;
    out.rereads += s.rereads;
    out.peakBytes += s.peakBytes;
    out.decodes += (s as { decodes?: number }).decodes ?? 0;
  }
  return out;
}

export class LruCache<V> {
  private readonly map = new Map<string, { value: Promise<V>; bytes: number; settled?: V }>();
  private used = 0;
  /** Keys dropped to stay within the budget (so a later load counts as a re-read). */
  private readonly dropped = new Set<string>();
  readonly stats: CacheStats = { hits: 0, misses: 0, rereads: 0, peakBytes: 0 };

  /** @param budgetBytes total of the `bytes` estimates kept; the most recent entry is always kept. */
  constructor(readonly budgetBytes: number) {}

  /** Returns the cached promise for `key`, or starts `load()` and caches it (dropped again if it rejects). */
  get(key: string, bytes: number, load: () => Promise<V>): Promise<V> {
    const hit = this.map.get(key);
    if (hit) {
      this.stats.hits++;
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.map.delete(key);
      this.map.set(key, hit);
      return hit.value;
    }
    this.stats.misses++;
    if (this.dropped.delete(key)) this.stats.rereads++;
    const value = load();
    const entry: { value: Promise<V>; bytes: number; settled?: V } = { value, bytes };
    this.map.set(key, entry);
    this.used += bytes;
    value.then(
      (v) => (entry.settled = v),
      () => {},
    );
    value.catch(() => {
      if (this.map.get(key) === entry) {
        this.map.delete(key);
        this.used -= bytes;
      }
    });
    this.evict();
    return value;
  }

  /** Whether `key` is cached (without touching its recency). */
  has(key: string): boolean {
    return this.map.has(key);
  }

  get size(): number {
    return this.map.size;
  }

  get bytesUsed(): number {
    return this.used;
  }

  /**
   * Visits every entry: `visit` returns `'drop'` to drop it (a later load counts as a re-read),
   * a smaller replacement for a loaded entry (`value` is the loaded value, undefined while loading),
   * or undefined to keep it as it is. Recency is unchanged.
   */
  sweep(visit: (key: string, value: V | undefined) => 'drop' | { value: V; bytes: number } | undefined): void {
    for (const [k, e] of this.map) {
      const r = visit(k, e.settled);
      if (r === undefined) continue;
      if (r === 'drop') {
        this.map.delete(k);
        this.dropped.add(k);
      } else this.map.set(k, { value: Promise.resolve(r.value), settled: r.value, bytes: r.bytes });
      this.used -= e.bytes - (r === 'drop' ? 0 : r.bytes);
    }
  }

  /** Drops `key` (a later load counts as a re-read). */
  delete(key: string): void {
    const e = this.map.get(key);
    if (!e) return;
    this.map.delete(key);
    this.used -= e.bytes;
    this.dropped.add(key);
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  private evict(): void {
    for (const [k, e] of this.map) {
      if (this.used <= this.budgetBytes || this.map.size <= 1) break;
      this.map.delete(k);
      this.used -= e.bytes;
      this.dropped.add(k);
    }
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.used);
  }
}
