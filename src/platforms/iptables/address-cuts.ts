/**
 * The address sets a rule set's conditions on one side of the packet (source or destination) can
 * change across: any set of addresses inside one region of them is judged alike by every rule, so
 * one representative per region answers for all (../../analysis/partition.ts, refineAtoms).
 */
import { AddrSet } from "../../model/addrset.js";
import { type Ruleset, specToAddrSet } from "./model.js";

export function addressCuts(
  rs: Ruleset,
  side: "src" | "dst",
  opts: { hostAddresses?: AddrSet; ipsets?: ReadonlyMap<string, AddrSet>; broadcast?: AddrSet } = {},
): AddrSet[] {
  const family = rs.family;
  // -m addrtype and routing: multicast, the limited broadcast, the host's own and broadcast addresses.
  const cuts: AddrSet[] = [
    family === 4
      ? AddrSet.fromPrefix({ family, addr: 0xe0000000n, len: 4 })
      : AddrSet.fromPrefix({ family, addr: 0xffn << 120n, len: 8 }),
    ...(family === 4 ? [AddrSet.fromRange(4, 0xffffffffn, 0xffffffffn)] : []),
    ...(opts.hostAddresses ? [opts.hostAddresses] : []),
    ...(opts.broadcast ? [opts.broadcast] : []),
  ];
  for (const t of rs.tables.values())
    for (const c of t.chains.values())
      for (const r of c.rules) {
        const a = r[side];
        const s = a && specToAddrSet(a.spec, family);
        if (s) cuts.push(s);
        for (const m of r.matches) {
          const range = m.kind === "iprange" ? m[side] : null;
          if (range) cuts.push(AddrSet.fromRange(family, range.range.lo, range.range.hi));
          else if (m.kind === "set" && m.flags.includes(side) && opts.ipsets?.has(m.name))
            cuts.push(opts.ipsets.get(m.name)!);
          else if (m.kind === "conntrack")
            // Either side of the packet may be either side of a tuple (reply direction, NAT).
            for (const n of [m.origSrc, m.origDst, m.replSrc, m.replDst]) {
              const x = n && specToAddrSet(n.net, family);
              if (x) cuts.push(x);
            }
        }
      }
  return cuts;
}
