import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "tc-natdev-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const put = (name: string, text: string) => writeFileSync(join(dir, name), text);

// An L2TP/IPsec server behind a Linux NAT box (seed 000 §5.3 / §6.2).
put(
  "vpn.rules",
  `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -i eth0 -p udp -m multiport --dports 500,4500 -j ACCEPT
-A INPUT -i eth0 -p udp -m policy --dir in --pol ipsec -m udp --dport 1701 -j ACCEPT
COMMIT
`,
);
const edge = (dnat4500: boolean, forward: boolean) => `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -d 203.0.113.1/32 -p udp --dport 500 -j DNAT --to-destination 192.168.1.10:500
${dnat4500 ? "-A PREROUTING -i eth0 -d 203.0.113.1/32 -p udp --dport 4500 -j DNAT --to-destination 192.168.1.10:4500\n" : ""}COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
${forward ? "-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT\n" : ""}COMMIT
`;
const topo = (edgeFile: string) => {
  const f = join(dir, `topo-${edgeFile}.yaml`);
  writeFileSync(
    f,
    `gateways:
  vpn:  { platform: iptables, config: vpn.rules, addresses: [192.168.1.10], wan: eth0 }
  edge: { platform: iptables, config: ${edgeFile}, addresses: [203.0.113.1, 192.168.1.1], wan: eth0 }
tunnels:
  - { type: l2tp-ipsec, server: vpn, clients: any, nat: both, public: 203.0.113.1, nat-devices: { vpn: edge } }
`,
  );
  return f;
};
const ids = async (edgeFile: string) => {
  const r = await cli(["audit", "--topology", topo(edgeFile), "--format", "json"]);
  const j = JSON.parse(r.stdout);
  return {
    code: r.code,
    findings: j.findings as Array<{
      id: string;
      gateway: string;
      flow: string;
      message: string;
      rules: Array<{ line: number }>;
    }>,
  };
};

describe("port forwards on a Linux NAT device in front of the gateway", () => {
  it("finds the missing UDP 4500 forward, on the NAT device", async () => {
    put("edge-500.rules", edge(false, true));
    const r = await ids("edge-500.rules");
    expect(r.code).toBe(1);
    expect(r.findings.map((f) => `${f.gateway}:${f.id}:${f.flow}`)).toEqual([
      "edge:port-forward-missing:natt-forward",
    ]);
    expect(r.findings[0]!.message).toMatch(/delivers it to itself/);
  });
  it("finds a forward that FORWARD drops", async () => {
    put("edge-nofwd.rules", edge(true, false));
    const r = await ids("edge-nofwd.rules");
    expect(r.findings.map((f) => f.id)).toEqual(["port-forward-missing", "port-forward-missing"]);
    expect(r.findings[0]!.message).toMatch(/dropped by policy DROP of filter FORWARD/);
  });
  it("is clean when both ports are forwarded and accepted", async () => {
    put("edge-ok.rules", edge(true, true));
    const r = await ids("edge-ok.rules");
    expect(r.findings).toEqual([]);
    expect(r.code).toBe(0);
  });
});
