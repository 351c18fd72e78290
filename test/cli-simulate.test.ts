import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

const ex = (f: string) => resolve("examples/seed001", f);
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("tunnelcheck simulate on the seed 001 FortiGate configs", () => {
  it("shows site 1 down and site 2 up, from site 2's dropped DPD on, until someone intervenes", async () => {
    const r = await cli(["simulate", "--topology", ex("topology.yaml"), "--format", "json"]);
    expect(r.code).toBe(1); // an anomaly: CI can gate on it
    const j = JSON.parse(r.stdout);
    const asym = j.anomalies.filter((a: { type: string }) => a.type === "asymmetric");
    expect(asym).toHaveLength(1);
    expect(asym[0]).toMatchObject({ up: "site2", down: "site1", end: null });
    // Timers from the configs: UDP session 180 s (udp-idle-timer default), DPD on-demand 20 s × 3,
    // after site 2's traffic stops at 240 s: first probe ≈ 261 s, link fail ≈ 321 s.
    expect(asym[0].start).toBeGreaterThan(300);
    expect(asym[0].start).toBeLessThan(340);
    const drops = j.events.filter(
      (e: { gateway: string; type: string; message?: string }) =>
        e.gateway === "site2" && /drop/.test(e.type),
    );
    expect(drops.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(drops)).toMatch(/site2\.conf:314/); // the deny is the real local-in policy 2
  });

  it("is stable for 7 days with the seed's resolution", async () => {
    const r = await cli(["simulate", "--topology", ex("topology-fixed.yaml"), "--format", "json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).anomalies).toEqual([]);
  });

  it("--duration overrides the file and bad values are usage errors", async () => {
    const r = await cli([
      "simulate",
      "--topology",
      ex("topology.yaml"),
      "--duration",
      "4m",
      "--format",
      "json",
    ]);
    expect(r.code).toBe(0); // the failure needs > 4 minutes to show
    expect(JSON.parse(r.stdout).duration).toBe(240);
    expect((await cli(["simulate", "--topology", ex("topology.yaml"), "--duration", "soon"])).code).toBe(2);
    expect((await cli(["simulate"])).code).toBe(2);
    // Zero is a typo, not an outage; a huge value would run for hours.
    for (const [d, why] of [
      ["0", "must be more than zero"],
      ["0s", "must be more than zero"],
      ["100000d", "at most 90d"],
    ]) {
      const bad = await cli(["simulate", "--topology", ex("topology.yaml"), "--duration", d!]);
      expect(bad.code, d).toBe(2);
      expect(bad.stderr).toContain(why);
    }
  });

  it("rejects unknown override keys with the allowed list", async () => {
    const d = mkdtempSync(join(tmpdir(), "tc-sim-"));
    dirs.push(d);
    const f = join(d, "t.yaml");
    writeFileSync(
      f,
      `gateways:\n  site1: { platform: fortios, config: ${ex("site1.conf")} }\n  site2: { platform: fortios, config: ${ex("site2.conf")} }\ntunnels:\n  - { type: site-to-site, between: [site1, site2] }\nsimulate:\n  overrides: { site2: { udp-sesion-ttl: 60 } }\n`,
    );
    const r = await cli(["simulate", "--topology", f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key 'udp-sesion-ttl'; allowed: .*udp-session-ttl/);
  });

  it("renders an SVG timeline", async () => {
    const r = await cli([
      "simulate",
      "--topology",
      ex("topology.yaml"),
      "--duration",
      "10m",
      "--format",
      "svg",
    ]);
    expect(r.stdout).toMatch(/^<svg[\s>]/);
    expect(r.stdout).toMatch(/site1/);
  });
});

describe("tunnelcheck simulate with a gateway behind NAT (topology nat:, public:, nat-devices:)", () => {
  const open = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
  // A Linux NAT router in front of site2: masquerade out, UDP 500/4500 forwarded in.
  const natbox = [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    "-A PREROUTING -d 203.0.113.50/32 -p udp -m udp --dport 500 -j DNAT --to-destination 10.0.0.2:500",
    "-A PREROUTING -d 203.0.113.50/32 -p udp -m udp --dport 4500 -j DNAT --to-destination 10.0.0.2:4500",
    "-A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE",
    "COMMIT",
    "*filter",
    ":INPUT ACCEPT [0:0]",
    ":FORWARD DROP [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-A FORWARD -d 10.0.0.2/32 -p udp -m multiport --dports 500,4500 -j ACCEPT",
    "-A FORWARD -s 10.0.0.0/24 -j ACCEPT",
    "COMMIT",
    "",
  ].join("\n");
  const topo = (tunnel: string, initiator: string, extra = "") => {
    const d = mkdtempSync(join(tmpdir(), "tc-sim-nat-"));
    dirs.push(d);
    writeFileSync(join(d, "open.rules"), open);
    writeFileSync(join(d, "nat.rules"), natbox);
    const f = join(d, "t.yaml");
    writeFileSync(
      f,
      [
        "gateways:",
        "  site1: { platform: iptables, config: open.rules, addresses: [198.51.100.1] }",
        "  site2: { platform: iptables, config: open.rules, addresses: [10.0.0.2] }",
        extra,
        "tunnels:",
        `  - ${tunnel}`,
        "simulate:",
        "  duration: 2h",
        `  initiator: ${initiator}`,
        "",
      ].join("\n"),
    );
    return f;
  };
  type Ev = { gateway: string; type: string; msg: string; src?: string; dst?: string };
  const run = async (f: string) => {
    const r = await cli(["simulate", "--topology", f, "--format", "json"]);
    const j = JSON.parse(r.stdout) as { anomalies: { type: string }[]; events: Ev[]; notes: string[] };
    return { code: r.code, j, notes: j.notes.join("\n") };
  };
  const plainNat = "{ type: site-to-site, between: [site1, site2], nat: peer, public: 203.0.113.50 }";

  it("the side behind NAT brings the tunnel up: its packets leave through the NAT device's public address", async () => {
    const { code, j } = await run(topo(plainNat, "site2"));
    expect(code).toBe(0);
    expect(j.anomalies).toEqual([]);
    const recv = j.events.find((e) => e.gateway === "site1" && e.type === "ike-recv");
    expect(recv?.msg).toMatch(/from 203\.0\.113\.50\[500\]/);
    expect(j.events.some((e) => e.gateway === "site2-nat" && e.type === "fw-session-new")).toBe(true);
    expect(
      j.events
        .filter((e) => e.type === "tunnel-up")
        .map((e) => e.gateway)
        .sort(),
    ).toEqual(["site1", "site2"]);
  });

  it("without port forwards the other side cannot: dropped at the NAT device, never established", async () => {
    const { code, j, notes } = await run(topo(plainNat, "site1"));
    expect(code).toBe(1);
    expect(j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    expect(j.events.filter((e) => e.gateway === "site2-nat" && e.type === "fw-drop").length).toBeGreaterThan(
      0,
    );
    expect(notes).toMatch(/site2 is behind a NAT device \(203\.0\.113\.50\) without port forwards/);
  });

  it("a NAT device named under nat-devices: its real DNAT rules forward IKE, so site 1 can initiate", async () => {
    const f = topo(
      "{ type: site-to-site, between: [site1, site2], nat: peer, nat-devices: { site2: natbox } }",
      "site1",
      "  natbox: { platform: iptables, config: nat.rules, addresses: [203.0.113.50, 10.0.0.1] }",
    );
    const { code, j } = await run(f);
    expect(code).toBe(0);
    expect(j.anomalies).toEqual([]);
    expect(j.events.some((e) => e.gateway === "natbox" && e.type === "fw-session-new")).toBe(true);
    // The same topology with the forward of UDP 500 removed from the NAT device's rules: never up.
    writeFileSync(join(f, "..", "nat.rules"), natbox.replace(/^-A PREROUTING .*--dport 500 .*\n/m, ""));
    const broken = await run(f);
    expect(broken.j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    expect(broken.notes).toMatch(/natbox: UDP 500 to 203\.0\.113\.50 is not forwarded to site2/);
  });

  it("a FortiGate as the NAT device: its VIPs and inbound policy forward IKE, so site 1 can initiate", async () => {
    const vip = (name: string, port: number) =>
      `    edit "${name}"\n        set extip 203.0.113.50\n        set mappedip "10.0.0.2"\n        set extintf "port1"\n        set portforward enable\n        set protocol udp\n        set extport ${port}\n        set mappedport ${port}\n    next`;
    const fgt = (service: string) =>
      [
        "config system interface",
        '    edit "port1"\n        set ip 203.0.113.50 255.255.255.0\n    next',
        '    edit "port2"\n        set ip 10.0.0.1 255.255.255.0\n    next',
        "end",
        "config firewall vip",
        vip("vip-ike", 500),
        vip("vip-natt", 4500),
        "end",
        "config firewall policy",
        `    edit 1\n        set srcintf "port1"\n        set dstintf "port2"\n        set srcaddr "all"\n        set dstaddr "vip-ike" "vip-natt"\n        set action accept\n        set schedule "always"\n        set service "${service}"\n    next`,
        "end",
        "",
      ].join("\n");
    const f = topo(
      "{ type: site-to-site, between: [site1, site2], nat: peer, public: 203.0.113.50, nat-devices: { site2: fgt } }",
      "site1",
      "  fgt: { platform: fortios, config: fgt.conf }",
    );
    writeFileSync(join(f, "..", "fgt.conf"), fgt("IKE"));
    const ok = await run(f);
    expect(ok.code).toBe(0);
    expect(ok.j.anomalies).toEqual([]);
    // The policy allows HTTPS only: the VIPs are active but the packets meet the implicit deny.
    writeFileSync(join(f, "..", "fgt.conf"), fgt("HTTPS"));
    const denied = await run(f);
    expect(denied.j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    expect(denied.notes).toMatch(/fgt: UDP 500 .* implicit deny \(policy 0\)/);
  });
});

describe("tunnelcheck simulate with remote-access tunnels (one representative client)", () => {
  const dir = (files: Record<string, string>) => {
    const d = mkdtempSync(join(tmpdir(), "tc-sim-ra-"));
    dirs.push(d);
    for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text);
    return d;
  };
  const rules = (...input: string[]) =>
    [
      "*filter",
      ":INPUT DROP [0:0]",
      ":FORWARD DROP [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ...input,
      "COMMIT",
      "",
    ].join("\n");
  const established = "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT";
  const run = async (f: string, duration = "2h") => {
    const r = await cli(["simulate", "--topology", f, "--duration", duration, "--format", "json"]);
    const j = JSON.parse(r.stdout) as {
      anomalies: { type: string }[];
      events: { gateway: string; type: string; msg: string }[];
      tunnels: { name: string; final: Record<string, string> }[];
      notes: string[];
    };
    return { code: r.code, j, notes: j.notes.join("\n") };
  };
  const topo = (d: string, tunnel: string, extra = "") => {
    const f = join(d, "t.yaml");
    writeFileSync(
      f,
      [
        "gateways:",
        "  vpn: { platform: iptables, config: vpn.rules, addresses: [198.51.100.10], wan: eth0 }",
        extra,
        "tunnels:",
        `  - ${tunnel}`,
        "",
      ].join("\n"),
    );
    return f;
  };

  it("the bundled L2TP server behind a FortiGate that forgets UDP 4500: the client's Main Mode 5/6 is dropped, never established", async () => {
    const { code, j, notes } = await run(resolve("examples/nat-fortigate/topology.yaml"), "30m");
    expect(code).toBe(1);
    expect(j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    const drops = j.events.filter((e) => e.gateway === "fgt" && e.type === "fw-drop");
    expect(drops.length).toBeGreaterThan(0);
    expect(drops[0]!.msg).toMatch(/Main Mode 5\/6.*:4500->203\.0\.113\.1:4500/);
    // The real reason (the VIP's policy), not "no mapping (expired or never created)".
    expect(drops[0]!.msg).toMatch(
      /udp\/4500 to 203\.0\.113\.1 is not forwarded: VIP 'vpn-natt' applies, but no firewall policy/,
    );
    expect(notes).toMatch(/UDP 4500 to 203\.0\.113\.1 is not forwarded to vpn/);
    expect(notes).toMatch(/one strongSwan client 'vpn-l2tp-ipsec-client' \(IKEv1\)/);
  });

  it("with the FortiGate's policy allowing UDP 4500 too: up on both sides for 6 hours", async () => {
    const ex = (f: string) => readFileSync(resolve("examples/nat-fortigate", f), "utf8");
    const d = dir({
      "vpn.rules": ex("vpn.rules"),
      "fortigate.conf": ex("fortigate.conf").replace(
        "set udp-portrange 500\n",
        "set udp-portrange 500 4500\n",
      ),
      "topology.yaml": ex("topology.yaml"),
    });
    const { code, j } = await run(join(d, "topology.yaml"), "6h");
    expect(code).toBe(0);
    expect(j.anomalies).toEqual([]);
    expect(j.tunnels[0]!.final).toEqual({ "vpn-l2tp-ipsec-client": "up", vpn: "up" });
  });

  it("a Linux L2TP server admitting IKE only as a reply: the client's Main Mode is dropped by the real rule", async () => {
    const d = dir({ "vpn.rules": rules(established, "-A INPUT -p esp -j ACCEPT") });
    const { code, j } = await run(
      topo(d, "{ type: l2tp-ipsec, server: vpn, clients: [203.0.113.0/24], nat: none }"),
    );
    expect(code).toBe(1);
    expect(j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    const drop = j.events.find((e) => e.gateway === "vpn" && e.type === "fw-drop");
    expect(drop?.msg).toMatch(/203\.0\.113\.1:500->198\.51\.100\.10:500/);
  });

  it("IKEv2 road warriors behind NAT, server open for UDP 500/4500: up for a day, NAT-T keepalives hold the mapping", async () => {
    const d = dir({
      "vpn.rules": rules(established, "-A INPUT -i eth0 -p udp -m multiport --dports 500,4500 -j ACCEPT"),
    });
    const { code, j, notes } = await run(
      topo(d, "{ type: ikev2-remote-access, server: vpn, clients: any, nat: peer }"),
      "1d",
    );
    expect(code).toBe(0);
    expect(j.anomalies).toEqual([]);
    expect(j.tunnels[0]!.final).toEqual({ "vpn-ikev2-remote-access-client": "up", vpn: "up" });
    expect(notes).toMatch(
      /at 192\.0\.2\.100 \(clients: any; a documentation address stands for them\) behind a masquerading NAT router/,
    );
  });

  // A FortiGate dial-up server (IKEv2, on wan1), optionally with a local-in deny for IKE.
  const fortigate = (...localIn: string[]) =>
    [
      "config system interface",
      '  edit "wan1"',
      "    set ip 198.51.100.1 255.255.255.0",
      "  next",
      "end",
      "config firewall service custom",
      '  edit "ike-udp"',
      "    set udp-portrange 500 4500",
      "  next",
      "end",
      ...localIn,
      "config vpn ipsec phase1-interface",
      '  edit "ra"',
      "    set type dynamic",
      '    set interface "wan1"',
      "    set ike-version 2",
      "    set dpd on-idle",
      "    set dpd-retryinterval 30",
      "  next",
      "end",
      "config vpn ipsec phase2-interface",
      '  edit "ra_p2"',
      '    set phase1name "ra"',
      "  next",
      "end",
      "",
    ].join("\n");
  const fgtTopo = (conf: string, simulate = "") => {
    const d = dir({ "fgt.conf": conf });
    const f = join(d, "t.yaml");
    writeFileSync(
      f,
      `gateways:\n  fgt: { platform: fortios, config: fgt.conf }\ntunnels:\n  - { type: ikev2-remote-access, server: fgt, clients: any, nat: peer }\n${simulate}`,
    );
    return f;
  };

  it("a FortiGate dial-up server: its phase1's timers, never the initiator; up for a day", async () => {
    const { code, j, notes } = await run(fgtTopo(fortigate()), "1d");
    expect(code).toBe(0);
    expect(j.anomalies).toEqual([]);
    expect(j.tunnels[0]!.final).toEqual({ "fgt-ikev2-remote-access-client": "up", fgt: "up" });
    expect(notes).toMatch(
      /fgt: IKE timers of its dial-up phase1 'ra' \([^)]*fgt\.conf:12\); a dial-up server never initiates/,
    );
    // The client does not start; the FortiGate has traffic for it, and still does not initiate
    // (a static phase1 would: traffic-triggered negotiation).
    const idle = await run(
      fgtTopo(
        fortigate(),
        "simulate:\n  initiator: none\n  traffic:\n    - { from: fgt, to: fgt-ikev2-remote-access-client, every: 60s }\n",
      ),
      "30m",
    );
    expect(idle.j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    expect(idle.j.events.filter((e) => e.type === "ike-initiate")).toEqual([]);
  });

  it("a FortiGate dial-up server whose local-in policy denies IKE: dropped by that policy, never established", async () => {
    const deny = [
      "config firewall local-in-policy",
      "  edit 1",
      '    set intf "wan1"',
      '    set srcaddr "all"',
      '    set dstaddr "all"',
      "    set action deny",
      '    set service "ike-udp"',
      '    set schedule "always"',
      "  next",
      "end",
    ];
    const { code, j } = await run(fgtTopo(fortigate(...deny)), "30m");
    expect(code).toBe(1);
    expect(j.anomalies.map((a) => a.type)).toEqual(["never-established"]);
    const drop = j.events.find((e) => e.gateway === "fgt" && e.type === "fw-drop");
    expect(drop?.msg).toMatch(/192\.0\.2\.100:500->198\.51\.100\.1:500/);
    expect(drop?.msg).toMatch(/edit 1 \([^)]*fgt\.conf:12\)/); // the local-in policy
  });
});

describe("tunnelcheck simulate never guesses a verdict silently", () => {
  it("a FortiGate whose incoming interface is unknown: the undecided packets are an anomaly (exit 1), with wan: exact", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tc-sim-unknown-"));
    dirs.push(dir);
    const topo = (wan: string) => {
      const f = join(dir, `t${wan}.yaml`);
      writeFileSync(
        f,
        `gateways:\n  site2: { platform: fortios, config: ${ex("site2.conf")}${wan ? `, wan: ${wan}` : ""} }\ntunnels:\n  - { type: l2tp-ipsec, server: site2, clients: any }\n`,
      );
      return f;
    };
    const unknown = await cli(["simulate", "--topology", topo(""), "--duration", "10m", "--format", "json"]);
    expect(unknown.code).toBe(1);
    const a = JSON.parse(unknown.stdout).anomalies as Array<{
      type: string;
      gateway?: string;
      reason?: string;
    }>;
    expect(a.map((x) => x.type)).toEqual(["unknown-verdict"]);
    expect(a[0]!.gateway).toBe("site2");
    expect(a[0]!.reason).toMatch(/depends on the incoming interface .* assumed accepted$/);
    // With the interface given, the local-in deny on port1 decides: the client never gets in.
    const exact = await cli([
      "simulate",
      "--topology",
      topo("port1"),
      "--duration",
      "10m",
      "--format",
      "json",
    ]);
    expect((JSON.parse(exact.stdout).anomalies as Array<{ type: string }>).map((x) => x.type)).toEqual([
      "never-established",
    ]);
  });

  it("an IPv6 remote-access server is an input error (exit 2), not an internal error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tc-sim-v6-"));
    dirs.push(dir);
    writeFileSync(
      join(dir, "r.rules"),
      "*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp --dport 500 -j ACCEPT\nCOMMIT\n",
    );
    const f = join(dir, "t.yaml");
    writeFileSync(
      f,
      'gateways:\n  lx: { platform: iptables, config: r.rules, addresses: ["2001:db8::1"], wan: eth0 }\ntunnels:\n  - { type: ikev2-remote-access, server: lx, clients: any, nat: peer }\n',
    );
    const r = await cli(["simulate", "--topology", f, "--duration", "10m"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/2001:db8::1 is IPv6; IPv6 remote access is not simulated yet/);
  });
});

describe("simulate reads the FortiGate's own timers", () => {
  it("phase1 keepalive is the NAT-T keepalive (the FortiOS default 10 s when not set)", async () => {
    const { scenarioFromConfigs, defaultLoaders } = await import("../src/index.js");
    const site = (f: string, edit: (t: string) => string = (t) => t) => ({
      platform: "fortios" as const,
      file: f,
      text: edit(readFileSync(ex(f), "utf8")),
    });
    const built = scenarioFromConfigs(
      {
        gateways: [
          {
            name: "site1",
            ...site("site1.conf", (t) =>
              t.replace("set remote-gw", "set keepalive 300\n        set remote-gw"),
            ),
          },
          { name: "site2", ...site("site2.conf") },
        ],
        tunnels: [{ kind: "site-to-site", between: ["site1", "site2"] }],
      },
      defaultLoaders,
      { duration: 600, traffic: [] },
    );
    const g = (n: string) => built.scenario.gateways.find((x) => x.name === n)!;
    expect(g("site1").overrides?.natKeepalive).toBe(300);
    expect(g("site2").overrides?.natKeepalive).toBe(10); // FortiOS default, from the config's phase1
  });
});
