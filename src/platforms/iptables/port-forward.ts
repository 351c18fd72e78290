/**
 * Does a Linux NAT device in front of a VPN gateway forward a port to it? The packet's whole path
 * (nat PREROUTING DNAT, routing, filter FORWARD) decides — the same evaluation as `trace`.
 */
import type { PortForwardCheck, PortForwardQuery } from "../../analysis/gateway.js";
import { decisionName, evaluatePath } from "../../analysis/iptables-path.js";
import { ruleRef } from "../../analysis/iptables-symbolic.js";
import {
  type PortForwardPart,
  type PortForwardSetQuery,
  portForwardBySource,
} from "../../analysis/port-forward-set.js";
import { parsePrefix } from "../../model/address.js";
import type { AddrSet } from "../../model/addrset.js";
import { addressCuts, PATHS } from "./address-cuts.js";
import type { Ruleset } from "./model.js";

export function checkPortForward(
  rs: Ruleset,
  local: AddrSet | undefined,
  q: PortForwardQuery,
  opts: { ipsets?: ReadonlyMap<string, AddrSet>; broadcast?: AddrSet } = {},
): PortForwardCheck {
  const src = parsePrefix(q.src);
  const dst = parsePrefix(q.publicAddress);
  const to = parsePrefix(q.to);
  const r = evaluatePath(
    rs,
    {
      family: src.family,
      src: src.addr,
      dst: dst.addr,
      proto: q.proto,
      // A NATed peer's source port is arbitrary; a high port is what most clients use.
      sport: 40000,
      dport: q.port,
      ...(q.iif ? { iif: q.iif } : {}),
      state: "new",
      ipsec: false,
    },
    {
      ...(local ? { local } : {}),
      ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
      ...(opts.broadcast ? { broadcast: opts.broadcast } : {}),
    },
  );
  if (r.verdict === "unknown") {
    // Name the construct: the undecidable rule an outcome had to assume, else the deciding one.
    const o = r.outcomes.find((x) => x.verdict === "unknown") ?? r.outcomes[0];
    const assumed = r.outcomes.flatMap((x) => x.assumed).find((a) => a.rule);
    const rule = assumed?.rule ?? o?.decision?.rule ?? null;
    const why =
      o?.reason ??
      assumed?.why ??
      (r.truncated ? "too many undecidable rules on the path" : "the outcomes on the path disagree");
    const at = rule ? ` (${rule.prov.file}:${rule.prov.line}: ${rule.prov.text})` : "";
    return { status: "unknown", reason: `${why}${at}`, rules: rule ? [ruleRef(rule)] : [] };
  }
  const o = r.outcomes[0]!;
  const rules = [
    ...o.nat.map((n) => ruleRef(n.rule)),
    ...(o.decision?.rule ? [ruleRef(o.decision.rule)] : []),
  ];
  const by = o.decision ? decisionName(o.decision) : "the path";
  if (o.route === "local") {
    // Not what the device's own input filter then does with it: that is not on the forwarded path,
    // whose rules alone cut the client set (address-cuts.ts).
    return {
      status: "missing",
      reason: "not forwarded: no DNAT matches, so the NAT device delivers it to itself",
      rules: o.nat.map((n) => ruleRef(n.rule)),
    };
  }
  if (o.packet.dst !== to.addr || o.packet.dport !== q.port) {
    return {
      status: "missing",
      reason: o.nat.length
        ? `forwarded to the wrong place (DNAT by ${o.nat
            .map((n) => {
              const x = ruleRef(n.rule);
              return `${x.file}:${x.line}`;
            })
            .join(", ")})`
        : "not forwarded to the gateway",
      rules,
    };
  }
  if (r.verdict !== "accept")
    return {
      status: "blocked",
      reason: `forwarded, then ${r.verdict === "reject" ? "rejected" : "dropped"} by ${by}`,
      rules,
    };
  return { status: "forwarded", reason: `forwarded (${by})`, rules };
}

/** The forward for a whole set of clients, one part per class of sources the rule set tells apart. */
export function checkPortForwardSet(
  rs: Ruleset,
  local: AddrSet | undefined,
  q: PortForwardSetQuery,
  opts: { ipsets?: ReadonlyMap<string, AddrSet>; broadcast?: AddrSet } = {},
): PortForwardPart[] {
  // The source port is a client's choice: only the protocol and the forwarded port rule out rules.
  const cuts = addressCuts(
    rs,
    "src",
    PATHS.forwarded,
    { ...(local ? { hostAddresses: local } : {}), ...opts },
    { proto: q.proto, dport: q.port },
  );
  return portForwardBySource(q, cuts, (one) => checkPortForward(rs, local, one, opts));
}
