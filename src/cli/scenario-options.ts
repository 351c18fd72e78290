import { type Command, Option } from "commander";
import { NAT_MODES, VPN_TYPES } from "../vpn/scenario.js";

/**
 * Appends a repeated flag's value: a fresh list on the first (the default `[]` is shared), then in
 * place (copying the list for each of a hub's 1,000 `--peer` flags was quadratic).
 */
const collect = (v: string, prev: string[]) => {
  if (prev.length === 0) return [v];
  prev.push(v);
  return prev;
};

/** The scenario flags shared by plan, rules and audit. */
export function withScenarioOptions(cmd: Command, opts: { vpnRequired?: boolean } = {}): Command {
  const vpn = new Option("--vpn <type>", "VPN type").choices(VPN_TYPES);
  return cmd
    .addOption(opts.vpnRequired === false ? vpn : vpn.makeOptionMandatory())
    .addOption(
      new Option("--nat <mode>", "where NAT is: none, local (this gateway behind NAT), peer, both")
        .choices(NAT_MODES)
        .default("none"),
    )
    .option("--peer <addr>", "peer address or client CIDR (repeatable; omit for any)", collect, [])
    .option("--local <addr>", "this gateway's own address (private address when behind NAT)")
    .option("--public <addr>", "the NAT device's public address (NAT local/both)")
    .addOption(
      new Option("--ike <version>", "IKE version (default: 1 for l2tp-ipsec, 2 otherwise)").choices([
        "1",
        "2",
      ]),
    )
    .option("--ah", "AH (IP protocol 51) is used", false)
    .option("--ipv6", "IPv6 scenario", false)
    .option("--wan <iface>", "the WAN interface name")
    .option("--no-mobike", "IKEv2 without MOBIKE (no float to UDP 4500 without NAT)")
    .option("--encap", "forced UDP encapsulation (strongSwan encap=yes, Libreswan encapsulation=yes)", false)
    .option("--ike-tcp", "IKE/ESP over TCP 4500 (RFC 8229)", false)
    .option("--no-ike-fragmentation", "IKE fragmentation disabled: IKE_AUTH arrives as IP fragments");
}

export interface ScenarioFlags {
  vpn: string;
  nat: string;
  peer: string[];
  local?: string;
  public?: string;
  ike?: string;
  ah: boolean;
  ipv6: boolean;
  wan?: string;
  mobike: boolean;
  encap: boolean;
  ikeTcp: boolean;
  ikeFragmentation: boolean;
}

export const scenarioInput = (o: ScenarioFlags) => ({
  vpn: o.vpn,
  nat: o.nat,
  peers: o.peer,
  local: o.local,
  publicAddress: o.public,
  ike: o.ike,
  ah: o.ah,
  ipv6: o.ipv6,
  wan: o.wan,
  mobike: o.mobike,
  encap: o.encap,
  ikeTcp: o.ikeTcp,
  ikeFragmentation: o.ikeFragmentation,
});
