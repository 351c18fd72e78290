import { type Family, familyBits, formatAddress, formatPrefix, type Prefix } from "./address.js";

/**
 * Immutable set of IPv4 or IPv6 addresses.
 *
 * Representation: a strictly increasing list of boundaries b0 < b1 < … (even length); the set is
 * [b0, b1) ∪ [b2, b3) ∪ …, half-open. Half-open bounds make union/intersection/difference one
 * comparison-only merge (no ±1 adjacency arithmetic) and complement a toggle of 0 and 2^bits.
 *
 * IPv4 bounds are plain numbers (exact up to 2^53; 2^32 is the largest bound), IPv6 bounds are
 * bigints. Measured on 100k-interval sets: a number merge is ~2.2x faster than a bigint one and
 * a binary-search membership test ~7x faster, which matters to the evaluators that probe these
 * sets per rule and per packet. The public API speaks bigint (like `Prefix`).
 */
export class AddrSet {
  private constructor(
    readonly family: Family,
    /** number[] for IPv4, bigint[] for IPv6; never mutated after construction. */
    private readonly b: readonly number[] | readonly bigint[],
  ) {}

  private static readonly E4 = new AddrSet(4, []);
  private static readonly E6 = new AddrSet(6, []);
  private static readonly A4 = new AddrSet(4, [0, 2 ** 32]);
  private static readonly A6 = new AddrSet(6, [0n, 1n << 128n]);

  static empty(family: Family): AddrSet {
    return family === 4 ? AddrSet.E4 : AddrSet.E6;
  }

  static all(family: Family): AddrSet {
    return family === 4 ? AddrSet.A4 : AddrSet.A6;
  }

  static fromPrefix(p: Prefix): AddrSet {
    const end = p.addr + (1n << BigInt(familyBits(p.family) - p.len));
    return p.family === 4 ? new AddrSet(4, [Number(p.addr), Number(end)]) : new AddrSet(6, [p.addr, end]);
  }

  static fromPrefixes(family: Family, prefixes: Iterable<Prefix>): AddrSet {
    const ranges: Array<[bigint, bigint]> = [];
    for (const p of prefixes) {
      if (p.family !== family) throw new RangeError(`IPv${p.family} prefix in an IPv${family} set`);
      ranges.push([p.addr, p.addr | ((1n << BigInt(familyBits(family) - p.len)) - 1n)]);
    }
    return AddrSet.fromRanges(family, ranges);
  }

  /**
   * Union of many sets, pairwise in a balanced tree: each bound is merged about log2(n) times,
   * where folding them one by one into a growing set would merge the early ones n times.
   */
  static unionAll(family: Family, sets: readonly AddrSet[]): AddrSet {
    let level = sets.filter((x) => {
      if (x.family !== family) throw new RangeError(`IPv${x.family} set in an IPv${family} union`);
      return x.b.length > 0;
    });
    if (level.length === 0) return AddrSet.empty(family);
    while (level.length > 1) {
      const next: AddrSet[] = [];
      for (let i = 0; i < level.length; i += 2)
        next.push(i + 1 < level.length ? level[i]!.union(level[i + 1]!) : level[i]!);
      level = next;
    }
    return level[0]!;
  }

  /** Inclusive range `lo..hi`; empty when `lo > hi`. */
  static fromRange(family: Family, lo: bigint, hi: bigint): AddrSet {
    return AddrSet.fromRanges(family, [[lo, hi]]);
  }

  /** Union of inclusive ranges, in any order, overlapping or not. */
  static fromRanges(family: Family, ranges: Iterable<readonly [bigint, bigint]>): AddrSet {
    const max = maxOf(family);
    const list: Array<[bigint, bigint]> = [];
    for (const [lo, hi] of ranges) {
      if (lo < 0n || hi >= max) throw new RangeError(`address out of IPv${family} range`);
      if (lo <= hi) list.push([lo, hi + 1n]);
    }
    list.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const out: bigint[] = [];
    for (const [lo, end] of list) {
      const n = out.length;
      if (n > 0 && lo <= out[n - 1]!) {
        if (end > out[n - 1]!) out[n - 1] = end;
      } else out.push(lo, end);
    }
    return family === 4 ? new AddrSet(4, out.map(Number)) : new AddrSet(6, out);
  }

