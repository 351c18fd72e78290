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

describe("a Linux port forward judged for the whole client set, not one sample client", () => {
  const audit = async (name: string, rules: string, clients: string) => {
    put(name, rules);
    const f = join(dir, `topo-set-${name}.yaml`);
    writeFileSync(
      f,
      `gateways:
  vpn:  { platform: iptables, config: vpn.rules, addresses: [192.168.1.10], wan: eth0 }
  edge: { platform: iptables, config: ${name}, addresses: [203.0.113.1, 192.168.1.1], wan: eth0 }
tunnels:
  - { type: l2tp-ipsec, server: vpn, clients: ${clients}, nat: both, public: 203.0.113.1, nat-devices: { vpn: edge } }
`,
    );
    const r = await cli(["audit", "--topology", f, "--format", "json"]);
    const j = JSON.parse(r.stdout);
    type V = {
      gateway: string;
      flow: string;
      status: string;
      parts: Array<{ sources: string; new: string }>;
    };
    return {
      code: r.code,
      findings: j.findings as Array<{
        id: string;
        flow: string;
        message: string;
        rules: Array<{ line: number }>;
      }>,
      verdict: (flow: string) => (j.verdicts as V[]).find((v) => v.gateway === "edge" && v.flow === flow)!,
    };
  };
  const limited = (extra = "") => `*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i eth0 -s 198.51.100.0/24 -d 203.0.113.1/32 -p udp -m multiport --dports 500,4500 -j DNAT --to-destination 192.168.1.10
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
${extra}-A FORWARD -m conntrack --ctstate DNAT -j ACCEPT
COMMIT
`;

  it("a DNAT limited to -s 198.51.100.0/24 with clients: any → port-forward-missing naming the clients left out", async () => {
    const r = await audit("edge-src.rules", limited(), "any");
    expect(r.code).toBe(1);
    expect(r.findings.map((f) => `${f.id}:${f.flow}`)).toEqual([
      "port-forward-missing:ike-forward",
      "port-forward-missing:natt-forward",
    ]);
    const m = r.findings[0]!.message;
    expect(m).toMatch(
      /from any source except 192\.168\.1\.1, 198\.51\.100\.0\/24, 203\.0\.113\.1\) must reach vpn/,
    );
    expect(m).toMatch(/delivers it to itself/);
    expect(m).toMatch(/forwarded from 198\.51\.100\.0\/24/);
    // One part per class of sources, in the verdict rows.
    const v = r.verdict("ike-forward");
    expect(v.status).toBe("mixed");
    expect(v.parts).toEqual([
      {
        sources: "any source except 192.168.1.1, 198.51.100.0/24, 203.0.113.1",
        new: "drop",
        rule: null,
      },
      { sources: "198.51.100.0/24", new: "accept", rule: expect.objectContaining({ line: 4 }) },
    ]);
  });

  it("the same DNAT is clean for clients inside 198.51.100.0/24, and names only the others in a mixed set", async () => {
    const ok = await audit("edge-src-ok.rules", limited(), "[198.51.100.0/24]");
    expect(ok.findings).toEqual([]);
    expect(ok.verdict("natt-forward").status).toBe("accepted-new");
    const mixed = await audit("edge-src-mixed.rules", limited(), "[198.51.100.0/24, 192.0.2.0/24]");
    expect(mixed.findings.map((f) => f.id)).toEqual(["port-forward-missing", "port-forward-missing"]);
    expect(mixed.findings[0]!.message).toMatch(
      /^UDP 500 to 203\.0\.113\.1 \(from 192\.0\.2\.0\/24\) must reach/,
    );
  });

  it("INPUT rules (fail2ban: 300 -s … -j REJECT behind -p tcp --dport 22) do not cut the forwarded clients", async () => {
    const f2b = Array.from(
      { length: 300 },
      (_, i) => `-A f2b-sshd -s 10.${i >> 8}.${i & 255}.1/32 -j REJECT\n`,
    );
    const rules = (jump: string) =>
      limited(`${jump}\n-A FORWARD -p tcp -s 10.9.9.0/24 -j DROP\n`).replace(
        ":OUTPUT ACCEPT [0:0]\n",
        `:OUTPUT ACCEPT [0:0]\n:f2b-sshd - [0:0]\n${f2b.join("")}`,
      );
    // Before: ">256 classes", unknown for every client; now the DNAT's own cut is all there is.
    const expectForwarded = async (name: string, jump: string) => {
      const r = await audit(name, rules(jump), "any");
      expect(r.findings.map((f) => f.id)).toEqual(["port-forward-missing", "port-forward-missing"]);
      for (const flow of ["ike-forward", "natt-forward"])
        expect(r.verdict(flow).parts.map((p) => `${p.sources}:${p.new}`)).toContain("198.51.100.0/24:accept");
    };
    await expectForwarded("edge-f2b.rules", "-A INPUT -p tcp --dport 22 -j f2b-sshd");
    // On the forwarded path itself, rules that cannot match UDP 500/4500 do not cut either.
    await expectForwarded("edge-f2b-fwd.rules", "-A FORWARD -p tcp --dport 22 -j f2b-sshd");
    await expectForwarded("edge-f2b-udp.rules", "-A FORWARD -p udp ! --dport 500:4500 -j f2b-sshd");
    // A rule that may match still cuts: UDP from any port to 500:4500 → the 300 sources → unknown.
    const r = await audit(
      "edge-f2b-may.rules",
      rules("-A FORWARD -p udp --dport 500:4500 -j f2b-sshd"),
      "any",
    );
    expect(r.findings.map((f) => f.id)).toContain("verdict-unknown");
  });

  it("an undecidable rule on the path → verdict-unknown naming that rule", async () => {
    const r = await audit(
      "edge-limit.rules",
      limited("-A FORWARD -s 198.51.100.128/25 -m limit --limit 5/sec -j DROP\n"),
      "[198.51.100.0/24]",
    );
    expect(r.findings.map((f) => f.id)).toEqual(["verdict-unknown", "verdict-unknown"]);
    expect(r.findings[0]!.message).toMatch(
      /from 198\.51\.100\.128\/25\).*edge-limit\.rules:10: -A FORWARD -s 198\.51\.100\.128\/25 -m limit/,
    );
    expect(r.findings[0]!.rules.map((x) => x.line)).toEqual([10]);
    expect(r.verdict("ike-forward").parts.map((p) => `${p.sources}:${p.new}`)).toEqual([
      "198.51.100.0/25:accept",
      "198.51.100.128/25:unknown",
    ]);
  });
});

