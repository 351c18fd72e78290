/**
 * The address sets a rule set's conditions on one side of the packet (source or destination) can
 * change across: any set of addresses inside one region of them is judged alike by every rule, so
 * one representative per region answers for all (../../analysis/partition.ts, sweepAtoms).
 */
import { AddrSet } from "../../model/addrset.js";
import {
  BUILTIN_CHAINS,
  type Chain,
  type Hook,
  type PortCond,
  type Rule,
  type Ruleset,
  specToAddrSet,
  type TableName,
} from "./model.js";
import { NAT_PORTS_FLAG, rewritesPorts, ruleCount, ruleTestAt } from "./rule-store.js";
import { forEachReachableRule } from "./walk.js";

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
  // Forwarded (after DNAT). A packet that is not forwarded crosses INPUT instead: the device's own
  // input filter does not change whether (and where) the forward goes, so it is not cut by.
  forwarded: [
    ["raw", "PREROUTING"],
    ["mangle", "PREROUTING"],
    ["nat", "PREROUTING"],
    ["mangle", "FORWARD"],
    ["filter", "FORWARD"],
    ["security", "FORWARD"],
    ["mangle", "POSTROUTING"],
    ["nat", "POSTROUTING"],
  ],
};

/**
 * What is known of the packet besides its addresses: rules that certainly cannot match it (another
 * protocol, a port outside their range) do not cut. Undefined ports: any.
 */
export interface PacketShape {
  proto: number;
  sport?: number;
  dport?: number;
}

const portExcludes = (c: PortCond | null, port: number | undefined): boolean =>
  c !== null && port !== undefined && (port >= c.range.lo && port <= c.range.hi) === c.invert;

/** Whether the rule certainly cannot match a packet of that shape (false when in doubt). */
export function cannotMatch(r: Rule, shape: PacketShape | undefined): boolean {
  if (!shape) return false;
  if (r.proto && (r.proto.num === shape.proto) === r.proto.invert) return true;
  for (const m of r.matches) {
    if (m.kind === "tcp" || m.kind === "udp") {
      if (shape.proto !== (m.kind === "tcp" ? 6 : 17)) return true;
      if (portExcludes(m.sport, shape.sport) || portExcludes(m.dport, shape.dport)) return true;
    } else if (m.kind === "multiport" && m.dir !== "any" && !m.invert) {
      const port = m.dir === "src" ? shape.sport : shape.dport;
      if (port !== undefined && !m.ranges.some((x) => port >= x.lo && port <= x.hi)) return true;
    }
  }
  return false;
}

/** Whether the nat table may rewrite a packet's ports (DNAT/REDIRECT to ports, an unmodelled target). */
function natRewritesPorts(rs: Ruleset): boolean {
  let v = natPorts.get(rs);
  if (v !== undefined) return v;
  v = false;
  scan: for (const c of rs.tables.get("nat")?.chains.values() ?? [])
    for (let i = 0, n = ruleCount(c); i < n; i++)
      if (ruleTestAt(c, i, NAT_PORTS_FLAG, rewritesPorts)) {
        v = true;
        break scan;
      }
  natPorts.set(rs, v);
  return v;
}
/** Once per rule set: each outbound flow of an audit asks, and a kube-proxy nat table has 75,000 rules. */
const natPorts = new WeakMap<Ruleset, boolean>();

/**
 * The rules of those chains and of every user chain they jump or go to, leaving out the rules that
 * cannot match a packet of `shape` (and what only they jump to). Once nat PREROUTING/OUTPUT may have
 * rewritten the destination port, later chains are not filtered by it.
 */
export function rulesOn(rs: Ruleset, path: Array<[TableName, Hook]>, shape?: PacketShape): Rule[] {
  const out: Rule[] = [];
  const seen = new Set<Chain>();
  let sh = shape;
  const rewrites = shape?.dport !== undefined && natRewritesPorts(rs);
  for (const [table, hook] of path) {
    const t = rs.tables.get(table);
    const start = t?.chains.get(hook);
    const after = () => {
      if (rewrites && table === "nat" && (hook === "PREROUTING" || hook === "OUTPUT") && sh) {
        const { dport: _d, ...rest } = sh;
        sh = rest;
        seen.clear(); // user chains seen with the port filter are looked at again without it
      }
    };
    if (!t || !start || seen.has(start) || !(BUILTIN_CHAINS[table] as readonly string[]).includes(hook)) {
      after();
      continue;
    }
    seen.add(start);
    forEachReachableRule(t, start, seen, (r) => {
      if (cannotMatch(r, sh)) return false;
      out.push(r);
      return true;
    });
    after();
  }
  return out;
}

export function addressCuts(
  rs: Ruleset,
  side: "src" | "dst",
  path: Array<[TableName, Hook]>,
  opts: { hostAddresses?: AddrSet; ipsets?: ReadonlyMap<string, AddrSet>; broadcast?: AddrSet } = {},
  shape?: PacketShape,
): AddrSet[] {
  return cutsOf(rs, side, rulesOn(rs, path, shape), opts, true);
}

/**
 * The cuts of `rules` on one side. Without `always`, the address-type cuts (multicast, broadcast,
 * the host's own) are only there when a rule looks at that side's address type: an empty result
 * then means no rule depends on that side's address at all.
 */
export function cutsOf(
  rs: Ruleset,
  side: "src" | "dst",
  rules: readonly Rule[],
  opts: { hostAddresses?: AddrSet; ipsets?: ReadonlyMap<string, AddrSet>; broadcast?: AddrSet },
  always: boolean,
): AddrSet[] {
  const family = rs.family;
  const typed = always || rules.some((r) => r.matches.some((m) => m.kind === "addrtype" && m[side]));
  // -m addrtype and routing: multicast, the limited broadcast, the host's own and broadcast addresses.
  const cuts: AddrSet[] = !typed
    ? []
    : [
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
  for (const r of rules) {
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
