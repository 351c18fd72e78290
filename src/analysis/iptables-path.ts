/**
 * The whole path of one concrete packet through an iptables rule set, the way the kernel walks
 * it: every table registered at every hook the packet passes, in hook priority order
 * (`NF_IP_PRI_RAW` -300, conntrack -200, `MANGLE` -150, `NAT_DST` -100, `FILTER` 0, `SECURITY` 50,
 * `NAT_SRC` 100; include/uapi/linux/netfilter_ipv4.h), with the routing decision in between.
 *
 * - Received: raw → mangle → nat PREROUTING, routing, then for local delivery mangle → filter →
 *   security → nat INPUT, for forwarding mangle → filter → security FORWARD and mangle → nat
 *   POSTROUTING. Sent by the host: raw → mangle → nat → filter → security OUTPUT, then mangle →
 *   nat POSTROUTING.
 * - Conntrack runs after raw: in the raw table no packet has a conntrack entry yet, so state
 *   matches see INVALID (UNTRACKED after `CT --notrack` / `NOTRACK`), and connmark never matches.
 *   Checked on this machine's kernel with iptables 1.8.9 (see docs/iptables.md).
 * - nat chains run once per connection and direction of manipulation: for the first packet
 *   (NEW, or a RELATED connection that is not an ICMP error), never for untracked or invalid
 *   packets (`nf_nat_inet_fn`: no conntrack entry → accept). A later packet of the connection in
 *   the original direction gets the connection's DNAT binding without a chain walk; it is
 *   computed here by walking nat PREROUTING/OUTPUT as the connection's first packet. In the reply
 *   direction the packet is taken with the addresses it arrives with.
 * - Routing: the destination (after DNAT) is one of the host's addresses → local delivery,
 *   otherwise forwarding. IPv4 fragments are reassembled before INPUT (`ip_local_deliver`), and
 *   before everything when the rule set uses conntrack (nf_defrag at priority -400).
 *
 * Three-valued like the per-table evaluator (./iptables-eval.ts): what cannot be known statically
 * is explored both ways; the verdict is certain only when every outcome agrees, otherwise
 * "unknown" with the reasons.
 */
import { type Family, familyBits } from "../model/address.js";
import { AddrSet } from "../model/addrset.js";
import {
  BUILTIN_CHAINS,
  type Chain,
  type Hook,
  type Rule,
  type Ruleset,
  type TableName,
} from "../platforms/iptables/model.js";
import {
  CONNTRACK_FLAG,
  candidatesPass,
  enablesConntrack,
  indexPortAt,
  indexProtoAt,
  prefixAt,
  ruleCount,
  someRule,
} from "../platforms/iptables/rule-store.js";
import {
  type EvalOptions,
  evaluateTable,
  type Outcome,
  type Packet,
  type PacketState,
  type TableVerdict,
  type TraceStep,
} from "./iptables-eval.js";

export type Route = "local" | "forward" | "output";

export interface PathOptions {
  /** The host's own addresses. Undefined: unknown, so local delivery and forwarding are both explored. */
  local?: AddrSet;
  /**
   * The directed broadcast addresses of the host's IPv4 subnets (`broadcast` routes in the local
   * table): delivered locally. See `linkBroadcasts`.
   */
  broadcast?: AddrSet;
  /** ipset contents (`ipset save`), for exact `-m set`. */
  ipsets?: ReadonlyMap<string, AddrSet>;
  /** `incoming` (default): received on `iif`; `local`: sent by the host itself (OUTPUT path). */
  origin?: "incoming" | "local";
  /** Bound on explored outcomes (default 256). */
  maxOutcomes?: number;
}

/** A `-j TRACE` line: table, chain, type, rule number, at a hook. */
export interface PathStep extends TraceStep {
  hook: Hook;
}

/** Something the path could not know, and the way this outcome took it. */
export interface PathAssumption {
  /** The undecidable rule, or null for a path-level fact (routing, the connection's direction). */
  rule: Rule | null;
  matched: boolean;
  why: string;
}

