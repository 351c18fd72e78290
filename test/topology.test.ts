import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseTopology, TopologyError } from "../src/topology/load.js";
import { topologyJsonSchema } from "../src/topology/schema.js";

const errors = (text: string): string[] => {
  try {
    parseTopology(text, "topo.yaml");
  } catch (e) {
    if (e instanceof TopologyError) return e.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);
    throw e;
  }
  return [];
};

describe("topology file", () => {
  it("accepts the documented shape", () => {
    const t = parseTopology(
      `gateways:
  site1: { platform: fortios, config: site1.conf }
  site2: { platform: fortios, config: site2.conf }
  vpn:   { platform: iptables, config: rules.v4, addresses: [198.51.100.10], wan: eth0 }
tunnels:
  - { type: site-to-site, between: [site1, site2] }
  - { type: l2tp-ipsec, server: vpn, clients: any, nat: none }
simulate:
  duration: 2h
  initiator: site2
  traffic:
    - { from: site1, to: site2, every: 1s }
  overrides: { site2: { udp-session-ttl: 180 } }
`,
      "/etc/vpn/topo.yaml",
    );
    expect(Object.keys(t.gateways)).toEqual(["site1", "site2", "vpn"]);
    expect(t.tunnels).toHaveLength(2);
    expect(t.baseDir).toBe("/etc/vpn");
  });

  it("reports each error with line, column and what was expected", () => {
    expect(
      errors(`gateways:
  site1: { platform: fortios, config: site1.conf, bogus: 1 }
tunnels:
  - { type: l2tp-ipsec, server: site1, nat: sometimes }
  - { type: wireguard }
`),
    ).toEqual([
      "2:51 unknown key 'bogus'",
      "4:45 tunnels.0.nat: expected one of: none, local, peer, both",
      "5:13 tunnels.1.type: expected type: one of l2tp-ipsec, ikev2-remote-access, site-to-site",
    ]);
  });

  it("checks that tunnels name defined gateways", () => {
    expect(
      errors(
        "gateways:\n  a: { platform: iptables, config: x }\ntunnels:\n  - { type: site-to-site, between: [a, b] }\n",
      ),
    ).toEqual(["4:40 unknown gateway 'b'; defined: a"]);
  });

  it("refuses a tunnel from a gateway to itself, at the second name", () => {
    expect(
      errors(
        "gateways:\n  a: { platform: iptables, config: x }\ntunnels:\n  - { type: site-to-site, between: [a, a] }\n",
      ),
    ).toEqual(["4:40 a tunnel connects two different gateways; 'a' is named twice"]);
  });

  it("checks that clients are addresses or prefixes", () => {
    expect(
      errors(
        "gateways:\n  a: { platform: iptables, config: x }\ntunnels:\n  - { type: l2tp-ipsec, server: a, clients: [10.0.0.0/8, bogus] }\n",
      ),
    ).toEqual(["4:58 tunnels.0.clients.1: expected an IPv4 or IPv6 address or prefix, got 'bogus'"]);
  });

  it("reports YAML syntax errors with a position", () => {
    expect(errors("gateways: [\n")[0]).toMatch(/^2:1 /);
    expect(errors("gateways:\n  a: 1\n  a: 2\n")[0]).toMatch(/^3:3 .*[Uu]nique/);
  });

  it("ships a JSON Schema that matches the validator", () => {
    const shipped = JSON.parse(
      readFileSync(new URL("../schema/topology.schema.json", import.meta.url), "utf8"),
    );
    expect(shipped).toEqual(topologyJsonSchema());
  });
});
