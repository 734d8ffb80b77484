// A Map with a size bound: past `max` entries, the oldest inserted is forgotten. For caches and records of flows in
// progress that an attacker could otherwise grow without limit.

export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.max) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }

  /** Moves an entry to the newest position (least-recently-used order). */
  touch(key: K): void {
    const v = this.get(key);
    if (v === undefined && !this.has(key)) return;
    this.delete(key);
    super.set(key, v as V);
  }
}
