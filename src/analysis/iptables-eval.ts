/**
 * Concrete packet evaluator for one iptables table at one hook: walks the chains the way the
 * kernel's `ipt_do_table` does (jumps push a return point, gotos do not, RETURN or falling off a
 * user chain pops, an empty stack means the built-in chain's policy), applies the
 * non-terminating targets that change what later rules see (MARK, CONNMARK, NOTRACK), and
 * records the rules hit the way `-j TRACE` reports them.
 *
 * Three-valued: a rule whose outcome cannot be known statically (rate limits, host names,
 * unknown modules, missing packet facts) is explored both ways. If every branch ends in the same
 * verdict, the verdict is certain anyway; otherwise it is "unknown" and all outcomes are listed
 * with the assumptions that lead to each.
 */
import type { Family } from "../model/address.js";
import type { AddrSet } from "../model/addrset.js";
import {
  BUILTIN_CHAINS,
  type Chain,
  type CtState,
  type Hook,
  type IfaceCond,
  type Match,
  type Net,
  type PolicyElement,
  type PortCond,
  type Rule,
  type Ruleset,
  type TableName,
} from "../platforms/iptables/model.js";
import { ruleAt, ruleCount } from "../platforms/iptables/rule-store.js";

/** A conntrack tuple in the ORIGINAL direction. */
export interface ConnTuple {
  proto: number;
  src: bigint;
  dst: bigint;
  sport?: number;
  dport?: number;
}

export type PacketState = "new" | "established" | "related" | "invalid" | "untracked";

/** One IPsec SA of the packet's security path (inbound) or transform bundle (outbound). */
export interface SaInfo {
  /** Undefined: an SA the bundle may or may not hold (AH beside ESP), of unknown protocol. */
  proto?: "esp" | "ah" | "ipcomp";
  mode?: "tunnel" | "transport";
  reqid?: number;
  spi?: number;
  /** Outer addresses, tunnel mode only. */
  tunnelSrc?: bigint;
  tunnelDst?: bigint;
}

/**
 * A concrete packet. Facts left undefined are unknown: conditions that need them "may match".
 * Interfaces: the hook decides whether the packet has one (no iif in OUTPUT/POSTROUTING, no oif in
 * PREROUTING/INPUT); where it has one, undefined means unknown ("may match") and "" means none.
 */
export interface Packet {
  family: Family;
  src: bigint;
  dst: bigint;
  /** IP protocol number. */
  proto: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  /** TCP flags byte; derived from `state` when undefined (NEW: SYN, otherwise ACK). */
  tcpFlags?: number;
  iif?: string;
  oif?: string;
  state: PacketState;
  /** Conntrack direction of this packet; ORIGINAL for NEW, unknown otherwise unless given. */
  ctDir?: "ORIGINAL" | "REPLY";
  /**
   * The connection's ORIGINAL tuple when known (for a RELATED packet its master's); otherwise derived
   * from the packet assuming no NAT, and unknown for RELATED packets.
   */
  ctTuple?: ConnTuple;
  /** Decapsulated from an inbound SA (has a secpath). */
  ipsec: boolean;
  /** The secpath, outermost first, when known. */
  ipsecSas?: SaInfo[];
  /** Will be transformed by an outbound policy (for `-m policy --dir out`). */
  ipsecOut?: boolean;
  ipsecOutSas?: SaInfo[];
  /** The outgoing interface is unknown but not `lo` (a locally sent packet to another host): `-o lo` is exact. */
  oifNotLo?: boolean;
  /**
   * The connection's NAT status (conntrack's virtual SNAT/DNAT states) when the path knows it: for
   * a connection's first packet, after nat PREROUTING/OUTPUT ran (SNAT is only bound at POSTROUTING).
   */
  ctNat?: { dnat: boolean; snat: boolean };
  /** Packet mark and connection mark; 0 unless something set them. */
  mark?: number;
  ctmark?: number;
  /** IP total length, TTL / hop limit, source MAC, SPI (ESP/AH). */
  length?: number;
  ttl?: number;
  mac?: string;
  spi?: number;
  /** A non-first fragment (no transport header). */
  fragment?: boolean;
  /**
   * IPv6: the first fragment of a fragmented datagram (offset 0; its transport header is there, so
   * port matches work as for a whole packet). With `fragment`, the packet carries a Fragment
   * header, which `-m frag` looks for.
   */
  fragFirst?: boolean;
  /** IPv6 Fragment header: the M flag (more fragments follow); undefined for a non-first fragment: unknown. */
  fragMore?: boolean;
  /** IPv6 Fragment header: the identification; undefined: unknown. */
  fragId?: number;
  /** Bridge ports (`-m physdev`); undefined: not a bridged packet. */
  physIn?: string;
  physOut?: string;
  /** Link-layer type; derived from the destination when undefined. */
  pktType?: "unicast" | "broadcast" | "multicast";
}

