/**
 * The VPNs a FortiGate terminates, read from `vpn ipsec phase1-interface` (and the matching
 * `phase2-interface` entries), and the audit scenario each one stands for — so `tunnelcheck audit
 * site2.conf` needs no flags. What the configuration cannot say (a ddns peer's address, an
 * interface address assigned by DHCP, whether NAT is on the path) is listed as unknown, never
 * guessed. Defaults are the model's (model.ts `DEFAULTS`, each with its source).
 */
import { type Family, formatAddress, parsePrefix } from "../../model/address.js";
import type { ScenarioInput } from "../../vpn/scenario.js";
import type { FortiosModel, Phase1, VdomModel } from "./model.js";
import type { Loc } from "./parse.js";

export interface FortiosPhase2 {
  name: string;
  autoNegotiate: boolean;
  keylifeseconds: number;
  encapsulation: "tunnel-mode" | "transport-mode";
  loc: Loc;
}

export interface FortiosVpn {
  /** The phase1-interface name (also the tunnel interface's name). */
  name: string;
  vdom: string;
  /** `static`: fixed peer; `dynamic`: dial-up server (clients from anywhere); `ddns`: peer by FQDN. */
  type: "static" | "dynamic" | "ddns";
  /** `remote-gw` (or `remote-gw6` with `ip-version 6`); null for dial-up and ddns. */
  peer: string | null;
  /** `type ddns`: the peer's FQDN, resolved at run time. */
  peerFqdn?: string;
  ipVersion: 4 | 6;
  /** The interface IKE is bound to. */
  interface: string | null;
  /** `local-gw`, else the interface's address from `system interface`; null when neither is known. */
  localAddress: string | null;
  localAddressFrom: "local-gw" | "interface" | null;
  ikeVersion: 1 | 2;
  mode: "main" | "aggressive";
  /** `enable`: NAT-T allowed (UDP 4500 once NAT is detected); `forced`: always UDP 4500; `disable`: never. */
  nattraversal: "enable" | "disable" | "forced";
  dpd: { mode: "disable" | "on-idle" | "on-demand"; retryinterval: number; retrycount: number };
  /** Phase 1 (IKE SA) lifetime, seconds. */
  keylife: number;
  autoNegotiate: boolean;
  /** NAT-T keepalive interval, seconds. */
  keepalive: number;
  phase2: FortiosPhase2[];
  /** The phase1 CLI fields taken from FortiOS defaults because the config does not set them. */
  defaults: string[];
  /** What the configuration cannot tell, in words an engineer can act on. */
  unknown: string[];
  loc: Loc;
}

const where = (l: Loc): string => `${l.file}:${l.line}`;

function hostAddress(v: string | undefined, family: Family): string | null {
  if (v === undefined) return null;
  try {
    const p = parsePrefix(v);
    if (p.family !== family || p.len !== (family === 4 ? 32 : 128) || p.addr === 0n) return null;
    return formatAddress(family, p.addr);
  } catch {
    return null;
  }
}

