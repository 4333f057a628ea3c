/**
 * A least-recently-used cache bounded by a byte budget. Values are promises so concurrent readers of
 * the same block or tile share one fetch/decode instead of racing (geotiff.js's block cache idea).
 */
export class LruCache<V> {
  private readonly map = new Map<string, { value: Promise<V>; bytes: number }>();
  private used = 0;

  /** @param budgetBytes total of the `bytes` estimates kept; the most recent entry is always kept. */
  constructor(readonly budgetBytes: number) {}

  /** Returns the cached promise for `key`, or starts `load()` and caches it (dropped again if it rejects). */
  get(key: string, bytes: number, load: () => Promise<V>): Promise<V> {
    const hit = this.map.get(key);
    if (hit) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.map.delete(key);
      this.map.set(key, hit);
      return hit.value;
    }
    const value = load();
    const entry = { value, bytes };
    this.map.set(key, entry);
    this.used += bytes;
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

  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  private evict(): void {
    for (const [k, e] of this.map) {
      if (this.used <= this.budgetBytes || this.map.size <= 1) break;
      this.map.delete(k);
      this.used -= e.bytes;
    }
  }
}
