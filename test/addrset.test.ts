import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { sweepAtoms } from "../src/analysis/partition.js";
import { type Family, familyBits, type Prefix, parsePrefix, prefixLast } from "../src/model/address.js";
import { AddrSet, firstMatchPartition } from "../src/model/addrset.js";

// Oracle: a set is the plain list of inclusive ranges it was built from; membership is "in any".
type Ranges = Array<[bigint, bigint]>;
const inRanges = (r: Ranges, x: bigint) => r.some(([lo, hi]) => lo <= x && x <= hi);

const MAX: Record<Family, bigint> = { 4: 1n << 32n, 6: 1n << 128n };

/** Addresses crowded near 0, near the top and around a midpoint so ranges touch and overlap often. */
function addrArb(f: Family): fc.Arbitrary<bigint> {
  const max = MAX[f];
  const mid = max / 2n;
  return fc.oneof(
    fc.bigInt({ min: 0n, max: 80n }),
    fc.bigInt({ min: max - 80n, max: max - 1n }),
    fc.bigInt({ min: mid - 80n, max: mid + 80n }),
    fc.bigInt({ min: 0n, max: max - 1n }),
  );
}

function rangesArb(f: Family, maxLength = 8): fc.Arbitrary<Ranges> {
  const range = fc
    .tuple(addrArb(f), fc.oneof(fc.bigInt({ min: 0n, max: 40n }), fc.bigInt({ min: 0n, max: MAX[f] })))
    .map(([lo, len]): [bigint, bigint] => {
      const hi = lo + len >= MAX[f] ? MAX[f] - 1n : lo + len;
      return [lo, hi];
    });
  return fc.array(range, { maxLength });
}

/** Every point where membership of any operand can change, plus neighbours and extremes. */
function criticalPoints(f: Family, ...rs: Ranges[]): bigint[] {
  const pts = new Set<bigint>([0n, 1n, MAX[f] - 1n, MAX[f] - 2n, MAX[f] / 2n]);
  for (const r of rs)
    for (const [lo, hi] of r) for (const p of [lo - 1n, lo, lo + 1n, hi - 1n, hi, hi + 1n]) pts.add(p);
  return [...pts].filter((p) => p >= 0n && p < MAX[f]);
}

function wellFormed(s: AddrSet): void {
  const iv = s.intervals();
  for (let k = 0; k < iv.length; k++) {
    const [lo, hi] = iv[k]!;
    expect(lo <= hi).toBe(true);
    expect(lo >= 0n && hi < MAX[s.family]).toBe(true);
    // Disjoint and not adjacent: a canonical form, so equals() can compare bounds.
    if (k > 0) expect(lo > iv[k - 1]![1] + 1n).toBe(true);
  }
}