function describeVpn(model: FortiosModel, v: VdomModel, p: Phase1): FortiosVpn {
  const unknown: string[] = [];
  const family: Family = p.ipVersion.value;
  const type = (["static", "dynamic", "ddns"] as const).find((t) => t === p.type.value) ?? "static";
  const gwField = family === 4 ? "remote-gw" : "remote-gw6";
  const gwText = family === 4 ? p.remoteGw : p.remoteGw6;
  let peer: string | null = null;
  if (type === "static") {
    peer = hostAddress(gwText, family);
    if (peer === null) {
      unknown.push(
        gwText === undefined
          ? `phase1 "${p.name}" (static) sets no ${gwField}: the peer's address is not in the config`
          : `phase1 "${p.name}": ${gwField} '${gwText}' is not an IPv${family} address (${where(p.fields[gwField] ?? p.loc)})`,
      );
    }
  } else if (type === "ddns") {
    unknown.push(
      `phase1 "${p.name}" is type ddns: the peer's address is resolved from ${p.remotegwDdns ? `"${p.remotegwDdns}"` : "its FQDN"} at run time, so it is not known statically`,
    );
  }
  if (family === 4 && p.remoteGw6 !== undefined) {
    unknown.push(
      `phase1 "${p.name}" sets remote-gw6 ${p.remoteGw6} but ip-version is 4: FortiOS uses remote-gw; the IPv6 gateway is not audited`,
    );
  }
  const iface = p.interface ?? null;
  if (iface === null) unknown.push(`phase1 "${p.name}" sets no interface`);
  let localAddress: string | null = null;
  let localAddressFrom: FortiosVpn["localAddressFrom"] = null;
  const lgw = hostAddress(family === 4 ? p.localGw : p.localGw6, family);
  if (lgw !== null) {
    localAddress = lgw;
    localAddressFrom = "local-gw";
  } else if (iface !== null) {
    const i = model.interfaces.get(iface);
    const a = family === 4 ? i?.ip?.address : i?.ip6?.address;
    if (a !== undefined) {
      localAddress = formatAddress(family, a);
      localAddressFrom = "interface";
    } else {
      unknown.push(
        i === undefined
          ? `interface ${iface} of phase1 "${p.name}" is not in the config: the local address is not known`
          : `interface ${iface} has no static IPv${family} address in the config (mode ${i.mode}): the local address is assigned at run time`,
      );
    }
  }
  const defaults: string[] = [];
  const field = <T>(name: string, val: { value: T; isDefault: boolean }): T => {
    if (val.isDefault) defaults.push(name);
    return val.value;
  };
  const phase2 = [...v.phase2.values()]
    .filter((x) => x.phase1name === p.name)
    .map((x) => ({
      name: x.name,
      autoNegotiate: x.autoNegotiate.value,
      keylifeseconds: x.keylifeseconds.value,
      encapsulation: x.encapsulation.value,
      loc: x.loc,
    }));
  return {
    name: p.name,
    vdom: v.name,
    type,
    peer,
    ...(type === "ddns" && p.remotegwDdns !== undefined ? { peerFqdn: p.remotegwDdns } : {}),
    ipVersion: family,
    interface: iface,
    localAddress,
    localAddressFrom,
    ikeVersion: field("ike-version", p.ikeVersion),
    mode: field("mode", p.mode),
    nattraversal: field("nattraversal", p.nattraversal),
    dpd: {
      mode: field("dpd", p.dpd),
      retryinterval: field("dpd-retryinterval", p.dpdRetryinterval),
      retrycount: field("dpd-retrycount", p.dpdRetrycount),
    },
    keylife: field("keylife", p.keylife),
    autoNegotiate: field("auto-negotiate", p.autoNegotiate),
    keepalive: field("keepalive", p.keepalive),
    phase2,
    defaults,
    unknown,
    loc: p.loc,
  };
}

/** Every phase1-interface of the config (of one VDOM when given), in table order. */
export function discoverVpns(model: FortiosModel, opts: { vdom?: string } = {}): FortiosVpn[] {
  const out: FortiosVpn[] = [];
  for (const v of model.vdoms.values()) {
    if (opts.vdom !== undefined && v.name !== opts.vdom) continue;
    for (const p of v.phase1.values()) out.push(describeVpn(model, v, p));
  }
  return out;
}

export interface VpnScenario {
  /** Options for `makeScenario` (the audit's plan of required flows). */
  input: ScenarioInput;
  /** How the scenario was chosen, and what it assumes. */
  notes: string[];
  /** What the config cannot say; the audit should show these next to its findings. */
  unknown: string[];
  /** The VPN is not exactly one of tunnelcheck's types; `notes` says what was approximated. */
  approximate: boolean;
}

