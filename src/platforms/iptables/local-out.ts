/**
 * What the host may send: a packet from one of its own addresses to a set of peers, along the
 * local-output path (raw → mangle → nat → filter → security OUTPUT, then mangle → nat POSTROUTING;
 * ../../analysis/iptables-path.ts). The peers are cut into the classes no address condition of
 * the rule set tells apart, and one representative of each is evaluated concretely: every peer of
 * a class gets the same verdict, by construction.
 */
import type { RuleRef } from "../../analysis/findings.js";
import type { Packet } from "../../analysis/iptables-eval.js";
import { decisionName, evaluatePath, type PathResult } from "../../analysis/iptables-path.js";
import { ruleRef } from "../../analysis/iptables-symbolic.js";
import type { OutboundQuery, VerdictPart } from "../../analysis/query.js";
import { AddrSet } from "../../model/addrset.js";
import { cutsOf, PATHS, type PacketShape, rulesOn } from "./address-cuts.js";
import type { Chain, Rule, Ruleset, Table, TableName } from "./model.js";

export interface LocalOutOptions {
  hostAddresses?: AddrSet;
  ipsets?: ReadonlyMap<string, AddrSet>;
  broadcast?: AddrSet;
}

// Classes come from one sweep and each is one concrete walk of the path: a hub with a rule per peer stays decided.
const MAX_CLASSES = 4096;

/** The chain line that set the deciding policy (`:OUTPUT DROP`, `-P OUTPUT DROP`). */
function policyLine(rs: Ruleset, r: PathResult): RuleRef | undefined {
  const d = r.decision;
  if (!d || d.rule || !d.policy) return undefined;
  const prov = rs.tables.get(d.table)?.chains.get(d.hook)?.prov;
  return prov ? { file: prov.file, line: prov.line, text: prov.text } : undefined;
}

function partOf(rs: Ruleset, r: PathResult, peers: AddrSet): VerdictPart {
  if (r.verdict === "unknown") {
    const o = r.outcomes.find((x) => x.verdict === "unknown") ?? r.outcomes[0];
    const undecided = o?.assumed.find((a) => a.rule)?.rule ?? o?.decision?.rule ?? null;
    const reason = r.truncated
      ? "too many undecidable rules on the output path"
      : (o?.reason ??
        r.outcomes.flatMap((x) => x.assumed.map((a) => a.why)).find((w) => w) ??
        "the outcomes on the output path disagree");
    return {
      sources: peers,
      verdict: "unknown",
      rule: null,
      unknown: undecided ? { reason, rule: ruleRef(undecided) } : { reason },
    };
  }
  const d = r.decision;
  const policy = policyLine(rs, r);
  return {
    sources: peers,
    verdict: r.verdict,
    rule: d?.rule ? ruleRef(d.rule) : null,
    ...(d?.rule ? {} : { defaultName: d ? decisionName(d) : (r.reason ?? "not filtered") }),
    ...(policy ? { defaultAt: policy } : {}),
  };
}

/**
 * The classes of `universe` no cut tells apart, by one sweep over the cuts' sorted bounds: an address
 * range between two consecutive bounds lies wholly inside or outside every cut, and ranges inside
 * the same cuts form one class. Null when there are more than `max` classes.
 */
