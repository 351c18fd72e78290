/**
 * FortiOS VIPs (`firewall vip`): which VIP takes a packet, and where it sends it. FortiOS tries the
 * VIPs in their table's order, and only those an enabled firewall policy names (KB 350101); DNAT
 * happens before local-in (KB 261055). docs/fortios.md, "VIPs".
 */
import type { Family } from "../../model/address.js";
import type { AddrSet } from "../../model/addrset.js";
import { addrMatchHas } from "./match.js";
import type { FortiosModel, Policy, VdomModel, Vip } from "./model.js";
import type { Loc } from "./parse.js";

export interface Mapped {
  vip: Vip;
  addr: bigint;
  port: number;
}

export const PROTO_NAMES: Record<number, string> = { 6: "tcp", 17: "udp", 132: "sctp", 1: "icmp" };

/**
 * Whether a VIP's external address is `ip`: its `extip`, or, unset or 0.0.0.0, its external
 * interface's own address. A string says why it cannot be told.
 */
function externalMatches(model: FortiosModel, vip: Vip, family: Family, ip: bigint): boolean | string {
  const ext = vip.external;
  if (ext && !(ext.kind === "range" && ext.first === 0n && ext.last === 0n)) {
    const r = addrMatchHas(ext, family, ip);
    return r === "unknown" ? `extip '${vip.extip}' cannot be read` : r;
  }
  const intf = vip.extintf && vip.extintf !== "any" ? model.interfaces.get(vip.extintf) : undefined;
  if (!intf?.ip)
    return "its external address is its interface's, and that interface has no address in the config";
  return intf.ip.address === ip;
}

/** Where the VIP sends `ip:port` (offsets within the external and mapped ranges); null: not this VIP. */
function mapThrough(vip: Vip, ip: bigint, proto: number, port: number): Mapped | null {
  if (vip.portforward) {
    if (PROTO_NAMES[proto] !== vip.protocol) return null;
    const ext = vip.extport;
    if (ext && (port < ext.lo || port > ext.hi)) return null;
  }
  const offset = vip.external?.kind === "range" && vip.external.first !== 0n ? ip - vip.external.first : 0n;
  const mappedPort =
    vip.portforward && vip.mappedport && vip.extport ? vip.mappedport.lo + (port - vip.extport.lo) : port;
  return { vip, addr: (vip.mappedFirst ?? 0n) + offset, port: mappedPort };
}

export const namesVip = (v: VdomModel, p: Policy, vip: string): boolean =>
  p.dstaddr.some((n) => n === vip || (v.vipgrps.get(n)?.members.includes(vip) ?? false));

/**
 * The VIP that takes `dst:port` arriving on `iif` (undefined: any interface), FortiOS's way: VIPs in
 * table order, only those an enabled firewall policy names (KB 350101); null when none. The policy
 * table is only read once a VIP matches the packet, so configs without such VIPs never build it.
 */
export function vipFor(
  model: FortiosModel,
  v: VdomModel,
  q: { iif?: string; dst: bigint; proto: number; port: number; src?: AddrSet },
  /** Central NAT / NGFW policy-based mode: every VIP applies, named in a policy or not (KB 251572). */
  allActive = false,
): Mapped | { vip: Vip; unknown: string; loc: Loc } | null {
  for (const vip of v.vips.values()) {
    if (!vip.enabled) continue; // status disable: maps nothing
    const iifOk = !vip.extintf || vip.extintf === "any" || q.iif === undefined || q.iif === vip.extintf;
    if (!iifOk) continue;
    // srcintf-filter / src-filter: the VIP maps only packets from these interfaces / sources.
    let filterUnknown: { reason: string; loc: Loc } | undefined;
    if (vip.srcintfFilter.length > 0) {
      if (q.iif !== undefined && !vip.srcintfFilter.includes(q.iif)) continue;
      if (q.iif === undefined)
        filterUnknown = {
          reason: `srcintf-filter ${vip.srcintfFilter.join(" ")} maps only packets from those interfaces, and the incoming interface is not given`,
          loc: vip.fields["srcintf-filter"] ?? vip.loc,
        };
    }
    if (vip.srcFilter) {
      const inside = q.src?.intersect(vip.srcFilter);
      if (inside?.isEmpty()) continue;
      if (!inside?.equals(q.src!))
        filterUnknown ??= {
          reason: `src-filter maps only some sources (${vip.srcFilter.toString()})${q.src ? ", and these sources are partly inside" : ""}`,
          loc: vip.fields["src-filter"] ?? vip.loc,
        };
    }
    const ext = externalMatches(model, vip, 4, q.dst);
    if (ext === false) continue;
    const m = mapThrough(vip, q.dst, q.proto, q.port);
    if (m === null) continue;
    if (!allActive && !v.policies.some((p) => p.status.value === "enable" && namesVip(v, p, vip.name)))
      continue;
    if (typeof ext === "string") return { vip, unknown: ext, loc: vip.fields.extip ?? vip.loc };
    if (vip.unsupported) return { vip, unknown: vip.unsupported.reason, loc: vip.unsupported.loc };
    if (filterUnknown) return { vip, unknown: filterUnknown.reason, loc: filterUnknown.loc };
    return m;
  }
  return null;
}

/**
 * The VIP that takes a packet addressed to the FortiGate before local-in sees it; with central NAT or
 * NGFW policy-based mode every VIP applies, named in a policy or not (KB 251572).
 */
export function vipBeforeLocalIn(
  model: FortiosModel,
  v: VdomModel,
  q: { iif?: string; dst: bigint; proto: number; port: number; src?: AddrSet },
): ReturnType<typeof vipFor> {
  if (v.vips.size === 0) return null;
  return vipFor(model, v, q, v.centralNat.value || v.ngfwMode.value === "policy-based");
}