export interface EvalOptions {
  /** The host's own addresses (for `-m addrtype LOCAL`); unknown when undefined. */
  local?: AddrSet;
  /** ipset contents for single-dimension address sets (`ipset save`); unknown sets may match. */
  ipsets?: ReadonlyMap<string, AddrSet>;
  /** Stop forking on undecidable rules after this many outcomes (default 256). */
  maxOutcomes?: number;
  /**
   * Optional rule index (performance only): the position of the first rule at or after `from` in
   * `chain` that may match `p`. Every rule it skips must certainly not match `p` (`evalRule` "no"),
   * so results and traces are the same as without it.
   */
  skip?: (chain: Chain, from: number, p: Packet) => number;
}

export type Tri = "yes" | "no" | "maybe";
export type TableVerdict = "accept" | "drop" | "reject" | "unknown";

/** One line of a `-j TRACE` style trace. */
export interface TraceStep {
  table: TableName;
  chain: string;
  type: "rule" | "return" | "policy";
  /** Rule number; for return/policy the position after the last rule, as TRACE prints it. */
  num: number;
  rule: Rule | null;
}

export interface Assumption {
  rule: Rule;
  matched: boolean;
  why: string;
}

export interface Outcome {
  verdict: TableVerdict;
  /** The rule whose target decided; null when a chain policy did. */
  rule: Rule | null;
  /** The built-in chain whose policy decided, when `rule` is null. */
  policyChain: string | null;
  /** Why the verdict is unknown (QUEUE, NFQUEUE, an unknown target…). */
  reason?: string;
  trace: TraceStep[];
  /** Undecidable rules and the way this outcome took them. */
  assumed: Assumption[];
  /** The packet after the table (marks, conntrack state, NAT). */
  packet: Packet;
  /** DNAT/SNAT/MASQUERADE/REDIRECT applied, for the hooks after this one. */
  nat?: { kind: "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT"; rule: Rule };
}

export interface TableResult {
  /** The verdict when all outcomes agree, otherwise "unknown". */
  verdict: TableVerdict;
  /** The deciding rule of the first outcome (the one where undecidable rules did not match). */
  rule: Rule | null;
  policyChain: string | null;
  outcomes: Outcome[];
  /** Outcome exploration stopped at the limit: `verdict` is then "unknown" unless all agreed so far. */
  truncated: boolean;
}

// ---------------------------------------------------------------------------------------------
// Three-valued logic

const and = (a: Tri, b: Tri): Tri =>
  a === "no" || b === "no" ? "no" : a === "maybe" || b === "maybe" ? "maybe" : "yes";
const not = (a: Tri): Tri => (a === "yes" ? "no" : a === "no" ? "yes" : "maybe");
const tri = (b: boolean): Tri => (b ? "yes" : "no");
const inv = (t: Tri, invert: boolean): Tri => (invert ? not(t) : t);

/** A match result with the reason when it is "maybe". */
interface MatchResult {
  value: Tri;
  why?: string;
}

const ESP = 50;
const AH = 51;
/** conntrack skips IPv6 AH (ipv6_skip_exthdr): such a packet's connection is the next header's. */
const behindAh6 = (p: Packet): boolean => p.family === 6 && p.proto === AH;
const YES: MatchResult = { value: "yes" };
const NO: MatchResult = { value: "no" };
const maybe = (why: string): MatchResult => ({ value: "maybe", why });
const res = (t: Tri, why: string): MatchResult =>
  t === "maybe" ? { value: t, why } : t === "yes" ? YES : NO;

function combine(a: MatchResult, b: MatchResult): MatchResult {
  const v = and(a.value, b.value);
  if (v !== "maybe") return v === "yes" ? YES : NO;
  return { value: v, why: a.value === "maybe" ? a.why : b.why };
}

// ---------------------------------------------------------------------------------------------
// Matches

const HOOK_HAS_IIF: Record<Hook, boolean> = {
  PREROUTING: true,
  INPUT: true,
  FORWARD: true,
  OUTPUT: false,
  POSTROUTING: false,
};
const HOOK_HAS_OIF: Record<Hook, boolean> = {
  PREROUTING: false,
  INPUT: false,
  FORWARD: true,
  OUTPUT: true,
  POSTROUTING: true,
};

/** Kernel interface match: exact, or prefix for `eth+` (an empty name with `+` matches anything). */
function ifaceMatches(c: IfaceCond, name: string): boolean {
  return c.wildcard ? name.startsWith(c.name) : name === c.name;
}

function netHas(n: Net, a: bigint): boolean {
  return (a & n.mask) === n.addr;
}

function portIn(c: PortCond, p: number | undefined, what: string): MatchResult {
  if (p === undefined) return maybe(`the packet's ${what} is not given`);
  return res(inv(tri(p >= c.range.lo && p <= c.range.hi), c.invert), what);
}

function ctStateBit(p: Packet): CtState {
  switch (p.state) {
    case "new":
      return "NEW";
    case "established":
      return "ESTABLISHED";
    case "related":
      return "RELATED";
    case "invalid":
      return "INVALID";
    case "untracked":
      return "UNTRACKED";
  }
}

