/**
 * FortiOS local-in policy lookup for one concrete packet addressed to the FortiGate itself.
 *
 * Rules, each from Fortinet's public documentation:
 * - Policies are evaluated top-down in table order (not ID order); the first match decides.
 * - A policy without `set action` denies: "action … (default = deny)" (CLI reference,
 *   https://docs.fortinet.com/document/fortigate/6.2.16/cli-reference/185227842).
 * - When no policy matches, the packet is accepted: "local-in-policies have an implicit permit at
 *   the end" (https://community.fortinet.com/t5/FortiGate/Technical-Note-How-to-Deny-a-Port-with-a-Local-In-Policy/ta-p/189921).
 * - `status disable` policies are skipped.
 * - ESP is not checked against local-in policies unless `config system settings` /
 *   `set detect-unknown-esp disable` (https://community.fortinet.com/t5/FortiGate/Technical-Tip-How-to-block-Unwanted-IKE-Negotiations-and-unknown/ta-p/390429;
 *   seed 001: "ESP traffic to Site 2 will not be dropped by default even if not explicitly allowed by local-in policy").
 * - A packet in the reply direction of a session the FortiGate itself originated matches that
 *   session and never reaches the local-in check (seed 001, Technical Tip 294094: "local-in
 *   policies only affect connections established from remote sources").
 */
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { namesHave, type Packet, servicesHave, type Tri, triAnd, triNot } from "./match.js";
import type { FortiosModel, LocalInPolicy, VdomModel } from "./model.js";
import type { Loc } from "./parse.js";
import { vipBeforeLocalIn } from "./vip.js";

export class LocalInQueryError extends Error {}

export interface LocalInQuery {
  /** Default: `root`, or the only VDOM. */
  vdom?: string;
  src: string;
  dst: string;
  /** IP protocol number or name (`tcp`, `udp`, `icmp`, `icmp6`, `esp`, `ah`, `sctp`, `gre`). */
  protocol: number | string;
  sport?: number;
  dport?: number;
  icmpType?: number;
  icmpCode?: number;
  /** Incoming interface. */
  iif: string;
  /** `reply`: the packet belongs to a session the FortiGate originated (its own IKE to the peer). */
  state?: "new" | "reply";
}

export interface PolicyStep {
  policy: LocalInPolicy;
  result: Tri;
  /** Why it matched, did not, or could not be decided (first failing condition). */
  why: string;
}

export type LocalInReason = "policy" | "implicit-accept" | "esp-not-checked" | "local-session" | "vip";

export interface LocalInDecision {
  verdict: "accept" | "deny" | "unknown";
  reason: LocalInReason;
  /** The deciding policy; null when no policy decided (implicit accept, ESP, session). */
  policy: LocalInPolicy | null;
  /** Where the decision comes from in the config (the policy's `edit` line), when a policy decided. */
  loc: Loc | null;
  /** One line, the way an engineer reads `diagnose debug flow`. */
  explanation: string;
  /** Every policy evaluated, in order, up to the deciding one. */
  steps: PolicyStep[];
  /** Things the local-in verdict alone does not say (allowaccess, missing phase1, …). */
  notes: string[];
}

const PROTOCOLS: Record<string, number> = {
  icmp: 1,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  icmp6: 58,
  ipv6icmp: 58,
  sctp: 132,
};

export function protocolNumber(p: number | string): number {
  if (typeof p === "number") {
    if (Number.isInteger(p) && p >= 0 && p <= 255) return p;
  } else {
    const n = PROTOCOLS[p.toLowerCase()] ?? (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN);
    if (n >= 0 && n <= 255) return n;
  }
  throw new LocalInQueryError(
    `unknown protocol '${p}' (use a number 0-255 or tcp, udp, icmp, esp, ah, sctp, gre)`,
  );
}

function host(v: string, what: string): { family: Family; addr: bigint } {
  try {
    const p = parsePrefix(v);
    if (p.len === (p.family === 4 ? 32 : 128)) return { family: p.family, addr: p.addr };
  } catch {
    // reported below
  }
  throw new LocalInQueryError(`--${what} '${v}' is not a single IP address`);
}

/**
 * The VDOM that handles a packet arriving on `iif` (`system interface` `set vdom`), when the
 * backup has several VDOMs and the interface says; undefined otherwise (pickVdom's default).
 */
export function vdomOfInterface(model: FortiosModel, iif: string | undefined): string | undefined {
  return model.multiVdom && iif !== undefined ? model.interfaces.get(iif)?.vdom : undefined;
}

/**
 * The phase1-interfaces whose tunnel a decapsulated packet on `iif` may have come through: `iif`
 * itself when it names one, else those bound to it (every one when no interface is given).
 */
