/**
 * A port forward judged for a whole set of clients: the set is cut into the classes no source
 * condition of the NAT device's config tells apart (the platform gives the boundaries), and one
 * representative of each class is checked with the platform's own concrete evaluation — every
 * client of a class gets the same answer, by construction.
 */
import { formatAddress } from "../model/address.js";
import type { AddrSet } from "../model/addrset.js";
import type { PortForwardCheck, PortForwardQuery } from "./gateway.js";
import { mergeParts, sweepAtoms } from "./partition.js";

export interface PortForwardSetQuery extends Omit<PortForwardQuery, "src" | "srcClass"> {
  sources: AddrSet;
}

export type PortForwardPart = PortForwardCheck & { sources: AddrSet };

const MAX_CLASSES = 256;

export function portForwardBySource(
  q: PortForwardSetQuery,
  cuts: Iterable<AddrSet>,
  check: (q: PortForwardQuery) => PortForwardCheck,
): PortForwardPart[] {
  if (q.sources.isEmpty()) return [];
  const atoms = sweepAtoms(q.sources, [...cuts], MAX_CLASSES);
  if (atoms === null) {
    return [
      {
        sources: q.sources,
        status: "unknown",
        reason: `the config tells more than ${MAX_CLASSES} classes of sources apart; not evaluated one by one`,
        rules: [],
      },
    ];
  }
  const { sources: _s, ...rest } = q;
  const parts = atoms.map((atom) => ({
    ...check({ ...rest, src: formatAddress(atom.family, atom.first()!), srcClass: atom }),
    sources: atom,
  }));
  const key = (c: PortForwardPart) =>
    `${c.status}|${c.reason}|${c.rules.map((r) => `${r.file}:${r.line}`).join(",")}`;
  return mergeParts(parts, key).sort((a, b) => (a.sources.first()! < b.sources.first()! ? -1 : 1));
}
