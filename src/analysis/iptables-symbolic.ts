/**
 * Symbolic iptables evaluation for the audit: a FlowQuery ("UDP 500 from these sources, as NEW,
 * to this host") is answered with the partition of the source set by verdict, each part naming
 * the deciding rule (file, line, text) or the policy that decided, in one walk over the rules that
 * carries sets of still-undecided sources instead of one lookup per address.
 *
 * The path is the local-delivery path of ./iptables-path.ts: raw → mangle → nat PREROUTING, the
 * routing decision (a destination that is not one of the host's addresses, or that DNAT moves
 * away from the host, is not delivered), then mangle → filter → security → nat INPUT. Every rule
 * is split into the conditions on the source address (`-s`, `-m iprange --src-range`,
 * `-m set … src`, `-m addrtype --src-type`, conntrack tuple addresses) and the rest; the rest is
 * evaluated once per class of packets with `evalRule` (the concrete evaluator), the source
 * conditions as address sets, by evaluating `evalMatch` on one representative address of each
 * region their address sets cut the space into. So for every single source address the answer is
 * the concrete evaluator's, by construction; test/iptables-symbolic.test.ts checks it with
 * fast-check over random rule sets.
 *
 * Three-valued like the concrete evaluator: a rule that may or may not match is taken both ways
 * (the "matched" way only where its target changes something); a source whose outcomes disagree
 * is "unknown", naming the undecidable rule; when they agree the verdict stands, with the rule of
 * the reading where undecidable rules did not match.
 */
import { type Family, formatAddress } from "../model/address.js";
import { AddrSet, firstMatchPartition } from "../model/addrset.js";
import type { AddrCond, Chain, Hook, Match, Rule, Ruleset, TableName } from "../platforms/iptables/model.js";
import { BUILTIN_CHAINS, specToAddrSet } from "../platforms/iptables/model.js";
import { ruleAt, ruleCount, srcMissesAt } from "../platforms/iptables/rule-store.js";
import type { RuleRef } from "./findings.js";
import {
  applyTtl,
  type EvalOptions,
  evalMatch,
  evalRule,
  type Packet,
  type PacketState,
} from "./iptables-eval.js";
import {
  applyRedirect,
  conntrackInUse,
  type Decision,
  decisionName,
  hasPorts,
  isFragment,
  natAmbiguity,
  natWalked,
  routeReceived,
  ruleIndex,
  unfragmented,
} from "./iptables-path.js";
import { listOutcomes, mergeParts, overlayPartitions, refineAtoms } from "./partition.js";
import type { FilterEvaluator, FlowQuery, StateTimeout, VerdictPart } from "./query.js";

export interface IptablesEvaluatorOptions {
  /** The host's own addresses (routing, `-m addrtype LOCAL`, "any host address"). Empty or undefined: unknown. */
  hostAddresses?: AddrSet;
  /** ipset contents by set name (`ipset save`); `-m set` on other sets is unknown. */
  ipset?: ReadonlyMap<string, AddrSet>;
  /** Directed broadcast addresses of the host's subnets (delivered locally; see `linkBroadcasts`). */
  broadcast?: AddrSet;
  /** Bound on explored "matched" branches of undecidable rules (default 256). */
  maxForks?: number;
}

/** A part of the partition with the decision and a one-line explanation kept. */
export interface IptablesPart extends VerdictPart {
  decision: Decision | null;
  explanation: string;
}

export interface IptablesEvaluator extends FilterEvaluator {
  platform: "iptables";
  ruleset: Ruleset;
  /** `evaluate` with the decisions and explanations kept. */
  partition(q: FlowQuery): IptablesPart[];
  stateTimeout(q: FlowQuery): StateTimeout | undefined;
}

export class IptablesQueryError extends Error {}

/** Names of the defaults (part of the audit's wording; tests pin them). */
export const IPT_DEFAULTS = {
  notLocal: "not addressed to this host: routed, not delivered locally",
  reassembled: "reassembled before the rules: the fragment itself is not filtered",
} as const;

export function ruleRef(r: Rule): RuleRef {
  return { file: r.prov.file, line: r.prov.line, text: r.prov.text };
}

// ---------------------------------------------------------------------------------------------
// Three-valued address sets

interface TriSet {
  yes: AddrSet;
  maybe: AddrSet;
  /** Why `maybe` (the first undecidable condition). */
  why?: string;
}

function triAnd(a: TriSet, b: TriSet): TriSet {
  const yes = a.yes.intersect(b.yes);
  if (a.maybe.isEmpty() && b.maybe.isEmpty()) return { yes, maybe: a.maybe };
  const maybe = a.yes.union(a.maybe).intersect(b.yes.union(b.maybe)).difference(yes);
  const why = !a.maybe.isEmpty() ? a.why : b.why;
  return why !== undefined ? { yes, maybe, why } : { yes, maybe };
}

// ---------------------------------------------------------------------------------------------
// Rules split into source conditions and the rest

/** A condition whose result depends on the source address. */
type SrcCond = { kind: "addr"; cond: AddrCond } | { kind: "match"; m: Match };

interface Split {
  /** The rule without its source conditions (and, in `nullDst` mode, without destination ones). */
  rest: Rule;
  src: SrcCond[];
  /** `nullDst` mode only: conditions on the destination address. */
  dst: Array<{ kind: "addr"; cond: AddrCond } | { kind: "match"; m: Match }>;
}

const tupleNets = (m: Extract<Match, { kind: "conntrack" }>) =>
  [m.origSrc, m.origDst, m.replSrc, m.replDst].filter((x) => x !== null);