export function decapTunnels(v: VdomModel, iif: string | undefined): string[] {
  if (iif !== undefined && v.phase1.has(iif)) return [iif];
  return [...v.phase1.values()].filter((p) => iif === undefined || p.interface === iif).map((p) => p.name);
}

export function pickVdom(model: FortiosModel, name?: string): VdomModel {
  if (name !== undefined) {
    const v = model.vdoms.get(name);
    if (!v)
      throw new LocalInQueryError(
        `no VDOM '${name}' in ${model.file} (have: ${[...model.vdoms.keys()].join(", ")})`,
      );
    return v;
  }
  const v = model.vdoms.get("root") ?? model.vdoms.values().next().value;
  if (!v) throw new LocalInQueryError(`${model.file} has no VDOM`);
  return v;
}

function where(loc: Loc): string {
  return `${loc.file}:${loc.line}`;
}

function intfHas(v: VdomModel, names: readonly string[], iif: string): { result: boolean; why: string } {
  for (const n of names) {
    if (n === "any" || n === iif) return { result: true, why: n };
    if (v.zones.get(n)?.interfaces.includes(iif)) return { result: true, why: `zone ${n}` };
  }
  return { result: false, why: names.join(" ") };
}

function describeAction(p: LocalInPolicy): string {
  return p.action.isDefault ? `${p.action.value}: no 'set action', FortiOS default` : p.action.value;
}

/** Evaluates one policy; `why` explains the first condition that failed or was undecidable. */
function evaluate(v: VdomModel, p: LocalInPolicy, pkt: Packet, src: bigint, iif: string): PolicyStep {
  const step = (result: Tri, why: string): PolicyStep => ({ policy: p, result, why });
  if (p.status.value === "disable") return step(false, "status disable: skipped");
  const itf = intfHas(v, p.intf, iif);
  if (!itf.result)
    return step(false, `intf ${p.intf.map((n) => `"${n}"`).join(" ") || "(none)"} does not include ${iif}`);
  let result: Tri = true;
  let why = "";
  const add = (r: Tri, reason: string): void => {
    if (r === true || result === false) return;
    if (r === false || result === true) why = reason;
    result = triAnd(result, r);
  };
  const s = namesHave(v, p.family, p.srcaddr, src);
  const sr = p.srcaddrNegate ? triNot(s.result) : s.result;
  add(
    p.internetServiceSrc ? "unknown" : sr,
    p.internetServiceSrc
      ? "internet-service-src enable: source matched against the Internet Service Database"
      : sr === false
        ? `source not in srcaddr${p.srcaddrNegate ? " (negated)" : ""} ${p.srcaddr.join(" ")}`
        : `source vs srcaddr '${s.why}' is not decidable statically`,
  );
  const d = namesHave(v, p.family, p.dstaddr, pkt.dst);
  const dr = p.dstaddrNegate ? triNot(d.result) : d.result;
  add(
    dr,
    dr === false
      ? `destination not in dstaddr${p.dstaddrNegate ? " (negated)" : ""} ${p.dstaddr.join(" ")}`
      : `destination vs dstaddr '${d.why}' is not decidable statically`,
  );
  const sv = servicesHave(v, p.service, pkt);
  const svr = p.serviceNegate ? triNot(sv.result) : sv.result;
  add(
    svr,
    svr === false
      ? `service ${p.service.join(" ")}${p.serviceNegate ? " (negated)" : ""} does not match`
      : `service '${sv.why}' is not decidable statically`,
  );
  if (p.schedule.value !== "always") add("unknown", `schedule '${p.schedule.value}' is not evaluated`);
  if (p.haMgmtIntfOnly) add("unknown", "ha-mgmt-intf-only enable: applies to HA management interfaces only");
  if (result === true) {
    why = `intf ${itf.why}, srcaddr ${s.why || "-"}, dstaddr ${d.why || "-"}, service ${sv.why || "-"}`;
  }
  return step(result, why);
}

function notesFor(v: VdomModel, model: FortiosModel, pkt: Packet, iif: string): string[] {
  const notes: string[] = [];
  const udp = pkt.protocol === 17;
  if (udp && (pkt.dport === v.ikePort.value || pkt.dport === v.ikeNattPort.value)) {
    const p1 = [...v.phase1.values()].filter((p) => p.interface === iif);
    if (p1.length === 0)
      notes.push(`no phase1-interface is bound to ${iif}: the IKE daemon has no gateway for this packet`);
  }
  const svcByPort: Record<number, string> = { 443: "https", 22: "ssh", 80: "http", 161: "snmp" };
  const want =
    pkt.protocol === 1 && pkt.icmpType === 8
      ? "ping"
      : pkt.dport !== undefined
        ? svcByPort[pkt.dport]
        : undefined;
  const iface = model.interfaces.get(iif);
  if (want && iface && !(pkt.family === 4 ? iface.allowaccess : iface.allowaccess6).includes(want)) {
    notes.push(
      `interface ${iif} does not list '${want}' in allowaccess: the FortiGate does not offer it there`,
    );
  }
  return notes;
}

