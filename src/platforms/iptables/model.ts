/**
 * Typed model of an iptables / ip6tables rule set, as loaded by `iptables-restore`.
 *
 * Shape mirrors the kernel: a rule is the fixed `ipt_entry` header (`src`, `dst`, `iif`, `oif`,
 * `proto`, `fragment`), an ordered list of match extensions and one target. Matches the engine can
 * evaluate exactly are typed; anything else is kept verbatim as an opaque match / target with a
 * reason, and listed in `Rule.unknown`, so nothing is ever dropped silently.
 */
import type { Family } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import type { Provenance } from "../../model/ruleset.js";

export type TableName = "raw" | "mangle" | "nat" | "filter" | "security";
export type Hook = "PREROUTING" | "INPUT" | "FORWARD" | "OUTPUT" | "POSTROUTING";

/** Tables in the order the kernel runs them at a hook (priority order). */
export const TABLES: readonly TableName[] = ["raw", "mangle", "nat", "filter", "security"];

export const BUILTIN_CHAINS: Readonly<Record<TableName, readonly Hook[]>> = {
  raw: ["PREROUTING", "OUTPUT"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  security: ["INPUT", "FORWARD", "OUTPUT"],
};

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export interface Ruleset {
  family: Family;
  /** `save`: `iptables-save` / `iptables-restore` input; `list-rules`: `iptables -S` output (one table). */
  format: "save" | "list-rules";
  file: string;
  /** Tables present in the input, in input order. */
  tables: Map<TableName, Table>;
}

export interface Table {
  name: TableName;
  /** Built-in chains first (kernel order), then user chains in declaration order. */
  chains: Map<string, Chain>;
  /** The `*table` line; null for `iptables -S` input. */
  prov: Provenance | null;
}

export interface Chain {
  name: string;
  table: TableName;
  builtin: boolean;
  /** Built-in chains only; `ACCEPT` when the input does not say. */
  policy: "ACCEPT" | "DROP" | null;
  counters: Counters | null;
  rules: Rule[];
  /** The `:chain` / `-N` / `-P` line that declared it; null for implicit built-ins. */
  prov: Provenance | null;
}

/** An IPv4/IPv6 network as iptables stores it: `addr & mask`. `len` is null for non-contiguous masks. */
export interface Net {
  kind: "net";
  family: Family;
  addr: bigint;
  mask: bigint;
  len: number | null;
}

/** A host name: iptables resolves it with DNS when loading; statically unknown here. */
export interface HostName {
  kind: "name";
  name: string;
}

export type AddrSpec = Net | HostName;

export interface AddrCond {
  spec: AddrSpec;
  invert: boolean;
}

export interface IfaceCond {
  /** Without the trailing `+`. */
  name: string;
  /** `eth+`: any interface whose name starts with `name` (`+` alone: any interface). */
  wildcard: boolean;
  invert: boolean;
}

export interface ProtoCond {
  /** IP protocol number, 1..255 (`-p all`/`0` is no condition and gives `proto: null`). */
  num: number;
  invert: boolean;
}

/** Inclusive port range. */
export interface PortRange {
  lo: number;
  hi: number;
}

export interface PortCond {
  range: PortRange;
  invert: boolean;
}

/** One option as written, kept for opaque modules and targets (and for formatting them back). */
export interface RawOption {
  /** Canonical option name, with its dashes (`--hashlimit-above`). */
  name: string;
  args: string[];
  invert: boolean;
  /** Column of the option (or of its `!`). */
  col: number;
  /** Column of its first argument (of the option when it has none): where value errors point. */
  argCol: number;
}

interface MatchBase {
  /** Column of the `-m` (or of the first option, for implicitly loaded protocol matches). */
  col: number;
}

export interface TcpMatch extends MatchBase {
  kind: "tcp";
  sport: PortCond | null;
  dport: PortCond | null;
  /** `(flags & mask) == comp`; `--syn` is mask FIN,SYN,RST,ACK comp SYN. */
  flags: { mask: number; comp: number; invert: boolean } | null;
  option: { num: number; invert: boolean } | null;
}

export interface UdpMatch extends MatchBase {
  kind: "udp";
  sport: PortCond | null;
  dport: PortCond | null;
}

export interface SctpMatch extends MatchBase {
  kind: "sctp";
  sport: PortCond | null;
  dport: PortCond | null;
  /** `--chunk-types` is kept raw; a rule using it is marked unknown. */
  chunkTypes: RawOption | null;
}

export interface DccpMatch extends MatchBase {
  kind: "dccp";
  sport: PortCond | null;
  dport: PortCond | null;
  /** `--dccp-types` / `--dccp-option`, kept raw; marked unknown. */
  other: RawOption[];
}

export interface MultiportMatch extends MatchBase {
  kind: "multiport";
  dir: "src" | "dst" | "any";
  ranges: PortRange[];
  invert: boolean;
}

/** In the order iptables-save prints them. */
export const CT_STATES = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"] as const;
export type CtState = (typeof CT_STATES)[number];
export const CT_STATUSES = ["NONE", "EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED"] as const;
export type CtStatus = (typeof CT_STATUSES)[number];

export interface ConntrackMatch extends MatchBase {
  kind: "conntrack";
  state: { values: CtState[]; invert: boolean } | null;
  proto: { num: number; invert: boolean } | null;
  origSrc: { net: Net; invert: boolean } | null;
  origDst: { net: Net; invert: boolean } | null;
  replSrc: { net: Net; invert: boolean } | null;
  replDst: { net: Net; invert: boolean } | null;
  origSrcPort: PortCond | null;
  origDstPort: PortCond | null;
  replSrcPort: PortCond | null;
  replDstPort: PortCond | null;
  status: { values: CtStatus[]; invert: boolean } | null;
  /** Remaining lifetime in seconds; runtime state, so a rule using it is marked unknown. */
  expire: { lo: number; hi: number; invert: boolean } | null;
  dir: "ORIGINAL" | "REPLY" | null;
}

export interface StateMatch extends MatchBase {
  kind: "state";
  values: CtState[];
  invert: boolean;
}

export interface PolicyElement {
  reqid: { value: number; invert: boolean } | null;
  spi: { value: number; invert: boolean } | null;
  proto: { value: "ah" | "esp" | "ipcomp"; invert: boolean } | null;
  mode: { value: "tunnel" | "transport"; invert: boolean } | null;
  tunnelSrc: { net: Net; invert: boolean } | null;
  tunnelDst: { net: Net; invert: boolean } | null;
}

export interface PolicyMatch extends MatchBase {
  kind: "policy";
  dir: "in" | "out";
  pol: "none" | "ipsec";
  strict: boolean;
  /** At least one element (possibly with no conditions) when `pol` is ipsec and any option was given. */
  elements: PolicyElement[];
}

export interface CommentMatch extends MatchBase {
  kind: "comment";
  text: string;
}

export const ADDR_TYPES = [
  "UNSPEC",
  "UNICAST",
  "LOCAL",
  "BROADCAST",
  "ANYCAST",
  "MULTICAST",
  "BLACKHOLE",
  "UNREACHABLE",
  "PROHIBIT",
  "THROW",
  "NAT",
  "XRESOLVE",
] as const;
export type AddrType = (typeof ADDR_TYPES)[number];

export interface AddrtypeMatch extends MatchBase {
  kind: "addrtype";
  src: { types: AddrType[]; invert: boolean } | null;
  dst: { types: AddrType[]; invert: boolean } | null;
  limitIfaceIn: boolean;
  limitIfaceOut: boolean;
}

export interface AddrRange {
  lo: bigint;
  hi: bigint;
}

export interface IprangeMatch extends MatchBase {
  kind: "iprange";
  src: { range: AddrRange; invert: boolean } | null;
  dst: { range: AddrRange; invert: boolean } | null;
}

/** `--icmp-type` / `--icmpv6-type`: `type` 255 with code 0..255 under `any` (ICMPv4 only). */
export interface IcmpMatch extends MatchBase {
  kind: "icmp" | "icmp6";
  any: boolean;
  type: number;
  codeLo: number;
  codeHi: number;
  invert: boolean;
}

/** `-m mark` (packet mark) and `-m connmark` (connection mark): `(mark & mask) == value`. */
export interface MarkMatch extends MatchBase {
  kind: "mark" | "connmark";
  value: number;
  mask: number;
  invert: boolean;
}

export interface SetMatch extends MatchBase {
  kind: "set";
  name: string;
  /** `src`/`dst` per dimension of the set, in order. */
  flags: Array<"src" | "dst">;
  invert: boolean;
  /** Counter conditions, `--return-nomatch`, `! --update-counters`…: kept raw. */
  other: RawOption[];
}

export interface MacMatch extends MatchBase {
  kind: "mac";
  /** Lower case, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  invert: boolean;
}

export interface PhysdevMatch extends MatchBase {
  kind: "physdev";
  physIn: IfaceCond | null;
  physOut: IfaceCond | null;
  isIn: { invert: boolean } | null;
  isOut: { invert: boolean } | null;
  isBridged: { invert: boolean } | null;
}

export interface LengthMatch extends MatchBase {
  kind: "length";
  lo: number;
  hi: number;
  invert: boolean;
}

/** `-m ttl` (IPv4) / `-m hl` (IPv6). `! --ttl-eq` is `ne`. */
export interface TtlMatch extends MatchBase {
  kind: "ttl" | "hl";
  op: "eq" | "ne" | "lt" | "gt";
  value: number;
}

/** IPv6 fragment header match (`-m frag`). */
export interface FragMatch extends MatchBase {
  kind: "frag";
  id: { lo: number; hi: number; invert: boolean } | null;
  len: { value: number; invert: boolean } | null;
  res: boolean;
  first: boolean;
  more: boolean;
  last: boolean;
}

/** `-m esp --espspi` / `-m ah --ahspi`. */
export interface SpiMatch extends MatchBase {
  kind: "esp" | "ah";
  spi: { lo: number; hi: number; invert: boolean } | null;
  /** IPv6 `ah` only: `--ahlen`, `--ahres`, kept raw. */
  other: RawOption[];
}

export interface PkttypeMatch extends MatchBase {
  kind: "pkttype";
  type: "unicast" | "broadcast" | "multicast";
  invert: boolean;
}

/**
 * A module whose result cannot be known statically (rate limits, `recent`, time of day…), or a
 * header field the engine does not model, or a module it does not know at all.
 */
export interface OpaqueMatch extends MatchBase {
  kind: "opaque";
  module: string;
  options: RawOption[];
  why: "runtime" | "unmodelled" | "unknown-module";
  reason: string;
}

/** An option no loaded module owns (iptables would refuse it); kept where it appeared. */
export interface UnknownOptionMatch extends MatchBase {
  kind: "unknown-option";
  /** The module it followed, if any (its result is then unknown too). */
  after: string | null;
  option: RawOption;
}

export type Match =
  | TcpMatch
  | UdpMatch
  | SctpMatch
  | DccpMatch
  | MultiportMatch
  | ConntrackMatch
  | StateMatch
  | PolicyMatch
  | CommentMatch
  | AddrtypeMatch
  | IprangeMatch
  | IcmpMatch
  | MarkMatch
  | SetMatch
  | MacMatch
  | PhysdevMatch
  | LengthMatch
  | TtlMatch
  | FragMatch
  | SpiMatch
  | PkttypeMatch
  | OpaqueMatch
  | UnknownOptionMatch;

/** `ipaddr[-ipaddr][:port[-port[/base]]]` of DNAT/SNAT. */
export interface NatRange {
  addrLo: bigint | null;
  addrHi: bigint | null;
  portLo: number | null;
  portHi: number | null;
  basePort: number | null;
}

interface TargetBase {
  /** Column of the `-j` / `-g`. */
  col: number;
}

export type Target =
  | (TargetBase & { kind: "ACCEPT" | "DROP" | "RETURN" | "QUEUE" })
  | (TargetBase & { kind: "jump" | "goto"; chain: string })
  | (TargetBase & { kind: "REJECT"; with: string })
  | (TargetBase & {
      kind: "LOG";
      level: number | null;
      prefix: string | null;
      /** `tcp-sequence`, `tcp-options`, `ip-options`, `uid`, `macdecode`. */
      flags: string[];
    })
  | (TargetBase & { kind: "NFLOG"; options: RawOption[] })
  | (TargetBase & { kind: "ULOG"; options: RawOption[] })
  /** Normalised to the kernel's xmark: `mark = (mark & ~mask) ^ value`. */
  | (TargetBase & { kind: "MARK"; value: number; mask: number })
  /** `-j TTL` / `-j HL`: the packet's TTL (hop limit) for later rules and the host. */
  | (TargetBase & { kind: "TTL"; name: "TTL" | "HL"; mode: "set" | "dec" | "inc"; value: number })
  | (TargetBase & {
      kind: "CONNMARK";
      mode: "set" | "save" | "restore";
      /** `set`: ctmark = (ctmark & ~mask) ^ value. */
      value: number;
      mask: number;
      /** `save`/`restore`: masks applied to the packet and connection marks. */
      nfmask: number;
      ctmask: number;
    })
  | (TargetBase & { kind: "TRACE" })
  | (TargetBase & { kind: "NOTRACK" })
  | (TargetBase & { kind: "CT"; notrack: boolean; options: RawOption[] })
  | (TargetBase & {
      kind: "DNAT" | "SNAT";
      ranges: NatRange[];
      random: boolean;
      randomFully: boolean;
      persistent: boolean;
    })
  | (TargetBase & {
      kind: "MASQUERADE" | "REDIRECT";
      ports: PortRange | null;
      random: boolean;
      randomFully: boolean;
    })
  | (TargetBase & {
      kind: "opaque";
      name: string;
      options: RawOption[];
      /** Whether the packet goes on to the next rule. */
      effect: "continue" | "terminal" | "unknown";
      known: boolean;
    });

/** Why a rule's outcome cannot be computed exactly (the evaluators answer "may match"). */
export interface Unknown {
  col: number;
  /** Short name of the construct: `-m limit`, `--something-else`, `-j CLUSTERIP`, `-s PH_IP_CAROL`. */
  what: string;
  reason: string;
}

export interface Rule {
  table: TableName;
  chain: string;
  /** 1-based position in its chain, as `iptables -L --line-numbers` / TRACE show it. */
  num: number;
  prov: Provenance;
  counters: Counters | null;
  src: AddrCond | null;
  dst: AddrCond | null;
  iif: IfaceCond | null;
  oif: IfaceCond | null;
  proto: ProtoCond | null;
  /** `-f`: IPv4 second and further fragments. */
  fragment: { invert: boolean } | null;
  matches: Match[];
  /** null: no target, the rule only counts. */
  target: Target | null;
  /** Empty when the rule is exactly evaluable. Read-only (the empty list is shared). */
  unknown: Unknown[];
}

/** The addresses an address condition's spec selects (before `invert`); null for host names. */
export function netToAddrSet(n: Net, maxIntervals?: number): AddrSet | null {
  if (n.len !== null) {
    return AddrSet.fromPrefix({ family: n.family, addr: n.addr, len: n.len });
  }
  return AddrSet.fromMasked(n.family, n.addr, n.mask, maxIntervals);
}

export function specToAddrSet(spec: AddrSpec, family: Family): AddrSet | null {
  if (spec.kind === "name") return null;
  if (spec.family !== family) return AddrSet.empty(family);
  return netToAddrSet(spec);
}