  /**
   * `{x : x & mask == addr & mask}` — what iptables matches for `-s addr/mask` when the mask is not
   * contiguous (e.g. 255.0.255.0). Returns null when it would take more than `maxIntervals`
   * intervals (a mask like 0.0.0.1 selects every other address).
   */
  static fromMasked(family: Family, addr: bigint, mask: bigint, maxIntervals = 65536): AddrSet | null {
    const bits = familyBits(family);
    const full = (1n << BigInt(bits)) - 1n;
    mask &= full;
    const base = addr & mask;
    if (mask === 0n) return AddrSet.all(family);
    // Free bits below the lowest mask bit form one contiguous block per choice of the higher free bits.
    let low = 0;
    while (((mask >> BigInt(low)) & 1n) === 0n) low++;
    const free: bigint[] = [];
    for (let i = low; i < bits; i++) if (((mask >> BigInt(i)) & 1n) === 0n) free.push(1n << BigInt(i));
    if (free.length > 30 || 2 ** free.length > maxIntervals) return null;
    const block = 1n << BigInt(low);
    const out: bigint[] = [];
    const count = 1 << free.length;
    for (let k = 0; k < count; k++) {
      // Deposit the bits of k into the free positions; increasing k gives increasing addresses.
      let v = base;
      for (let j = 0; j < free.length; j++) if ((k >> j) & 1) v |= free[j]!;
      const n = out.length;
      if (n > 0 && out[n - 1] === v) out[n - 1] = v + block;
      else out.push(v, v + block);
    }
    return family === 4 ? new AddrSet(4, out.map(Number)) : new AddrSet(6, out);
  }

  /** Wraps half-open bounds that are already sorted, disjoint and non-adjacent. */
  private static raw(family: Family, b: number[] | bigint[]): AddrSet {
    if (b.length === 0) return AddrSet.empty(family);
    return new AddrSet(family, b);
  }

  isEmpty(): boolean {
    return this.b.length === 0;
  }

  isAll(): boolean {
    return this.b.length === 2 && this.b[0] === zeroOf(this.family) && this.b[1] === boundMax(this.family);
  }

  /** Number of disjoint maximal intervals. */
  get intervalCount(): number {
    return this.b.length / 2;
  }

  has(addr: bigint): boolean {
    if (this.family === 4) return this.hasV4(Number(addr));
    return countLE(this.b as readonly bigint[], addr) % 2 === 1;
  }

  /** Fast path for IPv4 addresses held as numbers (0..2^32-1). */
  hasV4(addr: number): boolean {
    return countLE(this.b as readonly number[], addr) % 2 === 1;
  }

  /** Whether an IPv4 set holds an address of the half-open range [lo, end) (numbers), by one binary search. */
  overlapsV4(lo: number, end: number): boolean {
    if (lo >= end) return false;
    const b = this.b as readonly number[];
    const i = countLE(b, lo);
    // lo inside an interval, or the next interval starts before the range ends.
    return i % 2 === 1 || (i < b.length && b[i]! < end);
  }

  union(o: AddrSet): AddrSet {
    this.check(o);
    if (o.b.length === 0 || this === o) return this;
    if (this.b.length === 0) return o;
    return this.combine(o, OP_OR);
  }

  intersect(o: AddrSet): AddrSet {
    this.check(o);
    if (this.b.length === 0 || this === o) return this;
    if (o.b.length === 0) return o;
    return this.combine(o, OP_AND);
  }

  difference(o: AddrSet): AddrSet {
    this.check(o);
    if (this.b.length === 0 || o.b.length === 0) return this;
    return this.combine(o, OP_ANDNOT);
  }

  complement(): AddrSet {
    const zero = zeroOf(this.family);
    const max = boundMax(this.family);
    const src = this.b as readonly (number | bigint)[];
    const out: (number | bigint)[] = [];
    let i = 0;
    if (src.length > 0 && src[0] === zero) i = 1;
    else out.push(zero);
    for (; i < src.length; i++) out.push(src[i]!);
    if (out.length > 0 && out[out.length - 1] === max) out.pop();
    else out.push(max);
    return AddrSet.raw(this.family, out as number[] | bigint[]);
  }

  isSubsetOf(o: AddrSet): boolean {
    return this.difference(o).isEmpty();
  }

  overlaps(o: AddrSet): boolean {
    return !this.intersect(o).isEmpty();
  }

  equals(o: AddrSet): boolean {
    if (this.family !== o.family || this.b.length !== o.b.length) return false;
    for (let i = 0; i < this.b.length; i++) if (this.b[i] !== o.b[i]) return false;
    return true;
  }

