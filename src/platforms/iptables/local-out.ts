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
import { refineAtoms } from "../../analysis/partition.js";
import type { OutboundQuery, VerdictPart } from "../../analysis/query.js";
import type { AddrSet } from "../../model/addrset.js";
import { addressCuts, PATHS } from "./address-cuts.js";
import type { Ruleset } from "./model.js";

export interface LocalOutOptions {
  hostAddresses?: AddrSet;
  ipsets?: ReadonlyMap<string, AddrSet>;
  broadcast?: AddrSet;
}

const MAX_CLASSES = 256;

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

/** Partitions `q.peers` by the verdict on what the host sends them. */
export function evaluateLocalOut(rs: Ruleset, opts: LocalOutOptions, q: OutboundQuery): VerdictPart[] {
  const family = rs.family;
  if (q.peers.isEmpty()) return [];
  const src = q.src ?? opts.hostAddresses?.first();
  if (src === undefined) {
    const reason =
      "the gateway's own address is not given (--local or addresses:), so rules on the source cannot be told";
    return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
  }
  const atoms = refineAtoms(q.peers, addressCuts(rs, "dst", PATHS.localOut, opts), MAX_CLASSES);
  if (atoms === null) {
    const reason = `too many destination classes to evaluate (more than ${MAX_CLASSES})`;
    return [{ sources: q.peers, verdict: "unknown", rule: null, unknown: { reason } }];
  }
  const parts: VerdictPart[] = [];
  for (const atom of atoms) {
    const pkt: Packet = {
      family,
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
    const r = evaluatePath(rs, pkt, {
      origin: "local",
      ...(opts.hostAddresses ? { local: opts.hostAddresses } : {}),
      ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
      ...(opts.broadcast ? { broadcast: opts.broadcast } : {}),
    });
    parts.push(partOf(rs, r, atom));
  }
  // One part per distinct outcome, by address.
  const by = new Map<string, VerdictPart>();
  for (const p of parts) {
    const k = `${p.verdict}|${p.rule?.line}|${p.defaultName}|${p.unknown?.reason}|${p.unknown?.rule?.line}`;
    const prev = by.get(k);
    if (prev) prev.sources = prev.sources.union(p.sources);
    else by.set(k, { ...p });
  }
  return [...by.values()].sort((a, b) => (a.sources.first()! < b.sources.first()! ? -1 : 1));
}