function splitRule(r: Rule, nullDst: boolean, ipsets: ReadonlyMap<string, AddrSet> | undefined): Split {
  const src: SrcCond[] = [];
  const dst: Split["dst"] = [];
  const matches: Match[] = [];
  if (r.src) src.push({ kind: "addr", cond: r.src });
  if (r.dst && nullDst) dst.push({ kind: "addr", cond: r.dst });
  for (const m of r.matches) {
    switch (m.kind) {
      case "iprange":
        if (m.src && m.dst && nullDst) {
          src.push({ kind: "match", m: { ...m, dst: null } });
          dst.push({ kind: "match", m: { ...m, src: null } });
        } else if (m.src) src.push({ kind: "match", m });
        else if (m.dst && nullDst) dst.push({ kind: "match", m });
        else matches.push(m);
        break;
      case "addrtype":
        if (m.src && m.dst && nullDst) {
          src.push({ kind: "match", m: { ...m, dst: null } });
          dst.push({ kind: "match", m: { ...m, src: null } });
        } else if (m.src) src.push({ kind: "match", m });
        else if (m.dst && nullDst) dst.push({ kind: "match", m });
        else matches.push(m);
        break;
      case "set": {
        const exact = ipsets?.has(m.name) && m.flags.length === 1 && m.other.length === 0;
        if (exact && m.flags[0] === "src") src.push({ kind: "match", m });
        else if (exact && nullDst) dst.push({ kind: "match", m });
        else matches.push(m);
        break;
      }
      case "conntrack":
        if (tupleNets(m).length > 0) (nullDst ? dst : src).push({ kind: "match", m });
        else matches.push(m);
        break;
      default:
        matches.push(m);
    }
  }
  const rest: Rule = { ...r, src: null, ...(nullDst ? { dst: null } : {}), matches };
  return { rest, src, dst };
}

// ---------------------------------------------------------------------------------------------
// Classes of packets walking the rules

interface Cause {
  rule: Rule | null;
  why: string;
}

interface Cls {
  set: AddrSet;
  /** Concrete for everything but the source address (`src` is a placeholder). */
  pkt: Packet;
  /** Every undecidable rule so far taken as not matching. */
  plain: boolean;
  /** Non-plain: the first undecidable rule taken as matching. */
  cause?: Cause;
  nat?: { kind: "DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT"; rule: Rule; hook: Hook };
  /** The filter table's decision at INPUT (for accepted packets). */
  filter?: Decision;
  notes: string[];
}

interface Fin {
  set: AddrSet;
  plain: boolean;
  cause?: Cause;
  verdict: "accept" | "drop" | "reject" | "unknown";
  decision: Decision | null;
  /** Unknown verdict: why; otherwise the name of a default that decided without a rule or policy. */
  reason?: string;
  nat?: Cls["nat"];
  notes: string[];
}

// Packets are never changed once a class holds them (targets copy first), and the classes of a
// partition share theirs: one key per packet object, not one per class and merge.
const pktKeys = new WeakMap<Packet, string>();
const pktKey = (p: Packet): string => {
  let k = pktKeys.get(p);
  if (k === undefined) {
    k = pktKeyOf(p);
    pktKeys.set(p, k);
  }
  return k;
};
const pktKeyOf = (p: Packet): string =>
  `${p.dst}|${p.dport}|${p.sport}|${p.icmpType}/${p.icmpCode}|${p.ttl}|${p.proto}|${p.mark ?? 0}|${p.ctmark ?? 0}|${p.state}|${p.ctDir}|${p.fragment ? 1 : 0}${p.fragFirst ? 1 : 0}/${p.fragMore ?? "-"}/${p.fragId ?? "-"}|${p.iif}|${p.ipsec}|${p.pktType}|${p.ctNat ? `${+p.ctNat.dnat}${+p.ctNat.snat}` : "-"}`;

const ids = new WeakMap<object, number>();
let nextId = 1;
const idOf = (o: object | null | undefined): number => {
  if (!o) return 0;
  let v = ids.get(o);
  if (v === undefined) {
    v = nextId++;
    ids.set(o, v);
  }
  return v;
};

const clsKey = (c: Cls): string =>
  `${c.plain ? 1 : 0}|${idOf(c.cause?.rule)}|${c.cause?.why ?? ""}|${idOf(c.nat?.rule)}|${c.filter ? `${idOf(c.filter.rule)}:${c.filter.policy}` : "-"}|${c.notes.join(";")}|${pktKey(c.pkt)}`;

function mergeClasses(list: Cls[]): Cls[] {
  if (list.length < 2) return list;
  const by = new Map<string, Cls>();
  for (const c of list) {
    if (c.set.isEmpty()) continue;
    const k = clsKey(c);
    const prev = by.get(k);
    if (prev) by.set(k, { ...prev, set: prev.set.union(c.set) });
    else by.set(k, c);
  }
  return [...by.values()];
}

/** A DNAT rule's destination as `addr[:port]`, null when it names none. */
function dnatTo(r: Rule, family: Family): string | null {
  const t = r.target;
  if (t?.kind !== "DNAT") return null;
  const n = t.ranges[0];
  if (!n || n.addrLo === null) return null;
  const addr = formatAddress(family, n.addrLo);
  return n.portLo !== null ? `${addr}:${n.portLo}` : addr;
}

const OBSERVE = new Set(["LOG", "NFLOG", "ULOG", "TRACE"]);
/** Targets after which the packet goes on unchanged: no need to explore the "matched" branch. */
const observeOnly = (r: Rule): boolean =>
  !r.target || OBSERVE.has(r.target.kind) || (r.target.kind === "opaque" && r.target.effect === "continue");

const MAX_DEPTH = 1000;

// ---------------------------------------------------------------------------------------------
// The evaluator