export function sweepAtoms(universe: AddrSet, cuts: readonly AddrSet[], max: number): AddrSet[] | null {
  const family = universe.family;
  const ev: Array<{ x: bigint; k: number; start: boolean }> = [];
  for (const [lo, hi] of universe.intervals())
    ev.push({ x: lo, k: -1, start: true }, { x: hi + 1n, k: -1, start: false });
  cuts.forEach((c, k) => {
    if (c.family !== family || !c.overlaps(universe) || universe.isSubsetOf(c)) return;
    for (const [lo, hi] of c.intervals()) ev.push({ x: lo, k, start: true }, { x: hi + 1n, k, start: false });
  });
  ev.sort((a, b) => (a.x < b.x ? -1 : a.x > b.x ? 1 : 0));
  const active = new Set<number>();
  let inUniverse = 0;
  const classes = new Map<string, Array<[bigint, bigint]>>();
  for (let i = 0; i < ev.length; ) {
    const x = ev[i]!.x;
    for (; i < ev.length && ev[i]!.x === x; i++) {
      const e = ev[i]!;
      if (e.k < 0) inUniverse += e.start ? 1 : -1;
      else if (e.start) active.add(e.k);
      else active.delete(e.k);
    }
    if (inUniverse === 0 || i >= ev.length) continue;
    const end = ev[i]!.x - 1n;
    const key = [...active].sort((a, b) => a - b).join(",");
    const ranges = classes.get(key);
    if (ranges) ranges.push([x, end]);
    else {
      if (classes.size >= max) return null;
      classes.set(key, [[x, end]]);
    }
  }
  return [...classes.values()].map((r) => AddrSet.fromRanges(family, r));
}

interface Cuts {
  /** Of the peers (destination side). */
  dst: AddrSet[];
  /** Of the host's own address (source side), from the rules only: empty when none looks at it. */
  src: AddrSet[];
}

// Per rule set and packet shape: a gateway's flows × states share them.
const cutCache = new WeakMap<Ruleset, Map<string, Cuts>>();

function cutsFor(rs: Ruleset, opts: LocalOutOptions, q: OutboundQuery): Cuts {
  const shape: PacketShape = {
    proto: q.proto,
    ...(q.sport !== undefined ? { sport: q.sport } : {}),
    ...(q.dport !== undefined ? { dport: q.dport } : {}),
  };
  const key = `${q.proto}|${q.sport}|${q.dport}|${opts.hostAddresses?.toString()}|${opts.broadcast?.toString()}|${opts.ipsets?.size}`;
  let byShape = cutCache.get(rs);
  if (!byShape) {
    byShape = new Map();
    cutCache.set(rs, byShape);
  }
  let c = byShape.get(key);
  if (!c) {
    const rules = rulesOn(rs, PATHS.localOut, shape);
    c = {
      dst: [loopback(rs.family), ...cutsOf(rs, "dst", rules, opts, true)],
      src: cutsOf(rs, "src", rules, opts, false),
    };
    byShape.set(key, c);
  }
  return c;
}

/** Where a locally generated packet leaves through `lo`: loopback (the host's own addresses aside). */
const loopback = (family: 4 | 6): AddrSet =>
  family === 4
    ? AddrSet.fromPrefix({ family, addr: 0x7f000000n, len: 8 })
    : AddrSet.fromPrefix({ family, addr: 1n, len: 128 });

const notLoCache = new WeakMap<Ruleset, Ruleset>();

/**
 * The rule set as a packet sees it that leaves by some interface other than `lo` (which one is not
 * known): `-o lo` cannot match it and `! -o lo` always does. The engine's unknown interface would
 * leave both undecided.
 */
function leavingNotLo(rs: Ruleset): Ruleset {
  const done = notLoCache.get(rs);
  if (done) return done;
  const isLo = (r: Rule) => r.oif !== null && !r.oif.wildcard && r.oif.name === "lo";
  let changed = false;
  const tables = new Map<TableName, Table>();
  for (const [name, t] of rs.tables) {
    const chains = new Map<string, Chain>();
    for (const [cn, c] of t.chains) {
      if (!c.rules.some(isLo)) {
        chains.set(cn, c);
        continue;
      }
      changed = true;
      const rules = c.rules
        .filter((r) => !isLo(r) || r.oif!.invert)
        .map((r) => (isLo(r) ? { ...r, oif: null } : r));
      chains.set(cn, { ...c, rules });
    }
    tables.set(name, { ...t, chains });
  }
  const out = changed ? { ...rs, tables } : rs;
  notLoCache.set(rs, out);
  return out;
}

/** An address of the family for a source nothing on the path looks at (any gives the same answer). */
const anySource = (family: 4 | 6): bigint => (family === 4 ? 0xc0000201n : (0x20010db8n << 96n) | 1n);

