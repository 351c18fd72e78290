/**
 * `tunnelcheck trace --iptables FILE …`: pure functions behind the CLI contract (the shell parses
 * flags, reads files and prints).
 *
 * - `traceIptables` with a single source address: the packet's whole path (../../analysis/
 *   iptables-path.ts) — `{ verdict, rule: {file, line, text} | null, visited, … }`, `rule` null
 *   when a chain policy (or nothing) decided; `visited` lists every step the way `-j TRACE` logs
 *   it (`filter:INPUT:rule:3`), with the rule.
 * - With `src` a prefix or `any` (and `dst` omitted = any of the host's addresses): the symbolic
 *   partition of the sources by verdict (../../analysis/iptables-symbolic.ts).
 * - `traceIptablesBatch`: one JSONL packet per line, one result per line, in order; a bad line
 *   gives `{ line, error }` instead of stopping the batch.
 * - `renderTraceText`: a TRACE-like listing, or a table for the symbolic form.
 */
import type { Packet, PacketState, TraceStep } from "../../analysis/iptables-eval.js";
import {
  decisionName,
  evaluatePath,
  linkBroadcasts,
  type PathOutcome,
  type PathResult,
  type PathStep,
} from "../../analysis/iptables-path.js";
import { iptablesEvaluator } from "../../analysis/iptables-symbolic.js";
import type { FlowQuery, Verdict } from "../../analysis/query.js";
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { renderPartitionTable } from "../../report/partition-table.js";
import type { Rule, Ruleset } from "./model.js";
import { protoName, protoNumber } from "./names.js";

export const PACKET_STATES: readonly PacketState[] = [
  "new",
  "established",
  "related",
  "invalid",
  "untracked",
];

export interface IptablesTracePacket {
  /** A single address (concrete trace), a prefix, or `any` (symbolic). */
  src: string;
  /** Omitted: the host's address (concrete: the only one; symbolic: any of them). */
  dst?: string;
  /** Name (`udp`, `esp`, …) or number. */
  proto: string | number;
  /** TCP and UDP only. */
  sport?: number;
  dport?: number;
  /** ICMP / ICMPv6 only. */
  icmpType?: number;
  icmpCode?: number;
  /** IPv4 TTL / IPv6 hop limit as the packet arrives (undefined: unknown). */
  ttl?: number;
  iif?: string;
  /** Default `new`. */
  state?: PacketState;
  /** Decapsulated from an inbound IPsec SA (`-m policy --dir in --pol ipsec`). Default false. */
  ipsec?: boolean;
  /**
   * A fragment of a larger datagram: the `first` (offset 0, transport header present), a `later`
   * one with more to follow, or the `last`. Ports then are the datagram's: only the first fragment
   * carries them, and reassembly (conntrack loaded) gives them back to the rules. Omitted: whole.
   */
  fragment?: FragmentKind;
  /** IPv6 Fragment header identification (`-m frag --fragid`); omitted: unknown. */
  fragId?: number;
}

export const FRAGMENT_KINDS = ["first", "later", "last"] as const;
export type FragmentKind = (typeof FRAGMENT_KINDS)[number];

export interface IptablesTraceOptions {
  /** The host's own addresses (`--local`). Concrete trace without them: the destination is taken as the host's. */
  hostAddresses?: readonly string[];
  /** ipset contents (`ipset save`), for exact `-m set`. */
  ipsets?: ReadonlyMap<string, AddrSet>;
}

export interface TraceRule {
  file: string;
  line: number;
  text: string;
}

/** One `-j TRACE` line: `table:chain:type:num` at a hook, with the rule when a rule matched. */
export interface TraceVisit {
  step: string;
  hook: string;
  table: string;
  chain: string;
  type: "rule" | "return" | "policy";
  num: number;
  rule: TraceRule | null;
}

/** The concrete trace: the JSON contract. */
export interface IptablesTrace {
  kind: "packet";
  verdict: Verdict;
  /** The deciding rule; null when a chain policy decided (see `decidedBy`) or nothing filtered. */
  rule: TraceRule | null;
  /** `t.rules:12` or `policy DROP of filter INPUT`. */
  decidedBy: string;
  /** Where the kernel sends it: local delivery, forwarding; null when dropped before routing. */
  route: "local" | "forward" | "output" | "unknown" | null;
  visited: TraceVisit[];
  /** Why the verdict is unknown, or what decided without a rule or policy. */
  reason?: string;
  /** Every way an undecidable rule could go, when there is more than one. */
  outcomes?: Array<{
    verdict: Verdict;
    rule: TraceRule | null;
    decidedBy: string;
    route: string | null;
    assumed: Array<{ rule: TraceRule | null; matched: boolean; why: string }>;
  }>;
  notes: string[];
  packet: {
    src: string;
    dst: string;
    proto: number;
    sport?: number;
    dport?: number;
    iif?: string;
    state: PacketState;
    ipsec: boolean;
    fragment?: FragmentKind;
    fragId?: number;
  };
}

