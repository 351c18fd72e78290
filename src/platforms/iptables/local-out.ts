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
import { mergeParts, sweepAtoms } from "../../analysis/partition.js";
import type { OutboundQuery, VerdictPart } from "../../analysis/query.js";
import { AddrSet } from "../../model/addrset.js";
import { cutsOf, PATHS, type PacketShape, rulesOn } from "./address-cuts.js";
import type { Ruleset } from "./model.js";

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
  return mergeParts(parts, partKey).sort((a, b) => (a.sources.first()! < b.sources.first()! ? -1 : 1));
}

function evaluateOne(
  rs: Ruleset,
  opts: LocalOutOptions,
  q: OutboundQuery,
  src: bigint,
  atom: AddrSet,
): VerdictPart {
  const own = opts.hostAddresses ? loopback(rs.family).union(opts.hostAddresses) : loopback(rs.family);
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
    // No --wan: the outgoing interface is unknown, but it is not lo unless the peer is the host itself.
    ...(q.oif === undefined && !atom.overlaps(own) ? { oifNotLo: true } : {}),
  };
  const r = evaluatePath(rs, pkt, {
    origin: "local",
    ...(opts.hostAddresses ? { local: opts.hostAddresses } : {}),
    ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
    ...(opts.broadcast ? { broadcast: opts.broadcast } : {}),
  });
  return partOf(rs, r, atom);
}