function ctDir(p: Packet): "ORIGINAL" | "REPLY" | undefined {
  return p.ctDir ?? (p.state === "new" ? "ORIGINAL" : undefined);
}

/**
 * The connection's ORIGINAL-direction tuple, as `--ctorig*`/`--ctrepl*` see it: given, or read off the
 * packet and its direction assuming no NAT. A RELATED packet belongs to its master connection (an ICMP
 * error about UDP matches `--ctproto udp`), which the packet alone does not tell. A string says why unknown.
 */
function connTuple(p: Packet): ConnTuple | string {
  if (p.ctTuple) return p.ctTuple;
  if (behindAh6(p)) return "an IPv6 AH packet's connection is that of the header after AH";
  if (p.state === "related") return "a RELATED packet's master connection is unknown";
  const dir = ctDir(p);
  if (dir === undefined) return "conntrack direction unknown";
  return dir === "REPLY"
    ? { proto: p.proto, src: p.dst, dst: p.src, sport: p.dport, dport: p.sport }
    : { proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport };
}

/** TCP flags of the packet: given, or what a packet in that state usually carries. */
function tcpFlags(p: Packet): number | undefined {
  if (p.tcpFlags !== undefined) return p.tcpFlags;
  if (p.state === "new") return 0x02; // SYN
  if (p.state === "established" || p.state === "related") return 0x10; // ACK
  return undefined;
}

function pktType(p: Packet): "unicast" | "broadcast" | "multicast" {
  if (p.pktType) return p.pktType;
  if (p.family === 4) {
    if (p.dst >> 28n === 0xen) return "multicast";
    if (p.dst === 0xffffffffn) return "broadcast";
  } else if (p.dst >> 120n === 0xffn) return "multicast";
  return "unicast";
}

function saMatches(sa: SaInfo, e: PolicyElement): Tri {
  let r: Tri = "yes";
  const field = <T>(c: { value: T; invert: boolean } | null, have: T | undefined) => {
    if (!c) return;
    r = and(r, have === undefined ? "maybe" : inv(tri(have === c.value), c.invert));
  };
  field(e.reqid, sa.reqid);
  field(e.spi, sa.spi);
  field(e.proto, sa.proto);
  field(e.mode, sa.mode);
  const addr = (c: { net: Net; invert: boolean } | null, have: bigint | undefined) => {
    if (!c) return;
    r = and(r, have === undefined ? "maybe" : inv(tri(netHas(c.net, have)), c.invert));
  };
  addr(e.tunnelSrc, sa.tunnelSrc);
  addr(e.tunnelDst, sa.tunnelDst);
  return r;
}

/** xt_policy: `--pol none` is "no secpath"; `--pol ipsec` needs one whose SAs match the elements. */
function policyMatch(m: Extract<Match, { kind: "policy" }>, p: Packet): MatchResult {
  const has = m.dir === "in" ? p.ipsec : p.ipsecOut;
  const sas = m.dir === "in" ? p.ipsecSas : p.ipsecOutSas;
  if (has === undefined)
    return maybe(`unknown whether the packet is IPsec-${m.dir === "in" ? "decapsulated" : "bound"}`);
  if (m.pol === "none") return tri(!has) === "yes" ? YES : NO;
  if (!has) return NO;
  const elements = m.elements.length > 0 ? m.elements : [emptyElement()];
  const empty = (e: PolicyElement) =>
    !e.reqid && !e.spi && !e.proto && !e.mode && !e.tunnelSrc && !e.tunnelDst;
  if (!sas) {
    if (!m.strict && empty(elements[0]!)) return YES;
    return maybe("the packet's IPsec SAs are not known");
  }
  if (m.strict) {
    if (sas.some((sa) => sa.proto === undefined)) return maybe("the SA bundle's exact make-up is not known");
    if (sas.length !== elements.length) return NO;
    let r: Tri = "yes";
    for (let i = 0; i < sas.length; i++) r = and(r, saMatches(sas[i]!, elements[i]!));
    return res(r, "IPsec SA details unknown");
  }
  let r: Tri = "no";
  for (const sa of sas) {
    const s = saMatches(sa, elements[0]!);
    if (s === "yes") return YES;
    if (s === "maybe") r = "maybe";
  }
  return res(r, "IPsec SA details unknown");
}

function emptyElement(): PolicyElement {
  return { reqid: null, spi: null, proto: null, mode: null, tunnelSrc: null, tunnelDst: null };
}

function addrTypeOf(types: readonly string[], a: bigint, p: Packet, opts: EvalOptions): Tri {
  const multicast = p.family === 4 ? a >> 28n === 0xen : a >> 120n === 0xffn;
  const bcast = p.family === 4 && a === 0xffffffffn;
  let out: Tri = "no";
  for (const t of types) {
    let v: Tri;
    switch (t) {
      case "MULTICAST":
        v = tri(multicast);
        break;
      case "BROADCAST":
        v = bcast ? "yes" : multicast ? "no" : "maybe"; // subnet broadcasts depend on interfaces
        break;
      case "LOCAL":
        v = opts.local ? tri(opts.local.has(a)) : "maybe";
        break;
      case "UNICAST":
        v = multicast || bcast ? "no" : opts.local?.has(a) ? "no" : "maybe";
        break;
      default:
        v = "maybe"; // BLACKHOLE, UNREACHABLE, … depend on the routing table
    }
    if (v === "yes") return "yes";
    if (v === "maybe") out = "maybe";
  }
  return out;
}