/** What decided: a rule, a built-in chain's policy, or (rule and policy null) no table at all. */
export interface Decision {
  table: TableName;
  hook: Hook;
  /** The deciding rule (in the built-in chain of `hook` or a user chain it reached). */
  rule: Rule | null;
  /** The built-in chain's policy, when no rule decided; null when the table is not loaded. */
  policy: "ACCEPT" | "DROP" | null;
}

export interface PathOutcome {
  verdict: TableVerdict;
  /** Local delivery, forwarding or local output; null when decided before the routing decision. */
  route: Route | null;
  /**
   * The deciding rule or policy: for a drop/reject/unknown the table that ended the walk, for an
   * accept the filter table at the filtering hook (INPUT, FORWARD or OUTPUT). Null: not filtered
   * (no filter table), or a path-level fact decided (see `reason`).
   */
  decision: Decision | null;
  /** Why the verdict is unknown, or why nothing filtered the packet. */
  reason?: string;
  trace: PathStep[];
  assumed: PathAssumption[];
  /** The packet as it leaves the path (marks, NAT). */
  packet: Packet;
  nat: Array<{ kind: "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT"; rule: Rule; hook: Hook }>;
  /** Facts worth showing with the trace (reassembly, a connection's NAT binding). */
  notes: string[];
}

export interface PathResult {
  /** The verdict when every outcome agrees, otherwise "unknown". */
  verdict: TableVerdict;
  route: Route | "unknown" | null;
  /** The decision of the first outcome (undecidable rules taken as not matching). */
  decision: Decision | null;
  reason?: string;
  outcomes: PathOutcome[];
  truncated: boolean;
}

// ---------------------------------------------------------------------------------------------
// Facts about the rule set

const ctCache = new WeakMap<Ruleset, boolean>();

/**
 * Whether loading this rule set enables connection tracking (and with it nf_defrag) in the
 * network namespace: some match or target calls `nf_ct_netns_get` / `nf_defrag_*_enable`. An
 * empty nat table does not (checked with iptables-nft and iptables-legacy on this kernel).
 */
export function conntrackInUse(rs: Ruleset): boolean {
  const hit = ctCache.get(rs);
  if (hit !== undefined) return hit;
  const used = someRule(rs, CONNTRACK_FLAG, enablesConntrack);
  ctCache.set(rs, used);
  return used;
}

/** A fragment of a datagram, first or later: what reassembly holds back (nf_defrag_ipv6 holds both). */
export const isFragment = (p: Packet): boolean => p.fragment === true || p.fragFirst === true;

/** The datagram reassembled: no fragment and no Fragment header left (nf_defrag_ipv6 removes it). */
export function unfragmented(p: Packet): Packet {
  const { fragFirst: _f, fragMore: _m, fragId: _i, ...rest } = p;
  return { ...rest, fragment: false };
}

/** Protocols whose header carries ports (what `--sport`/`--dport` read). */
export const hasPorts = (proto: number): boolean =>
  proto === 6 || proto === 17 || proto === 136 || proto === 132 || proto === 33;

const isIcmp = (family: Family, proto: number): boolean => (family === 4 ? proto === 1 : proto === 58);

/**
 * Whether the nat table's chains are walked for this packet: only for a connection's first packet
 * (NEW; RELATED when it opens an expected connection, not for ICMP errors, which belong to an
 * existing connection whose NAT is set up) and never without a conntrack entry.
 */
export function natWalked(p: Packet): boolean {
  if (p.state === "new") return true;
  return p.state === "related" && !isIcmp(p.family, p.proto);
}

const isMulticast = (family: Family, a: bigint): boolean =>
  family === 4 ? a >> 28n === 0xen : a >> 120n === 0xffn;

/**
 * The routing decision for a received packet: local delivery when the destination is one of the
 * host's addresses, the limited broadcast or a directed broadcast of one of its subnets (the local
 * routing table's `local` and `broadcast` routes), forwarding otherwise; multicast depends on group
 * membership; null when the host's addresses are unknown.
 */