/** A FortiGate in front of the same L2TP/IPsec server: VIPs for UDP 500/4500 and an inbound policy. */
function fortigate(o: {
  service?: string;
  vip4500?: string;
  policy?: boolean;
  denyAbove?: "plain" | "match-vip";
  settings?: string;
  /** The VIP policy's source: an address object for this subnet instead of "all". */
  srcSubnet?: string;
}): string {
  const vip = (name: string, ext: string, mapped: string) => `    edit "${name}"
        set extip 203.0.113.1
        set mappedip "192.168.1.10"
        set extintf "port1"
        set portforward enable
        set protocol udp
        set extport ${ext}
        set mappedport ${mapped}
    next`;
  const deny = o.denyAbove
    ? `    edit 1
        set name "block-all"
        set srcintf "port1"
        set dstintf "port2"
        set srcaddr "all"
        set dstaddr "all"
        set schedule "always"
        set service "ALL"
${o.denyAbove === "match-vip" ? "        set match-vip enable\n" : ""}    next
`
    : "";
  const allow =
    o.policy === false
      ? ""
      : `    edit 2
        set name "vpn-in"
        set srcintf "port1"
        set dstintf "port2"
        set srcaddr "${o.srcSubnet ? "branch" : "all"}"
        set dstaddr "vip-ike" "vip-natt"
        set action accept
        set schedule "always"
        set service "${o.service ?? "IKE"}"
    next
`;
  return `#config-version=FGVM64-7.2.5-FW-build1517-230606:opmode=0:vdom=0:user=admin
config system settings
${o.settings ?? ""}end
config system interface
    edit "port1"
        set ip 203.0.113.1 255.255.255.0
        set allowaccess ping
    next
    edit "port2"
        set ip 192.168.1.1 255.255.255.0
        set allowaccess ping https ssh
    next
end
${o.srcSubnet ? `config firewall address\n    edit "branch"\n        set subnet ${o.srcSubnet}\n    next\nend\n` : ""}config firewall vip
${vip("vip-ike", "500", "500")}
${vip("vip-natt", o.vip4500 ?? "4500", "4500")}
end
config firewall policy
${deny}${allow}end
`;
}