/** The audit scenario for one discovered VPN. */
export function vpnScenarioInput(model: FortiosModel, vpn: FortiosVpn): VpnScenario {
  const notes: string[] = [];
  const unknown = [...vpn.unknown];
  const v = model.vdoms.get(vpn.vdom);
  const l2tp = v?.l2tp;
  const l2tpOn = l2tp?.status.value === true;
  let approximate = false;
  const input: ScenarioInput = {
    ike: vpn.ikeVersion,
    // FortiOS moves IKE to UDP 4500 on NAT detection or with forced encapsulation; the CLI
    // references consulted have no MOBIKE setting for phase1-interface (docs/fortios.md).
    mobike: false,
    encap: vpn.nattraversal === "forced",
    nat: "none",
  };
  if (vpn.ipVersion === 6) input.ipv6 = true;
  if (vpn.localAddress !== null) input.local = vpn.localAddress;
  if (vpn.interface !== null) input.wan = vpn.interface;
  // A moved IKE or NAT-T port is where peers must send: the audit's flows use it.
  for (const [field, port, dflt] of [
    ["ike-port", v?.ikePort, 500],
    ["ike-natt-port", v?.ikeNattPort, 4500],
  ] as const) {
    if (!port || port.isDefault || port.value === dflt) continue;
    if (field === "ike-port") input.ikePort = port.value;
    else input.nattPort = port.value;
    notes.push(
      `system settings ${field} ${port.value}${port.loc ? ` (${where(port.loc)})` : ""}: the IKE daemon listens on UDP ${port.value} instead of ${dflt}, so peers must send ${field === "ike-port" ? "IKE" : "NAT-T"} there; audited on UDP ${port.value}`,
    );
  }
  const at = where(vpn.loc);
  if (vpn.type === "dynamic") {
    input.peers = [];
    if (l2tpOn && vpn.ikeVersion === 1) {
      input.vpn = "l2tp-ipsec";
      notes.push(
        `phase1 "${vpn.name}" (${at}) is a dial-up server and config vpn l2tp is enabled (${where(l2tp!.loc)}): audited as L2TP/IPsec for clients from any address`,
      );
      if (!vpn.phase2.some((x) => x.encapsulation === "transport-mode"))
        notes.push(
          `no phase2-interface of "${vpn.name}" uses encapsulation transport-mode, which L2TP/IPsec clients negotiate`,
        );
      notes.push(
        l2tp!.enforceIpsec.value
          ? "config vpn l2tp has enforce-ipsec enable: the L2TP daemon refuses L2TP outside IPsec"
          : "config vpn l2tp has enforce-ipsec disable (the default): L2TP without IPsec is refused only if local-in policies drop plain UDP 1701",
      );
    } else if (vpn.ikeVersion === 2) {
      input.vpn = "ikev2-remote-access";
      notes.push(
        `phase1 "${vpn.name}" (${at}) is an IKEv2 dial-up server: audited as IKEv2 remote access for clients from any address`,
      );
      if (l2tpOn) notes.push("config vpn l2tp is enabled, but L2TP/IPsec needs an IKEv1 dial-up phase1");
    } else {
      // IKEv1 dial-up without L2TP (FortiClient / XAuth): none of tunnelcheck's types is exact.
      input.vpn = "site-to-site";
      input.responder = true; // a dial-up phase1 never initiates
      approximate = true;
      notes.push(
        `phase1 "${vpn.name}" (${at}) is an IKEv1 dial-up server without L2TP (config vpn l2tp ${l2tp ? "disabled" : "absent"}): not one of tunnelcheck's VPN types; audited as a VPN with IKEv1 peers from any address that only answers (the flows — UDP 500, UDP 4500, ESP — are those of IKEv1 remote access)`,
      );
    }
  } else {
    input.vpn = "site-to-site";
    input.peers = vpn.peer !== null ? [vpn.peer] : [];
    notes.push(
      `phase1 "${vpn.name}" (${at}) is ${vpn.type === "ddns" ? "a ddns" : "a static"} site-to-site gateway${vpn.peer ? ` to ${vpn.peer}` : ""}`,
    );
    if (l2tpOn)
      notes.push("config vpn l2tp is enabled in this VDOM; it serves dial-up phase1s, not this one");
  }
  if (vpn.nattraversal === "forced")
    notes.push("nattraversal forced: IKE and ESP always run on UDP 4500 (raw ESP is not used)");
  else if (vpn.nattraversal === "disable")
    notes.push("nattraversal disable: no NAT-T; the tunnel cannot cross NAT (UDP 4500 is not used)");
  else
    unknown.push(
      `whether NAT is on the path is not in the config (nattraversal enable: FortiOS moves to UDP ${input.nattPort ?? 4500} when it detects NAT); give the topology's nat if there is one`,
    );
  return { input, notes, unknown, approximate };
}
