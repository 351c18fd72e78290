/**
 * Does a FortiGate in front of a VPN gateway forward a port to it? FortiOS's order (profile-based
 * mode, no central NAT), each step from Fortinet's own articles (docs/fortios.md, "VIPs"):
 * - a VIP is considered only when an enabled firewall policy names it (KB 350101), and VIPs are
 *   tried top to bottom in their table's order, not the policies' (KB 350101);
 * - DNAT happens before the policy lookup, which then sees the mapped address and port: the policy's
 *   service must allow the mapped port (KB 262988); when a VIP applies, local-in never sees the
 *   packet (KB 261055);
 * - a policy matches VIP traffic only when its destination names the VIP (or a VIP group holding
 *   it); a deny policy with ordinary addresses also does with `match-vip enable` (FD36750);
 * - no policy matched: the implicit deny (policy 0).
 * Central NAT and NGFW policy-based mode work differently (VIPs without policies, a second policy
 * table): answered "unknown".
 */
import type { RuleRef } from "../../analysis/findings.js";
import type { PortForwardCheck, PortForwardQuery } from "../../analysis/gateway.js";
import {
  type PortForwardPart,
  type PortForwardSetQuery,
  portForwardBySource,
} from "../../analysis/port-forward-set.js";
import { formatAddress, parsePrefix } from "../../model/address.js";
import { AddrSet } from "../../model/addrset.js";
import { refOf } from "./evaluator.js";
import { type AddrExpr, expandAddress, namesHave, servicesHave, type Tri, triAnd, triNot } from "./match.js";
import type { FortiosModel, Policy, VdomModel } from "./model.js";
import { namesVip, PROTO_NAMES, vipFor } from "./vip.js";

/** A policy's interface list against one interface (`any`, the name, or a zone holding it). */
function intfHas(v: VdomModel, names: readonly string[], intf: string | undefined): Tri {
  if (names.includes("any")) return true;
  if (intf === undefined) return "unknown";
  return names.some((n) => n === intf || (v.zones.get(n)?.interfaces.includes(intf) ?? false));
}

/** The interface whose connected network holds `ip` (FortiOS routes to it); undefined if none. */
function egressInterface(model: FortiosModel, vdom: string, ip: bigint): string | undefined {
  for (const i of model.interfaces.values()) {
    // As the evaluator reads interfaces: a single-VDOM backup's interfaces are all the VDOM's.
    if (model.multiVdom && (i.vdom ?? "root") !== vdom) continue;
    for (const a of [i.ip, ...i.secondary]) {
      if (!a) continue;
      const span = 1n << BigInt(32 - a.prefix.len);
      if (a.prefix.family === 4 && ip >= a.prefix.addr && ip < a.prefix.addr + span) return i.name;
    }
  }
  return undefined;
}

const policyRef = (p: Policy): RuleRef => refOf(p.loc);