const partKey = (p: VerdictPart) =>
  `${p.verdict}|${p.rule?.line}|${p.defaultName}|${p.unknown?.reason}|${p.unknown?.rule?.line}`;

/** Partitions `q.peers` by the verdict on what the host sends them. */
export function evaluateLocalOut(rs: Ruleset, opts: LocalOutOptions, q: OutboundQuery): VerdictPart[] {
  const family = rs.family;
  if (q.peers.isEmpty()) return [];
  const cuts = cutsFor(rs, opts, q);
  // The source address: given; else each class of the host's addresses the rules tell apart (the
  // route picks one); else, when no rule on the path looks at the source, any address will do.
  let srcs: bigint[];
  if (q.src !== undefined) srcs = [q.src];
  else if (opts.hostAddresses && !opts.hostAddresses.isEmpty()) {
    const classes = sweepAtoms(opts.hostAddresses, cuts.src, MAX_CLASSES);
    if (classes === null) {
      const reason = `the host's addresses fall into more than ${MAX_CLASSES} classes for the rules on the source; give --local`;
      return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
    }
    srcs = classes.map((c) => c.first()!);
  } else if (cuts.src.length === 0) srcs = [anySource(family)];
  else {
    const reason =
      "the gateway's own address is not given (--local or addresses:), and rules on the output path look at the source";
    return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
  }
  const atoms = sweepAtoms(q.peers, cuts.dst, MAX_CLASSES);
  if (atoms === null) {
    const reason = `too many destination classes to evaluate (more than ${MAX_CLASSES})`;
    return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
  }
  const parts: VerdictPart[] = [];
  for (const atom of atoms) {
    const each = srcs.map((src) => evaluateOne(rs, opts, q, src, atom));
    // The same verdict from each source is the answer (the rule cited: the first address's).
    const first = each[0]!;
    if (
      each.every(
        (p) => partKey(p) === partKey(first) || (first.verdict !== "unknown" && p.verdict === first.verdict),
      )
    )
      parts.push(first);
    else
      parts.push({
        sources: atom,
        verdict: "unknown",
        rule: null,
        unknown: {
          reason: "depends on which of the host's addresses the route picks as the source; give --local",
        },
      });
  }
  // One part per distinct outcome, by address.
  const by = new Map<string, VerdictPart>();
  for (const p of parts) {
    const k = partKey(p);
    const prev = by.get(k);
    if (prev) prev.sources = prev.sources.union(p.sources);
    else by.set(k, { ...p });
  }
  return [...by.values()].sort((a, b) => (a.sources.first()! < b.sources.first()! ? -1 : 1));
}

function evaluateOne(
  rs: Ruleset,
  opts: LocalOutOptions,
  q: OutboundQuery,
  src: bigint,
  atom: AddrSet,
): VerdictPart {
  const pkt: Packet = {
    family: rs.family,
    src,
    dst: atom.first()!,
    proto: q.proto,
    ...(q.sport !== undefined ? { sport: q.sport } : {}),
    ...(q.dport !== undefined ? { dport: q.dport } : {}),
    ...(q.oif !== undefined ? { oif: q.oif } : {}),
    state: q.state,
    // A reply leaves in the connection's reply direction: no DNAT binding of its own to look up.
    ctDir: q.state === "new" ? "ORIGINAL" : "REPLY",
    ipsec: false,
    ipsecOut: q.ipsecOut,
    ...(q.ipsecOut && q.ipsecSa ? { ipsecOutSas: q.ipsecSa } : {}),
  };
  // No --wan: the outgoing interface is unknown, but it is not lo unless the peer is the host itself.
  const own = opts.hostAddresses ? loopback(rs.family).union(opts.hostAddresses) : loopback(rs.family);
  const view = q.oif === undefined && !atom.overlaps(own) ? leavingNotLo(rs) : rs;
  const r = evaluatePath(view, pkt, {
    origin: "local",
    ...(opts.hostAddresses ? { local: opts.hostAddresses } : {}),
    ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
    ...(opts.broadcast ? { broadcast: opts.broadcast } : {}),
  });
  return partOf(rs, r, atom);
}