  /** Number of addresses. */
  size(): bigint {
    let n = 0n;
    for (let i = 0; i < this.b.length; i += 2) n += BigInt(this.b[i + 1]!) - BigInt(this.b[i]!);
    return n;
  }

  /** Smallest member, a convenient witness. */
  first(): bigint | undefined {
    return this.b.length === 0 ? undefined : BigInt(this.b[0]!);
  }

  /** Inclusive `[lo, hi]` intervals in increasing order. */
  intervals(): Array<[bigint, bigint]> {
    const out: Array<[bigint, bigint]> = [];
    for (let i = 0; i < this.b.length; i += 2) out.push([BigInt(this.b[i]!), BigInt(this.b[i + 1]!) - 1n]);
    return out;
  }

  /** The minimal list of CIDR prefixes whose union is this set, in address order. */
  toPrefixes(): Prefix[] {
    const out: Prefix[] = [];
    const bits = familyBits(this.family);
    for (let i = 0; i < this.b.length; i += 2) {
      let lo = BigInt(this.b[i]!);
      const end = BigInt(this.b[i + 1]!);
      while (lo < end) {
        // Largest aligned block starting at lo that does not pass end.
        let size = lo === 0n ? 1n << BigInt(bits) : lo & -lo;
        while (lo + size > end) size >>= 1n;
        out.push({ family: this.family, addr: lo, len: bits - log2(size) });
        lo += size;
      }
    }
    return out;
  }

  /** `10.0.0.0/8, 192.168.1.1`, `∅` for the empty set. */
  toString(): string {
    if (this.b.length === 0) return "∅";
    return this.toPrefixes()
      .map((p) => formatPrefix(p))
      .join(", ");
  }

  /** `10.0.0.1-10.0.0.6, 10.1.0.0-10.1.255.255`: shorter than the CIDR cover for odd ranges. */
  toRangeString(): string {
    if (this.b.length === 0) return "∅";
    return this.intervals()
      .map(([lo, hi]) =>
        lo === hi
          ? formatAddress(this.family, lo)
          : `${formatAddress(this.family, lo)}-${formatAddress(this.family, hi)}`,
      )
      .join(", ");
  }

  /** IPv4 bounds, half-open (for `firstMatchPartition`'s number path). */
  static boundsV4(s: AddrSet): readonly number[] {
    return s.b as readonly number[];
  }

  /** Wraps sorted, disjoint, non-adjacent half-open IPv4 bounds (for `firstMatchPartition`). */
  static fromBoundsV4(b: number[]): AddrSet {
    return AddrSet.raw(4, b);
  }

  private combine(o: AddrSet, op: number): AddrSet {
    // Same family (checked by the caller), so both bound lists have the same element type.
    const out = merge(this.b as readonly number[], o.b as readonly number[], op);
    return AddrSet.raw(this.family, out);
  }

  private check(o: AddrSet): void {
    if (o.family !== this.family)
      throw new RangeError(`cannot combine IPv${this.family} and IPv${o.family} sets`);
  }
}

function maxOf(f: Family): bigint {
  return 1n << BigInt(familyBits(f));
}
function boundMax(f: Family): number | bigint {
  return f === 4 ? 2 ** 32 : 1n << 128n;
}
function zeroOf(f: Family): number | bigint {
  return f === 4 ? 0 : 0n;
}

function log2(v: bigint): number {
  let n = 0;
  while (v > 1n) {
    v >>= 1n;
    n++;
  }
  return n;
}