export interface SymbolicTracePart {
  /** `any`, or ranges such as `10.0.0.1-10.0.0.6, 10.1.0.0-10.1.255.255`. */
  sources: string;
  verdict: Verdict;
  rule: TraceRule | null;
  defaultName?: string;
  unknown?: { reason: string; rule?: TraceRule };
  explanation: string;
}

export interface IptablesSymbolicTrace {
  kind: "symbolic";
  query: string;
  parts: SymbolicTracePart[];
}

/** A batch line that could not be traced. */
export interface BatchError {
  line: number;
  error: string;
}

export type BatchResult = (IptablesTrace & { line: number }) | BatchError;

export class IptablesTraceError extends Error {}

const toRule = (r: Rule | { file: string; line: number; text: string }): TraceRule =>
  "prov" in r
    ? { file: r.prov.file, line: r.prov.line, text: r.prov.text }
    : { file: r.file, line: r.line, text: r.text };

// ---------------------------------------------------------------------------------------------
// Input checks

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseAddr(
  v: string,
  what: string,
  family: Family,
): { set: AddrSet; single: boolean; family: Family } {
  // Fast path for a plain IPv4 address (batches are mostly these); leading zeros go the slow way.
  const m = DOTTED.exec(v);
  if (m?.slice(1).every((x) => x === "0" || !x!.startsWith("0"))) {
    const o = [m[1], m[2], m[3], m[4]].map(Number);
    if (o.every((x) => x <= 255)) {
      const a = BigInt(((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0);
      return { set: AddrSet.fromRange(4, a, a), single: true, family: 4 };
    }
  }
  const t = v.trim().toLowerCase();
  if (t === "any" || t === "all") return { set: AddrSet.all(family), single: false, family };
  try {
    const p = parsePrefix(v.trim(), { allowHostBits: true });
    const bits = p.family === 4 ? 32 : 128;
    const size = 1n << BigInt(bits - p.len);
    const lo = (p.addr / size) * size;
    return { set: AddrSet.fromRange(p.family, lo, lo + size - 1n), single: p.len === bits, family: p.family };
  } catch {
    throw new IptablesTraceError(`${what} '${v}' is not an IP address, a prefix or 'any'`);
  }
}

function protoOf(v: string | number): number {
  const n =
    typeof v === "number" ? (Number.isInteger(v) && v >= 0 && v <= 255 ? v : undefined) : protoNumber(v);
  if (n === undefined) throw new IptablesTraceError(`proto '${v}' is not a protocol name or number (0-255)`);
  return n;
}

function portOf(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535)
    throw new IptablesTraceError(`${what} ${JSON.stringify(v)} is not a port (0-65535)`);
  return v;
}

interface HostInfo {
  host: AddrSet | undefined;
  broadcast: AddrSet | undefined;
}

/** The host's addresses, and the directed broadcasts of those given with a prefix length. */
function hostInfo(family: Family, addrs: readonly string[] | undefined): HostInfo {
  if (!addrs || addrs.length === 0) return { host: undefined, broadcast: undefined };
  let s = AddrSet.empty(family);
  const withLen: Array<{ family: Family; addr: bigint; len: number }> = [];
  for (const a of addrs) {
    let p: ReturnType<typeof parsePrefix>;
    try {
      p = parsePrefix(a.trim(), { allowHostBits: true });
    } catch {
      throw new IptablesTraceError(`host address '${a}' is not an IP address`);
    }
    if (p.family !== family) continue;
    s = s.union(AddrSet.fromRange(family, p.addr, p.addr));
    if (a.includes("/")) withLen.push(p);
  }
  const b = linkBroadcasts(withLen);
  return { host: s.isEmpty() ? undefined : s, broadcast: b.isEmpty() ? undefined : b };
}

interface Checked {
  family: Family;
  src: ReturnType<typeof parseAddr>;
  dst: ReturnType<typeof parseAddr> | undefined;
  proto: number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  ttl?: number;
  iif?: string;
  state: PacketState;
  ipsec: boolean;
  fragment?: FragmentKind;
  fragId?: number;
}

function check(rs: Ruleset, p: IptablesTracePacket): Checked {
  const family = rs.family;
  const src = parseAddr(p.src, "src", family);
  const dst = p.dst !== undefined ? parseAddr(p.dst, "dst", family) : undefined;
  for (const [x, what] of [
    [src, "src"],
    [dst, "dst"],
  ] as const)
    if (x && x.family !== family)
      throw new IptablesTraceError(
        `${what} ${what === "src" ? p.src : p.dst} is IPv${x.family}, the rule set ${rs.file} is IPv${family}`,
      );
  const proto = protoOf(p.proto);
  if ((p.sport !== undefined || p.dport !== undefined) && proto !== 6 && proto !== 17)
    throw new IptablesTraceError(`sport/dport are for tcp and udp only (proto ${protoName(proto)})`);
  if ((p.icmpType !== undefined || p.icmpCode !== undefined) && proto !== (family === 6 ? 58 : 1))
    throw new IptablesTraceError(
      `an ICMP type is for ${family === 6 ? "icmpv6 (58)" : "icmp (1)"} only (proto ${protoName(proto)})`,
    );
  const state = p.state ?? "new";
  if (!PACKET_STATES.includes(state))
    throw new IptablesTraceError(`state '${state}' is not one of ${PACKET_STATES.join(", ")}`);
  if (p.ipsec !== undefined && typeof p.ipsec !== "boolean")
    throw new IptablesTraceError(`ipsec must be true or false, got ${JSON.stringify(p.ipsec)}`);
  if (p.iif !== undefined && (typeof p.iif !== "string" || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(p.iif)))
    throw new IptablesTraceError(`iif ${JSON.stringify(p.iif)} is not an interface name`);
  if (p.fragment !== undefined && !(FRAGMENT_KINDS as readonly unknown[]).includes(p.fragment))
    throw new IptablesTraceError(
      `fragment ${JSON.stringify(p.fragment)} is not one of ${FRAGMENT_KINDS.join(", ")}`,
    );
  // Reassembly gives the rules the whole datagram: without its port the answer would be a guess.
  if (p.fragment !== undefined && (proto === 6 || proto === 17) && p.dport === undefined)
    throw new IptablesTraceError(
      "a fragment needs its datagram's dport (tcp/udp): reassembled, the datagram is judged by it",
    );
  if (p.fragId !== undefined) {
    if (family !== 6)
      throw new IptablesTraceError(
        "the fragment id (--frag-id, fragId) is the IPv6 Fragment header's identification: IPv6 only",
      );
    if (p.fragment === undefined)
      throw new IptablesTraceError("fragId goes with fragment (first, later or last)");
    if (!Number.isInteger(p.fragId) || p.fragId < 0 || p.fragId > 0xffffffff)
      throw new IptablesTraceError(`fragId must be 0..4294967295, got ${JSON.stringify(p.fragId)}`);
  }
  return {
    family,
    src,
    dst,
    proto,
    ...(p.sport !== undefined ? { sport: portOf(p.sport, "sport") } : {}),
    ...(p.dport !== undefined ? { dport: portOf(p.dport, "dport") } : {}),
    ...(p.icmpType !== undefined ? { icmpType: p.icmpType } : {}),
    ...(p.icmpCode !== undefined ? { icmpCode: p.icmpCode } : {}),
    ...(p.ttl !== undefined ? { ttl: p.ttl } : {}),
    ...(p.iif !== undefined ? { iif: p.iif } : {}),
    state,
    ipsec: p.ipsec ?? false,
    ...(p.fragment !== undefined ? { fragment: p.fragment } : {}),
    ...(p.fragId !== undefined ? { fragId: p.fragId } : {}),
  };
}

/** The fragment as the engine's packet has it (IPv4 `-f` and IPv6 `-m frag` read these fields). */
const fragmentFields = (c: Checked) =>
  c.fragment === undefined
    ? {}
    : {
        ...(c.fragment === "first" ? { fragFirst: true } : { fragment: true }),
        fragMore: c.fragment !== "last",
        ...(c.fragId !== undefined ? { fragId: c.fragId } : {}),
      };

/** The fragment in the text of a packet or query. */
const fragmentText = (c: { fragment?: FragmentKind; fragId?: number }): string =>
  c.fragment === undefined
    ? ""
    : `, ${c.fragment === "first" ? "first fragment" : c.fragment === "last" ? "last fragment" : "a later fragment (more follow)"}${c.fragId !== undefined ? ` id ${c.fragId}` : ""}`;

/** The fragment as the output's packet and query show it. */
const fragmentShown = (c: Checked) => ({
  ...(c.fragment !== undefined ? { fragment: c.fragment } : {}),
  ...(c.fragId !== undefined ? { fragId: c.fragId } : {}),
});

// ---------------------------------------------------------------------------------------------
// Tracing

/** The checked packet's optional header fields (ports, ICMP type/code, TTL), as a packet or query has them. */
const headerFields = (c: Checked) => ({
  ...(c.sport !== undefined ? { sport: c.sport } : {}),
  ...(c.dport !== undefined ? { dport: c.dport } : {}),
  ...(c.icmpType !== undefined ? { icmpType: c.icmpType } : {}),
  ...(c.icmpCode !== undefined ? { icmpCode: c.icmpCode } : {}),
  ...(c.ttl !== undefined ? { ttl: c.ttl } : {}),
});

const visit = (s: PathStep | (TraceStep & { hook: string })): TraceVisit => ({
  step: `${s.table}:${s.chain}:${s.type}:${s.num}`,
  hook: s.hook,
  table: s.table,
  chain: s.chain,
  type: s.type,
  num: s.num,
  rule: s.rule ? toRule(s.rule) : null,
});

const decidedBy = (o: PathOutcome | PathResult): string =>
  o.decision
    ? o.decision.rule || o.decision.policy
      ? decisionName(o.decision)
      : (o.reason ?? decisionName(o.decision))
    : (o.reason ?? "");

/** Decides one packet (single source address) or partitions a source set. */
export function traceIptables(
  rs: Ruleset,
  packet: IptablesTracePacket,
  opts: IptablesTraceOptions = {},
): IptablesTrace | IptablesSymbolicTrace {
  const c = check(rs, packet);
  const hi = hostInfo(c.family, opts.hostAddresses);
  if (!c.src.single || (c.dst && !c.dst.single)) return symbolic(rs, c, hi, opts);
  return concrete(rs, c, hi, opts);
}

function concrete(rs: Ruleset, c: Checked, hi: HostInfo, opts: IptablesTraceOptions): IptablesTrace {
  const host = hi.host;
  const notes: string[] = [];
  let dst: bigint;
  if (c.dst) dst = c.dst.set.first()!;
  else if (host && host.size() === 1n) dst = host.first()!;
  else
    throw new IptablesTraceError(
      host
        ? "--dst is required for one packet: the host has several addresses (--local)"
        : "--dst is required for one packet (or give the host's address with --local; --src any traces every source to the host)",
    );
  let local = host;
  if (!local) {
    local = AddrSet.fromRange(c.family, dst, dst);
    notes.push(
      `the host's addresses are not given: ${formatAddress(c.family, dst)} is taken as its only address (local delivery)`,
    );
  }
  const p: Packet = {
    family: c.family,
    src: c.src.set.first()!,
    dst,
    proto: c.proto,
    ...headerFields(c),
    ...(c.iif !== undefined ? { iif: c.iif } : {}),
    state: c.state,
    ipsec: c.ipsec,
    ...fragmentFields(c),
  };
  const r = evaluatePath(rs, p, {
    local,
    ...(hi.broadcast ? { broadcast: hi.broadcast } : {}),
    ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
  });
  const first = r.outcomes[0]!;
  for (const n of first.notes) notes.push(n);
  if (r.truncated) notes.push("too many undecidable rules: not every outcome was explored");
  const rule = first.decision?.rule ? toRule(first.decision.rule) : null;
  const out: IptablesTrace = {
    kind: "packet",
    verdict: r.verdict,
    rule: r.verdict === "unknown" ? unknownRule(r) : rule,
    decidedBy: decidedBy(first),
    route: r.route,
    visited: first.trace.map(visit),
    ...(r.verdict === "unknown"
      ? { reason: unknownReason(r) }
      : first.reason
        ? { reason: first.reason }
        : {}),
    notes,
    packet: {
      src: formatAddress(c.family, p.src),
      dst: formatAddress(c.family, p.dst),
      proto: c.proto,
      ...headerFields(c),
      ...(c.iif !== undefined ? { iif: c.iif } : {}),
      state: c.state,
      ipsec: c.ipsec,
      ...fragmentShown(c),
    },
  };
  if (r.outcomes.length > 1) {
    out.outcomes = r.outcomes.map((o) => ({
      verdict: o.verdict,
      rule: o.decision?.rule ? toRule(o.decision.rule) : null,
      decidedBy: decidedBy(o),
      route: o.route,
      assumed: o.assumed.map((a) => ({
        rule: a.rule ? toRule(a.rule) : null,
        matched: a.matched,
        why: a.why,
      })),
    }));
  }
  return out;
}

/** The rule that makes the verdict unknown: an undecidable target, else the first undecidable match. */
function unknownRule(r: PathResult): TraceRule | null {
  const o = r.outcomes.find((x) => x.verdict === "unknown" && x.decision?.rule);
  if (o) return toRule(o.decision!.rule!);
  const a = r.outcomes.flatMap((x) => x.assumed).find((x) => x.rule);
  return a?.rule ? toRule(a.rule) : null;
}

function unknownReason(r: PathResult): string {
  const o = r.outcomes.find((x) => x.verdict === "unknown");
  if (o?.reason) return o.reason;
  const a = r.outcomes.flatMap((x) => x.assumed)[0];
  if (a)
    return `${a.rule ? `${a.rule.prov.file}:${a.rule.prov.line}: ` : ""}${a.why}; the outcomes differ: ${r.outcomes
      .map((x) => `${x.verdict} (${decidedBy(x)})`)
      .join(", ")}`;
  return r.truncated ? "too many undecidable rules" : "undecidable";
}

function symbolic(rs: Ruleset, c: Checked, hi: HostInfo, opts: IptablesTraceOptions): IptablesSymbolicTrace {
  const host = hi.host;
  const ev = iptablesEvaluator(rs, {
    ...(host ? { hostAddresses: host } : {}),
    ...(hi.broadcast ? { broadcast: hi.broadcast } : {}),
    ...(opts.ipsets ? { ipset: opts.ipsets } : {}),
  });
  const q: FlowQuery = {
    family: c.family,
    proto: c.proto,
    ...headerFields(c),
    sources: c.src.set,
    ...(c.dst ? { dst: c.dst.set } : {}),
    ...(c.iif !== undefined ? { iif: c.iif } : {}),
    state: c.state,
    ipsec: c.ipsec,
    ...fragmentFields(c),
  };
  const setText = (s: AddrSet) => (s.isAll() ? "any" : s.toRangeString());
  const query = `proto=${protoName(c.proto)}${c.sport !== undefined ? ` sport=${c.sport}` : ""}${c.dport !== undefined ? ` dport=${c.dport}` : ""}${c.icmpType !== undefined ? ` icmp-type=${c.icmpType}${c.icmpCode !== undefined ? `/${c.icmpCode}` : ""}` : ""}${c.ttl !== undefined ? ` ttl=${c.ttl}` : ""} from ${setText(c.src.set)} to ${c.dst ? setText(c.dst.set) : host ? `any address of the host (${host.toRangeString()})` : "the host (its addresses are not given)"}${c.iif !== undefined ? ` in ${c.iif}` : ""}${c.ipsec ? " (decapsulated from IPsec)" : ""}${fragmentText(c)}, state ${c.state}`;
  return {
    kind: "symbolic",
    query,
    parts: ev.partition(q).map((p) => ({
      sources: setText(p.sources),
      verdict: p.verdict,
      rule: p.rule ? toRule(p.rule) : null,
      ...(p.defaultName ? { defaultName: p.defaultName } : {}),
      ...(p.unknown
        ? {
            unknown: p.unknown.rule
              ? { reason: p.unknown.reason, rule: toRule(p.unknown.rule) }
              : { reason: p.unknown.reason },
          }
        : {}),
      explanation: p.explanation,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Batch (JSONL)

const FIELDS = new Set([
  "src",
  "dst",
  "proto",
  "sport",
  "dport",
  "iif",
  "state",
  "ipsec",
  "fragment",
  "fragId",
]);

/**
 * Traces one packet per JSONL line (`{"src","dst","proto","sport","dport","iif","state","ipsec","fragment","fragId"}`),
 * each a concrete packet (a single source address). Blank lines are skipped; every other line
 * gives one result, in order, carrying its line number; a line that is not a valid packet gives
 * `{ line, error }`.
 */
export function traceIptablesBatch(
  rs: Ruleset,
  jsonl: string,
  opts: IptablesTraceOptions = {},
): BatchResult[] {
  const out: BatchResult[] = [];
  let hi: HostInfo;
  try {
    hi = hostInfo(rs.family, opts.hostAddresses);
  } catch (e) {
    if (!(e instanceof IptablesTraceError)) throw e;
    return [{ line: 0, error: e.message }];
  }
  const lines = jsonl.split("\n");
  lines.forEach((raw, i) => {
    const line = i + 1;
    const text = raw.trim();
    if (text === "") return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      out.push({ line, error: `not JSON: ${(e as Error).message}` });
      return;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      out.push({ line, error: "expected a JSON object (a packet)" });
      return;
    }
    const o = v as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !FIELDS.has(k));
    if (unknown.length > 0) {
      out.push({
        line,
        error: `unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")}; allowed: ${[...FIELDS].join(", ")}`,
      });
      return;
    }
    if (typeof o.src !== "string") {
      out.push({ line, error: "src is required: an IP address (string)" });
      return;
    }
    if (o.dst !== undefined && typeof o.dst !== "string") {
      out.push({ line, error: "dst must be an IP address (string)" });
      return;
    }
    if (typeof o.proto !== "string" && typeof o.proto !== "number") {
      out.push({ line, error: "proto is required: a protocol name or number" });
      return;
    }
    if (typeof o.state === "string") o.state = o.state.toLowerCase();
    try {
      const c = check(rs, o as unknown as IptablesTracePacket);
      if (!c.src.single) throw new IptablesTraceError(`src '${o.src}' must be a single address in a batch`);
      if (c.dst && !c.dst.single) throw new IptablesTraceError(`dst '${o.dst}' must be a single address`);
      out.push({ line, ...concrete(rs, c, hi, opts) });
    } catch (e) {
      if (!(e instanceof IptablesTraceError)) throw e;
      out.push({ line, error: e.message });
    }
  });
  return out;
}

/** One JSON object per line. */
export function renderBatchJsonl(results: readonly BatchResult[]): string {
  return results.map((r) => `${JSON.stringify(r)}\n`).join("");
}

// ---------------------------------------------------------------------------------------------
// Text

const endpoint = (addr: string, port: number | undefined): string =>
  port === undefined ? addr : addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;

/** The trace as text: TRACE-style steps (`table:chain:type:num`) with the rules, then the verdict. */
export function renderTraceText(t: IptablesTrace | IptablesSymbolicTrace): string {
  if (t.kind === "symbolic") return renderSymbolic(t);
  const p = t.packet;
  const lines = [
    `packet ${protoName(p.proto).toUpperCase()} ${endpoint(p.src, p.sport)} -> ${endpoint(p.dst, p.dport)}${p.iif !== undefined ? ` IN=${p.iif}` : ""} state ${p.state.toUpperCase()}${p.ipsec ? " (decapsulated from IPsec)" : ""}${fragmentText(p)}`,
  ];
  const w = Math.max(0, ...t.visited.map((v) => v.step.length));
  for (const v of t.visited) {
    lines.push(
      `TRACE: ${v.step.padEnd(w)}${v.rule ? `  ${v.rule.file}:${v.rule.line}: ${v.rule.text}` : ""}`.trimEnd(),
    );
  }
  const route =
    t.route === "local"
      ? " (local delivery)"
      : t.route === "forward"
        ? " (forwarded)"
        : t.route === "output"
          ? " (sent)"
          : t.route === "unknown"
            ? " (local delivery or forwarding)"
            : "";
  const verdict = t.verdict.toUpperCase();
  if (t.verdict === "unknown") lines.push(`verdict: UNKNOWN${route} — ${t.reason ?? "undecidable"}`);
  else
    lines.push(
      `verdict: ${verdict}${route} by ${t.decidedBy}${t.rule ? `: ${t.rule.text}` : ""}${t.reason && !t.decidedBy.includes(t.reason) ? ` — ${t.reason}` : ""}`,
    );
  for (const o of t.outcomes ?? []) {
    const assumed = o.assumed
      .map(
        (a) =>
          `${a.rule ? `${a.rule.file}:${a.rule.line} ` : ""}${a.matched ? "matches" : "does not match"} (${a.why})`,
      )
      .join("; ");
    lines.push(`  if ${assumed || "nothing else"}: ${o.verdict.toUpperCase()} by ${o.decidedBy}`);
  }
  for (const n of t.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}

const renderSymbolic = (t: IptablesSymbolicTrace): string => renderPartitionTable(t.query, t.parts);
