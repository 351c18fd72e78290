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
 *
 * `ingress` says which interface the policies were matched against. A packet decapsulated from
 * IPsec enters local-in on the tunnel interface of its phase1-interface, so with `ipsec` the walk
 * is on the tunnel of the one phase1 bound to `iif` (or `iif` itself when it names a phase1). When
 * several are bound there, which one delivered the packet is not known: the verdict is the
 * evaluator's combination of all of them (unknown where they differ), `visited` stays empty and
 * `ingress.walks` holds each tunnel's walk; with none, there is no walk to show.
 */
import type { RuleRef } from "../../analysis/findings.js";
import type { FlowQuery, Verdict } from "../../analysis/query.js";
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { renderPartitionTable } from "../../report/partition-table.js";
import { DEFAULT_NAMES, type FortiosPart, fortiosEvaluator, policyRef } from "./evaluator.js";
import {
  decapTunnels,
  LocalInQueryError,
  lookupLocalIn,
  protocolNumber,
  vdomOfInterface,
} from "./localin.js";
import type { FortiosModel, VdomModel } from "./model.js";

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

/** One tunnel's local-in walk, when the tunnel a decapsulated packet came through is not known. */
export interface TunnelWalk {
  interface: string;
  verdict: Verdict;
  explanation: string;
  visited: TraceVisit[];
  notes: string[];
}

/**
 * Which interface the local-in policies were matched against. FortiOS hands a decapsulated packet
 * to local-in as entering on the tunnel interface of its phase1-interface (named like the
 * phase1), not on the physical interface (`iif`) the ESP arrived on.
 */