export function routeReceived(
  family: Family,
  dst: bigint,
  local: AddrSet | undefined,
  broadcast?: AddrSet,
): "local" | "forward" | { unknown: string } | null {
  if (family === 4 && dst === 0xffffffffn) return "local";
  if (broadcast?.has(dst)) return "local";
  if (isMulticast(family, dst))
    return {
      unknown:
        "multicast destination: delivered locally only for a group the host joined, forwarded only by a multicast router",
    };
  if (!local) return null;
  return local.has(dst) ? "local" : "forward";
}

/**
 * The directed broadcast address of each IPv4 interface address with its prefix length
 * (`192.0.2.1/24` → 192.0.2.255), as the kernel adds `broadcast` routes to the local table
 * (checked on this kernel: `ip route show table local` lists the directed broadcast, not the
 * network address). /31 and /32 have none; IPv6 has no broadcast.
 */
export function linkBroadcasts(prefixes: Iterable<{ family: Family; addr: bigint; len: number }>): AddrSet {
  const out: Array<[bigint, bigint]> = [];
  for (const p of prefixes) {
    if (p.family !== 4 || p.len > 30) continue;
    const b = p.addr | ((1n << BigInt(32 - p.len)) - 1n);
    out.push([b, b]);
  }
  return AddrSet.fromRanges(4, out);
}

/** A DNAT/REDIRECT that changes the packet in a way the rule set alone does not determine. */
export function natAmbiguity(
  rule: Rule,
  local: AddrSet | undefined,
  hook: Hook = "PREROUTING",
): string | undefined {
  const t = rule.target;
  if (!t) return undefined;
  if (t.kind === "DNAT") {
    if (t.ranges.length > 1) return "DNAT with several ranges: the kernel picks one at run time";
    const n = t.ranges[0];
    if (!n) return undefined;
    if (n.addrLo !== null && n.addrHi !== null && n.addrLo > n.addrHi)
      return "DNAT to a reversed address range: the kernel wraps it around the address space and picks the address at run time";
    if (n.addrLo !== null && n.addrHi !== null && n.addrLo !== n.addrHi)
      return "DNAT to an address range: the kernel picks the address at run time";
    if (n.portLo !== null && n.portHi !== null && n.portLo !== n.portHi)
      return "DNAT to a port range: the kernel picks the port at run time";
    return undefined;
  }
  if (t.kind === "REDIRECT") {
    if (t.ports && t.ports.lo !== t.ports.hi)
      return "REDIRECT to a port range: the kernel picks the port at run time";
    if (hook !== "OUTPUT" && local?.size() !== 1n)
      return "REDIRECT: the new destination is the primary address of the incoming interface, which the host's addresses do not determine";
  }
  return undefined;
}

/**
 * The packet after a REDIRECT: in nat OUTPUT the loopback address (127.0.0.1 / ::1, as
 * nf_nat_redirect_ipv4/ipv6 do for NF_INET_LOCAL_OUT), elsewhere the host's (single) address;
 * and the port.
 */
export function applyRedirect(
  p: Packet,
  rule: Rule,
  local: AddrSet | undefined,
  hook: Hook = "PREROUTING",
): void {
  const t = rule.target;
  if (t?.kind !== "REDIRECT") return;
  if (hook === "OUTPUT") p.dst = p.family === 4 ? 0x7f000001n : 1n;
  else if (local && local.size() === 1n) p.dst = local.first()!;
  if (t.ports) p.dport = t.ports.lo;
}

/** `policy DROP of filter INPUT`, `t.rules:12`, `no filter table (nothing filters INPUT)`. */
export function decisionName(d: Decision): string {
  if (d.rule) return `${d.rule.prov.file}:${d.rule.prov.line}`;
  if (d.policy) return `policy ${d.policy} of ${d.table} ${d.hook}`;
  return `no ${d.table} table (nothing filters ${d.hook})`;
}

// ---------------------------------------------------------------------------------------------
// Rule index (performance): skip rules whose protocol, destination port or address prefix cannot match

