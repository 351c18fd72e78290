import { AddrSet } from "../model/addrset.js";

/**
 * Overlays partitions of the same source set (one per destination, state, …): every non-empty
 * region where one part of each run applies, with those parts in run order.
 */
export function overlayPartitions<P extends { sources: AddrSet }>(
  runs: ReadonlyArray<{ label: string; parts: readonly P[] }>,
): Array<{ set: AddrSet; outs: Array<{ label: string; part: P }> }> {
  if (runs.length === 0) return [];
  let regions = runs[0]!.parts.map((p) => ({ set: p.sources, outs: [{ label: runs[0]!.label, part: p }] }));
  for (const run of runs.slice(1)) {
    const next: typeof regions = [];
    for (const r of regions)
      for (const p of run.parts) {
        if (!r.set.overlaps(p.sources)) continue;
        next.push({ set: r.set.intersect(p.sources), outs: [...r.outs, { label: run.label, part: p }] });
      }
    regions = next;
  }
  return regions;
}

/**
 * Splits `universe` into the atoms no cut separates (each atom lies wholly inside or outside every
 * cut); null when that takes more than `max` atoms.
 */
export function refineAtoms(universe: AddrSet, cuts: Iterable<AddrSet>, max: number): AddrSet[] | null {
  let atoms = [universe];
  for (const c of cuts) {
    if (c.isEmpty() || c.family !== universe.family) continue;
    const next: AddrSet[] = [];
    for (const a of atoms) {
      const i = a.intersect(c);
      const o = a.difference(c);
      if (!i.isEmpty()) next.push(i);
      if (!o.isEmpty()) next.push(o);
    }
    atoms = next;
    if (atoms.length > max) return null;
  }
  return atoms;
}

/**
 * `refineAtoms`' classes, in address order, by one sweep over the cuts' sorted bounds: an address
 * range between two consecutive bounds lies wholly inside or outside every cut, and ranges inside
 * the same cuts form one class (with at most six cuts that split the universe, by `refineAtoms`
 * itself). Null when there are more than `max` classes.
 */
export function sweepAtoms(universe: AddrSet, cuts: readonly AddrSet[], max: number): AddrSet[] | null {
  const family = universe.family;
  // Only a cut that splits the universe tells classes apart: none, and the universe is one class.
  const splitting = cuts.filter(
    (c) => c.family === family && c.overlaps(universe) && !universe.isSubsetOf(c),
  );
  if (splitting.length === 0) return universe.isEmpty() ? [] : [universe];
  // A few cuts: set operations over whole bound lists beat a sweep that visits each of the universe's
  // ranges (a hub's 1,000 peers) in code that runs once. At most 2^6 classes.
  if (splitting.length <= 6) return refineAtoms(universe, splitting, max)?.sort(byFirst) ?? null;
  const ev: Array<{ x: bigint; k: number; start: boolean }> = [];
  for (const [lo, hi] of universe.intervals())
    ev.push({ x: lo, k: -1, start: true }, { x: hi + 1n, k: -1, start: false });
  splitting.forEach((c, k) => {
    for (const [lo, hi] of c.intervals()) ev.push({ x: lo, k, start: true }, { x: hi + 1n, k, start: false });
  });
  ev.sort((a, b) => (a.x < b.x ? -1 : a.x > b.x ? 1 : 0));
  const active = new Set<number>();
  let inUniverse = 0;
  const classes = new Map<string, Array<[bigint, bigint]>>();
  // The class key changes only where a cut starts or ends, not at each of the universe's bounds.
  let key = "";
  for (let i = 0; i < ev.length; ) {
    const x = ev[i]!.x;
    let changed = false;
    for (; i < ev.length && ev[i]!.x === x; i++) {
      const e = ev[i]!;
      if (e.k < 0) inUniverse += e.start ? 1 : -1;
      else {
        if (e.start) active.add(e.k);
        else active.delete(e.k);
        changed = true;
      }
    }
    if (changed) key = [...active].sort((a, b) => a - b).join(",");
    if (inUniverse === 0 || i >= ev.length) continue;
    const end = ev[i]!.x - 1n;
    const ranges = classes.get(key);
    if (ranges) ranges.push([x, end]);
    else {
      if (classes.size >= max) return null;
      classes.set(key, [[x, end]]);
    }
  }
  return [...classes.values()].map((r) => AddrSet.fromRanges(family, r));
}

const byFirst = (a: AddrSet, b: AddrSet) => (a.first()! < b.first()! ? -1 : 1);

/** "label: explanation; …" for the first few runs of a region, as the combined parts explain it. */
export const listOutcomes = (outs: ReadonlyArray<{ label: string; part: { explanation: string } }>): string =>
  `${outs
    .slice(0, 4)
    .map((o) => `${o.label}: ${o.part.explanation}`)
    .join("; ")}${outs.length > 4 ? "; …" : ""}`;

/** Merges parts with the same outcome (`key` decides what "same" is); empty parts are dropped. */
export function mergeParts<T extends { sources: AddrSet }>(parts: readonly T[], key: (p: T) => string): T[] {
  // The sets of a group are joined at the end, all at once (a 100k-rule walk leaves thousands of parts).
  const by = new Map<string, { part: T; sets: AddrSet[] }>();
  for (const p of parts) {
    if (p.sources.isEmpty()) continue;
    const k = key(p);
    const prev = by.get(k);
    if (prev) prev.sets.push(p.sources);
    else by.set(k, { part: { ...p }, sets: [p.sources] });
  }
  return [...by.values()].map(({ part, sets }) => {
    if (sets.length > 1) part.sources = AddrSet.unionAll(part.sources.family, sets);
    return part;
  });
}