export function iptablesEvaluator(rs: Ruleset, opts: IptablesEvaluatorOptions = {}): IptablesEvaluator {
  const family = rs.family;
  const host = opts.hostAddresses && !opts.hostAddresses.isEmpty() ? opts.hostAddresses : undefined;
  if (host && host.family !== family)
    throw new IptablesQueryError(`host addresses are IPv${host.family}, the rule set is IPv${family}`);
  const ipsets = opts.ipset;
  const maxForks = opts.maxForks ?? 256;
  const nextRule = ruleIndex(rs);
  const evalOpts: EvalOptions = {
    ...(host ? { local: host } : {}),
    ...(ipsets ? { ipsets } : {}),
  };
  const splits = [new WeakMap<Rule, Split>(), new WeakMap<Rule, Split>()];
  const split = (r: Rule, nullDst: boolean): Split => {
    const m = splits[nullDst ? 1 : 0]!;
    let s = m.get(r);
    if (!s) {
      s = splitRule(r, nullDst, ipsets);
      m.set(r, s);
    }
    return s;
  };
  const all = AddrSet.all(family);
  const none = AddrSet.empty(family);
  const multicast = AddrSet.fromPrefix(
    family === 4 ? { family, addr: 0xe0000000n, len: 4 } : { family, addr: 0xffn << 120n, len: 8 },
  );
  const bcast = family === 4 ? AddrSet.fromRange(4, 0xffffffffn, 0xffffffffn) : none;

  /** The address sets a source condition's result can change across. */
  const boundaries = (c: SrcCond): AddrSet[] => {
    if (c.kind === "addr") {
      const s = specToAddrSet(c.cond.spec, family);
      return s ? [s] : [];
    }
    const m = c.m;
    switch (m.kind) {
      case "iprange":
        return m.src ? [AddrSet.fromRange(family, m.src.range.lo, m.src.range.hi)] : [];
      case "set":
        return [ipsets!.get(m.name)!];
      case "addrtype":
        return [...(host ? [host] : []), multicast, bcast];
      case "conntrack":
        return tupleNets(m).flatMap((t) => {
          const s = specToAddrSet(t.net, family);
          return s ? [s] : [];
        });
      default:
        return [];
    }
  };

  const evalSrc = (c: SrcCond, p: Packet): { value: "yes" | "no" | "maybe"; why?: string } => {
    if (c.kind === "match") return evalMatch(c.m, p, evalOpts);
    const a = c.cond;
    if (a.spec.kind === "name") return { value: "maybe", why: `-s ${a.spec.name} is a host name` };
    if (a.spec.family !== family) return { value: "no" };
    const hit = (p.src & a.spec.mask) === a.spec.addr;
    return { value: hit !== a.invert ? "yes" : "no" };
  };

  const srcCache = new WeakMap<object, Map<string, TriSet>>();
  /** A source condition as a TriSet: one representative per region of its boundaries. */
  const srcTri = (c: SrcCond, p: Packet): TriSet => {
    const obj = c.kind === "addr" ? c.cond : c.m;
    let per = srcCache.get(obj);
    const key = c.kind === "addr" ? "" : pktKey(p);
    const hit = per?.get(key);
    if (hit) return hit;
    if (!per) {
      per = new Map();
      srcCache.set(obj, per);
    }
    let out: TriSet;
    if (c.kind === "addr" && c.cond.spec.kind === "net") {
      // Another family's address never matches, inverted or not (as the concrete evaluator).
      const s = specToAddrSet(c.cond.spec, family)!;
      out = { yes: c.cond.spec.family !== family ? none : c.cond.invert ? s.complement() : s, maybe: none };
    } else {
      const bs = boundaries(c);
      let regions: AddrSet[] = [all];
      for (const b of bs) {
        const next: AddrSet[] = [];
        for (const r of regions) {
          const i = r.intersect(b);
          const o = r.difference(b);
          if (!i.isEmpty()) next.push(i);
          if (!o.isEmpty()) next.push(o);
        }
        regions = next;
      }
      let yes = none;
      let maybe = none;
      let why: string | undefined;
      for (const r of regions) {
        const v = evalSrc(c, { ...p, src: r.first()! });
        if (v.value === "yes") yes = yes.union(r);
        else if (v.value === "maybe") {
          maybe = maybe.union(r);
          why ??= v.why;
        }
      }
      out = why !== undefined ? { yes, maybe, why } : { yes, maybe };
    }
    per.set(key, out);
    return out;
  };

  const DST_UNKNOWN =
    "which of the host's addresses the packet is sent to is not known (no host addresses given)";
  /** `nullDst` mode: a destination condition for "some address of this host". */
  const dstTri = (c: Split["dst"][number], p: Packet): { value: "yes" | "no" | "maybe"; why?: string } => {
    if (c.kind === "addr") return { value: "maybe", why: DST_UNKNOWN };
    const m = c.m;
    if (m.kind === "addrtype" && m.dst) {
      if ((m.limitIfaceIn || m.limitIfaceOut) && m.dst.types.includes("LOCAL"))
        return { value: "maybe", why: "addrtype limited to an interface needs per-interface addresses" };
      // A local address: LOCAL; never MULTICAST or UNICAST; other types as the concrete evaluator says.
      let v: "yes" | "no" | "maybe" = "no";
      for (const t of m.dst.types) {
        if (t === "LOCAL") v = "yes";
        else if (t !== "MULTICAST" && t !== "UNICAST" && v === "no") v = "maybe";
        if (v === "yes") break;
      }
      if (m.dst.invert) v = v === "yes" ? "no" : v === "no" ? "yes" : "maybe";
      return v === "maybe"
        ? { value: v, why: "address type needs the host's addresses/routes" }
        : { value: v };
    }
    if (m.kind === "conntrack" && (p.state === "invalid" || p.state === "untracked"))
      return evalMatch(m, p, evalOpts);
    return { value: "maybe", why: DST_UNKNOWN };
  };

  /** The rule against a class: the sources that certainly / maybe match; null when none can. */
  const match = (r: Rule, c: Cls, hook: Hook, nullDst: boolean): TriSet | null => {
    const s = split(r, nullDst);
    const t = evalRule(s.rest, c.pkt, hook, evalOpts);
    if (t.value === "no") return null;
    let tri: TriSet =
      t.value === "yes" ? { yes: all, maybe: none } : { yes: none, maybe: all, why: t.why ?? "undecidable" };
    for (const d of s.dst) {
      const v = dstTri(d, c.pkt);
      if (v.value === "no") return null;
      if (v.value === "maybe") tri = triAnd(tri, { yes: none, maybe: all, why: v.why ?? DST_UNKNOWN });
    }
    for (const sc of s.src) {
      tri = triAnd(tri, srcTri(sc, c.pkt));
      if (tri.yes.isEmpty() && tri.maybe.isEmpty()) return null;
    }
    return tri;
  };

  /**
   * From rule `i` on: consecutive rules (among those the index does not skip) with an ACCEPT,
   * DROP or REJECT target whose only open condition for this class is a source prefix. `end`: the
   * first rule after the run.
   */
  const simpleRun = (
    chain: Chain,
    i: number,
    c: Cls,
    hook: Hook,
    nullDst: boolean,
  ): { rules: Rule[]; sets: AddrSet[]; end: number } => {
    const rules: Rule[] = [];
    const sets: AddrSet[] = [];
    const key = { proto: c.pkt.proto, dport: c.pkt.dport, src: null, dst: nullDst ? null : c.pkt.dst };
    let j = i;
    while (j < ruleCount(chain)) {
      // A packed rule whose source prefix misses the class matches none of it: it is not built (a
      // hub's peers miss almost every /24 of a 50,000-rule chain).
      if (srcMissesAt(chain, j, c.set)) {
        j = nextRule(chain, j + 1, key);
        continue;
      }
      const r = ruleAt(chain, j);
      const k = r.target?.kind;
      if (k !== "ACCEPT" && k !== "DROP" && k !== "REJECT") break;
      const sp = split(r, nullDst);
      if (sp.dst.length > 0 || sp.src.length > 1) break;
      const sc = sp.src[0];
      if (sc && (sc.kind !== "addr" || sc.cond.spec.kind !== "net")) break;
      const t = evalRule(sp.rest, c.pkt, hook, evalOpts);
      if (t.value === "maybe") break;
      if (t.value === "yes") {
        rules.push(r);
        sets.push(sc ? srcTri(sc, c.pkt).yes : all);
      }
      j = nextRule(chain, j + 1, key);
    }
    return { rules, sets, end: j };
  };

  // ---- one query, one destination ----

  interface Run {
    fins: Fin[];
    forks: number;
    nullDst: boolean;
  }

  const fin = (run: Run, c: Cls, f: Omit<Fin, "set" | "plain" | "cause" | "notes">): void => {
    run.fins.push({
      set: c.set,
      plain: c.plain,
      ...(c.cause ? { cause: c.cause } : {}),
      ...(c.nat ? { nat: c.nat } : {}),
      notes: c.notes,
      ...f,
    });
  };

  /** Walks `table` at `hook` for the classes; returns the accepted ones. */
  const walkTable = (run: Run, table: TableName, hook: Hook, classes: Cls[]): Cls[] => {
    const t = rs.tables.get(table);
    const start = t?.chains.get(hook);
    if (!t || !start || !(BUILTIN_CHAINS[table] as readonly string[]).includes(hook)) {
      if (table === "filter")
        return classes.map((c) => ({ ...c, filter: { table, hook, rule: null, policy: null } }));
      return classes;
    }
    const accepted: Cls[] = [];
    const policy: Decision = { table, hook, rule: null, policy: start.policy ?? "ACCEPT" };
    const ruleDecision = (r: Rule): Decision => ({ table, hook, rule: r, policy: null });

    const walkChain = (chain: Chain, input: Cls[], depth: number): Cls[] => {
      if (depth > MAX_DEPTH) {
        for (const c of input)
          fin(run, c, { verdict: "unknown", decision: null, reason: "chain nesting too deep" });
        return [];
      }
      let live = input;
      const returned: Cls[] = [];
      for (let i = 0; live.length > 0; i++) {
        // Next rule any live class may match (the index skips rules none can).
        let j = ruleCount(chain);
        for (const c of live) {
          const n = nextRule(chain, i, {
            proto: c.pkt.proto,
            dport: c.pkt.dport,
            src: null,
            dst: run.nullDst ? null : c.pkt.dst,
          });
          if (n < j) j = n;
          if (j === i) break;
        }
        i = j;
        if (i >= ruleCount(chain)) break;
        if (live.length === 1) {
          // A run of terminal rules that only test the source prefix: one first-match partition.
          const c = live[0]!;
          const run0 = simpleRun(chain, i, c, hook, run.nullDst);
          if (run0.end > i && run0.rules.length === 0) {
            i = run0.end - 1; // every rule scanned certainly does not match
            continue;
          }
          if (run0.end > i) {
            const parts = firstMatchPartition(c.set, run0.sets);
            let rest = none;
            for (const part of parts) {
              if (part.index < 0) {
                rest = part.set;
                continue;
              }
              const r = run0.rules[part.index]!;
              const tg = r.target!;
              const hc = { ...c, set: part.set };
              if (tg.kind === "ACCEPT")
                accepted.push(table === "filter" ? { ...hc, filter: ruleDecision(r) } : hc);
              else
                fin(run, hc, { verdict: tg.kind === "DROP" ? "drop" : "reject", decision: ruleDecision(r) });
            }
            live = rest.isEmpty() ? [] : [{ ...c, set: rest }];
            i = run0.end - 1;
            continue;
          }
        }
        const r = ruleAt(chain, i);
        let next: Cls[] | null = null;
        const hit: Cls[] = [];
        for (let k = 0; k < live.length; k++) {
          const c = live[k]!;
          const m = match(r, c, hook, run.nullDst);
          let yes = m ? c.set.intersect(m.yes) : none;
          const maybe = m && !m.maybe.isEmpty() ? c.set.intersect(m.maybe) : none;
          if (yes.isEmpty() && maybe.isEmpty()) {
            next?.push(c);
            continue;
          }
          next ??= live.slice(0, k);
          if (yes.equals(c.set)) yes = c.set;
          else next.push(yes.isEmpty() ? c : { ...c, set: c.set.difference(yes) });
          if (!yes.isEmpty()) hit.push(yes === c.set ? c : { ...c, set: yes });
          if (!maybe.isEmpty() && !observeOnly(r)) {
            if (run.forks >= maxForks) {
              fin(
                run,
                { ...c, set: maybe, plain: false },
                {
                  verdict: "unknown",
                  decision: null,
                  reason: `more than ${maxForks} undecidable rules to explore`,
                },
              );
            } else {
              run.forks++;
              hit.push({
                ...c,
                set: maybe,
                plain: false,
                cause: c.cause ?? { rule: r, why: m!.why ?? "undecidable" },
              });
            }
          }
        }
        if (next) live = next;
        if (hit.length === 0) continue;
        const tg = r.target;
        if (!tg) {
          live = mergeClasses([...live, ...hit]);
          continue;
        }
        switch (tg.kind) {
          case "ACCEPT":
            for (const c of hit) accepted.push(table === "filter" ? { ...c, filter: ruleDecision(r) } : c);
            break;
          case "DROP":
          case "REJECT":
            for (const c of hit)
              fin(run, c, { verdict: tg.kind === "DROP" ? "drop" : "reject", decision: ruleDecision(r) });
            break;
          case "QUEUE":
            for (const c of hit)
              fin(run, c, {
                verdict: "unknown",
                decision: ruleDecision(r),
                reason: "QUEUE hands the verdict to user space",
              });
            break;
          case "RETURN":
            returned.push(...hit);
            break;
          case "jump":
          case "goto": {
            const to = t.chains.get(tg.chain);
            if (!to) {
              for (const c of hit)
                fin(run, c, {
                  verdict: "unknown",
                  decision: ruleDecision(r),
                  reason: `no chain ${tg.chain}`,
                });
              break;
            }
            const back = walkChain(to, mergeClasses(hit), depth + 1);
            if (tg.kind === "jump") live = mergeClasses([...live, ...back]);
            else returned.push(...back);
            break;
          }
          case "MARK":
          case "CONNMARK":
          case "NOTRACK":
          case "TTL":
          case "CT": {
            const changed = hit.map((c) => {
              const p = { ...c.pkt };
              if (tg.kind === "MARK") p.mark = (((p.mark ?? 0) & ~tg.mask) ^ tg.value) >>> 0;
              else if (tg.kind === "TTL") p.ttl = applyTtl(tg, p.ttl);
              else if (tg.kind === "CONNMARK") {
                const mark = p.mark ?? 0;
                const ct = p.ctmark ?? 0;
                if (tg.mode === "set") p.ctmark = ((ct & ~tg.mask) ^ tg.value) >>> 0;
                else if (tg.mode === "save") p.ctmark = ((ct & ~tg.ctmask) ^ (mark & tg.nfmask)) >>> 0;
                else p.mark = ((mark & ~tg.nfmask) ^ (ct & tg.ctmask)) >>> 0;
              } else if (tg.kind === "NOTRACK" || tg.notrack) p.state = "untracked";
              return { ...c, pkt: p };
            });
            live = mergeClasses([...live, ...changed]);
            break;
          }
          case "DNAT":
          case "SNAT":
          case "MASQUERADE":
          case "REDIRECT":
            for (const c of hit) {
              const p = { ...c.pkt };
              if (tg.kind === "DNAT" && tg.ranges[0]) {
                const n = tg.ranges[0];
                if (n.addrLo !== null) p.dst = n.addrLo;
                if (n.portLo !== null) p.dport = n.portLo;
              } else if (tg.kind === "SNAT" && tg.ranges[0]) {
                const n = tg.ranges[0];
                if (n.portLo !== null) p.sport = n.portLo;
              } else if (tg.kind === "REDIRECT" && tg.ports) p.dport = tg.ports.lo;
              accepted.push({ ...c, pkt: p, nat: { kind: tg.kind, rule: r, hook } });
            }
            break;
          case "opaque":
            if (tg.effect === "continue") {
              live = mergeClasses([...live, ...hit]);
              break;
            }
            for (const c of hit)
              fin(run, c, {
                verdict: "unknown",
                decision: ruleDecision(r),
                reason:
                  tg.effect === "terminal"
                    ? `-j ${tg.name} is not modelled`
                    : `-j ${tg.name} decides at run time`,
              });
            break;
          default:
            // LOG, NFLOG, ULOG, TRACE: observe only.
            live = mergeClasses([...live, ...hit]);
        }
      }
      return mergeClasses([...returned, ...live]);
    };

    const fell = walkChain(start, classes, 0);
    for (const c of fell) {
      if (policy.policy === "DROP") fin(run, c, { verdict: "drop", decision: policy });
      else accepted.push(table === "filter" ? { ...c, filter: policy } : c);
    }
    return mergeClasses(accepted);
  };

  /** raw (no conntrack entry yet: INVALID / UNTRACKED), then the real state back. */
  const walkRaw = (run: Run, hook: Hook, classes: Cls[]): Cls[] => {
    if (!rs.tables.get("raw")?.chains.get(hook)) return classes;
    const out: Cls[] = [];
    const byState = new Map<PacketState, Cls[]>();
    for (const c of classes) {
      const l = byState.get(c.pkt.state) ?? [];
      l.push(c);
      byState.set(c.pkt.state, l);
    }
    for (const [real, list] of byState) {
      const seen: PacketState = real === "untracked" ? "untracked" : "invalid";
      const acc = walkTable(
        run,
        "raw",
        hook,
        list.map((c) => ({ ...c, pkt: { ...c.pkt, state: seen } })),
      );
      for (const c of acc)
        out.push(c.pkt.state === "untracked" ? c : { ...c, pkt: { ...c.pkt, state: real } });
    }
    return mergeClasses(out);
  };

  /** nat PREROUTING: walked for a connection's first packet; later packets get the first one's DNAT binding. */
  const walkNatPre = (run: Run, classes: Cls[]): Cls[] => {
    // After a first packet's nat PREROUTING, whether its connection is DNATed is known: conntrack's
    // DNAT virtual state (firewalld's `--ctstate RELATED,ESTABLISHED,DNAT`) is then exact.
    const bound = (c: Cls): Cls => {
      const dnat = c.nat?.kind === "DNAT" || c.nat?.kind === "REDIRECT" || (c.pkt.ctNat?.dnat ?? false);
      return { ...c, pkt: { ...c.pkt, ctNat: { dnat, snat: false } } };
    };
    if (!rs.tables.get("nat")?.chains.get("PREROUTING"))
      return classes.map((c) => (natWalked(c.pkt) ? bound(c) : c));
    const walked = classes.filter((c) => natWalked(c.pkt));
    const others = classes.filter((c) => !natWalked(c.pkt));
    const out = walkTable(run, "nat", "PREROUTING", walked).map(bound);
    for (const c of others) {
      const p = c.pkt;
      if (p.state === "invalid" || p.state === "untracked" || p.ctDir === "REPLY") {
        out.push(c);
        continue;
      }
      // What nat PREROUTING would have done to the connection's first packet (no trace: not walked).
      const probe: Run = { fins: [], forks: 0, nullDst: run.nullDst };
      const first = walkTable(probe, "nat", "PREROUTING", [
        { ...c, plain: true, notes: [], pkt: { ...p, state: "new", ctDir: "ORIGINAL" } },
      ]);
      const bound = [...first.filter((x) => x.nat), ...probe.fins.filter((f) => f.nat)];
      let rest = c.set;
      for (const b of bound) {
        const n = b.nat!;
        if (n.kind !== "DNAT" && n.kind !== "REDIRECT") continue;
        const set = rest.intersect(b.set);
        if (set.isEmpty()) continue;
        rest = rest.difference(set);
        fin(
          run,
          { ...c, set },
          {
            verdict: "unknown",
            decision: { table: "nat", hook: "PREROUTING", rule: n.rule, policy: null },
            reason: `the packet's conntrack direction is unknown: in the connection's original direction the DNAT binding of ${n.rule.prov.file}:${n.rule.prov.line} applies`,
          },
        );
      }
      if (!rest.isEmpty()) out.push({ ...c, set: rest });
    }
    return mergeClasses(out);
  };

  const runPath = (q: FlowQuery, dst: bigint | null): Fin[] => {
    const run: Run = { fins: [], forks: 0, nullDst: dst === null };
    const pkt: Packet = {
      family,
      src: 0n,
      dst: dst ?? 0n,
      proto: q.proto,
      ...(q.sport !== undefined ? { sport: q.sport } : {}),
      ...(q.dport !== undefined ? { dport: q.dport } : {}),
      ...(q.icmpType !== undefined ? { icmpType: q.icmpType } : {}),
      ...(q.icmpCode !== undefined ? { icmpCode: q.icmpCode } : {}),
      ...(q.ttl !== undefined ? { ttl: q.ttl } : {}),
      ...(q.iif !== undefined ? { iif: q.iif } : {}),
      state: q.state,
      ipsec: q.ipsec,
      ...(q.ipsec && q.ipsecSa ? { ipsecSas: q.ipsecSa } : {}),
      ...(q.fragment ? { fragment: true } : {}),
      ...(q.fragFirst ? { fragFirst: true } : {}),
      ...(q.fragMore !== undefined ? { fragMore: q.fragMore } : {}),
      ...(q.fragId !== undefined ? { fragId: q.fragId } : {}),
      ...(dst === null ? { pktType: "unicast" as const } : {}),
    };
    let classes: Cls[] = [{ set: q.sources, pkt, plain: true, notes: [] }];
    const reassemble = (list: Cls[], where: string): Cls[] => {
      const out: Cls[] = [];
      for (const c of list) {
        if (!isFragment(c.pkt)) {
          out.push(c);
          continue;
        }
        const note = `reassembled ${where}: the rules see the whole datagram, not the fragment`;
        const next = { ...c, pkt: unfragmented(c.pkt), notes: [...c.notes, note] };
        if (hasPorts(c.pkt.proto) && c.pkt.dport === undefined) {
          fin(run, next, { verdict: "accept", decision: null, reason: IPT_DEFAULTS.reassembled });
        } else out.push(next);
      }
      return out;
    };
    if (isFragment(pkt) && conntrackInUse(rs))
      classes = reassemble(classes, "by nf_defrag before the first table (the rule set uses conntrack)");
    classes = walkRaw(run, "PREROUTING", classes);
    classes = walkTable(run, "mangle", "PREROUTING", classes);
    classes = walkNatPre(run, classes);
    // Routing decision.
    const local: Cls[] = [];
    for (const c of classes) {
      const d = c.pkt.dst;
      const moved = c.nat && (c.nat.kind === "DNAT" || c.nat.kind === "REDIRECT") ? c.nat : undefined;
      if (moved) {
        const amb = natAmbiguity(moved.rule, host);
        if (amb) {
          fin(run, c, {
            verdict: "unknown",
            decision: { table: "nat", hook: "PREROUTING", rule: moved.rule, policy: null },
            reason: amb,
          });
          continue;
        }
        if (moved.kind === "REDIRECT") {
          const p = { ...c.pkt };
          applyRedirect(p, moved.rule, host);
          local.push({ ...c, pkt: p });
          continue;
        }
      }
      if (dst === null && !moved) {
        local.push(c);
        continue;
      }
      const r = routeReceived(family, d, host, opts.broadcast);
      if (r === "local") local.push(c);
      else if (r === "forward") {
        fin(run, c, {
          verdict: "drop",
          decision: moved ? { table: "nat", hook: "PREROUTING", rule: moved.rule, policy: null } : null,
          reason: moved
            ? `DNAT to ${formatAddress(family, d)} by ${moved.rule.prov.file}:${moved.rule.prov.line}: forwarded, not delivered to this host`
            : `${IPT_DEFAULTS.notLocal} (${formatAddress(family, d)} is not one of its addresses)`,
        });
      } else if (r === null) {
        if (!moved) local.push(c);
        else
          fin(run, c, {
            verdict: "unknown",
            decision: { table: "nat", hook: "PREROUTING", rule: moved.rule, policy: null },
            reason: `DNAT to ${formatAddress(family, d)} by ${moved.rule.prov.file}:${moved.rule.prov.line}: whether that is one of the host's addresses is not known (no host addresses given)`,
          });
      } else fin(run, c, { verdict: "unknown", decision: null, reason: r.unknown });
    }
    classes = family === 4 ? reassemble(local, "before INPUT (ip_local_deliver)") : local;
    classes = walkTable(run, "mangle", "INPUT", classes);
    classes = walkTable(run, "filter", "INPUT", classes);
    classes = walkTable(run, "security", "INPUT", classes);
    classes = walkTable(
      run,
      "nat",
      "INPUT",
      classes.filter((c) => natWalked(c.pkt)),
    ).concat(classes.filter((c) => !natWalked(c.pkt)));
    for (const c of classes) {
      const f = c.filter ?? null;
      fin(run, c, {
        verdict: "accept",
        decision: f,
        ...(f && !f.rule && !f.policy ? { reason: `no filter table (nothing filters INPUT)` } : {}),
      });
    }
    return run.fins;
  };

  // ---- assembling the partition ----

  const explain = (f: Fin): string => {
    const notes = f.notes.length ? ` (${f.notes.join("; ")})` : "";
    if (f.verdict === "unknown") return `unknown: ${f.reason ?? "undecidable"}${notes}`;
    const d = f.decision;
    const what = f.verdict === "accept" ? "accepted" : f.verdict === "drop" ? "dropped" : "rejected";
    if (!d || (!d.rule && !d.policy)) return `${what}: ${f.reason ?? "not filtered"}${notes}`;
    const text = d.rule ? ` ${d.rule.prov.text}` : "";
    return `${what} by ${decisionName(d)}${text}${f.reason ? ` — ${f.reason}` : ""}${notes}`;
  };

  const toPart = (f: Fin, set: AddrSet): IptablesPart => {
    if (f.verdict === "unknown") {
      const rule = f.decision?.rule ?? null;
      return {
        sources: set,
        verdict: "unknown",
        rule: null,
        unknown: rule
          ? { reason: f.reason ?? "undecidable", rule: ruleRef(rule) }
          : { reason: f.reason ?? "undecidable" },
        decision: f.decision,
        explanation: explain(f),
      };
    }
    const d = f.decision;
    // Dropped because nat PREROUTING's DNAT sent it to another host (forwarded, not delivered).
    const away =
      f.verdict === "drop" && f.nat?.kind === "DNAT" && d?.rule === f.nat.rule
        ? dnatTo(f.nat.rule, family)
        : null;
    return {
      sources: set,
      verdict: f.verdict,
      rule: d?.rule ? ruleRef(d.rule) : null,
      ...(away ? { forwardedTo: away } : {}),
      ...(d?.rule ? {} : { defaultName: d && (d.policy || !f.reason) ? decisionName(d) : (f.reason ?? "") }),
      decision: d,
      explanation: explain(f),
    };
  };

  const visibleKey = (p: VerdictPart): string =>
    `${p.verdict}|${p.rule ? `${p.rule.file}:${p.rule.line}` : ""}|${p.defaultName ?? ""}|${p.unknown?.reason ?? ""}|${p.unknown?.rule?.line ?? ""}`;

  /** Plain outcomes partition the sources; a branch that ends differently makes its sources unknown. */
  const assemble = (fins: Fin[]): IptablesPart[] => {
    let parts: Array<{ set: AddrSet; f: Fin }> = fins.filter((f) => f.plain).map((f) => ({ set: f.set, f }));
    for (const np of fins) {
      if (np.plain) continue;
      const next: typeof parts = [];
      for (const p of parts) {
        if (p.f.verdict === "unknown" || p.f.verdict === np.verdict || !p.set.overlaps(np.set)) {
          next.push(p);
          continue;
        }
        const inter = p.set.intersect(np.set);
        const rest = p.set.difference(np.set);
        if (!rest.isEmpty()) next.push({ set: rest, f: p.f });
        const c = np.cause;
        const other =
          np.verdict === "unknown"
            ? `unknown (${np.reason ?? "undecidable"})`
            : `${np.verdict} by ${np.decision ? decisionName(np.decision) : (np.reason ?? "")}`;
        const reason = c
          ? `${c.rule ? `${c.rule.prov.file}:${c.rule.prov.line}: ` : ""}${c.why}: if it matches, ${other}; if not, ${p.f.verdict} by ${p.f.decision ? decisionName(p.f.decision) : (p.f.reason ?? "")}`
          : (np.reason ?? "undecidable");
        next.push({
          set: inter,
          f: {
            ...p.f,
            verdict: "unknown",
            decision: c?.rule
              ? { table: c.rule.table, hook: p.f.decision?.hook ?? "INPUT", rule: c.rule, policy: null }
              : null,
            reason,
          },
        });
      }
      parts = next;
    }
    return mergeParts(
      parts.map((p) => toPart(p.f, p.set)),
      (p) => `${visibleKey(p)}|${p.explanation}`,
    );
  };

  /** Runs for several destinations joined: agreeing parts stay, disagreeing ones are unknown. */
  const combine = (
    runs: Array<{ label: string; parts: IptablesPart[] }>,
    dependsOn: string,
  ): IptablesPart[] => {
    if (runs.length === 1) return runs[0]!.parts;
    const regions = overlayPartitions(runs);
    const out: IptablesPart[] = [];
    for (const r of regions) {
      const first = r.outs[0]!.part;
      if (r.outs.every((o) => visibleKey(o.part) === visibleKey(first))) {
        out.push({ ...first, sources: r.set });
        continue;
      }
      const shown = listOutcomes(r.outs);
      if (r.outs.every((o) => o.part.verdict === first.verdict) && first.verdict !== "unknown") {
        out.push({
          ...first,
          sources: r.set,
          explanation: `${first.verdict} whatever ${dependsOn} — ${shown}`,
        });
        continue;
      }
      const rule = r.outs.find((o) => o.part.rule ?? o.part.unknown?.rule);
      const ref = rule?.part.rule ?? rule?.part.unknown?.rule;
      const reason = `depends on ${dependsOn} — ${shown}`;
      out.push({
        sources: r.set,
        verdict: "unknown",
        rule: null,
        unknown: ref ? { reason, rule: ref } : { reason },
        decision: null,
        explanation: `unknown: ${reason}`,
      });
    }
    return mergeParts(out, (p) => `${visibleKey(p)}|${p.explanation}`);
  };

  /** Destination classes of `dst` no rule tells apart (one representative each); null when too many. */
  const dstAtoms = (dst: AddrSet): bigint[] | null => {
    if (dst.size() <= 16n) {
      const out: bigint[] = [];
      for (const [lo, hi] of dst.intervals()) for (let a = lo; a <= hi; a++) out.push(a);
      return out;
    }
    const cuts: AddrSet[] = [multicast, bcast, ...(host ? [host] : [])];
    for (const t of rs.tables.values())
      for (const c of t.chains.values())
        for (const r of c.rules) {
          if (r.dst) {
            const s = specToAddrSet(r.dst.spec, family);
            if (s) cuts.push(s);
          }
          for (const m of r.matches) {
            if (m.kind === "iprange" && m.dst)
              cuts.push(AddrSet.fromRange(family, m.dst.range.lo, m.dst.range.hi));
            else if (m.kind === "set" && m.flags.includes("dst") && ipsets?.has(m.name))
              cuts.push(ipsets.get(m.name)!);
            else if (m.kind === "conntrack")
              for (const x of tupleNets(m)) {
                const s = specToAddrSet(x.net, family);
                if (s) cuts.push(s);
              }
          }
        }
    return refineAtoms(dst, cuts, 64)?.map((a) => a.first()!) ?? null;
  };

  const partition = (q: FlowQuery): IptablesPart[] => {
    if (q.family !== family || q.sources.family !== family || (q.dst && q.dst.family !== family)) {
      // Name the part that differs: a query can mix families (an IPv4 source to an IPv6 address).
      const what =
        q.sources.family !== family
          ? `its sources are IPv${q.sources.family}`
          : q.dst && q.dst.family !== family
            ? `its destination is IPv${q.dst.family}`
            : `it is IPv${q.family}`;
      throw new IptablesQueryError(`the query does not fit the IPv${family} rule set ${rs.file}: ${what}`);
    }
    if (q.sources.isEmpty()) return [];
    const dsts = q.dst ?? host;
    const byAddress = (parts: IptablesPart[]) =>
      parts.sort((a, b) => (a.sources.first()! < b.sources.first()! ? -1 : 1));
    if (!dsts) return byAddress(assemble(runPath(q, null)));
    const atoms = dstAtoms(dsts);
    if (atoms === null) {
      const reason = `too many destination classes to evaluate (${q.dst ? "the destination set" : "the host's addresses"})`;
      return [
        {
          sources: q.sources,
          verdict: "unknown",
          rule: null,
          unknown: { reason },
          decision: null,
          explanation: `unknown: ${reason}`,
        },
      ];
    }
    const runs = atoms.map((a) => ({
      label: `to ${formatAddress(family, a)}`,
      parts: assemble(runPath(q, a)),
    }));
    return byAddress(
      combine(runs, q.dst ? "the destination address" : "which of the host's addresses is the destination"),
    );
  };

  return {
    platform: "iptables",
    ruleset: rs,
    partition,
    evaluate(q: FlowQuery): VerdictPart[] {
      return mergeParts(
        partition(q).map(({ decision: _d, explanation: _e, ...p }): VerdictPart => p),
        visibleKey,
      );
    },
    stateTimeout(q: FlowQuery): StateTimeout | undefined {
      return conntrackTimeout(rs, q.proto);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Conntrack timeouts

const SYSCTL_DOC = "https://docs.kernel.org/networking/nf_conntrack-sysctl.html";

/**
 * How long the conntrack entry that lets replies in outlives the last packet, by the kernel's
 * defaults (the sysctls can change them; a `CT --timeout` policy in the raw table overrides them).
 *
 * UDP: `nf_conntrack_udp_timeout` 30 s while unreplied; once a reply was seen and the entry is
 * still active 2 s after its first packet, `nf_conntrack_udp_timeout_stream` 120 s (kernel
 * commits 294304e4c522 "udp: set stream timeout to 2 minutes", d535c8a69c19 "only extend timeout
 * to stream mode after 2s"; anchors.md §8). The gateway's own IKE (UDP 500) / NAT-T (4500) entry
 * has seen the peer's replies and lives across exchanges, so 120 s applies to it.
 * ESP, AH and other protocols without a tracker: the generic tracker, `nf_conntrack_generic_timeout`
 * 600 s (nf_conntrack_proto_generic.c). TCP established: `nf_conntrack_tcp_timeout_established`
 * 432000 s (5 days).
 */
export function conntrackTimeout(rs: Ruleset, proto: number): StateTimeout | undefined {
  const ct = ctTimeoutRule(rs);
  const override = ct
    ? `; a CT --timeout policy in the raw table (${ct.prov.file}:${ct.prov.line}) may override it for the packets it matches (its values are not in this file)`
    : "";
  const withRule = (t: StateTimeout): StateTimeout => (ct ? { ...t, rule: ruleRef(ct) } : t);
  if (proto === 17)
    return withRule({
      seconds: 120,
      source: `Linux conntrack default nf_conntrack_udp_timeout_stream = 120 s for a UDP entry that has seen replies (nf_conntrack_udp_timeout = 30 s while unreplied and in its first 2 s; kernel commits 294304e4c522, d535c8a69c19; ${SYSCTL_DOC})${override}`,
    });
  if (proto === 6)
    return withRule({
      seconds: 432000,
      source: `Linux conntrack default nf_conntrack_tcp_timeout_established = 432000 s (5 days; ${SYSCTL_DOC})${override}`,
    });
  // Protocols with their own tracker: ICMP, ICMPv6, SCTP, DCCP, GRE, UDP-Lite.
  if ([1, 58, 132, 33, 47, 136].includes(proto)) return undefined;
  return withRule({
    seconds: 600,
    source: `Linux conntrack generic tracker (no tracker for IP protocol ${proto}${proto === 50 ? ", ESP" : proto === 51 ? ", AH" : ""}): nf_conntrack_generic_timeout = 600 s (nf_conntrack_proto_generic.c; ${SYSCTL_DOC})${override}`,
  });
}

function ctTimeoutRule(rs: Ruleset): Rule | undefined {
  const raw = rs.tables.get("raw");
  if (!raw) return undefined;
  for (const c of raw.chains.values())
    for (const r of c.rules)
      if (r.target?.kind === "CT" && r.target.options.some((o) => o.name === "--timeout")) return r;
  return undefined;
}

/** Host addresses as an AddrSet of the rule set's family (other families ignored). */
export function hostAddressSet(
  family: Family,
  prefixes: Iterable<{ family: Family; addr: bigint; len: number }>,
): AddrSet {
  return AddrSet.fromPrefixes(
    family,
    [...prefixes].filter((p) => p.family === family),
  );
}