/** Number of bounds `<= x` (binary search); odd means x is a member. */
function countLE<T extends number | bigint>(b: readonly T[], x: T): number {
  let lo = 0;
  let hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (b[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Truth tables indexed by (inA << 1) | inB.
const OP_OR = 0b1110;
const OP_AND = 0b1000;
const OP_ANDNOT = 0b0100;

/**
 * One linear sweep over both boundary lists, emitting a boundary whenever `op(inA, inB)` flips.
 * When one list is much shorter, the runs of the longer one that lie between two boundaries of
 * the shorter are skipped by binary search (copied through when the output follows them).
 */
function merge<T extends number | bigint>(a: readonly T[], b: readonly T[], op: number): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  let inA = 0;
  let inB = 0;
  let cur = 0;
  const na = a.length;
  const nb = b.length;
  const gallop = na > 8 * nb || nb > 8 * na;
  while (i < na || j < nb) {
    if (gallop) {
      // Skip a stretch of the longer list that lies strictly before the other list's next bound.
      if (na > nb && i < na && j < nb && a[i]! < b[j]!) {
        const k = lowerBound(a, b[j]!, i);
        if (k - i > 4) {
          // In the skipped stretch inB is constant, so the output either follows A (copy) or is constant.
          const followsA = ((op >> (2 | inB)) & 1) !== ((op >> inB) & 1);
          if (followsA) for (let t = i; t < k; t++) out.push(a[t]!);
          if ((k - i) % 2 === 1) inA ^= 1;
          cur = (op >> ((inA << 1) | inB)) & 1;
          i = k;
          continue;
        }
      } else if (nb > na && j < nb && i < na && b[j]! < a[i]!) {
        const k = lowerBound(b, a[i]!, j);
        if (k - j > 4) {
          const followsB = ((op >> ((inA << 1) | 1)) & 1) !== ((op >> (inA << 1)) & 1);
          if (followsB) for (let t = j; t < k; t++) out.push(b[t]!);
          if ((k - j) % 2 === 1) inB ^= 1;
          cur = (op >> ((inA << 1) | inB)) & 1;
          j = k;
          continue;
        }
      }
    }
    let x: T;
    if (j >= nb || (i < na && a[i]! <= b[j]!)) x = a[i]!;
    else x = b[j]!;
    if (i < na && a[i] === x) {
      inA ^= 1;
      i++;
    }
    if (j < nb && b[j] === x) {
      inB ^= 1;
      j++;
    }
    const v = (op >> ((inA << 1) | inB)) & 1;
    if (v !== cur) {
      out.push(x);
      cur = v;
    }
  }
  return out;
}

/** First index `>= from` whose bound is `>= x`. */
function lowerBound<T extends number | bigint>(b: readonly T[], x: T, from: number): number {
  let lo = from;
  let hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (b[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * First-match partition: for each address of `universe`, the index of the first set in `sets`
 * containing it (-1 when none does). Returns the non-empty parts, ordered by index (-1 last).
 * O(B log B) over the total number of bounds B — what a symbolic first-match evaluation over an
 * ordered rule list needs, without the O(n²) of subtracting rule by rule.
 */
export function firstMatchPartition(
  universe: AddrSet,
  sets: readonly AddrSet[],
): Array<{ index: number; set: AddrSet }> {
  const family = universe.family;
  if (family === 4 && sets.length < 1 << 20) return firstMatchPartition4(universe, sets);
  // Events: bound value, set index, +1 start / -1 end. Universe is index `n` restricted separately.
  interface Ev {
    x: bigint;
    idx: number;
    start: boolean;
  }
  const evs: Ev[] = [];
  for (let k = 0; k < sets.length; k++) {
    const s = sets[k]!;
    if (s.family !== family) throw new RangeError("mixed families in partition");
    for (const [lo, hi] of s.intervals()) {
      evs.push({ x: lo, idx: k, start: true }, { x: hi + 1n, idx: k, start: false });
    }
  }
  evs.sort((p, q) => (p.x < q.x ? -1 : p.x > q.x ? 1 : 0));
  // Min-heap of active indexes with lazy deletion (each set's intervals are disjoint).
  const heap: number[] = [];
  const active = new Uint8Array(sets.length);
  const push = (v: number) => {
    heap.push(v);
    let c = heap.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (heap[p]! <= heap[c]!) break;
      [heap[p], heap[c]] = [heap[c]!, heap[p]!];
      c = p;
    }
  };
  const pop = () => {
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    let p = 0;
    for (;;) {
      const l = 2 * p + 1;
      const r = l + 1;
      let m = p;
      if (l < heap.length && heap[l]! < heap[m]!) m = l;
      if (r < heap.length && heap[r]! < heap[m]!) m = r;
      if (m === p) break;
      [heap[p], heap[m]] = [heap[m]!, heap[p]!];
      p = m;
    }
  };
  const top = (): number => {
    while (heap.length > 0 && active[heap[0]!] === 0) pop();
    return heap.length > 0 ? heap[0]! : -1;
  };
  // Segments [x_k, x_{k+1}) with their winner.
  const ranges = new Map<number, Array<[bigint, bigint]>>();
  const add = (idx: number, lo: bigint, end: bigint) => {
    if (lo >= end) return;
    let l = ranges.get(idx);
    if (!l) {
      l = [];
      ranges.set(idx, l);
    }
    const last = l[l.length - 1];
    if (last && last[1] === lo - 1n) last[1] = end - 1n;
    else l.push([lo, end - 1n]);
  };
  let pos = 0n;
  const max = 1n << BigInt(familyBits(family));
  let e = 0;
  while (pos < max) {
    while (e < evs.length && evs[e]!.x === pos) {
      const ev = evs[e]!;
      if (ev.start) {
        active[ev.idx] = 1;
        push(ev.idx);
      } else active[ev.idx] = 0;
      e++;
    }
    const next = e < evs.length ? evs[e]!.x : max;
    add(top(), pos, next);
    pos = next;
  }
  const out: Array<{ index: number; set: AddrSet }> = [];
  const keys = [...ranges.keys()].sort((p, q) => (p === -1 ? 1 : q === -1 ? -1 : p - q));
  for (const k of keys) {
    const set = AddrSet.fromRanges(family, ranges.get(k)!).intersect(universe);
    if (!set.isEmpty()) out.push({ index: k, set });
  }
  return out;
}

/**
 * `firstMatchPartition` for IPv4: the bounds stay numbers, the events are packed into one
 * Float64Array (`x·W + 2·index + start`, exact below 2^53) and sorted natively, and segments are
 * emitted only inside the universe (the universe's bounds are events too, with index `n`), so a
 * small universe against many sets builds few parts and no per-part intersection.
 */
function firstMatchPartition4(
  universe: AddrSet,
  sets: readonly AddrSet[],
): Array<{ index: number; set: AddrSet }> {
  const n = sets.length;
  const W = 2 * (n + 1);
  const ub = AddrSet.boundsV4(universe);
  let total = ub.length;
  for (let k = 0; k < n; k++) {
    const s = sets[k]!;
    if (s.family !== 4) throw new RangeError("mixed families in partition");
    total += AddrSet.boundsV4(s).length;
  }
  const keys = new Float64Array(total);
  let e = 0;
  for (let k = 0; k < n; k++) {
    const b = AddrSet.boundsV4(sets[k]!);
    const base = 2 * k;
    for (let i = 0; i < b.length; i += 2) {
      keys[e++] = b[i]! * W + base + 1;
      keys[e++] = b[i + 1]! * W + base;
    }
  }
  for (let i = 0; i < ub.length; i += 2) {
    keys[e++] = ub[i]! * W + 2 * n + 1;
    keys[e++] = ub[i + 1]! * W + 2 * n;
  }
  keys.sort();
  // Min-heap of active indexes with lazy deletion (each set's intervals are disjoint).
  const heap: number[] = [];
  const active = new Uint8Array(n);
  const push = (v: number) => {
    heap.push(v);
    let c = heap.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      const hp = heap[p]!;
      if (hp <= v) break;
      heap[c] = hp;
      c = p;
    }
    heap[c] = v;
  };
  const pop = () => {
    const last = heap.pop()!;
    const len = heap.length;
    if (len === 0) return;
    let p = 0;
    for (;;) {
      const l = 2 * p + 1;
      if (l >= len) break;
      const r = l + 1;
      const m = r < len && heap[r]! < heap[l]! ? r : l;
      if (heap[m]! >= last) break;
      heap[p] = heap[m]!;
      p = m;
    }
    heap[p] = last;
  };
  // Half-open bounds per winning index (n stands for "no set": index -1).
  const ranges = new Map<number, number[]>();
  let inU = false;
  let pos = 0;
  e = 0;
  while (e < total) {
    const key = keys[e]!;
    const r = key % W;
    const x = (key - r) / W;
    if (x > pos && inU) {
      while (heap.length > 0 && active[heap[0]!] === 0) pop();
      const idx = heap.length > 0 ? heap[0]! : n;
      let l = ranges.get(idx);
      if (!l) {
        l = [];
        ranges.set(idx, l);
      }
      if (l.length > 0 && l[l.length - 1] === pos) l[l.length - 1] = x;
      else l.push(pos, x);
    }
    pos = x;
    const idx = r >> 1;
    const start = (r & 1) === 1;
    if (idx === n) inU = start;
    else if (start) {
      active[idx] = 1;
      push(idx);
    } else active[idx] = 0;
    e++;
  }
  const out: Array<{ index: number; set: AddrSet }> = [];
  const keysOut = [...ranges.keys()].sort((p, q) => p - q);
  for (const k of keysOut) out.push({ index: k === n ? -1 : k, set: AddrSet.fromBoundsV4(ranges.get(k)!) });
  return out;
}