/**
 * `-m frag` as ip6t_frag.c decides it: the packet must carry a Fragment header (a fragment that
 * nf_defrag_ipv6 has not reassembled), then the id range, `--fragfirst` (offset 0), `--fragmore`
 * (M flag set) and `--fraglast` (M flag clear). `--fragres` holds for a well-formed fragment and the
 * kernel never reads `--fraglen` (both checked on this kernel: test/kernel/frag.test.ts).
 */
function fragMatch(m: Extract<Match, { kind: "frag" }>, p: Packet): MatchResult {
  if (!p.fragment && !p.fragFirst) return NO;
  // `fragment` is a later fragment (offset > 0) whatever else the packet says.
  if (m.first && (!p.fragFirst || p.fragment)) return NO;
  // ip6tables refuses the pair; a rule built otherwise could never match (M set and clear).
  if (m.more && m.last) return NO;
  let r = YES;
  if (m.id) {
    const all = m.id.lo === 0 && m.id.hi === 0xffffffff;
    if (m.id.lo > m.id.hi) {
      if (!m.id.invert) return NO; // a reversed range never holds (ip6t_frag id_match)
    } else if (all || p.fragId !== undefined) {
      const hit = all || (p.fragId! >= m.id.lo && p.fragId! <= m.id.hi);
      if (inv(tri(hit), m.id.invert) === "no") return NO;
    } else r = maybe("the fragment's identification is not known");
  }
  if (m.more || m.last) {
    // A first fragment always has more to follow (an atomic fragment would say fragMore: false).
    const more = p.fragFirst ? (p.fragMore ?? true) : p.fragMore;
    if (more === undefined)
      r = combine(
        r,
        maybe("whether more fragments follow is not known: every fragment but the last has the M flag"),
      );
    else if ((m.more && !more) || (m.last && more)) return NO;
  }
  return r;
}

