/**
 * Symbolic FortiOS local-in evaluation for the audit: a FlowQuery ("UDP 500 from these sources,
 * as new") is answered with the partition of the source set by verdict, each part naming the
 * local-in policy that decided it (or the default that did), in one pass over the policy table
 * with address sets instead of one lookup per address.
 *
 * For every single source address the answer equals `lookupLocalIn` (localin.ts, whose header
 * cites each rule): policies top-down by table position, first match, `status disable` skipped,
 * action default deny, implicit accept when nothing matches, ESP not checked while
 * `detect-unknown-esp` is enabled, and the same three-valued logic — a policy that may or may not
 * match (FQDN/geography/dynamic address, undefined object, schedule, ISDB source) makes the
 * verdict unknown only where its action would change the outcome. `test/fortios-evaluator.test.ts`
 * checks the equality with fast-check over random policy tables.
 *
 * What the concrete lookup does not model and this evaluator adds, each documented in
 * docs/fortios.md:
 * - `state: "established"`: the packet is in the reply direction of a session the FortiGate
 *   originated, which bypasses local-in (seed 001, Technical Tip 294094). For IKE (UDP 500/4500)
 *   such a session exists only towards a peer the FortiGate itself sends IKE to — the `remote-gw`
 *   of a static phase1 on that interface; from any other source the packet is new.
 * - `ipsec: true`: a decapsulated packet arrives on the tunnel interface (the phase1 name), not on
 *   the physical interface.
 * - `dst` omitted: "any of the FortiGate's own addresses" is the incoming interface's addresses;
 *   when the verdict depends on which one, the part is unknown and says so.
 * - `stateTimeout`: how long the FortiGate's own UDP session lives without packets.
 */
import type { RuleRef } from "../../analysis/findings.js";
import { listOutcomes, mergeParts, overlayPartitions, refineAtoms } from "../../analysis/partition.js";
import type { FilterEvaluator, FlowQuery, StateTimeout, VerdictPart } from "../../analysis/query.js";
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { decapTunnels, pickVdom } from "./localin.js";
import { namesHave, type Packet, servicesHave, type Tri } from "./match.js";
import type {
  AddrMatch,
  FortiosModel,
  Interface,
  LocalInPolicy,
  Phase1,
  Policy,
  Service,
  VdomModel,
} from "./model.js";
import type { Loc } from "./parse.js";
import { vipBeforeLocalIn } from "./vip.js";

// ---------------------------------------------------------------------------------------------
// Names shown for the defaults (part of the audit's wording; tests pin them).

export const DEFAULT_NAMES = {
  implicitAccept: "implicit accept (no local-in policy matched)",
  espNotChecked: "ESP not checked against local-in (detect-unknown-esp enabled)",
  session: "session originated by this FortiGate (reply direction)",
} as const;

/** The UDP ports of the VDOM's IKE daemon: `system settings ike-port` (500) and `ike-natt-port` (4500). */
export const ikePortsOf = (v: VdomModel): readonly number[] => [v.ikePort.value, v.ikeNattPort.value];

// ---------------------------------------------------------------------------------------------
// Provenance

export function refOf(loc: Loc, text: string = loc.text): RuleRef {
  return { file: loc.file, line: loc.line, col: loc.col, text };
}