for (const f of [4, 6] as const) {
  describe(`AddrSet IPv${f} against the range-list oracle`, () => {
    test.prop([rangesArb(f)])("fromRanges is canonical and has the same members", (r) => {
      const s = AddrSet.fromRanges(f, r);
      wellFormed(s);
      for (const p of criticalPoints(f, r)) expect(s.has(p)).toBe(inRanges(r, p));
    });

    test.prop([rangesArb(f), rangesArb(f)])("union, intersection, difference, complement", (ra, rb) => {
      const a = AddrSet.fromRanges(f, ra);
      const b = AddrSet.fromRanges(f, rb);
      const u = a.union(b);
      const i = a.intersect(b);
      const d = a.difference(b);
      const c = a.complement();
      for (const s of [u, i, d, c]) wellFormed(s);
      for (const p of criticalPoints(f, ra, rb)) {
        const ia = inRanges(ra, p);
        const ib = inRanges(rb, p);
        expect(u.has(p)).toBe(ia || ib);
        expect(i.has(p)).toBe(ia && ib);
        expect(d.has(p)).toBe(ia && !ib);
        expect(c.has(p)).toBe(!ia);
      }
      expect(a.overlaps(b)).toBe(!i.isEmpty());
      expect(a.isSubsetOf(b)).toBe(d.isEmpty());
    });

    // Lopsided operands (many small ranges vs a few) take the galloping path of the merge.
    test.prop([
      fc.array(fc.tuple(fc.bigInt({ min: 0n, max: 4000n }), fc.bigInt({ min: 0n, max: 6n })), {
        minLength: 40,
        maxLength: 150,
      }),
      rangesArb(f, 3),
      fc.boolean(),
    ])("lopsided operands agree with the oracle", (small, rb, swap) => {
      const ra: Ranges = small.map(([lo, len]) => [lo, lo + len]);
      const [x, y] = swap ? [rb, ra] : [ra, rb];
      const a = AddrSet.fromRanges(f, x);
      const b = AddrSet.fromRanges(f, y);
      const ops = [a.union(b), a.intersect(b), a.difference(b)];
      for (const s of ops) wellFormed(s);
      for (const p of criticalPoints(f, x, y)) {
        const ia = inRanges(x, p);
        const ib = inRanges(y, p);
        expect([ops[0]!.has(p), ops[1]!.has(p), ops[2]!.has(p)]).toEqual([ia || ib, ia && ib, ia && !ib]);
      }
    });

    test.prop([rangesArb(f), rangesArb(f), rangesArb(f)])("algebraic laws", (ra, rb, rc) => {
      const [a, b, c] = [ra, rb, rc].map((r) => AddrSet.fromRanges(f, r)) as [AddrSet, AddrSet, AddrSet];
      expect(a.complement().complement().equals(a)).toBe(true);
      expect(a.union(b).complement().equals(a.complement().intersect(b.complement()))).toBe(true);
      expect(a.difference(b).equals(a.intersect(b.complement()))).toBe(true);
      expect(a.intersect(b.union(c)).equals(a.intersect(b).union(a.intersect(c)))).toBe(true);
      expect(a.union(a.complement()).isAll()).toBe(true);
      expect(a.intersect(a.complement()).isEmpty()).toBe(true);
      expect(a.size() + a.complement().size()).toBe(MAX[f]);
      expect(a.union(b).size() + a.intersect(b).size()).toBe(a.size() + b.size());
    });

    test.prop([rangesArb(f)])("toPrefixes is an exact, minimal CIDR cover", (r) => {
      const s = AddrSet.fromRanges(f, r);
      const ps = s.toPrefixes();
      expect(AddrSet.fromPrefixes(f, ps).equals(s)).toBe(true);
      let prevLast = -1n;
      for (const p of ps) {
        // Sorted, disjoint, aligned.
        expect(p.addr > prevLast).toBe(true);
        expect(p.addr & ((1n << BigInt(familyBits(f) - p.len)) - 1n)).toBe(0n);
        prevLast = prefixLast(p);
        // Maximal: the parent block is not entirely in the set, so no two parts could merge.
        if (p.len > 0) {
          const parentLen = p.len - 1;
          const parentAddr = p.addr & ~((1n << BigInt(familyBits(f) - parentLen)) - 1n);
          const parent = AddrSet.fromPrefix({ family: f, addr: parentAddr, len: parentLen });
          expect(parent.isSubsetOf(s)).toBe(false);
        }
      }
    });

    test.prop([fc.array(rangesArb(f), { maxLength: 6 }), rangesArb(f)])(
      "firstMatchPartition assigns each address to the first set containing it",
      (rs, ru) => {
        const sets = rs.map((r) => AddrSet.fromRanges(f, r));
        const universe = ru.length === 0 ? AddrSet.all(f) : AddrSet.fromRanges(f, ru);
        const parts = firstMatchPartition(universe, sets);
        // Parts are disjoint and cover the universe.
        let cover = AddrSet.empty(f);
        for (const part of parts) {
          expect(part.set.overlaps(cover)).toBe(false);
          cover = cover.union(part.set);
        }
        expect(cover.equals(universe)).toBe(true);
        for (const p of criticalPoints(f, ...rs, ru)) {
          if (!universe.has(p)) continue;
          const want = rs.findIndex((r) => inRanges(r, p));
          const got = parts.find((part) => part.set.has(p));
          expect(got?.index).toBe(want);
        }
      },
    );

    test.prop([fc.array(rangesArb(f), { maxLength: 9 })])("unionAll is the union of every set", (rs) => {
      const sets = rs.map((r) => AddrSet.fromRanges(f, r));
      const all = AddrSet.unionAll(f, sets);
      expect(all.equals(sets.reduce((a, b) => a.union(b), AddrSet.empty(f)))).toBe(true);
      for (const p of criticalPoints(f, ...rs)) expect(all.has(p)).toBe(rs.some((r) => inRanges(r, p)));
    });

    test.prop([fc.array(rangesArb(f), { maxLength: 10 }), rangesArb(f)])(
      "sweepAtoms: two addresses share a class exactly when every cut holds both or neither",
      (rs, ru) => {
        const cuts = rs.map((r) => AddrSet.fromRanges(f, r));
        const universe = AddrSet.fromRanges(f, ru);
        const classes = sweepAtoms(universe, cuts, 10_000)!;
        let cover = AddrSet.empty(f);
        for (const c of classes) {
          expect(c.isEmpty()).toBe(false);
          expect(c.overlaps(cover)).toBe(false);
          cover = cover.union(c);
        }
        expect(cover.equals(universe)).toBe(true);
        const pts = criticalPoints(f, ...rs, ru).filter((p) => universe.has(p));
        const sig = (p: bigint) => rs.map((r) => (inRanges(r, p) ? 1 : 0)).join("");
        const classOf = (p: bigint) => classes.findIndex((c) => c.has(p));
        for (const a of pts) for (const b of pts) expect(classOf(a) === classOf(b)).toBe(sig(a) === sig(b));
      },
    );
  });
}