/** One match module against the packet. */
export function evalMatch(m: Match, p: Packet, opts: EvalOptions = {}): MatchResult {
  switch (m.kind) {
    case "tcp":
    case "udp": {
      // Non-first fragments have no transport header: the kernel's tcp/udp matches fail.
      if (p.fragment) return NO;
      let r = YES;
      if (m.sport) r = combine(r, portIn(m.sport, p.sport, "source port"));
      if (m.dport) r = combine(r, portIn(m.dport, p.dport, "destination port"));
      if (m.kind === "tcp") {
        if (m.flags) {
          const f = tcpFlags(p);
          const fr =
            f === undefined
              ? maybe("TCP flags unknown")
              : res(inv(tri((f & m.flags.mask) === m.flags.comp), m.flags.invert), "");
          r = combine(r, fr);
        }
        if (m.option) r = combine(r, maybe("TCP options are not modelled"));
      }
      return r;
    }
    case "sctp":
    case "dccp": {
      if (p.fragment) return NO;
      let r = YES;
      if (m.sport) r = combine(r, portIn(m.sport, p.sport, "source port"));
      if (m.dport) r = combine(r, portIn(m.dport, p.dport, "destination port"));
      if (m.kind === "sctp" ? m.chunkTypes : m.other.length > 0)
        r = combine(r, maybe(`${m.kind} options not modelled`));
      return r;
    }
    case "multiport": {
      if (p.fragment) return NO;
      const inRanges = (x: number | undefined): Tri =>
        x === undefined ? "maybe" : tri(m.ranges.some((r) => x >= r.lo && x <= r.hi));
      let t: Tri;
      if (m.dir === "src") t = inRanges(p.sport);
      else if (m.dir === "dst") t = inRanges(p.dport);
      else {
        const a = inRanges(p.sport);
        const b = inRanges(p.dport);
        t = a === "yes" || b === "yes" ? "yes" : a === "maybe" || b === "maybe" ? "maybe" : "no";
      }
      return res(inv(t, m.invert), "packet ports unknown");
    }
    case "state": {
      return tri(m.values.includes(ctStateBit(p))) === (m.invert ? "no" : "yes") ? YES : NO;
    }
    case "conntrack": {
      let r = YES;
      if (m.state) {
        const bit = ctStateBit(p);
        let t = tri(m.state.values.includes(bit));
        // SNAT/DNAT are virtual states of NATed connections.
        if (t === "no" && (m.state.values.includes("SNAT") || m.state.values.includes("DNAT"))) {
          if (p.state === "invalid" || p.state === "untracked") t = "no";
          else if (p.ctNat)
            t = tri(
              (m.state.values.includes("DNAT") && p.ctNat.dnat) ||
                (m.state.values.includes("SNAT") && p.ctNat.snat),
            );
          else t = "maybe";
        }
        r = combine(r, res(inv(t, m.state.invert), "whether the connection is NATed is unknown"));
      }
      const onlyState =
        !m.proto &&
        !m.origSrc &&
        !m.origDst &&
        !m.replSrc &&
        !m.replDst &&
        !m.origSrcPort &&
        !m.origDstPort &&
        !m.replSrcPort &&
        !m.replDstPort &&
        !m.status &&
        !m.expire &&
        !m.dir;
      // Without a conntrack entry xt_conntrack answers with --ctstate alone and ignores every other
      // option (conntrack_mt: `if (ct == NULL) return info->match_flags & XT_CONNTRACK_STATE`).
      if (p.state === "invalid" || p.state === "untracked") return m.state ? r : NO;
      if (onlyState) return r;
      const conn = connTuple(p);
      if (m.proto) {
        const proto = p.ctTuple?.proto ?? (p.state === "related" || behindAh6(p) ? undefined : p.proto);
        r = combine(
          r,
          proto === undefined
            ? maybe(conn as string)
            : res(inv(tri(m.proto.num === proto), m.proto.invert), ""),
        );
      }
      const dir = ctDir(p);
      if (m.dir)
        r = combine(
          r,
          dir === undefined ? maybe("conntrack direction unknown") : tri(dir === m.dir) === "yes" ? YES : NO,
        );
      const orig = typeof conn === "string" ? undefined : conn;
      const repl = orig && { src: orig.dst, dst: orig.src, sport: orig.dport, dport: orig.sport };
      const tuple = (c: { net: Net; invert: boolean } | null, a: bigint | undefined) => {
        if (c)
          r = combine(
            r,
            a === undefined ? maybe(conn as string) : res(inv(tri(netHas(c.net, a)), c.invert), ""),
          );
      };
      tuple(m.origSrc, orig?.src);
      tuple(m.origDst, orig?.dst);
      tuple(m.replSrc, repl?.src);
      tuple(m.replDst, repl?.dst);
      const port = (c: PortCond | null, x: number | undefined) => {
        if (c) r = combine(r, orig === undefined ? maybe(conn as string) : portIn(c, x, "port"));
      };
      port(m.origSrcPort, orig?.sport);
      port(m.origDstPort, orig?.dport);
      port(m.replSrcPort, repl?.sport);
      port(m.replDstPort, repl?.dport);
      if (m.status) r = combine(r, maybe("conntrack status is runtime state"));
      // A reversed range never holds, whatever the entry's expiry (xt_conntrack: min <= x <= max).
      if (m.expire && m.expire.lo > m.expire.hi) {
        if (!m.expire.invert) return NO;
      } else if (m.expire) r = combine(r, maybe("conntrack expiry is runtime state"));
      return r;
    }
    case "policy":
      return policyMatch(m, p);
    case "comment":
      return YES;
    case "addrtype": {
      let r = YES;
      if (m.limitIfaceIn || m.limitIfaceOut) {
        if ((m.src?.types.includes("LOCAL") || m.dst?.types.includes("LOCAL")) ?? false) {
          return maybe("addrtype limited to an interface needs per-interface addresses");
        }
      }
      if (m.src)
        r = combine(
          r,
          res(
            inv(addrTypeOf(m.src.types, p.src, p, opts), m.src.invert),
            "address type needs the host's addresses/routes",
          ),
        );
      if (m.dst)
        r = combine(
          r,
          res(
            inv(addrTypeOf(m.dst.types, p.dst, p, opts), m.dst.invert),
            "address type needs the host's addresses/routes",
          ),
        );
      return r;
    }
    case "iprange": {
      let r = YES;
      if (m.src)
        r = combine(
          r,
          tri(p.src >= m.src.range.lo && p.src <= m.src.range.hi) === (m.src.invert ? "no" : "yes")
            ? YES
            : NO,
        );
      if (m.dst)
        r = combine(
          r,
          tri(p.dst >= m.dst.range.lo && p.dst <= m.dst.range.hi) === (m.dst.invert ? "no" : "yes")
            ? YES
            : NO,
        );
      return r;
    }
    case "icmp":
    case "icmp6": {
      if (p.fragment) return NO;
      if (m.any) return m.invert ? NO : YES;
      if (p.icmpType === undefined) return maybe("ICMP type unknown");
      let t = tri(p.icmpType === m.type);
      if (t === "yes" && (m.codeLo !== 0 || m.codeHi !== 255)) {
        t = p.icmpCode === undefined ? "maybe" : tri(p.icmpCode >= m.codeLo && p.icmpCode <= m.codeHi);
      }
      return res(inv(t, m.invert), "ICMP code unknown");
    }
    case "mark":
    case "connmark": {
      const v = m.kind === "mark" ? (p.mark ?? 0) : (p.ctmark ?? 0);
      if (m.kind === "connmark" && (p.state === "invalid" || p.state === "untracked")) return NO;
      return tri((v & m.mask) >>> 0 === m.value) === (m.invert ? "no" : "yes") ? YES : NO;
    }
    case "set": {
      const set = opts.ipsets?.get(m.name);
      if (!set || m.flags.length !== 1 || m.other.length > 0)
        return maybe(`contents of ipset ${m.name} unknown`);
      const a = m.flags[0] === "src" ? p.src : p.dst;
      return tri(set.has(a)) === (m.invert ? "no" : "yes") ? YES : NO;
    }
    case "mac":
      if (p.mac === undefined) return maybe("source MAC unknown");
      return tri(p.mac.toLowerCase() === m.mac) === (m.invert ? "no" : "yes") ? YES : NO;
    case "physdev": {
      // Not bridged: every non-inverted option fails, inverted ones pass (xt_physdev).
      let r = YES;
      const opt = (present: boolean, invert: boolean, v: boolean) => {
        if (present) r = combine(r, inv(tri(v), invert) === "yes" ? YES : NO);
      };
      const bridged = p.physIn !== undefined || p.physOut !== undefined;
      opt(!!m.isBridged, m.isBridged?.invert ?? false, bridged && p.physOut !== undefined);
      opt(!!m.isIn, m.isIn?.invert ?? false, bridged && p.physIn !== undefined);
      opt(!!m.isOut, m.isOut?.invert ?? false, bridged && p.physOut !== undefined);
      opt(
        !!m.physIn,
        m.physIn?.invert ?? false,
        !!m.physIn && p.physIn !== undefined && ifaceMatches({ ...m.physIn, invert: false }, p.physIn),
      );
      opt(
        !!m.physOut,
        m.physOut?.invert ?? false,
        !!m.physOut && p.physOut !== undefined && ifaceMatches({ ...m.physOut, invert: false }, p.physOut),
      );
      return r;
    }
    case "length":
      // A reversed range never holds (xt_length: min <= len <= max), the length need not be known.
      if (m.lo > m.hi) return m.invert ? YES : NO;
      if (p.length === undefined) return maybe("packet length unknown");
      return tri(p.length >= m.lo && p.length <= m.hi) === (m.invert ? "no" : "yes") ? YES : NO;
    case "ttl":
    case "hl": {
      if (p.ttl === undefined) return maybe("TTL / hop limit unknown");
      const t = p.ttl;
      const ok =
        m.op === "eq"
          ? t === m.value
          : m.op === "ne"
            ? t !== m.value
            : m.op === "lt"
              ? t < m.value
              : t > m.value;
      return ok ? YES : NO;
    }
    case "esp":
    case "ah": {
      // ip6tables' ah needs no -p ah: it looks for the AH header, which only an AH packet has.
      if (p.proto !== (m.kind === "ah" ? AH : ESP) || p.fragment) return NO;
      let r = YES;
      if (m.spi && m.spi.lo > m.spi.hi) {
        if (!m.spi.invert) return NO; // a reversed range never holds (spi_match)
      } else if (m.spi)
        r =
          p.spi === undefined
            ? maybe("SPI unknown")
            : inv(tri(p.spi >= m.spi.lo && p.spi <= m.spi.hi), m.spi.invert) === "yes"
              ? YES
              : NO;
      if (m.other.length > 0) r = combine(r, maybe("AH header fields not modelled"));
      return r;
    }
    case "pkttype":
      return tri(pktType(p) === m.type) === (m.invert ? "no" : "yes") ? YES : NO;
    case "frag":
      return fragMatch(m, p);
    case "opaque":
      return maybe(`-m ${m.module}: ${m.reason}`);
    case "unknown-option":
      return maybe(`unknown option ${m.option.name}`);
  }
}

