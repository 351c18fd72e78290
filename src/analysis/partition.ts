import type { AddrSet } from "../model/addrset.js";

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

/** "label: explanation; …" for the first few runs of a region, as the combined parts explain it. */
export const listOutcomes = (outs: ReadonlyArray<{ label: string; part: { explanation: string } }>): string =>
  `${outs
    .slice(0, 4)
    .map((o) => `${o.label}: ${o.part.explanation}`)
    .join("; ")}${outs.length > 4 ? "; …" : ""}`;

/** Merges parts with the same outcome (`key` decides what "same" is); empty parts are dropped. */
export function mergeParts<T extends { sources: AddrSet }>(parts: readonly T[], key: (p: T) => string): T[] {
  const by = new Map<string, T>();
  for (const p of parts) {
    if (p.sources.isEmpty()) continue;
    const k = key(p);
    const prev = by.get(k);
    if (prev) prev.sources = prev.sources.union(p.sources);
    else by.set(k, { ...p });
  }
  return [...by.values()];
}