test.prop([rangesArb(4), addrArb(4), fc.bigInt({ min: 0n, max: 300n })])(
  "overlapsV4 says what overlaps says of the range",
  (r, lo, len) => {
    const set = AddrSet.fromRanges(4, r);
    const end = lo + len > MAX[4] ? MAX[4] : lo + len;
    const want = end > lo && set.overlaps(AddrSet.fromRange(4, lo, end - 1n));
    expect(set.overlapsV4(Number(lo), Number(end))).toBe(want);
  },
);

describe("AddrSet specifics", () => {
  const P = (s: string) => parsePrefix(s);

  it("merges adjacent and overlapping prefixes and prints a CIDR cover", () => {
    const s = AddrSet.fromPrefixes(4, [
      P("10.0.0.0/25"),
      P("10.0.0.128/25"),
      P("10.0.1.0/24"),
      P("10.0.0.5"),
    ]);
    expect(s.intervalCount).toBe(1);
    expect(s.toString()).toBe("10.0.0.0/23");
    const r = AddrSet.fromRange(4, P("10.0.0.1").addr, P("10.0.0.6").addr);
    expect(r.toString()).toBe("10.0.0.1, 10.0.0.2/31, 10.0.0.4/31, 10.0.0.6");
    expect(r.toRangeString()).toBe("10.0.0.1-10.0.0.6");
    expect(AddrSet.empty(4).toString()).toBe("∅");
    expect(AddrSet.all(4).toString()).toBe("0.0.0.0/0");
    expect(AddrSet.all(6).toString()).toBe("::/0");
  });

  it("complements at the extremes of the address space", () => {
    const top = AddrSet.fromPrefix(P("255.255.255.255"));
    expect(top.complement().toString()).toBe(
      "0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/3, 224.0.0.0/4, 240.0.0.0/5, 248.0.0.0/6, 252.0.0.0/7, 254.0.0.0/8, 255.0.0.0/9, 255.128.0.0/10, 255.192.0.0/11, 255.224.0.0/12, 255.240.0.0/13, 255.248.0.0/14, 255.252.0.0/15, 255.254.0.0/16, 255.255.0.0/17, 255.255.128.0/18, 255.255.192.0/19, 255.255.224.0/20, 255.255.240.0/21, 255.255.248.0/22, 255.255.252.0/23, 255.255.254.0/24, 255.255.255.0/25, 255.255.255.128/26, 255.255.255.192/27, 255.255.255.224/28, 255.255.255.240/29, 255.255.255.248/30, 255.255.255.252/31, 255.255.255.254",
    );
    expect(AddrSet.all(6).complement().isEmpty()).toBe(true);
    expect(AddrSet.empty(6).complement().isAll()).toBe(true);
    const v6 = AddrSet.fromPrefix(P("2001:db8::/32"));
    expect(v6.has(P("2001:db8:ffff::1").addr)).toBe(true);
    expect(v6.has(P("2001:db9::").addr)).toBe(false);
    expect(v6.complement().size()).toBe((1n << 128n) - (1n << 96n));
  });

  it("refuses to mix families", () => {
    expect(() => AddrSet.all(4).union(AddrSet.all(6))).toThrow(RangeError);
    expect(() => AddrSet.fromPrefixes(4, [P("::1")])).toThrow(RangeError);
    expect(() => AddrSet.fromRange(4, 0n, 1n << 32n)).toThrow(RangeError);
  });

  it("hasV4 agrees with has", () => {
    const s = AddrSet.fromPrefixes(4, [P("10.0.0.0/8"), P("255.255.255.0/24")]);
    for (const a of ["10.1.2.3", "9.255.255.255", "11.0.0.0", "255.255.255.255", "0.0.0.0"]) {
      const x = P(a).addr;
      expect(s.hasV4(Number(x))).toBe(s.has(x));
    }
    expect(s.hasV4(0xffffffff)).toBe(true);
  });

  test.prop([
    fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }),
    // Masks with at most 10 zero bits above the lowest one bit, so the oracle stays enumerable.
    fc.array(fc.integer({ min: 0, max: 31 }), { maxLength: 10 }),
    fc.integer({ min: 0, max: 32 }),
    fc.array(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), { maxLength: 30 }),
  ])("fromMasked matches x & mask == addr & mask", (addr, holes, len, probes) => {
    let mask = len === 0 ? 0n : (((1n << BigInt(len)) - 1n) << BigInt(32 - len)) & 0xffffffffn;
    for (const h of holes) mask &= ~(1n << BigInt(h));
    const s = AddrSet.fromMasked(4, addr, mask);
    expect(s).not.toBeNull();
    const want = (x: bigint) => (x & mask) === (addr & mask);
    // Probes: random points, the base, and random points forced to agree on the mask.
    const pts = [...probes, addr & mask, ...probes.map((p) => (p & ~mask) | (addr & mask))];
    for (const p of pts) expect(s!.has(p & 0xffffffffn)).toBe(want(p & 0xffffffffn));
    if (mask !== 0n) {
      const zeros = 32 - mask.toString(2).replaceAll("0", "").length;
      expect(s!.size()).toBe(1n << BigInt(zeros));
    }
  });

  it("fromMasked refuses masks that would need too many intervals, and agrees with prefixes", () => {
    expect(AddrSet.fromMasked(4, 0n, 1n)).toBeNull();
    const p: Prefix = P("192.168.0.0/16");
    expect(AddrSet.fromMasked(4, p.addr, 0xffff0000n)!.equals(AddrSet.fromPrefix(p))).toBe(true);
    const odd = AddrSet.fromMasked(4, P("1.2.3.4").addr, P("255.0.255.0").addr)!;
    expect(odd.intervalCount).toBe(256);
    expect(odd.has(P("1.77.3.200").addr)).toBe(true);
    expect(odd.has(P("1.77.4.200").addr)).toBe(false);
  });

  it("handles large lopsided operations quickly and exactly", () => {
    // 50k /24s minus one /8 and one address: exercises the galloping path.
    const ps: Prefix[] = [];
    for (let k = 0; k < 50_000; k++) ps.push({ family: 4, addr: BigInt(k * 2 * 256 + 0x0a000000), len: 24 });
    const big = AddrSet.fromPrefixes(4, ps);
    expect(big.intervalCount).toBe(50_000);
    const hole = AddrSet.fromPrefixes(4, [P("10.0.2.7"), P("10.100.0.0/16")]);
    const t0 = performance.now();
    const d = big.difference(hole);
    const i = big.intersect(hole);
    const u = hole.union(big);
    const ms = performance.now() - t0;
    expect(d.has(P("10.0.2.7").addr)).toBe(false);
    expect(d.has(P("10.0.2.8").addr)).toBe(true);
    // The /16 holds 128 of the even /24s, plus the single address.
    expect(i.size()).toBe(1n + 128n * 256n);
    expect(i.toString().startsWith("10.0.2.7, 10.100.0.0/24, 10.100.2.0/24")).toBe(true);
    expect(u.equals(big.union(hole))).toBe(true);
    expect(d.union(i).equals(big)).toBe(true);
    expect(ms).toBeLessThan(500);
  });
});