/** `edit 2 # implicit deny`: the policy's edit line and its comment. */
export function policyRef(p: LocalInPolicy): RuleRef {
  return refOf(p.loc, `edit ${p.id}${p.comments ? ` # ${p.comments}` : ""}`);
}

const where = (r: RuleRef): string => `${r.file}:${r.line}`;

const policyName = (p: LocalInPolicy): string => `local-in-policy${p.family === 6 ? "6" : ""} ${p.id}`;

// ---------------------------------------------------------------------------------------------
// Three-valued address sets

/** Why a region of addresses cannot be decided, and the config line responsible. */
export interface Cause {
  reason: string;
  rule?: RuleRef;
}

interface Piece {
  set: AddrSet;
  cause: Cause;
}

/**
 * A three-valued set: `yes` certainly matches, `maybe` cannot be decided statically (with the
 * causes covering it, first piece first), everything else certainly does not match.
 */
export interface TriSet {
  yes: AddrSet;
  maybe: AddrSet;
  causes: Piece[];
}

const tri = (yes: AddrSet, maybe: AddrSet = AddrSet.empty(yes.family), causes: Piece[] = []): TriSet => ({
  yes,
  maybe,
  causes,
});

function restrict(causes: readonly Piece[], to: AddrSet): Piece[] {
  if (to.isEmpty() || causes.length === 0) return [];
  const out: Piece[] = [];
  for (const c of causes) {
    const set = c.set.intersect(to);
    if (!set.isEmpty()) out.push({ set, cause: c.cause });
  }
  return out;
}

/** Kleene OR, pointwise (the symbolic `triOr`). */
export function triSetOr(a: TriSet, b: TriSet): TriSet {
  const yes = a.yes.union(b.yes);
  if (a.maybe.isEmpty() && b.maybe.isEmpty()) return tri(yes);
  const maybe = a.maybe.union(b.maybe).difference(yes);
  return tri(yes, maybe, restrict([...a.causes, ...b.causes], maybe));
}

/** Kleene AND, pointwise (the symbolic `triAnd`). */
export function triSetAnd(a: TriSet, b: TriSet): TriSet {
  const yes = a.yes.intersect(b.yes);
  if (a.maybe.isEmpty() && b.maybe.isEmpty()) return tri(yes);
  const possible = a.yes.union(a.maybe).intersect(b.yes.union(b.maybe));
  const maybe = possible.difference(yes);
  return tri(yes, maybe, restrict([...a.causes, ...b.causes], maybe));
}

/** Kleene NOT, pointwise (the symbolic `triNot`). */
export function triSetNot(a: TriSet): TriSet {
  return tri(a.yes.union(a.maybe).complement(), a.maybe, a.causes);
}

/** Wildcard masks selecting more intervals than this are treated as undecidable (documented). */
const WILDCARD_LIMIT = 1 << 20;

function matchTriSet(m: AddrMatch, family: Family, cause: () => Cause): TriSet {
  const none = AddrSet.empty(family);
  switch (m.kind) {
    case "prefix":
      return tri(m.prefix.family === family ? AddrSet.fromPrefix(m.prefix) : none);
    case "range":
      return tri(m.family === family ? AddrSet.fromRange(family, m.first, m.last) : none);
    case "wildcard": {
      if (family !== 4) return tri(none);
      const s = AddrSet.fromMasked(4, m.addr, m.mask, WILDCARD_LIMIT);
      if (s) return tri(s);
      const all = AddrSet.all(family);
      const c = cause();
      return tri(none, all, [
        { set: all, cause: { ...c, reason: `${c.reason}: wildcard mask too fragmented to evaluate` } },
      ]);
    }
    case "unknown": {
      const all = AddrSet.all(family);
      return tri(none, all, [{ set: all, cause: cause() }]);
    }
  }
}

/**
 * The TriSet of each address/group name of a VDOM, mirroring `expandAddress` + `addrExprHas`
 * (match.ts): nested groups, `exclude`, undefined names and reference cycles are unknown. Results
 * are cached per name when the expansion met no cycle — such a result does not depend on the path
 * it was reached by (a name on no cycle cannot have an ancestor in its own expansion).
 */
class AddressSets {
  private readonly cache = new Map<string, TriSet>();
  constructor(
    private readonly v: VdomModel,
    private readonly family: Family,
  ) {}

  of(name: string): TriSet {
    return this.expand(name, new Set()).set;
  }

  /** OR over names, as `namesHave`. */
  ofNames(names: readonly string[]): TriSet {
    let out = tri(AddrSet.empty(this.family));
    for (const n of names) out = triSetOr(out, this.of(n));
    return out;
  }

  private expand(name: string, path: Set<string>): { set: TriSet; cyclic: boolean } {
    const f = this.family;
    const a = (f === 4 ? this.v.addresses : this.v.addresses6).get(name);
    if (a) {
      const hit = this.cache.get(name);
      if (hit) return { set: hit, cyclic: false };
      const s = matchTriSet(a.match, f, () => ({
        reason: `firewall address${f === 6 ? "6" : ""} "${name}": ${a.match.kind === "unknown" ? a.match.reason : "undecidable"}`,
        ...(a.builtin ? {} : { rule: refOf(a.loc) }),
      }));
      this.cache.set(name, s);
      return { set: s, cyclic: false };
    }
    const g = (f === 4 ? this.v.addrgrps : this.v.addrgrps6).get(name);
    const all = AddrSet.all(f);
    const none = AddrSet.empty(f);
    if (!g) {
      return {
        set: tri(none, all, [
          { set: all, cause: { reason: `address "${name}" is not defined in the config` } },
        ]),
        cyclic: false,
      };
    }
    if (path.has(name)) {
      return {
        set: tri(none, all, [
          {
            set: all,
            cause: {
              reason: `address group "${name}" contains itself (reference cycle)`,
              rule: refOf(g.loc),
            },
          },
        ]),
        cyclic: true,
      };
    }
    const hit = this.cache.get(name);
    if (hit) return { set: hit, cyclic: false };
    path.add(name);
    let cyclic = false;
    let inc = tri(none);
    for (const m of g.members) {
      const r = this.expand(m, path);
      cyclic ||= r.cyclic;
      inc = triSetOr(inc, r.set);
    }
    let exc = tri(none);
    if (g.exclude) {
      for (const m of g.excludeMembers) {
        const r = this.expand(m, path);
        cyclic ||= r.cyclic;
        exc = triSetOr(exc, r.set);
      }
    }
    path.delete(name);
    const set = g.exclude ? triSetAnd(inc, triSetNot(exc)) : inc;
    if (!cyclic) this.cache.set(name, set);
    return { set, cyclic };
  }
}

// ---------------------------------------------------------------------------------------------
// One policy against one (interface, destination, packet)

interface ConstPart {
  result: Tri;
  cause?: Cause;
}

function intfHas(v: VdomModel, names: readonly string[], iif: string): boolean {
  for (const n of names) {
    if (n === "any" || n === iif) return true;
    if (v.zones.get(n)?.interfaces.includes(iif)) return true;
  }
  return false;
}

/** The object a name resolves to, for pointing at it. */
function objectRef(v: VdomModel, family: Family, name: string): RuleRef | undefined {
  const a = (family === 4 ? v.addresses : v.addresses6).get(name);
  if (a && !a.builtin) return refOf(a.loc);
  const g = (family === 4 ? v.addrgrps : v.addrgrps6).get(name);
  if (g) return refOf(g.loc);
  return undefined;
}

function serviceRef(v: VdomModel, name: string): RuleRef | undefined {
  const s = v.services.get(name) ?? v.serviceGroups.get(name);
  return s && !s.builtin ? refOf(s.loc) : undefined;
}

/**
 * Everything about a policy except its source address, as `evaluate` in localin.ts: status,
 * interface, destination, service, schedule, ha-mgmt-intf-only. Same order, same first cause.
 */
function constPart(v: VdomModel, p: LocalInPolicy, iif: string, pkt: Packet): ConstPart {
  if (p.status.value === "disable") return { result: false };
  if (!intfHas(v, p.intf, iif)) return { result: false };
  const field = (k: string): RuleRef => refOf(p.fields[k] ?? p.loc);
  let result: Tri = true;
  let cause: Cause | undefined;
  const add = (r: Tri, c: () => Cause): void => {
    if (r === true || result === false) return;
    if (r === false) {
      result = false;
      cause = undefined;
      return;
    }
    if (result === true) cause = c();
    result = "unknown";
  };
  const d = namesHave(v, p.family, p.dstaddr, pkt.dst);
  add(p.dstaddrNegate && d.result !== "unknown" ? !d.result : d.result, () => ({
    reason: `${policyName(p)}: destination vs dstaddr "${d.why}" is not decidable statically`,
    rule: objectRef(v, p.family, d.why) ?? field("dstaddr"),
  }));
  const s = servicesHave(v, p.service, pkt);
  add(p.serviceNegate && s.result !== "unknown" ? !s.result : s.result, () => ({
    reason: `${policyName(p)}: service "${s.why}" is not decidable statically${s.why && !v.services.has(s.why) && !v.serviceGroups.has(s.why) ? " (not defined in the config)" : ""}`,
    rule: serviceRef(v, s.why) ?? field("service"),
  }));
  if (p.schedule.value !== "always")
    add("unknown", () => ({
      reason: `${policyName(p)}: schedule "${p.schedule.value}" is not evaluated (time-dependent)`,
      rule: field("schedule"),
    }));
  if (p.haMgmtIntfOnly)
    add("unknown", () => ({
      reason: `${policyName(p)}: ha-mgmt-intf-only enable applies to HA management interfaces only`,
      rule: field("ha-mgmt-intf-only"),
    }));
  return cause ? { result, cause } : { result };
}

// ---------------------------------------------------------------------------------------------
// Outcomes and partitions

/** A part of the partition with the policy objects kept (for the trace renderer). */
export interface FortiosPart extends VerdictPart {
  /** The deciding policy, when one decided. */
  policy?: LocalInPolicy;
  /** One line, the way `diagnose debug flow` would put it. */
  explanation: string;
}

/** What a VerdictPart shows: verdict, rule, default, unknown reason. */
const visibleKey = (p: VerdictPart): string =>
  `${p.verdict}|${p.rule ? where(p.rule) : ""}|${p.defaultName ?? ""}|${p.unknown?.reason ?? ""}`;
/** The same outcome for the same reason (a FortiosPart also keeps its policy and explanation). */
const keyOf = (p: FortiosPart): string => `${visibleKey(p)}|${p.policy?.position ?? ""}|${p.explanation}`;

interface Pending {
  key: string;
  set: AddrSet;
  undecided: Array<{ policy: LocalInPolicy; cause: Cause }>;
}

const verdictOf = (a: "accept" | "deny"): "accept" | "drop" => (a === "accept" ? "accept" : "drop");

// ---------------------------------------------------------------------------------------------
// The evaluator

export interface FortiosEvaluatorOptions {
  /** Default: `root`, or the only VDOM. */
  vdom?: string;
}

export interface FortiosEvaluator extends FilterEvaluator {
  platform: "fortios";
  vdom: VdomModel;
  /** `evaluate` with the deciding policy objects and one-line explanations kept. */
  partition(q: FlowQuery): FortiosPart[];
  /** The addresses "any of the FortiGate's own addresses" stands for on an interface, or null. */
  ownAddresses(family: Family, iif?: string): AddrSet | null;
  stateTimeout(q: FlowQuery): StateTimeout | undefined;
}

export class FortiosQueryError extends Error {}

export function fortiosEvaluator(model: FortiosModel, opts: FortiosEvaluatorOptions = {}): FortiosEvaluator {
  const v = pickVdom(model, opts.vdom);
  const IKE_PORTS = ikePortsOf(v);
  const sets = { 4: new AddressSets(v, 4), 6: new AddressSets(v, 6) } as const;
  const sourceCache = new Map<LocalInPolicy, TriSet>();
  const causeIds = new WeakMap<Cause, number>();
  let nextCause = 0;
  const causeId = (c: Cause): number => {
    let id = causeIds.get(c);
    if (id === undefined) {
      id = nextCause++;
      causeIds.set(c, id);
    }
    return id;
  };

  /** The policy's source side: srcaddr (negated), or the ISDB when internet-service-src is on. */
  const sourceOf = (p: LocalInPolicy): TriSet => {
    const hit = sourceCache.get(p);
    if (hit) return hit;
    let s: TriSet;
    if (p.internetServiceSrc) {
      const all = AddrSet.all(p.family);
      s = tri(AddrSet.empty(p.family), all, [
        {
          set: all,
          cause: {
            reason: `${policyName(p)}: internet-service-src enable matches the source against the Internet Service Database`,
            rule: refOf(p.fields["internet-service-src"] ?? p.loc),
          },
        },
      ]);
    } else {
      const raw = sets[p.family].ofNames(p.srcaddr);
      const named = raw.causes.length
        ? {
            ...raw,
            causes: raw.causes.map((c) => ({
              set: c.set,
              cause: {
                reason: `${policyName(p)}: srcaddr${p.srcaddrNegate ? " (negated)" : ""} — ${c.cause.reason}`,
                rule: c.cause.rule ?? refOf(p.fields.srcaddr ?? p.loc),
              },
            })),
          }
        : raw;
      s = p.srcaddrNegate ? triSetNot(named) : named;
    }
    sourceCache.set(p, s);
    return s;
  };

  const ownAddresses = (family: Family, iif?: string): AddrSet | null => {
    const of = (i: Interface): bigint[] =>
      family === 4
        ? [
            ...(i.ip ? [i.ip.address] : []),
            ...i.secondary.filter((s) => s.prefix.family === 4).map((s) => s.address),
          ]
        : i.ip6
          ? [i.ip6.address]
          : [];
    let addrs: bigint[];
    if (iif !== undefined) {
      const i = model.interfaces.get(iif);
      addrs = i ? of(i) : [];
    } else {
      addrs = [];
      for (const i of model.interfaces.values()) if (inVdom(i)) addrs.push(...of(i));
    }
    return addrs.length === 0
      ? null
      : AddrSet.fromRanges(
          family,
          addrs.map((a) => [a, a] as const),
        );
  };

  const inVdom = (i: Interface): boolean => (i.vdom ?? "root") === v.name || !model.multiVdom;

  /** Phase1 gateways bound to an interface (or to any, when none is given). */
  const phase1On = (iif?: string): Phase1[] =>
    [...v.phase1.values()].filter((p) => iif === undefined || p.interface === iif);

  /** The first-match sweep for one incoming interface and one destination address. */
  const sweep = (q: FlowQuery, sources: AddrSet, iif: string, dst: bigint): FortiosPart[] => {
    const family = q.family;
    const pkt: Packet = { family, protocol: q.proto, dst };
    if (q.sport !== undefined) pkt.sport = q.sport;
    if (q.dport !== undefined) pkt.dport = q.dport;
    if (q.proto === 50 && v.detectUnknownEsp.value) {
      return [
        {
          sources,
          verdict: "accept",
          rule: null,
          defaultName: DEFAULT_NAMES.espNotChecked,
          explanation: `accepted: ESP is not checked against local-in policies while detect-unknown-esp is enable${v.detectUnknownEsp.isDefault ? " (FortiOS default)" : ` (${v.detectUnknownEsp.loc ? where(refOf(v.detectUnknownEsp.loc)) : "config"})`}`,
        },
      ];
    }
    // A VIP on this address and port takes the packet before local-in is looked at (KB 261055).
    if (family === 4 && q.dport !== undefined && !q.ipsec) {
      const m = vipBeforeLocalIn(model, v, { iif, dst, proto: q.proto, port: q.dport, src: sources });
      if (m && "unknown" in m) {
        const reason = `VIP '${m.vip.name}' (${where(refOf(m.vip.loc))}) may take it before local-in, but ${m.unknown}`;
        return [
          {
            sources,
            verdict: "unknown",
            rule: null,
            unknown: { reason, rule: refOf(m.loc) },
            explanation: `unknown: ${reason}`,
          },
        ];
      }
      if (m) {
        const ref = refOf(m.vip.loc);
        return [
          {
            sources,
            verdict: "drop",
            rule: ref,
            forwardedTo: `${formatAddress(4, m.addr)}:${m.port}`,
            explanation: `not for the FortiGate: VIP '${m.vip.name}' (${where(ref)}) forwards it to ${formatAddress(4, m.addr)}:${m.port} before local-in policies are looked at`,
          },
        ];
      }
    }
    const policies = family === 4 ? v.localIn : v.localIn6;
    const out: FortiosPart[] = [];
    let groups: Pending[] = [{ key: "", set: sources, undecided: [] }];
    for (const p of policies) {
      if (groups.length === 0) break;
      const c = constPart(v, p, iif, pkt);
      if (c.result === false) continue;
      const s = sourceOf(p);
      let yes: AddrSet;
      let maybe: AddrSet;
      let causes: Piece[];
      if (c.result === true) {
        yes = s.yes;
        maybe = s.maybe;
        causes = s.causes;
      } else {
        yes = AddrSet.empty(family);
        maybe = s.yes.union(s.maybe);
        causes = [...s.causes, { set: s.yes, cause: c.cause! }];
      }
      if (yes.isEmpty() && maybe.isEmpty()) continue;
      const touched = yes.union(maybe);
      const next = new Map<string, Pending>();
      const keep = (key: string, set: AddrSet, undecided: Pending["undecided"]): void => {
        if (set.isEmpty()) return;
        const prev = next.get(key);
        if (prev) prev.set = prev.set.union(set);
        else next.set(key, { key, set, undecided });
      };
      for (const g of groups) {
        if (!g.set.overlaps(touched)) {
          keep(g.key, g.set, g.undecided);
          continue;
        }
        const t = g.set.intersect(yes);
        if (!t.isEmpty()) out.push(decide(p, t, g.undecided));
        let u = g.set.intersect(maybe);
        for (const piece of causes) {
          if (u.isEmpty()) break;
          const sub = u.intersect(piece.set);
          if (sub.isEmpty()) continue;
          u = u.difference(sub);
          keep(`${g.key}|${p.position}:${causeId(piece.cause)}`, sub, [
            ...g.undecided,
            { policy: p, cause: piece.cause },
          ]);
        }
        keep(g.key, g.set.difference(touched), g.undecided);
      }
      groups = [...next.values()];
    }
    for (const g of groups) out.push(fallThrough(g, iif, pkt, policies.length));
    return mergeParts(out, keyOf);
  };

  const decide = (p: LocalInPolicy, sources: AddrSet, undecided: Pending["undecided"]): FortiosPart => {
    const action = p.action.value;
    const verb = action === "accept" ? "accepted" : "denied";
    const ref = policyRef(p);
    const conflict = undecided.filter((u) => u.policy.action.value !== action);
    if (conflict.length > 0) {
      const first = conflict[0]!;
      const reason = `${verb} by local-in policy ${p.id} (${where(ref)}) unless local-in policy ${conflict.map((c) => c.policy.id).join(", ")} matches first (${first.cause.reason})`;
      return {
        sources,
        verdict: "unknown",
        rule: null,
        unknown: { reason, rule: first.cause.rule ?? policyRef(first.policy) },
        policy: p,
        explanation: `unknown: ${reason}`,
      };
    }
    return {
      sources,
      verdict: verdictOf(action),
      rule: ref,
      policy: p,
      explanation: `${verb} by local-in policy ${p.id}${p.comments ? ` ("${p.comments}")` : ""}, ${where(ref)}${p.action.isDefault ? ` — action ${action} by default (no 'set action')` : ""}`,
    };
  };

  const implicitName = (iif: string, pkt: Packet): string => {
    const ike = pkt.protocol === 17 && pkt.dport !== undefined && IKE_PORTS.includes(pkt.dport);
    if (ike && phase1On(iif).length === 0 && !v.phase1.has(iif))
      return `${DEFAULT_NAMES.implicitAccept}; no phase1-interface is bound to ${iif}, so no IKE gateway answers`;
    return DEFAULT_NAMES.implicitAccept;
  };

  const fallThrough = (g: Pending, iif: string, pkt: Packet, count: number): FortiosPart => {
    const deny = g.undecided.filter((u) => u.policy.action.value === "deny");
    if (deny.length > 0) {
      const first = deny[0]!;
      const reason = `accepted by the implicit accept unless local-in policy ${deny.map((d) => d.policy.id).join(", ")} matches (${first.cause.reason})`;
      return {
        sources: g.set,
        verdict: "unknown",
        rule: null,
        unknown: { reason, rule: first.cause.rule ?? policyRef(first.policy) },
        explanation: `unknown: ${reason}`,
      };
    }
    return {
      sources: g.set,
      verdict: "accept",
      rule: null,
      defaultName: implicitName(iif, pkt),
      explanation:
        count === 0
          ? "accepted: no local-in policy is configured (local-in policies end with an implicit accept)"
          : "accepted: no local-in policy matched (local-in policies end with an implicit accept)",
    };
  };

  /**
   * Evaluates for every (interface, destination) the query may stand for and combines: where they
   * agree the verdict stands, where they differ the part is unknown and says what it depends on.
   */
  const newPartition = (q: FlowQuery, sources: AddrSet): FortiosPart[] => {
    const family = q.family;
    // Interfaces: the given one, its tunnels for decapsulated traffic, or every interface.
    let iifs: string[];
    let iifWhy = "";
    if (q.ipsec) {
      // --iif may name the physical interface the SA arrives on, or the tunnel interface itself.
      const tunnels = decapTunnels(v, q.iif);
      if (tunnels.length === 0) {
        return [
          {
            sources,
            verdict: "drop",
            rule: null,
            defaultName: `no phase1-interface${q.iif ? ` on ${q.iif}` : ""}: no IPsec SA delivers this packet`,
            explanation: `dropped: nothing arrives decapsulated${q.iif ? ` on ${q.iif}` : ""}, no phase1-interface is bound there`,
          },
        ];
      }
      iifs = tunnels;
      iifWhy = "the IPsec tunnel it arrives through";
    } else if (q.iif !== undefined) {
      iifs = [q.iif];
    } else {
      iifs = [...model.interfaces.values()].filter(inVdom).map((i) => i.name);
      iifWhy = "the incoming interface (none given)";
      if (iifs.length === 0) {
        return [
          unknownPart(sources, "the incoming interface is not given and the config defines no interface"),
        ];
      }
    }
    const runs: Array<{ label: string; parts: FortiosPart[] }> = [];
    for (const iif of iifs) {
      // Destinations: the query's, else the (physical) interface's own addresses.
      const physical = q.ipsec ? q.iif : iif;
      let dst = q.dst ?? null;
      let dstWhy = "the destination address";
      if (dst === null) {
        dst = ownAddresses(family, physical);
        if (dst === null) {
          const i = physical === undefined ? undefined : model.interfaces.get(physical);
          dstWhy = i
            ? `the address of ${physical}, which the config does not give (mode ${i.mode})`
            : `the FortiGate's address${physical ? ` on ${physical} (interface not in the config)` : ""}`;
          dst = AddrSet.all(family);
        } else dstWhy = `which of ${physical ?? "the FortiGate"}'s addresses is the destination`;
      }
      const atoms = destinationAtoms(family, dst, iif);
      if (atoms === null) {
        runs.push({
          label: `via ${iif}`,
          parts: [unknownPart(sources, `too many destination classes to evaluate (${dstWhy})`)],
        });
        continue;
      }
      const perDst = atoms.map((a) => ({
        label: `to ${formatAddress(family, a)}`,
        parts: sweep(q, sources, iif, a),
      }));
      runs.push({ label: `via ${iif}`, parts: combine(perDst, dstWhy) });
    }
    return combine(runs, iifWhy);
  };

  /**
   * Destination classes: addresses of `dst` no policy's dstaddr or service destination tells
   * apart, one representative each. Small sets are enumerated; null when too many classes.
   */
  const destinationAtoms = (family: Family, dst: AddrSet, iif: string): bigint[] | null => {
    if (dst.size() <= 16n) {
      const out: bigint[] = [];
      for (const [lo, hi] of dst.intervals()) for (let a = lo; a <= hi; a++) out.push(a);
      return out;
    }
    const cuts: AddrSet[] = [];
    for (const p of family === 4 ? v.localIn : v.localIn6) {
      if (p.status.value === "disable" || !intfHas(v, p.intf, iif)) continue;
      const d = sets[family].ofNames(p.dstaddr);
      cuts.push(d.yes, d.maybe);
      for (const s of serviceDestinations(p)) cuts.push(s);
    }
    return refineAtoms(dst, cuts, 512)?.map((a) => a.first()!) ?? null;
  };

  const serviceDestinations = (p: LocalInPolicy): AddrSet[] => {
    const out: AddrSet[] = [];
    const seen = new Set<string>();
    const walk = (n: string): void => {
      if (seen.has(n)) return;
      seen.add(n);
      const s = v.services.get(n);
      if (s?.destination) {
        const t = matchTriSet(s.destination, p.family, () => ({ reason: "" }));
        out.push(t.yes, t.maybe);
      }
      for (const m of v.serviceGroups.get(n)?.members ?? []) walk(m);
    };
    for (const n of p.service) walk(n);
    return out;
  };

  const unknownPart = (sources: AddrSet, reason: string, rule?: RuleRef): FortiosPart => ({
    sources,
    verdict: "unknown",
    rule: null,
    unknown: rule ? { reason, rule } : { reason },
    explanation: `unknown: ${reason}`,
  });

  /** Joins partitions of the same sources: agreeing parts stay, disagreeing ones become unknown. */
  const combine = (
    runs: Array<{ label: string; parts: FortiosPart[] }>,
    dependsOn: string,
  ): FortiosPart[] => {
    if (runs.length === 1) return runs[0]!.parts;
    const regions = overlayPartitions(runs).map((r) => ({ set: r.set, outcomes: r.outs }));
    const out: FortiosPart[] = [];
    for (const r of regions) {
      const first = r.outcomes[0]!.part;
      if (r.outcomes.every((o) => keyOf(o.part) === keyOf(first))) {
        out.push({ ...first, sources: r.set });
        continue;
      }
      const shown = listOutcomes(r.outcomes);
      const samePolicy = r.outcomes.every((o) => o.part.policy === first.policy);
      if (r.outcomes.every((o) => o.part.verdict === first.verdict)) {
        // The verdict holds whatever ${dependsOn} is; only the reason differs.
        if (first.verdict === "unknown") {
          const u = unknownPart(r.set, `unknown whatever ${dependsOn} — ${shown}`, first.unknown?.rule);
          out.push(samePolicy && first.policy ? { ...u, policy: first.policy } : u);
        } else {
          const { policy: _p, ...rest } = first;
          out.push({
            ...rest,
            ...(samePolicy && first.policy ? { policy: first.policy } : {}),
            sources: r.set,
            explanation: `${first.verdict === "accept" ? "accepted" : "denied"} whatever ${dependsOn} — ${shown}`,
          });
        }
        continue;
      }
      const rule = r.outcomes.find((o) => o.part.rule)?.part.rule ?? undefined;
      out.push(unknownPart(r.set, `depends on ${dependsOn} — ${shown}`, rule));
    }
    return mergeParts(out, keyOf);
  };

  /**
   * Sources a reply-direction session can come from: the FortiGate sends IKE only to the
   * remote-gw of its static phase1s (on that interface). ddns peers are resolved at run time.
   */
  const ikePeers = (
    family: Family,
    iif?: string,
  ): { peers: AddrSet; ddns: Phase1[]; byPeer: Map<bigint, Phase1> } => {
    const byPeer = new Map<bigint, Phase1>();
    const ddns: Phase1[] = [];
    for (const p of phase1On(iif)) {
      if (p.type.value === "ddns") {
        ddns.push(p);
        continue;
      }
      if (p.type.value !== "static") continue;
      const gw = (family === 4 ? p.remoteGw : p.remoteGw6) ?? "";
      try {
        const pre = parsePrefix(gw);
        if (pre.family === family && pre.len === (family === 4 ? 32 : 128) && pre.addr !== 0n)
          if (!byPeer.has(pre.addr)) byPeer.set(pre.addr, p);
      } catch {
        // Not an address (a template placeholder): the phase1 names no peer.
      }
    }
    const peers = AddrSet.fromRanges(
      family,
      [...byPeer.keys()].map((a) => [a, a] as const),
    );
    return { peers, ddns, byPeer };
  };

  const sessionPart = (sources: AddrSet, explanation: string): FortiosPart => ({
    sources,
    verdict: "accept",
    rule: null,
    defaultName: DEFAULT_NAMES.session,
    explanation,
  });

  /**
   * `config vpn l2tp` `enforce-ipsec enable` (FortiOS 7.0+): the L2TP daemon refuses L2TP that did
   * not come through IPsec, whatever local-in let through ("Enable/disable IPsec enforcement").
   */
  const l2tpEnforced = (q: FlowQuery, parts: FortiosPart[]): FortiosPart[] => {
    const l2tp = v.l2tp;
    if (q.ipsec || q.proto !== 17 || q.dport !== 1701 || !l2tp?.status.value || !l2tp.enforceIpsec.value)
      return parts;
    const at = l2tp.enforceIpsec.loc ?? l2tp.loc;
    return parts.map((p) =>
      p.verdict !== "accept"
        ? p
        : {
            sources: p.sources,
            verdict: "drop",
            rule: refOf(at),
            explanation: `refused by the L2TP daemon: config vpn l2tp enforce-ipsec enable (${where(at)}) accepts L2TP only from inside IPsec`,
          },
    );
  };

  const partition = (q: FlowQuery): FortiosPart[] => l2tpEnforced(q, partitionRaw(q));

  const partitionRaw = (q: FlowQuery): FortiosPart[] => {
    if (q.sources.family !== q.family || (q.dst && q.dst.family !== q.family))
      throw new FortiosQueryError(`address family mismatch in the query (IPv${q.family})`);
    if (q.sources.isEmpty()) return [];
    const sources = q.sources;
    switch (q.state) {
      case "new":
      case "untracked":
        return newPartition(q, sources);
      case "invalid":
        return [unknownPart(sources, "packets FortiOS classifies as invalid for a session are not modelled")];
      case "established":
      case "related":
        break;
    }
    const udp = q.proto === 17;
    const ike = udp && q.dport !== undefined && IKE_PORTS.includes(q.dport);
    if (ike) {
      const { peers, ddns, byPeer } = ikePeers(q.family, q.ipsec ? undefined : q.iif);
      const out: FortiosPart[] = [];
      const own = sources.intersect(peers);
      for (const [addr, p] of byPeer) {
        const s = own.intersect(AddrSet.fromRange(q.family, addr, addr));
        if (!s.isEmpty())
          out.push(
            sessionPart(
              s,
              `accepted: reply direction of this FortiGate's own IKE session to ${formatAddress(q.family, addr)} (phase1 "${p.name}", ${where(refOf(p.fields["remote-gw"] ?? p.loc))}); local-in policies are not consulted until the session expires`,
            ),
          );
      }
      const rest = sources.difference(peers);
      if (!rest.isEmpty()) {
        // No IKE session of this FortiGate's can exist from these sources: the packet is new.
        for (const part of newPartition(q, rest)) {
          if (part.verdict !== "accept" && ddns.length > 0) {
            const p = ddns[0]!;
            out.push(
              unknownPart(
                part.sources,
                `a reply to this FortiGate's IKE to the ddns peer "${p.remotegwDdns ?? "?"}" (phase1 "${p.name}") would bypass local-in, and that peer's address is resolved at run time; otherwise ${part.explanation}`,
                refOf(p.fields["remotegw-ddns"] ?? p.loc),
              ),
            );
          } else out.push(part);
        }
      }
      return mergeParts(out, keyOf);
    }
    if (udp || q.proto === 6 || q.proto === 132) {
      return [
        sessionPart(
          sources,
          "accepted: reply direction of a session the FortiGate originated; local-in policies are not consulted until that session expires",
        ),
      ];
    }
    // ESP, AH, others: FortiOS documents no session for its own outbound packets of these.
    return mergeParts(
      newPartition(q, sources).map((p) =>
        p.verdict === "accept"
          ? p
          : unknownPart(
              p.sources,
              `as new: ${p.explanation}; whether FortiOS keeps a session for its own outbound IP protocol ${q.proto} that lets the peer's packets in is not documented`,
              p.rule ?? p.unknown?.rule,
            ),
      ),
      keyOf,
    );
  };

  return {
    platform: "fortios",
    vdom: v,
    partition,
    ownAddresses,
    evaluate(q: FlowQuery): VerdictPart[] {
      // Whether FortiOS reassembles before local-in is not documented: a new fragment shows no ports.
      // A session, though, is found by the datagram's ports, so a fragment can only be a reply where
      // the whole datagram could (the FortiGate's own IKE session with a static peer).
      if (q.fragment && (q.state === "new" || q.state === "untracked"))
        q = { ...q, dport: undefined, sport: undefined };
      return mergeParts(
        partition(q).map(({ policy: _p, explanation: _e, ...part }): VerdictPart => part),
        visibleKey,
      );
    },
    stateTimeout(q: FlowQuery): StateTimeout | undefined {
      // The state that lets the peer's packets in is the FortiGate's own session: it originated
      // it, so no firewall policy handled it (seed 001's session list: policy_id=0, state=local)
      // and no policy or service override applies.
      const port =
        q.proto === 17 && q.dport !== undefined && IKE_PORTS.includes(q.dport)
          ? q.dport
          : (q.sport ?? q.dport);
      return sessionTimeout(
        model,
        v,
        port === undefined ? { proto: q.proto } : { proto: q.proto, port },
        true,
      );
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Session TTL

export interface SessionTimeoutInput {
  proto: number;
  /** The session's destination port (original direction). */
  port?: number;
  /** The firewall policy that accepted the session, when one did. */
  policy?: Policy;
  /** The custom service the session matched in that policy. */
  service?: Service;
}

/**
 * Idle timeout of a FortiOS session, by the documented precedence (docs/fortios.md, "Session
 * TTL"): policy `session-ttl` > service `session-ttl` > `system session-ttl` port entry (first in
 * table order covering protocol and port; protocol 0 = any) > for UDP the service `udp-idle-timer`,
 * then `system global udp-idle-timer` (default 180 s); for TCP/SCTP `system session-ttl default`
 * (3600 s). Undefined for other protocols without a port entry (not documented).
 * `localSession`: the FortiGate originated the session (no policy, said in the source text).
 */
export function sessionTimeout(
  model: FortiosModel,
  v: VdomModel,
  q: SessionTimeoutInput,
  localSession = false,
): StateTimeout | undefined {
  const secs = (t: number | "never"): number => (t === "never" ? Number.POSITIVE_INFINITY : t);
  const proto =
    q.proto === 17 ? "UDP" : q.proto === 6 ? "TCP" : q.proto === 132 ? "SCTP" : `protocol ${q.proto}`;
  const what = `${proto}${q.port !== undefined ? ` ${q.port}` : ""}`;
  const local = localSession
    ? "; the FortiGate's own session matches no firewall policy, so policy and service session-ttl do not apply"
    : "";
  if (q.policy?.sessionTtl !== undefined) {
    const loc = q.policy.fields["session-ttl"] ?? q.policy.loc;
    return {
      seconds: q.policy.sessionTtl,
      source: `firewall policy ${q.policy.id} session-ttl ${q.policy.sessionTtl} (${where(refOf(loc))})`,
      rule: refOf(loc),
    };
  }
  if (q.service?.sessionTtl !== undefined) {
    const loc = q.service.fields["session-ttl"] ?? q.service.loc;
    return {
      seconds: q.service.sessionTtl,
      source: `firewall service custom "${q.service.name}" session-ttl ${q.service.sessionTtl} (${where(refOf(loc))})`,
      rule: refOf(loc),
    };
  }
  const ports = q.proto === 6 || q.proto === 17 || q.proto === 132;
  const entry = v.sessionTtl.ports.find(
    (e) =>
      (e.protocol === q.proto || e.protocol === 0) &&
      (!ports ||
        (q.port === undefined
          ? e.startPort === 0 && e.endPort === 65535
          : q.port >= e.startPort && q.port <= e.endPort)),
  );
  if (entry) {
    return {
      seconds: secs(entry.timeout),
      source: `system session-ttl port ${entry.id} (protocol ${entry.protocol}${ports ? `, ports ${entry.startPort}-${entry.endPort}` : ""}): timeout ${entry.timeout} for ${what} (${where(refOf(entry.loc))})${local}`,
      rule: refOf(entry.loc),
    };
  }
  if (q.proto === 17) {
    if (q.service?.udpIdleTimer !== undefined) {
      const loc = q.service.fields["udp-idle-timer"] ?? q.service.loc;
      return {
        seconds: q.service.udpIdleTimer,
        source: `firewall service custom "${q.service.name}" udp-idle-timer ${q.service.udpIdleTimer} (${where(refOf(loc))})`,
        rule: refOf(loc),
      };
    }
    const t = model.udpIdleTimer;
    return t.isDefault || !t.loc
      ? {
          seconds: t.value,
          source: `FortiOS UDP session idle timeout, system global udp-idle-timer default ${t.value} s (not set in the config)${local}`,
        }
      : {
          seconds: t.value,
          source: `system global udp-idle-timer ${t.value} (${where(refOf(t.loc))})${local}`,
          rule: refOf(t.loc),
        };
  }
  if (q.proto === 6 || q.proto === 132) {
    const d = v.sessionTtl.default;
    return d.isDefault || !d.loc
      ? { seconds: d.value, source: `system session-ttl default ${d.value} s (FortiOS default)${local}` }
      : {
          seconds: d.value,
          source: `system session-ttl default ${d.value} (${where(refOf(d.loc))})${local}`,
          rule: refOf(d.loc),
        };
  }
  return undefined;
}
