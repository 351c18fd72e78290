/**
 * Look-up tables of the daemon's hot paths, with `Map`'s get / set / has / delete semantics (no
 * iteration: nothing iterates them).
 */

/** Entries a {@link SpiTable} keeps in its arrays before it moves them to a `Map`. */
const LINEAR_MAX = 16;

/**
 * Values by a small-integer key (CHILD SAs by inbound SPI). A gateway mostly holds a few CHILD SAs
 * at a time, replaced every rekey: a `Map` hashes each key and rebuilds its table as deleted
 * entries pile up; a scan of a few array slots does neither. Past {@link LINEAR_MAX} entries
 * (a hub) it is a `Map`. Values are never undefined.
 */
export class SpiTable<V> {
  private readonly keys: number[] = [];
  private readonly vals: V[] = [];
  private n = 0;
  private map: Map<number, V> | null = null;

  get(k: number): V | undefined {
    if (this.map !== null) return this.map.get(k);
    const ks = this.keys;
    for (let i = 0; i < this.n; i++) if (ks[i] === k) return this.vals[i];
    return undefined;
  }

  has(k: number): boolean {
    return this.get(k) !== undefined;
  }

  set(k: number, v: V): void {
    if (this.map !== null) {
      this.map.set(k, v);
      return;
    }
    const ks = this.keys;
    for (let i = 0; i < this.n; i++) {
      if (ks[i] === k) {
        this.vals[i] = v;
        return;
      }
    }
    if (this.n === LINEAR_MAX) {
      const m = new Map<number, V>();
      for (let i = 0; i < this.n; i++) m.set(ks[i]!, this.vals[i]!);
      m.set(k, v);
      this.map = m;
      this.n = 0;
      return;
    }
    ks[this.n] = k;
    this.vals[this.n] = v;
    this.n++;
  }

  delete(k: number): boolean {
    if (this.map !== null) return this.map.delete(k);
    const ks = this.keys;
    const vs = this.vals;
    for (let i = 0; i < this.n; i++) {
      if (ks[i] === k) {
        // Order does not matter: the last entry takes the freed slot.
        const last = --this.n;
        ks[i] = ks[last]!;
        vs[i] = vs[last]!;
        vs[last] = undefined as V;
        return true;
      }
    }
    return false;
  }
}

/**
 * A `Map` by string key that remembers its last look-up: a tunnel's IKE messages arrive with the
 * same SPI string (the very string the table was keyed with) until the IKE SA is replaced, so an
 * identity check mostly answers without hashing.
 */
export class LastHitMap<V> {
  private readonly map = new Map<string, V>();
  private lastK: string | null = null;
  private lastV: V | undefined = undefined;

  get(k: string): V | undefined {
    if (k === this.lastK) return this.lastV;
    const v = this.map.get(k);
    this.lastK = k;
    this.lastV = v;
    return v;
  }

  has(k: string): boolean {
    // Not remembered: new SPIs are drawn until one is free.
    return this.map.has(k);
  }

  set(k: string, v: V): void {
    this.map.set(k, v);
    if (k === this.lastK) this.lastV = v;
  }

  delete(k: string): boolean {
    if (k === this.lastK) this.lastV = undefined;
    return this.map.delete(k);
  }
}