function addrCond(c: Rule["src"], p: Packet, a: bigint, what: string): MatchResult {
  if (!c) return YES;
  if (c.spec.kind === "name") return maybe(`${what} ${c.spec.name} is a host name`);
  if (c.spec.family !== p.family) return NO;
  return inv(tri(netHas(c.spec, a)), c.invert) === "yes" ? YES : NO;
}

/** The rule's conditions (header fields, then matches in order) against the packet at a hook. */
export function evalRule(r: Rule, p: Packet, hook: Hook, opts: EvalOptions = {}): MatchResult {
  let out = combine(addrCond(r.src, p, p.src, "-s"), addrCond(r.dst, p, p.dst, "-d"));
  if (out.value === "no") return NO;
  // At a hook that has the interface, an undefined one is unknown (every packet has one there).
  if (r.iif) {
    const name = HOOK_HAS_IIF[hook] ? p.iif : "";
    if (name === undefined) out = combine(out, maybe("incoming interface unknown"));
    else if (inv(tri(ifaceMatches(r.iif, name)), r.iif.invert) === "no") return NO;
  }
  if (r.oif) {
    const name = HOOK_HAS_OIF[hook] ? p.oif : "";
    if (name === undefined && p.oifNotLo && !r.oif.wildcard && r.oif.name === "lo") {
      if (!r.oif.invert) return NO;
    } else if (name === undefined) out = combine(out, maybe("outgoing interface unknown"));
    else if (inv(tri(ifaceMatches(r.oif, name)), r.oif.invert) === "no") return NO;
  }
  if (r.proto && inv(tri(p.proto === r.proto.num), r.proto.invert) === "no") return NO;
  if (r.fragment && inv(tri(!!p.fragment), r.fragment.invert) === "no") return NO;
  for (const m of r.matches) {
    out = combine(out, evalMatch(m, p, opts));
    if (out.value === "no") return NO;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Traversal

interface Frame {
  chain: Chain;
  /** Index of the rule to evaluate next. */
  i: number;
}

interface State {
  packet: Packet;
  chain: Chain;
  i: number;
  /** Return points pushed by jumps (not by gotos). */
  stack: Frame[];
  trace: TraceStep[];
  assumed: Assumption[];
  nat?: Outcome["nat"];
  /** Set on a forked state whose (terminal) target already decided. */
  final?: Final;
}

const MAX_STEPS = 100_000;

/**
 * Evaluates `pkt` through `table` at `hook` (the built-in chain of that name). A table absent
 * from the rule set accepts (nothing is registered at the hook).
 */
export function evaluateTable(
  rs: Ruleset,
  table: TableName,
  hook: Hook,
  pkt: Packet,
  opts: EvalOptions = {},
): TableResult {
  const t = rs.tables.get(table);
  const start = t?.chains.get(hook);
  if (!t || !start || !(BUILTIN_CHAINS[table] as readonly string[]).includes(hook)) {
    const o: Outcome = {
      verdict: "accept",
      rule: null,
      policyChain: null,
      trace: [],
      assumed: [],
      packet: pkt,
    };
    return { verdict: "accept", rule: null, policyChain: null, outcomes: [o], truncated: false };
  }
  const limit = opts.maxOutcomes ?? 256;
  const outcomes: Outcome[] = [];
  let truncated = false;
  // Depth-first over undecidable rules; "did not match" first, so outcome 0 is the plain reading.
  const pending: State[] = [{ packet: { ...pkt }, chain: start, i: 0, stack: [], trace: [], assumed: [] }];
  while (pending.length > 0) {
    if (outcomes.length >= limit) {
      truncated = true;
      break;
    }
    const st = pending.pop()!;
    const forks: State[] = [];
    outcomes.push(run(st, table, hook, t.chains, opts, forks));
    // Push in reverse so the first fork found is explored next.
    for (let k = forks.length - 1; k >= 0; k--) pending.push(forks[k]!);
  }
  const first = outcomes[0]!;
  const agree = outcomes.every((o) => o.verdict === first.verdict);
  return {
    verdict: agree && !truncated ? first.verdict : "unknown",
    rule: first.rule,
    policyChain: first.policyChain,
    outcomes,
    truncated,
  };
}

function clone(st: State): State {
  return {
    packet: { ...st.packet },
    chain: st.chain,
    i: st.i,
    stack: st.stack.map((f) => ({ ...f })),
    trace: [...st.trace],
    assumed: [...st.assumed],
    ...(st.nat ? { nat: st.nat } : {}),
  };
}

function run(
  st: State,
  table: TableName,
  hook: Hook,
  chains: Map<string, Chain>,
  opts: EvalOptions,
  forks: State[],
): Outcome {
  const done = (
    verdict: TableVerdict,
    rule: Rule | null,
    policyChain: string | null,
    reason?: string,
  ): Outcome => ({
    verdict,
    rule,
    policyChain,
    ...(reason ? { reason } : {}),
    trace: st.trace,
    assumed: st.assumed,
    packet: st.packet,
    ...(st.nat ? { nat: st.nat } : {}),
  });
  if (st.final) return done(st.final.verdict, st.final.rule, st.final.policyChain, st.final.reason);
  for (let steps = 0; steps < MAX_STEPS; steps++) {
    const c = st.chain;
    const n = ruleCount(c);
    if (opts.skip && st.i < n) st.i = opts.skip(c, st.i, st.packet);
    if (st.i >= n) {
      // End of chain: built-in → policy; user chain → implicit RETURN.
      if (c.builtin) {
        st.trace.push({ table, chain: c.name, type: "policy", num: n + 1, rule: null });
        return done(c.policy === "DROP" ? "drop" : "accept", null, c.name);
      }
      st.trace.push({ table, chain: c.name, type: "return", num: n + 1, rule: null });
      const f = popOrPolicy(st, table, hook, chains);
      if (f) return done(f.verdict, f.rule, f.policyChain);
      continue;
    }
    const r = ruleAt(c, st.i);
    const m = evalRule(r, st.packet, hook, opts);
    if (m.value === "no") {
      st.i++;
      continue;
    }
    if (m.value === "maybe") {
      // Fork: this state goes on as "did not match"; the copy takes the target now.
      const yes = clone(st);
      const why = m.why ?? "undecidable";
      yes.assumed.push({ rule: r, matched: true, why });
      st.assumed.push({ rule: r, matched: false, why });
      const fin = applyTarget(yes, r, table, hook, chains);
      if (fin) yes.final = fin;
      forks.push(yes);
      st.i++;
      continue;
    }
    const fin = applyTarget(st, r, table, hook, chains);
    if (fin) return done(fin.verdict, fin.rule, fin.policyChain, fin.reason);
  }
  return done("unknown", null, null, `more than ${MAX_STEPS} steps`);
}

interface Final {
  verdict: TableVerdict;
  rule: Rule | null;
  policyChain: string | null;
  reason?: string;
}

/**
 * RETURN (explicit, or falling off a user chain): back to the rule after the last jump; with an
 * empty stack (reached by goto from the built-in chain, or RETURN in it) the hook's policy decides.
 */
function popOrPolicy(st: State, table: TableName, hook: Hook, chains: Map<string, Chain>): Final | null {
  const f = st.stack.pop();
  if (f) {
    st.chain = f.chain;
    st.i = f.i;
    return null;
  }
  const h = chains.get(hook)!;
  st.trace.push({ table, chain: hook, type: "policy", num: ruleCount(h) + 1, rule: null });
  return { verdict: h.policy === "DROP" ? "drop" : "accept", rule: null, policyChain: hook };
}

/** The TTL / hop limit after `-j TTL`/`-j HL` (xt_TTL/xt_HL clamp to 0..255); unknown stays unknown unless set. */
export function applyTtl(
  t: { mode: "set" | "dec" | "inc"; value: number },
  ttl: number | undefined,
): number | undefined {
  if (t.mode === "set") return t.value;
  if (ttl === undefined) return undefined;
  return t.mode === "dec" ? Math.max(0, ttl - t.value) : Math.min(255, ttl + t.value);
}

/** Runs the target of a matched rule. Returns the final result for terminal targets. */
function applyTarget(
  st: State,
  r: Rule,
  table: TableName,
  hook: Hook,
  chains: Map<string, Chain>,
): Final | null {
  const t = r.target;
  st.trace.push({ table, chain: st.chain.name, type: "rule", num: r.num, rule: r });
  const p = st.packet;
  if (!t) {
    st.i++;
    return null;
  }
  switch (t.kind) {
    case "ACCEPT":
      return { verdict: "accept", rule: r, policyChain: null };
    case "DROP":
      return { verdict: "drop", rule: r, policyChain: null };
    case "REJECT":
      return { verdict: "reject", rule: r, policyChain: null };
    case "QUEUE":
      return {
        verdict: "unknown",
        rule: r,
        policyChain: null,
        reason: "QUEUE hands the verdict to user space",
      };
    case "RETURN":
      return popOrPolicy(st, table, hook, chains);
    case "jump":
    case "goto": {
      const to = chains.get(t.chain)!;
      if (t.kind === "jump") st.stack.push({ chain: st.chain, i: st.i + 1 });
      st.chain = to;
      st.i = 0;
      return null;
    }
    case "MARK":
      p.mark = (((p.mark ?? 0) & ~t.mask) ^ t.value) >>> 0;
      break;
    case "TTL":
      p.ttl = applyTtl(t, p.ttl);
      break;
    case "CONNMARK": {
      const mark = p.mark ?? 0;
      const ct = p.ctmark ?? 0;
      if (t.mode === "set") p.ctmark = ((ct & ~t.mask) ^ t.value) >>> 0;
      else if (t.mode === "save") p.ctmark = ((ct & ~t.ctmask) ^ (mark & t.nfmask)) >>> 0;
      else p.mark = ((mark & ~t.nfmask) ^ (ct & t.ctmask)) >>> 0;
      break;
    }
    case "NOTRACK":
      p.state = "untracked";
      break;
    case "CT":
      if (t.notrack) p.state = "untracked";
      break;
    case "DNAT":
    case "SNAT":
    case "MASQUERADE":
    case "REDIRECT": {
      // NAT targets end the nat chain traversal with ACCEPT; the change applies to later hooks.
      st.nat = { kind: t.kind, rule: r };
      if (t.kind === "DNAT" && t.ranges[0]) {
        const n = t.ranges[0];
        if (n.addrLo !== null) p.dst = n.addrLo;
        if (n.portLo !== null) p.dport = n.portLo;
      } else if (t.kind === "SNAT" && t.ranges[0]) {
        const n = t.ranges[0];
        if (n.addrLo !== null) p.src = n.addrLo;
        if (n.portLo !== null) p.sport = n.portLo;
      } else if (t.kind === "REDIRECT" && t.ports) p.dport = t.ports.lo;
      return { verdict: "accept", rule: r, policyChain: null };
    }
    case "opaque":
      if (t.effect === "continue") break;
      return {
        verdict: "unknown",
        rule: r,
        policyChain: null,
        reason: t.effect === "terminal" ? `-j ${t.name} is not modelled` : `-j ${t.name} decides at run time`,
      };
    default:
      // LOG, NFLOG, ULOG, TRACE: observe only.
      break;
  }
  st.i++;
  return null;
}

/** `filter:INPUT:rule:3`, as the kernel's TRACE target logs each step. */
export function formatTraceStep(s: TraceStep): string {
  return `${s.table}:${s.chain}:${s.type}:${s.num}`;
}