describe("port forwards on a FortiGate (VIPs) in front of the gateway", () => {
  const audit = async (name: string, conf: string) => {
    put(name, conf);
    const f = join(dir, `topo-${name}.yaml`);
    writeFileSync(
      f,
      `gateways:
  vpn: { platform: iptables, config: vpn.rules, addresses: [192.168.1.10], wan: eth0 }
  fgt: { platform: fortios, config: ${name} }
tunnels:
  - { type: l2tp-ipsec, server: vpn, clients: any, nat: both, public: 203.0.113.1, nat-devices: { vpn: fgt } }
`,
    );
    const r = await cli(["audit", "--topology", f, "--format", "json"]);
    const j = JSON.parse(r.stdout) as {
      findings: Array<{
        id: string;
        gateway: string;
        flow: string;
        message: string;
        rules: Array<{ file: string; line: number; text: string }>;
      }>;
    };
    return { code: r.code, findings: j.findings, stderr: r.stderr };
  };
  const pf = (fs: Array<{ id: string; gateway: string; flow: string }>) =>
    fs.filter((f) => f.id === "port-forward-missing").map((f) => `${f.gateway}:${f.flow}`);

  it("is clean when VIPs for UDP 500/4500 and an accepting policy naming them are there", async () => {
    const r = await audit("fgt-ok.conf", fortigate({}));
    expect(pf(r.findings)).toEqual([]);
  });
  it("a VIP no enabled policy names is inactive (KB 350101): the FortiGate keeps IKE itself", async () => {
    const r = await audit("fgt-nopolicy.conf", fortigate({ policy: false }));
    expect(pf(r.findings)).toEqual(["fgt:ike-forward", "fgt:natt-forward"]);
    expect(r.findings[0]!.message).toMatch(/no active VIP maps udp\/500 on 203\.0\.113\.1/);
  });
  it("the policy's service must allow the mapped port (KB 262988): HTTPS only → implicit deny", async () => {
    const r = await audit("fgt-https.conf", fortigate({ service: "HTTPS" }));
    expect(pf(r.findings)).toEqual(["fgt:ike-forward", "fgt:natt-forward"]);
    expect(r.findings[0]!.message).toMatch(/implicit deny \(policy 0\)/);
  });
  it("a VIP listening on another external port does not forward UDP 4500", async () => {
    const r = await audit("fgt-4501.conf", fortigate({ vip4500: "4501" }));
    expect(pf(r.findings)).toEqual(["fgt:natt-forward"]);
  });
  it("a deny-all above the VIP policy only blocks VIP traffic with match-vip (FD36750)", async () => {
    expect(pf((await audit("fgt-deny.conf", fortigate({ denyAbove: "plain" }))).findings)).toEqual([]);
    const r = await audit("fgt-deny-mv.conf", fortigate({ denyAbove: "match-vip" }));
    expect(pf(r.findings)).toEqual(["fgt:ike-forward", "fgt:natt-forward"]);
    expect(r.findings[0]!.message).toMatch(/firewall policy 1 denies it/);
    expect(r.findings[0]!.rules.map((x) => x.text)).toContain("edit 1");
  });
  it("central NAT: VIPs apply without policies, not modelled → said, not guessed", async () => {
    const r = await audit("fgt-cnat.conf", fortigate({ settings: "    set central-nat enable\n" }));
    expect(pf(r.findings)).toEqual([]);
    expect(JSON.stringify(r.findings)).toMatch(/central NAT/);
  });
  it("the VIP's policy allows only a source subnet: clients: any → port-forward-missing naming the others", async () => {
    const r = await audit("fgt-branch.conf", fortigate({ srcSubnet: "198.51.100.0 255.255.255.0" }));
    expect(pf(r.findings)).toEqual(["fgt:ike-forward", "fgt:natt-forward"]);
    const m = r.findings[0]!.message;
    expect(m).toMatch(
      /from any source except 192\.168\.1\.1, 198\.51\.100\.0\/24, 203\.0\.113\.1\) must reach vpn/,
    );
    expect(m).toMatch(/implicit deny \(policy 0\)/);
    expect(m).toMatch(/forwarded from 198\.51\.100\.0\/24/);
  });
  it("the same VIP and policy are clean for clients inside the policy's subnet", async () => {
    const f = join(dir, "topo-fgt-branch-ok.yaml");
    put("fgt-branch-ok.conf", fortigate({ srcSubnet: "198.51.100.0 255.255.255.0" }));
    writeFileSync(
      f,
      `gateways:
  vpn: { platform: iptables, config: vpn.rules, addresses: [192.168.1.10], wan: eth0 }
  fgt: { platform: fortios, config: fgt-branch-ok.conf }
tunnels:
  - { type: l2tp-ipsec, server: vpn, clients: [198.51.100.0/25], nat: both, public: 203.0.113.1, nat-devices: { vpn: fgt } }
`,
    );
    const r = await cli(["audit", "--topology", f, "--format", "json"]);
    expect(JSON.parse(r.stdout).findings).toEqual([]);
    expect(r.code).toBe(0);
  });
});