interface Bucket {
  /** Rules without an indexable address condition. */
  any: number[];
  /** Rules with a source prefix, in rule order, with their prefixes (what a symbolic source reads). */
  srcAll: number[];
  srcPfx: Array<{ len: number; addr: bigint }>;
  /** The same by prefix length → masked network → rules; built on the first concrete lookup. */
  src?: Map<number, Map<number | bigint, number[]>>;
  /** Rules with a destination prefix (and no source prefix), likewise. */
  dstAll: number[];
  dstPfx: Array<{ len: number; addr: bigint }>;
  dst?: Map<number, Map<number | bigint, number[]>>;
}

interface ChainIndex {
  /** proto (-1: any) → dport (-1: any) → buckets. */
  byProto: Map<number, Map<number, Bucket>>;
  family: Family;
  /** Candidate lists by packet key (a few per chain). */
  cache: Map<string, number[]>;
  /** The last key asked for and its list (consecutive steps of one walk ask the same). */
  last: IndexKey | null;
  lastList: number[];
}

const MIN_INDEXED = 24;

function maskOf(family: Family, len: number): bigint {
  const bits = BigInt(familyBits(family));
  return ((1n << BigInt(len)) - 1n) << (bits - BigInt(len));
}

const MASK4 = Array.from({ length: 33 }, (_, len) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0));

function keyOf(family: Family, addr: bigint, len: number): number | bigint {
  if (family === 4) return (Number(addr) & MASK4[len]!) >>> 0;
  return addr & maskOf(family, len);
}

function put(
  m: Map<number, Map<number | bigint, number[]>>,
  family: Family,
  p: { len: number; addr: bigint },
  i: number,
) {
  let byKey = m.get(p.len);
  if (!byKey) {
    byKey = new Map();
    m.set(p.len, byKey);
  }
  const k = keyOf(family, p.addr, p.len);
  const l = byKey.get(k);
  if (l) l.push(i);
  else byKey.set(k, [i]);
}

function buildChainIndex(c: Chain, family: Family): ChainIndex {
  const byProto = new Map<number, Map<number, Bucket>>();
  for (let i = 0, n = ruleCount(c); i < n; i++) {
    const proto = indexProtoAt(c, i);
    const port = indexPortAt(c, i);
    let ports = byProto.get(proto);
    if (!ports) {
      ports = new Map();
      byProto.set(proto, ports);
    }
    let b = ports.get(port);
    if (!b) {
      b = { any: [], srcAll: [], srcPfx: [], dstAll: [], dstPfx: [] };
      ports.set(port, b);
    }
    const sp = prefixAt(c, i, false, family);
    const dp = sp ? null : prefixAt(c, i, true, family);
    if (sp) {
      b.srcAll.push(i);
      b.srcPfx.push(sp);
    } else if (dp) {
      b.dstAll.push(i);
      b.dstPfx.push(dp);
    } else b.any.push(i);
  }
  return { byProto, family, cache: new Map(), last: null, lastList: [] };
}

/** Rules (in rule order) by prefix length → masked network. */
function byPrefix(
  family: Family,
  rules: number[],
  pfx: Array<{ len: number; addr: bigint }>,
): Map<number, Map<number | bigint, number[]>> {
  const m = new Map<number, Map<number | bigint, number[]>>();
  for (let k = 0; k < rules.length; k++) put(m, family, pfx[k]!, rules[k]!);
  return m;
}

/** What the caller knows of the packet: `src`/`dst` null when the address is symbolic (any may match). */
export interface IndexKey {
  proto: number;
  dport: number | undefined;
  src: bigint | null;
  dst: bigint | null;
}