/** Looks a packet up in the local-in policies of a VDOM. Throws LocalInQueryError on bad input only. */
export function lookupLocalIn(model: FortiosModel, q: LocalInQuery): LocalInDecision {
  const v = pickVdom(model, q.vdom);
  const src = host(q.src, "src");
  const dst = host(q.dst, "dst");
  if (src.family !== dst.family)
    throw new LocalInQueryError("--src and --dst are of different address families");
  const pkt: Packet = { family: src.family, protocol: protocolNumber(q.protocol), dst: dst.addr };
  if (q.sport !== undefined) pkt.sport = q.sport;
  if (q.dport !== undefined) pkt.dport = q.dport;
  if (q.icmpType !== undefined) pkt.icmpType = q.icmpType;
  if (q.icmpCode !== undefined) pkt.icmpCode = q.icmpCode;
  const notes = notesFor(v, model, pkt, q.iif);
  const base = { steps: [] as PolicyStep[], notes, policy: null, loc: null };

  if (q.state === "reply") {
    return {
      ...base,
      verdict: "accept",
      reason: "local-session",
      explanation:
        "accepted: reply direction of a session the FortiGate originated; local-in policies are not consulted until that session expires",
    };
  }
  if (pkt.protocol === 50 && v.detectUnknownEsp.value) {
    return {
      ...base,
      verdict: "accept",
      reason: "esp-not-checked",
      explanation: `accepted: ESP is not checked against local-in policies while detect-unknown-esp is enable${v.detectUnknownEsp.isDefault ? " (FortiOS default)" : ""}`,
    };
  }

  // A VIP that maps the packet takes it before local-in (KB 261055; docs/fortios.md, VIPs).
  if (src.family === 4 && pkt.dport !== undefined) {
    const m = vipBeforeLocalIn(model, v, {
      ...(q.iif !== undefined ? { iif: q.iif } : {}),
      src: AddrSet.fromRange(4, src.addr, src.addr),
      dst: dst.addr,
      proto: pkt.protocol,
      port: pkt.dport,
    });
    if (m) {
      const how =
        "unknown" in m
          ? `may forward it, but ${m.unknown} (${where(m.loc)})`
          : `forwards it to ${formatAddress(4, m.addr)}:${m.port}`;
      return {
        ...base,
        verdict: "unknown" in m ? "unknown" : "deny",
        reason: "vip",
        loc: m.vip.loc,
        explanation: `not for the FortiGate: VIP '${m.vip.name}' (${where(m.vip.loc)}) ${how} before local-in policies are looked at`,
      };
    }
  }
  const policies = src.family === 4 ? v.localIn : v.localIn6;
  const steps: PolicyStep[] = [];
  const undecided: PolicyStep[] = [];
  for (const p of policies) {
    const step = evaluate(v, p, pkt, src.addr, q.iif);
    steps.push(step);
    if (step.result === "unknown") {
      undecided.push(step);
      continue;
    }
    if (step.result === false) continue;
    const action = p.action.value;
    const verb = action === "accept" ? "accepted" : "denied";
    const conflict = undecided.filter((u) => u.policy.action.value !== action);
    const at = `${where(p.loc)}`;
    if (conflict.length > 0) {
      return {
        verdict: "unknown",
        reason: "policy",
        policy: p,
        loc: p.loc,
        steps,
        notes,
        explanation: `unknown: ${verb} by local-in policy ${p.id} (${at}) unless policy ${conflict.map((c) => c.policy.id).join(", ")} matches first (${conflict[0]!.why})`,
      };
    }
    return {
      verdict: action,
      reason: "policy",
      policy: p,
      loc: p.loc,
      steps,
      notes,
      explanation: `${verb} by local-in policy ${p.id}${p.comments ? ` "${p.comments}"` : ""} (action ${describeAction(p)}), ${at}`,
    };
  }
  const denyUndecided = undecided.filter((u) => u.policy.action.value === "deny");
  if (denyUndecided.length > 0) {
    return {
      verdict: "unknown",
      reason: "implicit-accept",
      policy: null,
      loc: null,
      steps,
      notes,
      explanation: `unknown: accepted by the implicit accept unless local-in policy ${denyUndecided.map((u) => u.policy.id).join(", ")} matches (${denyUndecided[0]!.why})`,
    };
  }
  return {
    verdict: "accept",
    reason: "implicit-accept",
    policy: null,
    loc: null,
    steps,
    notes,
    explanation:
      policies.length === 0
        ? "accepted: no local-in policy is configured (local-in policies end with an implicit accept)"
        : "accepted: no local-in policy matched (local-in policies end with an implicit accept)",
  };
}
