/**
 * `tunnelcheck trace --fortios FILE …`: one packet (or a set of sources) addressed to the FortiGate
 * itself, decided the way the FortiGate decides it, rendered the way an engineer reads
 * `diagnose debug flow`. Pure functions: the CLI shell parses flags, loads the model and prints.
 *
 * A single source address gives the JSON contract shared with the iptables trace —
 * `{ verdict, rule: {file, line, text} | null, visited, explanation }` — where FortiOS `deny` is
 * `drop` (a local-in deny is silent: `iprope_in_check() check failed on policy N, drop`). A prefix
 * or `any` gives the symbolic form: the source set partitioned by verdict.
 *
 * The verdict comes from the symbolic evaluator (evaluator.ts) queried with that one address, so
 * trace and audit can never disagree; `visited` lists the local-in policies in evaluation order
 * up to the deciding one, with why each did or did not match (localin.ts `lookupLocalIn`).
 */
import type { RuleRef } from "../../analysis/findings.js";
import type { FlowQuery, Verdict } from "../../analysis/query.js";
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { renderPartitionTable } from "../../report/partition-table.js";
import { DEFAULT_NAMES, type FortiosPart, fortiosEvaluator, policyRef } from "./evaluator.js";
import { LocalInQueryError, lookupLocalIn, protocolNumber, vdomOfInterface } from "./localin.js";
import type { FortiosModel } from "./model.js";

export interface FortiosTracePacket {
  /** A single address (concrete trace), a prefix, or `any` / `any6` (symbolic). */
  src: string;
  /** Default: the incoming interface's own address. */
  dst?: string;
  /** Number or name (`udp`, `tcp`, `esp`, …). */
  proto: string | number;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  /** Incoming interface. */
  iif: string;
  /** Default `new`. `established`: the reply direction of a session the FortiGate originated. */
  state?: "new" | "established";
  /** Arrived decapsulated from an IPsec SA (on the tunnel of a phase1 bound to `iif`). */
  ipsec?: boolean;
  vdom?: string;
}

export interface TraceRule {
  file: string;
  line: number;
  text: string;
}

export interface TraceVisit extends TraceRule {
  policy: string;
  result: "match" | "no match" | "unknown";
  /** Why it matched, did not, or could not be decided. */
  why: string;
}