function candidates(ix: ChainIndex, p: IndexKey): number[] {
  const l = ix.last;
  if (l && l.proto === p.proto && l.dport === p.dport && l.src === p.src && l.dst === p.dst)
    return ix.lastList;
  ix.last = { ...p };
  // Symbolic walks come back to a chain with a few keys; concrete packets rarely repeat theirs.
  const key = p.src === null ? `${p.proto}|${p.dport}|${p.dst}` : null;
  const hit = key === null ? undefined : ix.cache.get(key);
  if (hit) {
    ix.lastList = hit;
    return hit;
  }
  const lists: number[][] = [];
  const protos = p.proto === -1 ? [-1] : [-1, p.proto];
  for (const proto of protos) {
    const ports = ix.byProto.get(proto);
    if (!ports) continue;
    const want = p.dport === undefined ? [...ports.keys()] : [-1, p.dport];
    for (const port of want) {
      const b = ports.get(port);
      if (!b) continue;
      if (b.any.length) lists.push(b.any);
      if (p.src === null) {
        if (b.srcAll.length) lists.push(b.srcAll);
      } else {
        b.src ??= byPrefix(ix.family, b.srcAll, b.srcPfx);
        for (const [len, m] of b.src) {
          const l = m.get(keyOf(ix.family, p.src, len));
          if (l) lists.push(l);
        }
      }
      if (p.dst === null) {
        if (b.dstAll.length) lists.push(b.dstAll);
      } else {
        b.dst ??= byPrefix(ix.family, b.dstAll, b.dstPfx);
        for (const [len, m] of b.dst) {
          const l = m.get(keyOf(ix.family, p.dst, len));
          if (l) lists.push(l);
        }
      }
    }
  }
  let out: number[];
  if (lists.length === 0) out = [];
  else if (lists.length === 1) out = lists[0]!;
  else {
    out = lists.flat();
    out.sort((a, b) => a - b);
  }
  if (key !== null) {
    if (ix.cache.size > 64) ix.cache.clear();
    ix.cache.set(key, out);
  }
  ix.lastList = out;
  return out;
}

const indexCache = new WeakMap<Ruleset, WeakMap<Chain, ChainIndex | null>>();
/** Candidates of a chain for its first keys with a symbolic source (before any index is built). */
const symbolicLists = new WeakMap<Chain, Array<{ key: IndexKey; list: number[] }>>();
/**
 * Keys with a symbolic source a chain is answered for by one pass each before its index is built:
 * an audit asks each chain with a few (IKE, NAT-T, L2TP, ESP to its address); building the index
 * of a 50,000-rule chain costs more than those passes.
 */
const MAX_DIRECT_KEYS = 4;

const sameKey = (a: IndexKey, b: IndexKey): boolean =>
  a.proto === b.proto && a.dport === b.dport && a.src === b.src && a.dst === b.dst;

/**
 * Rule index for a rule set: per chain, rules bucketed by protocol, single destination port and
 * source (else destination) prefix, so a packet only visits rules that may match it. Built lazily
 * per chain, cached per rule set. `next(chain, from, key)`: the first rule at or after `from`
 * that may match; every rule skipped certainly does not match (`evalRule` "no").
 */
export function ruleIndex(rs: Ruleset): (chain: Chain, from: number, key: IndexKey) => number {
  let per = indexCache.get(rs);
  if (!per) {
    per = new WeakMap();
    indexCache.set(rs, per);
  }
  const chains = per;
  return (chain, from, key) => {
    let ix = chains.get(chain);
    let list: number[];
    if (ix === undefined) {
      if (ruleCount(chain) < MIN_INDEXED) {
        chains.set(chain, null);
        return from;
      }
      // A walk with a symbolic source asks each chain with a few keys: each one's candidates are
      // found in one pass, and the full index is built only when more keys come.
      const d = symbolicLists.get(chain);
      const known = d?.find((e) => sameKey(e.key, key));
      if (known) list = known.list;
      else if (key.src === null && (d === undefined || d.length < MAX_DIRECT_KEYS)) {
        // What `candidates` would give, in one pass.
        list = candidatesPass(chain, key.proto, key.dport, key.dst, rs.family);
        if (d === undefined) symbolicLists.set(chain, [{ key: { ...key }, list }]);
        else d.push({ key: { ...key }, list });
      } else {
        ix = buildChainIndex(chain, rs.family);
        chains.set(chain, ix);
        list = candidates(ix, key);
      }
    } else if (ix === null) return from;
    else list = candidates(ix, key);
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]! < from) lo = mid + 1;
      else hi = mid;
    }
    return lo < list.length ? list[lo]! : ruleCount(chain);
  };
}