describe("a FortiGate VIP that cannot be modelled is said so, with the line, never guessed", () => {
  const vipConf = (body: string) => `config system interface
    edit "port1"
        set ip 203.0.113.1 255.255.255.0
    next
    edit "port2"
        set ip 192.168.1.1 255.255.255.0
    next
end
config firewall vip
    edit "vip-ike"
${body}
    next
end
config firewall policy
    edit 2
        set srcintf "port1"
        set dstintf "port2"
        set srcaddr "all"
        set dstaddr "vip-ike"
        set action accept
        set schedule "always"
        set service "ALL"
    next
end
`;
  const cases: Array<[string, string, RegExp]> = [
    [
      "bad-extport",
      '        set extip 203.0.113.1\n        set extintf "port1"\n        set mappedip "192.168.1.10"\n        set portforward enable\n        set protocol udp\n        set extport abc',
      /extport 'abc' is not a port or port range \(.*bad-extport\.conf:16\)/,
    ],
    [
      "bad-extip",
      '        set extip 203.0.113.999\n        set extintf "port1"\n        set mappedip "192.168.1.10"',
      /extip '203\.0\.113\.999' cannot be read \(.*bad-extip\.conf:11\)/,
    ],
    [
      "two-mapped",
      '        set extip 203.0.113.1\n        set extintf "port1"\n        set mappedip "192.168.1.10" "192.168.1.11"',
      /several mappedip ranges \(192\.168\.1\.10, 192\.168\.1\.11\): which one serves a packet is not modelled/,
    ],
    [
      "load-balance",
      '        set type load-balance\n        set extip 203.0.113.1\n        set extintf "port1"\n        set mappedip "192.168.1.10"',
      /type load-balance is not modelled \(only static-nat\)/,
    ],
    [
      "no-extintf",
      '        set extip 203.0.113.1\n        set mappedip "192.168.1.10"',
      /firewall policy 2 may match: the interface the packet arrives on is unknown \(set extintf on the VIP\)/,
    ],
  ];
  for (const [name, body, says] of cases) {
    it(`${name}: verdict-unknown on the NAT device, naming the reason`, async () => {
      put(`${name}.conf`, vipConf(body));
      const f = join(dir, `topo-${name}.yaml`);
      writeFileSync(
        f,
        `gateways:
  vpn: { platform: iptables, config: vpn.rules, addresses: [192.168.1.10], wan: eth0 }
  fgt: { platform: fortios, config: ${name}.conf }
tunnels:
  - { type: l2tp-ipsec, server: vpn, clients: any, nat: both, public: 203.0.113.1, nat-devices: { vpn: fgt } }
`,
      );
      const r = await cli(["audit", "--topology", f, "--format", "json"]);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as { findings: Array<{ id: string; gateway: string; message: string }> };
      const mine = j.findings.filter((x) => x.gateway === "fgt");
      expect(mine.map((x) => x.id)).toEqual(["verdict-unknown", "verdict-unknown"]);
      expect(mine[0]!.message).toMatch(says);
    });
  }
});

describe("the bundled example examples/nat-fortigate/ (the README's command)", () => {
  it("finds the FortiGate policy that leaves UDP 4500 to the implicit deny", async () => {
    const r = await cli(["audit", "--topology", "examples/nat-fortigate/topology.yaml", "--format", "json"]);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout) as { findings: Array<{ id: string; gateway: string; flow: string }> };
    expect(j.findings.map((f) => `${f.gateway}:${f.id}:${f.flow}`)).toEqual([
      "fgt:port-forward-missing:natt-forward",
    ]);
    // The text lists the device's port-forward verdicts under its own name, forwarded or not.
    const text = (await cli(["audit", "--topology", "examples/nat-fortigate/topology.yaml"])).stdout;
    expect(text).toMatch(
      /^fgt — tunnel l2tp-ipsec@vpn\n {2}✓ ike-forward {8}accepted as new\n {2}✗ natt-forward {7}blocked$/m,
    );
  });
});