export interface TraceIngress {
  /** `iif` as given. */
  given: string;
  ipsec: boolean;
  /** The interface the policies were evaluated on; null when it cannot be determined. */
  evaluatedOn: string | null;
  /** The phase1-interface whose tunnel that is (ipsec only). */
  phase1: string | null;
  /** ipsec: the phase1-interfaces the packet may have come through (bound to `iif`, or `iif` itself). */
  candidates: string[];
  /** In words, as the text output says it. */
  reason: string;
  /** Several candidates (single source only): each tunnel's walk; `visited` is then empty. */
  walks?: TunnelWalk[];
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
  ingress: TraceIngress;
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
  ingress: TraceIngress;
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
  // "no phase1 in VDOM x": the symbolic form has said "VDOM of the trace" since df824ef.
  const ingress = ingressOf(
    ev.vdom,
    packet.iif,
    ipsec,
    src.single ? `VDOM ${ev.vdom.name}` : "VDOM of the trace",
  );
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
      ingress,
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
  if (dstAddr !== undefined && walked && ingress.evaluatedOn !== null) {
    try {
      const d = lookupLocalIn(model, {
        ...(vdom !== undefined ? { vdom } : {}),
        src: srcAddr,
        dst: dstAddr,
        protocol: proto,
        iif: ingress.evaluatedOn,
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
  } else if (dstAddr !== undefined && walked && ingress.candidates.length > 1) {
    // Several tunnels on iif: no walk is the packet's; each tunnel's is walked as if the packet
    // had come through it (the verdict above already combines them, unknown where they differ).
    const walks = ingress.candidates.map((tunnel) =>
      walkOn(model, { ...packet, iif: tunnel, dst: dstAddr, vdom: ev.vdom.name }),
    );
    if (walks.some((w) => w.visited.length > 0)) {
      ingress.reason += ", and each one's local-in walk follows";
      ingress.walks = walks;
    } else {
      // Nothing to show per tunnel (no policy, ESP, a VIP): their notes, each said once.
      for (const n of walks.flatMap((w) => w.notes)) if (!notes.includes(n)) notes.push(n);
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
    ingress,
  };
}

/** The trace of a packet that came through one given tunnel interface, as a walk. */
function walkOn(model: FortiosModel, packet: FortiosTracePacket): TunnelWalk {
  let w: FortiosTrace | FortiosSymbolicTrace;
  try {
    w = traceFortios(model, packet);
  } catch (e) {
    if (!(e instanceof FortiosTraceError)) throw e;
    return { interface: packet.iif, verdict: "unknown", explanation: e.message, visited: [], notes: [] };
  }
  // A single destination and source: always a packet trace.
  if (w.kind !== "packet") throw new Error("unreachable: a tunnel's walk is a packet trace");
  return {
    interface: packet.iif,
    verdict: w.verdict,
    explanation: w.explanation,
    visited: w.visited,
    notes: w.notes,
  };
}

/**
 * Which interface the policies are matched against: `iif` itself, or for a decapsulated packet the
 * tunnel of the phase1-interface bound to it (`iif` when it names one). No guess: with no or several
 * such phase1s it is null (the caller adds the walks).
 */
function ingressOf(v: VdomModel, given: string, ipsec: boolean, vdomName: string): TraceIngress {
  if (!ipsec)
    return {
      given,
      ipsec: false,
      evaluatedOn: given,
      phase1: null,
      candidates: [],
      reason: "as given (--iif)",
    };
  const own = v.phase1.get(given);
  if (own) {
    return {
      given,
      ipsec: true,
      evaluatedOn: given,
      phase1: given,
      candidates: [given],
      reason: `arrived via IPsec: evaluated as entering on tunnel interface ${given} (phase1 ${given}${own.interface ? `, bound to ${own.interface}` : ""}), as given`,
    };
  }
  // The same tunnels the evaluator combines.
  const candidates = decapTunnels(v, given);
  if (candidates.length === 1) {
    const tunnel = candidates[0]!;
    return {
      given,
      ipsec: true,
      evaluatedOn: tunnel,
      phase1: tunnel,
      candidates,
      reason: `arrived via IPsec: evaluated as entering on tunnel interface ${tunnel} (phase1 ${tunnel}), not ${given}`,
    };
  }
  return {
    given,
    ipsec: true,
    evaluatedOn: null,
    phase1: null,
    candidates,
    reason:
      candidates.length === 0
        ? `arrived via IPsec: no tunnel interface to evaluate it on — no phase1-interface in ${vdomName} is bound to ${given}`
        : `arrived via IPsec: the tunnel interface cannot be determined — phase1-interfaces ${candidates.join(", ")} are all bound to ${given}; the verdict is for each of them (unknown where they differ)`,
  };
}

function unknownOf(p: FortiosPart): { reason: string; rule?: TraceRule } {
  const u = p.unknown!;
  return u.rule ? { reason: u.reason, rule: toRule(u.rule) } : { reason: u.reason };
}

// ---------------------------------------------------------------------------------------------
// Text

const endpoint = (addr: string, port: number | undefined): string =>
  port === undefined ? addr : addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;

/**
 * The trace as text, in the order and words of `diagnose debug flow`; for a decapsulated packet
 * the ingress follows the first line (and each tunnel's walk, when there are several).
 */
export function renderTraceText(t: FortiosTrace | FortiosSymbolicTrace): string {
  if (t.kind === "symbolic") {
    const [head, ...rest] = renderPartitionTable(t.query, t.parts).split("\n");
    return [head, ...ingressLines(t.ingress), ...rest].join("\n");
  }
  const p = t.packet;
  const lines: string[] = [
    `vd-${p.vdom} received a packet(proto=${p.proto}, ${endpoint(p.src, p.sport)}->${endpoint(p.dst, p.dport)}) from ${p.iif}${p.ipsec ? " (decapsulated from IPsec)" : ""}, state ${p.state}.`,
    ...ingressLines(t.ingress),
  ];
  for (const v of t.visited) lines.push(visitLine("  ", v));
  lines.push(t.explanation);
  if (t.unknown?.rule)
    lines.push(`  see ${t.unknown.rule.file}:${t.unknown.rule.line}: ${t.unknown.rule.text}`);
  for (const n of t.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}

const visitLine = (indent: string, v: TraceVisit): string =>
  `${indent}local-in policy ${v.policy} (${v.file}:${v.line}): ${v.result}: ${v.why}`;

/** Nothing without IPsec (the interface is --iif as given); else the reason and the walks. */
function ingressLines(ingress: TraceIngress): string[] {
  if (!ingress.ipsec) return [];
  const out = [`${ingress.reason}.`];
  for (const w of ingress.walks ?? []) {
    out.push(`  on tunnel interface ${w.interface}:`);
    for (const v of w.visited) out.push(visitLine("    ", v));
    out.push(`    ${w.explanation}`);
    for (const n of w.notes) out.push(`    note: ${n}`);
  }
  return out;
}