/** `EvalOptions.skip` for concrete packets. */
export function concreteSkip(rs: Ruleset): (chain: Chain, from: number, p: Packet) => number {
  const next = ruleIndex(rs);
  return (chain, from, p) =>
    p.family !== rs.family
      ? from
      : next(chain, from, { proto: p.proto, dport: p.dport, src: p.src, dst: p.dst });
}

// ---------------------------------------------------------------------------------------------
// The path

interface Branch {
  /** Every undecidable fact so far taken the first way (not matched, local delivery). */
  plain: boolean;
  pkt: Packet;
  trace: PathStep[];
  assumed: PathAssumption[];
  nat: PathOutcome["nat"];
  route: Route | null;
  filter: Decision | null;
  notes: string[];
}

const FILTER_HOOK: Record<Route, Hook> = { local: "INPUT", forward: "FORWARD", output: "OUTPUT" };

const STAGES: Record<Route | "pre" | "out", Array<[TableName, Hook]>> = {
  pre: [
    ["raw", "PREROUTING"],
    ["mangle", "PREROUTING"],
    ["nat", "PREROUTING"],
  ],
  local: [
    ["mangle", "INPUT"],
    ["filter", "INPUT"],
    ["security", "INPUT"],
    ["nat", "INPUT"],
  ],
  forward: [
    ["mangle", "FORWARD"],
    ["filter", "FORWARD"],
    ["security", "FORWARD"],
    ["mangle", "POSTROUTING"],
    ["nat", "POSTROUTING"],
  ],
  out: [
    ["raw", "OUTPUT"],
    ["mangle", "OUTPUT"],
    ["nat", "OUTPUT"],
    ["filter", "OUTPUT"],
    ["security", "OUTPUT"],
  ],
  output: [
    ["mangle", "POSTROUTING"],
    ["nat", "POSTROUTING"],
  ],
};

const REASSEMBLED_UNKNOWN_PORTS =
  "the datagram's ports are not given (a non-first fragment carries none), so the whole datagram cannot be judged here; the fragment itself is not filtered";

