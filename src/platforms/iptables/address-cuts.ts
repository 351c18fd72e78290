/**
 * The address sets a rule set's conditions on one side of the packet (source or destination) can
 * change across: any set of addresses inside one region of them is judged alike by every rule, so
 * one representative per region answers for all (../../analysis/partition.ts, refineAtoms).
 */
import { AddrSet } from "../../model/addrset.js";
import {
  BUILTIN_CHAINS,
  type Chain,
  type Hook,
  type Rule,
  type Ruleset,
  specToAddrSet,
  type TableName,
} from "./model.js";

/** Paths of a packet, as the built-in chains it may cross (the user chains they reach are added). */
export const PATHS: Record<"localOut" | "forwarded", Array<[TableName, Hook]>> = {
  localOut: [
    ["raw", "OUTPUT"],
    ["mangle", "OUTPUT"],
    ["nat", "OUTPUT"],
    ["filter", "OUTPUT"],
    ["security", "OUTPUT"],
    ["mangle", "POSTROUTING"],
    ["nat", "POSTROUTING"],
  ],
  // Received: forwarded after DNAT, or delivered to the device itself when nothing forwards it.
  forwarded: [
    ["raw", "PREROUTING"],
    ["mangle", "PREROUTING"],
    ["nat", "PREROUTING"],
    ["mangle", "FORWARD"],
    ["filter", "FORWARD"],
    ["security", "FORWARD"],
    ["mangle", "POSTROUTING"],
    ["nat", "POSTROUTING"],
    ["mangle", "INPUT"],
    ["filter", "INPUT"],
    ["security", "INPUT"],
    ["nat", "INPUT"],
  ],
};

/** The rules of those chains and of every user chain they jump or go to. */
function rulesOn(rs: Ruleset, path: Array<[TableName, Hook]>): Rule[] {
  const out: Rule[] = [];
  const seen = new Set<Chain>();
  for (const [table, hook] of path) {
    const t = rs.tables.get(table);
    const start = t?.chains.get(hook);
    if (!t || !start || seen.has(start) || !(BUILTIN_CHAINS[table] as readonly string[]).includes(hook))
      continue;
    seen.add(start);
    const stack = [start];
    while (stack.length > 0) {
      for (const r of stack.pop()!.rules) {
        out.push(r);
        const tg = r.target;
        if (tg !== null && (tg.kind === "jump" || tg.kind === "goto")) {
          const to = t.chains.get(tg.chain);
          if (to !== undefined && !seen.has(to)) {
            seen.add(to);
            stack.push(to);
          }
        }
      }
    }
  }
  return out;
}

export function addressCuts(
  rs: Ruleset,
  side: "src" | "dst",
  path: Array<[TableName, Hook]>,
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
  // Each distinct condition once: a large rule set repeats the same networks.
  const seen = new Set<string>();
  const add = (x: AddrSet) => {
    const k = x.toString();
    if (!seen.has(k)) {
      seen.add(k);
      cuts.push(x);
    }
  };
  for (const r of rulesOn(rs, path)) {
    const a = r[side];
    const s = a && specToAddrSet(a.spec, family);
    if (s) add(s);
    for (const m of r.matches) {
      const range = m.kind === "iprange" ? m[side] : null;
      if (range) add(AddrSet.fromRange(family, range.range.lo, range.range.hi));
      else if (m.kind === "set" && m.flags.includes(side) && opts.ipsets?.has(m.name))
        add(opts.ipsets.get(m.name)!);
      else if (m.kind === "conntrack")
        // Either side of the packet may be either side of a tuple (reply direction, NAT).
        for (const n of [m.origSrc, m.origDst, m.replSrc, m.replDst]) {
          const x = n && specToAddrSet(n.net, family);
          if (x) add(x);
        }
    }
  }
  return cuts;
}