export function checkFortiosPortForward(
  model: FortiosModel,
  v: VdomModel,
  q: PortForwardQuery,
): PortForwardCheck {
  const dst = parsePrefix(q.publicAddress);
  const src = parsePrefix(q.src);
  const to = parsePrefix(q.to);
  if (dst.family !== 4) return { status: "unknown", reason: "IPv6 VIPs (vip6) are not modelled", rules: [] };
  if (v.centralNat.value || v.ngfwMode.value === "policy-based") {
    return {
      status: "unknown",
      reason: `${v.centralNat.value ? "central NAT" : "NGFW policy-based mode"} applies VIPs without firewall policies naming them; not modelled`,
      rules: [],
    };
  }
  const mapped = vipFor(model, v, {
    ...(q.iif ? { iif: q.iif } : {}),
    src: q.srcClass ?? AddrSet.fromPrefix(src),
    dst: dst.addr,
    proto: q.proto,
    port: q.port,
  });
  if (mapped && "unknown" in mapped) {
    return {
      status: "unknown",
      reason: `VIP '${mapped.vip.name}' may apply, but ${mapped.unknown} (${mapped.loc.file}:${mapped.loc.line})`,
      rules: [refOf(mapped.vip.loc)],
    };
  }
  const proto = PROTO_NAMES[q.proto] ?? String(q.proto);
  if (!mapped) {
    return {
      status: "missing",
      reason: `no active VIP maps ${proto}/${q.port} on ${q.publicAddress}: the FortiGate takes it itself (local-in)`,
      rules: [],
    };
  }
  const vipRef = refOf(mapped.vip.loc);
  if (mapped.addr !== to.addr || mapped.port !== q.port) {
    return {
      status: "missing",
      reason: `VIP '${mapped.vip.name}' forwards it to ${formatAddress(4, mapped.addr)}:${mapped.port}, not ${q.to}:${q.port}`,
      rules: [vipRef],
    };
  }
  // The policy lookup sees the translated packet: mapped address and port (KB 262988).
  const iif = q.iif ?? (mapped.vip.extintf !== "any" ? mapped.vip.extintf : undefined);
  const oif = egressInterface(model, v.name, mapped.addr);
  const pkt = { family: 4 as const, protocol: q.proto, dst: mapped.addr, sport: 40000, dport: mapped.port };
  for (const p of v.policies) {
    if (p.status.value !== "enable") continue;
    const matchesVip = namesVip(v, p, mapped.vip.name);
    if (!matchesVip && !(p.action.value === "deny" && p.matchVip)) continue;
    // Each condition with what makes it undecidable, so an "unknown" says which one.
    const s = namesHave(v, 4, p.srcaddr, src.addr);
    const svc = servicesHave(v, p.service, pkt);
    const conds: Array<[Tri, string]> = [
      [intfHas(v, p.srcintf, iif), "the interface the packet arrives on is unknown (set extintf on the VIP)"],
      [
        intfHas(v, p.dstintf, oif),
        `no interface of the config is connected to ${formatAddress(4, mapped.addr)}`,
      ],
      [
        p.srcaddrNegate ? triNot(s.result) : s.result,
        `source address '${s.why}' cannot be resolved statically`,
      ],
      [
        matchesVip ? true : namesHave(v, 4, p.dstaddr, mapped.addr).result,
        "its destination address cannot be resolved statically",
      ],
      [
        p.serviceNegate ? triNot(svc.result) : svc.result,
        `service '${svc.why}' cannot be resolved statically`,
      ],
    ];
    let t: Tri = true;
    for (const [c] of conds) t = triAnd(t, c);
    if (t === false) continue;
    const rules = [vipRef, policyRef(p)];
    if (t === "unknown" || p.schedule.value !== "always") {
      const why = conds.find(([c]) => c === "unknown")?.[1] ?? `schedule '${p.schedule.value}'`;
      return { status: "unknown", reason: `firewall policy ${p.id} may match: ${why}`, rules };
    }
    return p.action.value === "accept"
      ? { status: "forwarded", reason: `VIP '${mapped.vip.name}' and firewall policy ${p.id}`, rules }
      : {
          status: "blocked",
          reason: `VIP '${mapped.vip.name}' applies, then firewall policy ${p.id} denies it`,
          rules,
        };
  }
  return {
    status: "blocked",
    reason: `VIP '${mapped.vip.name}' applies, but no firewall policy allows ${proto}/${mapped.port} to ${q.to}${oif ? ` on ${oif}` : ""}: implicit deny (policy 0)`,
    rules: [vipRef],
  };
}

/** An address (group) as the address sets its membership can change across; wildcards are listed apart. */
function exprCuts(e: AddrExpr, cuts: AddrSet[], wildcards: string[]): void {
  if (e.kind === "group") {
    for (const m of [...e.members, ...e.excluded]) exprCuts(m, cuts, wildcards);
    return;
  }
  if (e.kind !== "address") return; // missing or cyclic: unknown for every source alike
  const m = e.address.match;
  if (m.kind === "prefix" && m.prefix.family === 4) cuts.push(AddrSet.fromPrefix(m.prefix));
  else if (m.kind === "range" && m.family === 4) cuts.push(AddrSet.fromRange(4, m.first, m.last));
  else if (m.kind === "wildcard") wildcards.push(e.address.name);
}

/**
 * The forward for a whole set of clients. The classes are those the config itself distinguishes:
 * the VIPs' `src-filter` and the source addresses of the policies that can take VIP traffic (they
 * name a VIP, or deny with `match-vip`).
 */
export function checkFortiosPortForwardSet(
  model: FortiosModel,
  v: VdomModel,
  q: PortForwardSetQuery,
): PortForwardPart[] {
  const cuts: AddrSet[] = [];
  const wildcards: string[] = [];
  for (const vip of v.vips.values()) if (vip.srcFilter) cuts.push(vip.srcFilter);
  for (const p of v.policies) {
    const vipPolicy =
      (p.action.value === "deny" && p.matchVip) || p.dstaddr.some((n) => v.vips.has(n) || v.vipgrps.has(n));
    if (!vipPolicy || p.status.value !== "enable") continue;
    for (const n of p.srcaddr) exprCuts(expandAddress(v, 4, n), cuts, wildcards);
  }
  if (wildcards.length > 0 && q.sources.family === 4) {
    return [
      {
        sources: q.sources,
        status: "unknown",
        reason: `source address '${wildcards[0]}' is a wildcard (non-contiguous mask), whose members are not evaluated as a set`,
        rules: [],
      },
    ];
  }
  return portForwardBySource(q, cuts, (one) => checkFortiosPortForward(model, v, one));
}