/** Evaluates a concrete packet along its whole path through the rule set. */
export function evaluatePath(rs: Ruleset, pkt: Packet, opts: PathOptions = {}): PathResult {
  const limit = opts.maxOutcomes ?? 256;
  const local = opts.local;
  const evalOpts: EvalOptions = {
    ...(local ? { local } : {}),
    ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
    maxOutcomes: limit,
    skip: concreteSkip(rs),
  };
  const finals: PathOutcome[] = [];
  const plainFinals: PathOutcome[] = [];
  let truncated = false;

  const finish = (
    b: Branch,
    verdict: TableVerdict,
    decision: Decision | null,
    reason?: string,
    trace: PathStep[] = b.trace,
  ): void => {
    (b.plain ? plainFinals : finals).push({
      verdict,
      route: b.route,
      decision,
      ...(reason ? { reason } : {}),
      trace,
      assumed: b.assumed,
      packet: b.pkt,
      nat: b.nat,
      notes: b.notes,
    });
  };

  const loaded = (table: TableName, hook: Hook): Chain | undefined => {
    const c = rs.tables.get(table)?.chains.get(hook);
    return c && (BUILTIN_CHAINS[table] as readonly string[]).includes(hook) ? c : undefined;
  };

  /** One table at one hook for every live branch; returns the branches that go on. */
  const stage = (branches: Branch[], table: TableName, hook: Hook, filterHook: Hook | null): Branch[] => {
    const out: Branch[] = [];
    const chain = loaded(table, hook);
    for (const b of branches) {
      if (!chain) {
        // No nat table: a first packet's connection is not NATed.
        if (table === "nat" && natWalked(b.pkt) && (hook === "PREROUTING" || hook === "OUTPUT"))
          out.push({ ...b, pkt: { ...b.pkt, ctNat: b.pkt.ctNat ?? { dnat: false, snat: false } } });
        else if (table === "filter" && hook === filterHook)
          out.push({ ...b, filter: { table, hook, rule: null, policy: null } });
        else out.push(b);
        continue;
      }
      if (table === "nat" && !natWalked(b.pkt)) {
        if (hook === "PREROUTING" || hook === "OUTPUT") out.push(...binding(b, hook));
        else out.push(b);
        continue;
      }
      // In the raw table no conntrack entry exists yet: INVALID, or UNTRACKED once marked so.
      const real = b.pkt.state;
      const input =
        table === "raw"
          ? { ...b.pkt, state: (real === "untracked" ? "untracked" : "invalid") as PacketState }
          : b.pkt;
      const res = evaluateTable(rs, table, hook, input, evalOpts);
      if (res.truncated) truncated = true;
      res.outcomes.forEach((o, k) => {
        const trace = [...b.trace, ...o.trace.map((s) => ({ ...s, hook }))];
        const assumed = [
          ...b.assumed,
          ...o.assumed.map((a) => ({ rule: a.rule, matched: a.matched, why: a.why })),
        ];
        const packet: Packet = { ...o.packet };
        if (table === "raw" && packet.state !== "untracked") packet.state = real;
        // After a first packet's nat PREROUTING/OUTPUT, whether the connection is DNATed is known.
        if (table === "nat" && (hook === "PREROUTING" || hook === "OUTPUT") && o.verdict === "accept") {
          const dnat = o.nat?.kind === "DNAT" || o.nat?.kind === "REDIRECT";
          packet.ctNat = { dnat: dnat || (b.pkt.ctNat?.dnat ?? false), snat: false };
        }
        const next: Branch = { ...b, plain: b.plain && k === 0, pkt: packet, trace, assumed };
        if (o.verdict !== "accept") {
          finish(next, o.verdict, decisionOf(table, hook, o, chain), o.reason, trace);
          return;
        }
        if (o.nat) {
          const amb = natAmbiguity(o.nat.rule, local, hook);
          next.nat = [...b.nat, { ...o.nat, hook }];
          if (amb) {
            finish(next, "unknown", { table, hook, rule: o.nat.rule, policy: null }, amb, trace);
            return;
          }
          if (o.nat.kind === "REDIRECT") applyRedirect(packet, o.nat.rule, local, hook);
        }
        if (table === "filter" && hook === filterHook) next.filter = decisionOf(table, hook, o, chain);
        out.push(next);
      });
    }
    return out;
  };

  /** A later packet of a connection gets the DNAT binding its first packet got (nat PREROUTING/OUTPUT). */
  const binding = (b: Branch, hook: "PREROUTING" | "OUTPUT"): Branch[] => {
    const p = b.pkt;
    if (p.state === "invalid" || p.state === "untracked" || p.ctDir === "REPLY") return [b];
    const res = evaluateTable(rs, "nat", hook, { ...p, state: "new", ctDir: "ORIGINAL" }, evalOpts);
    const dnat = res.outcomes.find((o) => o.nat && (o.nat.kind === "DNAT" || o.nat.kind === "REDIRECT"));
    if (!dnat?.nat) return [b];
    const n = dnat.nat;
    const decision: Decision = { table: "nat", hook, rule: n.rule, policy: null };
    const where = `${n.rule.prov.file}:${n.rule.prov.line}`;
    if (p.ctDir !== "ORIGINAL" || res.outcomes.length > 1) {
      finish(
        b,
        "unknown",
        decision,
        p.ctDir !== "ORIGINAL"
          ? `the packet's conntrack direction is unknown: in the connection's original direction the DNAT binding of ${where} applies`
          : `whether the connection's first packet was DNATed by ${where} is undecidable`,
      );
      return [];
    }
    const amb = natAmbiguity(n.rule, local, hook);
    if (amb) {
      finish(b, "unknown", decision, amb);
      return [];
    }
    const packet = {
      ...p,
      dst: dnat.packet.dst,
      ...(dnat.packet.dport !== undefined ? { dport: dnat.packet.dport } : {}),
    };
    if (n.kind === "REDIRECT") applyRedirect(packet, n.rule, local, hook);
    return [
      {
        ...b,
        pkt: packet,
        nat: [...b.nat, { ...n, hook }],
        notes: [...b.notes, `the connection's ${n.kind} binding (${where}) applies without a chain walk`],
      },
    ];
  };

  const start: Branch = {
    plain: true,
    pkt: { ...pkt },
    trace: [],
    assumed: [],
    nat: [],
    route: null,
    filter: null,
    notes: [],
  };
  const defrag = conntrackInUse(rs);
  /** A fragment reassembled: the whole datagram goes on, or stops when its ports are unknown. */
  const reassemble = (b: Branch, where: string): Branch | null => {
    if (!isFragment(b.pkt)) return b;
    const note = `reassembled ${where}: the rules see the whole datagram, not the fragment`;
    const next = { ...b, pkt: unfragmented(b.pkt), notes: [...b.notes, note] };
    if (hasPorts(b.pkt.proto) && b.pkt.dport === undefined) {
      finish(next, "accept", null, `${note}; ${REASSEMBLED_UNKNOWN_PORTS}`);
      return null;
    }
    return next;
  };

  let live: Branch[] = [start];
  if (defrag && isFragment(pkt)) {
    const r = reassemble(start, "by nf_defrag before the first table (the rule set uses conntrack)");
    live = r ? [r] : [];
  }

  if ((opts.origin ?? "incoming") === "local") {
    live = live.map((b) => ({ ...b, route: "output" as Route }));
    for (const [t, h] of STAGES.out) live = stage(live, t, h, "OUTPUT");
    for (const [t, h] of STAGES.output) live = stage(live, t, h, "OUTPUT");
    for (const b of live)
      finish(
        b,
        "accept",
        b.filter,
        b.filter?.policy === null && !b.filter.rule ? "no filter table: nothing filters OUTPUT" : undefined,
      );
    return result([...plainFinals, ...finals], truncated || finals.length > limit);
  }

  for (const [t, h] of STAGES.pre) live = stage(live, t, h, null);
  // Routing decision.
  const routed: Array<{ b: Branch; route: "local" | "forward" }> = [];
  for (const b of live) {
    const r = routeReceived(b.pkt.family, b.pkt.dst, local, opts.broadcast);
    if (r === "local" || r === "forward") routed.push({ b: { ...b, route: r }, route: r });
    else if (r === null) {
      const why = "the host's addresses are not given: local delivery or forwarding";
      routed.push({
        b: { ...b, route: "local", assumed: [...b.assumed, { rule: null, matched: true, why }] },
        route: "local",
      });
      routed.push({
        b: {
          ...b,
          plain: false,
          route: "forward",
          assumed: [...b.assumed, { rule: null, matched: false, why }],
        },
        route: "forward",
      });
    } else finish(b, "unknown", null, r.unknown);
  }
  for (const { b, route } of routed) {
    let cur: Branch[] = [b];
    if (route === "local" && b.pkt.family === 4) {
      const r = reassemble(b, "before INPUT (ip_local_deliver)");
      cur = r ? [r] : [];
    }
    for (const [t, h] of STAGES[route]) cur = stage(cur, t, h, FILTER_HOOK[route]);
    for (const x of cur) {
      const f = x.filter;
      finish(
        x,
        "accept",
        f,
        f && !f.rule && !f.policy ? `no filter table: nothing filters ${f.hook}` : undefined,
      );
    }
  }
  return result([...plainFinals, ...finals], truncated || finals.length > limit);
}

function decisionOf(table: TableName, hook: Hook, o: Outcome, chain: Chain): Decision {
  if (o.rule) return { table, hook, rule: o.rule, policy: null };
  return { table, hook, rule: null, policy: chain.policy ?? "ACCEPT" };
}

function result(outcomes: PathOutcome[], truncated: boolean): PathResult {
  const first = outcomes[0]!;
  const agree = outcomes.every((o) => o.verdict === first.verdict);
  const routes = new Set(outcomes.map((o) => o.route));
  return {
    verdict: agree && !truncated ? first.verdict : "unknown",
    route: routes.size === 1 ? first.route : "unknown",
    decision: first.decision,
    ...(first.reason ? { reason: first.reason } : {}),
    outcomes,
    truncated,
  };
}