/** The concrete trace: the JSON contract. */
export interface FortiosTrace {
  kind: "packet";
  verdict: Verdict;
  rule: TraceRule | null;
  visited: TraceVisit[];
  explanation: string;
  /** When no policy decided: which default did. */
  defaultName?: string;
  /** Why the verdict is unknown, and the construct's location. */
  unknown?: { reason: string; rule?: TraceRule };
  /** What the local-in verdict alone does not say (allowaccess, no phase1 on the interface). */
  notes: string[];
  packet: {
    vdom: string;
    src: string;
    dst: string;
    proto: number;
    sport?: number;
    dport?: number;
    iif: string;
    state: "new" | "established";
    ipsec: boolean;
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

/** The symbolic trace (`--src any` or a prefix): the sources partitioned by verdict. */
export interface FortiosSymbolicTrace {
  kind: "symbolic";
  query: string;
  parts: SymbolicTracePart[];
}

export class FortiosTraceError extends Error {}

const toRule = (r: RuleRef): TraceRule => ({ file: r.file, line: r.line, text: r.text });

function setText(s: AddrSet): string {
  return s.isAll() ? "any" : s.toRangeString();
}

function parseAddr(v: string, what: string): { family: Family; set: AddrSet; single: boolean } {
  const t = v.trim().toLowerCase();
  if (t === "any" || t === "all" || t === "0.0.0.0/0")
    return { family: 4, set: AddrSet.all(4), single: false };
  if (t === "any6" || t === "::/0") return { family: 6, set: AddrSet.all(6), single: false };
  try {
    const p = parsePrefix(v, { allowHostBits: true });
    const bits = p.family === 4 ? 32 : 128;
    return { family: p.family, set: AddrSet.fromPrefix(p), single: p.len === bits };
  } catch {
    throw new FortiosTraceError(`--${what} '${v}' is not an IP address, a prefix or 'any'`);
  }
}

function portOk(p: number | undefined, what: string): void {
  if (p !== undefined && !(Number.isInteger(p) && p >= 0 && p <= 65535))
    throw new FortiosTraceError(`--${what} ${p} is not a port (0-65535)`);
}

/** Decides a packet, or partitions a source set, as the FortiGate's local-in path would. */
export function traceFortios(
  model: FortiosModel,
  packet: FortiosTracePacket,
): FortiosTrace | FortiosSymbolicTrace {
  let proto: number;
  try {
    proto = protocolNumber(packet.proto);
  } catch (e) {
    throw new FortiosTraceError((e as Error).message);
  }
  portOk(packet.sport, "sport");
  portOk(packet.dport, "dport");
  const src = parseAddr(packet.src, "src");
  // The packet is handled by the VDOM of its incoming interface; --vdom must agree with it.
  const ifVdom = vdomOfInterface(model, packet.iif);
  if (packet.vdom !== undefined && ifVdom !== undefined && ifVdom !== packet.vdom)
    throw new FortiosTraceError(
      `interface ${packet.iif} belongs to VDOM ${ifVdom}, not ${packet.vdom}: a packet arriving there is handled by ${ifVdom}`,
    );
  const vdom = packet.vdom ?? ifVdom;
  let ev: ReturnType<typeof fortiosEvaluator>;
  try {
    ev = fortiosEvaluator(model, vdom === undefined ? {} : { vdom });
  } catch (e) {
    throw new FortiosTraceError((e as Error).message);
  }
  let family = src.family;
  let dst: AddrSet | undefined;
  if (packet.dst !== undefined) {
    const d = parseAddr(packet.dst, "dst");
    if (src.set.isAll() && d.family !== family) {
      family = d.family;
      src.set = AddrSet.all(family);
    }
    if (d.family !== family) throw new FortiosTraceError("--src and --dst are of different address families");
    dst = d.set;
  }
  const state = packet.state ?? "new";
  const ipsec = packet.ipsec ?? false;
  const q: FlowQuery = {
    family,
    proto,
    sources: src.set,
    ...(dst ? { dst } : {}),
    iif: packet.iif,
    state,
    ipsec,
    ...(packet.sport !== undefined ? { sport: packet.sport } : {}),
    ...(packet.dport !== undefined ? { dport: packet.dport } : {}),
  };
  const parts = ev.partition(q);
  const describe = `proto=${proto}${packet.dport !== undefined ? ` dport=${packet.dport}` : ""} from ${packet.src} to ${packet.dst ?? `${packet.iif}'s address`} on ${packet.iif}${ipsec ? " (decapsulated)" : ""}, state ${state}`;
  if (!src.single) {
    return {
      kind: "symbolic",
      query: describe,
      parts: parts.map((p) => ({
        sources: setText(p.sources),
        verdict: p.verdict,
        rule: p.rule ? toRule(p.rule) : null,
        ...(p.defaultName ? { defaultName: p.defaultName } : {}),
        ...(p.unknown ? { unknown: unknownOf(p) } : {}),
        explanation: p.explanation,
      })),
    };
  }
  const part = parts[0]!;
  const srcAddr = formatAddress(family, src.set.first()!);
  // The destination shown and used for the policy walk: the given one, else the interface's.
  const own = dst ?? ev.ownAddresses(family, packet.iif);
  const dstAddr = own && !own.isEmpty() ? formatAddress(family, own.first()!) : undefined;
  const notes: string[] = [];
  // A typo in --iif would otherwise pass quietly through the implicit accept.
  if (packet.iif !== undefined && !model.interfaces.has(packet.iif) && !ev.vdom.phase1.has(packet.iif))
    notes.push(
      `interface ${packet.iif} is not defined in the config (system interface, tunnels): check --iif; have ${[...model.interfaces.keys()].slice(0, 12).join(", ")}${model.interfaces.size > 12 ? ", …" : ""}`,
    );
  if (!dst) {
    notes.push(
      dstAddr
        ? `destination: ${dstAddr}, the address of ${packet.iif}${own!.size() > 1n ? " (first of several)" : ""}`
        : `destination: the address of ${packet.iif}, not in the config`,
    );
  }
  let visited: TraceVisit[] = [];
  // The policy walk, when the local-in table decided (not a session, ESP or a missing tunnel).
  const walked =
    part.rule !== null ||
    part.verdict === "unknown" ||
    part.defaultName?.startsWith(DEFAULT_NAMES.implicitAccept);
  if (dstAddr !== undefined && walked) {
    try {
      const d = lookupLocalIn(model, {
        ...(vdom !== undefined ? { vdom } : {}),
        src: srcAddr,
        dst: dstAddr,
        protocol: proto,
        iif: ipsec ? (tunnelFor(ev, packet.iif) ?? packet.iif) : packet.iif,
        ...(packet.sport !== undefined ? { sport: packet.sport } : {}),
        ...(packet.dport !== undefined ? { dport: packet.dport } : {}),
        ...(packet.icmpType !== undefined ? { icmpType: packet.icmpType } : {}),
        ...(packet.icmpCode !== undefined ? { icmpCode: packet.icmpCode } : {}),
      });
      visited = d.steps.map((s) => ({
        ...toRule(policyRef(s.policy)),
        policy: s.policy.id,
        result: s.result === true ? "match" : s.result === false ? "no match" : "unknown",
        why: s.why,
      }));
      notes.push(...d.notes);
    } catch (e) {
      if (!(e instanceof LocalInQueryError)) throw e;
      notes.push(e.message);
    }
  }
  return {
    kind: "packet",
    verdict: part.verdict,
    rule: part.rule ? toRule(part.rule) : null,
    visited,
    explanation: part.explanation,
    ...(part.defaultName ? { defaultName: part.defaultName } : {}),
    ...(part.unknown ? { unknown: unknownOf(part) } : {}),
    notes,
    packet: {
      vdom: ev.vdom.name,
      src: srcAddr,
      dst: dstAddr ?? "?",
      proto,
      ...(packet.sport !== undefined ? { sport: packet.sport } : {}),
      ...(packet.dport !== undefined ? { dport: packet.dport } : {}),
      iif: packet.iif,
      state,
      ipsec,
    },
  };
}

function tunnelFor(ev: ReturnType<typeof fortiosEvaluator>, iif: string): string | undefined {
  if (ev.vdom.phase1.has(iif)) return iif; // the tunnel interface itself
  return [...ev.vdom.phase1.values()].find((p) => p.interface === iif)?.name;
}

function unknownOf(p: FortiosPart): { reason: string; rule?: TraceRule } {
  const u = p.unknown!;
  return u.rule ? { reason: u.reason, rule: toRule(u.rule) } : { reason: u.reason };
}

// ---------------------------------------------------------------------------------------------
// Text

const endpoint = (addr: string, port: number | undefined): string =>
  port === undefined ? addr : addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;

/** The trace as text, in the order and words of `diagnose debug flow`. */
export function renderTraceText(t: FortiosTrace | FortiosSymbolicTrace): string {
  if (t.kind === "symbolic") return renderSymbolic(t);
  const p = t.packet;
  const lines: string[] = [
    `vd-${p.vdom} received a packet(proto=${p.proto}, ${endpoint(p.src, p.sport)}->${endpoint(p.dst, p.dport)}) from ${p.iif}${p.ipsec ? " (decapsulated from IPsec)" : ""}, state ${p.state}.`,
  ];
  for (const v of t.visited) {
    lines.push(`  local-in policy ${v.policy} (${v.file}:${v.line}): ${v.result}: ${v.why}`);
  }
  lines.push(t.explanation);
  if (t.unknown?.rule)
    lines.push(`  see ${t.unknown.rule.file}:${t.unknown.rule.line}: ${t.unknown.rule.text}`);
  for (const n of t.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}

const renderSymbolic = (t: FortiosSymbolicTrace): string => renderPartitionTable(t.query, t.parts);
