/**
 * The iptables rulesets of seed 000 ("Determining the Correct Ports for IPSec/L2TP"), transcribed verbatim
 * (minus the "$ " prompt), with the tunnelcheck scenario each section describes. Shared by the evaluator
 * tests (test/iptables-generate.test.ts) and the kernel tests (test/kernel/seed-equivalence.test.ts).
 */
import type { ScenarioInput } from "../../src/vpn/scenario.js";

export interface SeedRuleset {
  section: string;
  title: string;
  /** Where the rules run: on the VPN gateway, or on the NAT device in front of it. */
  where: "gateway" | "nat-device";
  /** Verbatim from the section. */
  lines: string[];
  /** Rules the section says are also needed, quoted from where the seed gives them. */
  plus?: string[];
  scenario: ScenarioInput;
}

/** Placeholder in §5.3, replaced by the gateway's address when loaded. */
export const VPN_SERVER_IP = "<VPN_SERVER_IP>";

export const SEED_000: SeedRuleset[] = [
  {
    section: "5.3",
    title: "Example iptables Configuration for NAT (port forwards on the NAT device)",
    where: "nat-device",
    lines: [
      "iptables -A PREROUTING -t nat -p udp --dport 500 -j DNAT --to-destination <VPN_SERVER_IP>:500",
      "iptables -A PREROUTING -t nat -p udp --dport 4500 -j DNAT --to-destination <VPN_SERVER_IP>:4500",
      "iptables -A PREROUTING -t nat -p udp --dport 1701 -j DNAT --to-destination <VPN_SERVER_IP>:1701",
    ],
    scenario: { vpn: "l2tp-ipsec", nat: "local" },
  },
  {
    section: "6.1",
    title: "iptables Rules for Non-NAT Environments",
    where: "gateway",
    lines: [
      "iptables -A INPUT -i eth0 -p udp --dport 500 -j ACCEPT",
      "iptables -A INPUT -i eth0 -p udp --dport 4500 -j ACCEPT",
      "iptables -A INPUT -i eth0 -p 50 -j ACCEPT # ESP protocol",
      "iptables -A INPUT -i eth0 -p 51 -j ACCEPT # AH protocol",
      "iptables -A INPUT -i eth0 -p udp -m policy --dir in --pol ipsec -m udp --dport 1701 -j ACCEPT",
    ],
    // The seed opens AH unconditionally; tunnelcheck only with --ah.
    scenario: { vpn: "l2tp-ipsec", nat: "none", ike: 1, ah: true, wan: "eth0" },
  },
  {
    section: "6.2",
    title: "iptables Rules for Servers Behind NAT (the gateway's own firewall)",
    where: "gateway",
    lines: [
      "iptables -A INPUT -i eth0 -p udp --dport 500 -j ACCEPT",
      "iptables -A INPUT -i eth0 -p udp --dport 4500 -j ACCEPT",
      "iptables -A INPUT -i eth0 -p udp -m policy --dir in --pol ipsec -m udp --dport 1701 -j ACCEPT",
    ],
    scenario: { vpn: "l2tp-ipsec", nat: "local", wan: "eth0" },
  },
  {
    section: "7.3",
    title: "Firewall Considerations for Site-to-Site VPNs (ESP and AH; IKE comes from 7.5)",
    where: "gateway",
    lines: [
      "iptables -A INPUT -i eth0 -p 50 -j ACCEPT # Allow ESP (Protocol 50)",
      "iptables -A INPUT -i eth0 -p 51 -j ACCEPT # Allow AH (Protocol 51)",
    ],
    // "In addition to these, we'll still need to open UDP 500 for IKE": the rule §7.5 gives for it.
    plus: ["iptables -A INPUT -i eth0 -p udp --dport 500 -j ACCEPT # IKE"],
    scenario: { vpn: "site-to-site", nat: "none", ike: 1, ah: true, wan: "eth0" },
  },
  {
    section: "7.5a",
    title: "iptables Rules for Site-to-Site VPNs, without NAT",
    where: "gateway",
    lines: [
      "iptables -A INPUT -i eth0 -p udp --dport 500 -j ACCEPT # IKE",
      "iptables -A INPUT -i eth0 -p 50 -j ACCEPT # ESP",
      "iptables -A INPUT -i eth0 -p 51 -j ACCEPT # AH",
    ],
    scenario: { vpn: "site-to-site", nat: "none", ike: 1, ah: true, wan: "eth0" },
  },
  {
    section: "7.5b",
    title: "iptables Rules for Site-to-Site VPNs, with NAT",
    where: "gateway",
    lines: [
      "iptables -A INPUT -i eth0 -p udp --dport 500 -j ACCEPT # IKE",
      "iptables -A INPUT -i eth0 -p udp --dport 4500 -j ACCEPT # NAT-T",
    ],
    scenario: { vpn: "site-to-site", nat: "peer", ike: 1, ah: true, wan: "eth0" },
  },
];

export const seed = (section: string): SeedRuleset => {
  const s = SEED_000.find((x) => x.section === section);
  if (!s) throw new Error(`no seed section ${section}`);
  return s;
};

/** Seed lines with the placeholder filled in, as a shell script. */
export const seedScript = (s: SeedRuleset, vpnServerIp?: string): string =>
  `${[...s.lines, ...(s.plus ?? [])].map((l) => (vpnServerIp ? l.replaceAll(VPN_SERVER_IP, vpnServerIp) : l)).join("\n")}\n`;
