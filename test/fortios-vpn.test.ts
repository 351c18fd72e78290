import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { auditGateway } from "../src/analysis/audit.js";
import { runAudit } from "../src/analysis/run-audit.js";
import { AddrSet } from "../src/model/addrset.js";
import { fortiosEvaluator } from "../src/platforms/fortios/evaluator.js";
import { loadFortiosGateway } from "../src/platforms/fortios/gateway.js";
import { buildModel, type FortiosModel, loadFortios } from "../src/platforms/fortios/model.js";
import { formatDiagnostic, parseFortios } from "../src/platforms/fortios/parse.js";
import { renderTraceText, traceFortios } from "../src/platforms/fortios/trace.js";
import { discoverVpns, vpnScenarioInput } from "../src/platforms/fortios/vpn.js";
import { loadIptablesGateway } from "../src/platforms/iptables/gateway.js";
import { planFlows } from "../src/vpn/flows.js";
import { makeScenario } from "../src/vpn/scenario.js";

const EXAMPLES = new URL("../examples/seed001/", import.meta.url).pathname;
const CORPUS = "/work/shared/corpus/fortios";

const load = (path: string, name: string): FortiosModel =>
  loadFortios(readFileSync(path, "utf8"), { file: name }).model;
const example = (f: string) => load(join(EXAMPLES, f), `examples/seed001/${f}`);
const inline = (text: string): FortiosModel => {
  const r = parseFortios(text, { file: "t.conf" });
  expect(r.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic)).toEqual([]);
  return buildModel(r.tree);
};

/** Zero-config audit of one FortiGate: its phase1s → scenarios → plans → evaluated findings. */
function audit(model: FortiosModel, gateway: string) {
  return discoverVpns(model).flatMap((vpn) => {
    const s = vpnScenarioInput(model, vpn);
    const plan = planFlows(makeScenario(s.input));
    return auditGateway({
      gateway,
      tunnel: vpn.name,
      plan,
      evaluator: fortiosEvaluator(model, { vdom: vpn.vdom }),
    }).findings;
  });
}

describe("seed 001: the VPNs in phase1-interface", () => {
  it("site 1: phase1 site1 to 10.56.240.221 on port1, local 10.56.240.208, the FortiOS defaults", () => {
    const [vpn, ...rest] = discoverVpns(example("site1.conf"));
    expect(rest).toEqual([]);
    expect(vpn).toMatchObject({
      name: "site1",
      vdom: "root",
      type: "static",
      peer: "10.56.240.221",
      ipVersion: 4,
      interface: "port1",
      localAddress: "10.56.240.208",
      localAddressFrom: "interface",
      ikeVersion: 1,
      mode: "main",
      nattraversal: "enable",
      dpd: { mode: "on-demand", retryinterval: 20, retrycount: 3 },
      keylife: 86400,
      autoNegotiate: true,
      unknown: [],
      loc: { file: "examples/seed001/site1.conf", text: 'edit "site1"' },
    });
    // The seed sets none of these: every one is FortiOS's default, and says so.
    expect(vpn!.defaults).toEqual([
      "ike-version",
      "mode",
      "nattraversal",
      "dpd",
      "dpd-retryinterval",
      "dpd-retrycount",
      "keylife",
      "auto-negotiate",
      "keepalive",
    ]);
    expect(vpn!.phase2.map((p) => [p.name, p.encapsulation])).toEqual([["site1", "tunnel-mode"]]);
  });

  it("site 2: the mirror image, and its scenario for the audit", () => {
    const model = example("site2.conf");
    const [vpn] = discoverVpns(model);
    expect([vpn!.name, vpn!.peer, vpn!.localAddress]).toEqual(["site2", "10.56.240.208", "10.56.240.221"]);
    const s = vpnScenarioInput(model, vpn!);
    expect(s.input).toEqual({
      vpn: "site-to-site",
      ike: 1,
      peers: ["10.56.240.208"],
      local: "10.56.240.221",
      wan: "port1",
      nat: "none",
      mobike: false,
      encap: false,
    });
    expect(s.approximate).toBe(false);
    expect(s.unknown).toEqual([
      "whether NAT is on the path is not in the config (nattraversal enable: FortiOS moves to UDP 4500 when it detects NAT); give the topology's nat if there is one",
    ]);
    expect(() => makeScenario(s.input)).not.toThrow();
  });
});

describe("seed 001: zero-config audit (phase1 → scenario → evaluated flows)", () => {
  it("site 2 is ike-reply-only: policy 2 denies the peer's IKE as new, site 2's own session lets replies in for 180 s", () => {
    const findings = audit(example("site2.conf"), "site2");
    expect(findings.map((f) => f.id)).toEqual(["ike-reply-only"]);
    const f = findings[0]!;
    expect(f.message).toMatch(
      /^UDP 500 from 10\.56\.240\.208 is accepted only as a reply \(dropped by examples\/seed001\/site2\.conf:314 when new\)/,
    );
    expect(f.message).toMatch(
      /after 180 s without packets \(FortiOS UDP session idle timeout, system global udp-idle-timer default 180 s/,
    );
    expect(f.rules).toEqual([
      { file: "examples/seed001/site2.conf", line: 314, col: 5, text: "edit 2 # implicit deny" },
    ]);
  });

  it("site 1 (no local-in policy) has no reply-only trap; it accepts IKE from anyone, which is flagged as a warning", () => {
    const ids = audit(example("site1.conf"), "site1").map((f) => f.id);
    expect(ids).not.toContain("ike-reply-only");
    expect(ids).toEqual(["ike-open-to-any"]);
  });

  it("site 2 with the seed's resolution is clean", () => {
    expect(audit(example("site2-fixed.conf"), "site2")).toEqual([]);
  });

  it("system settings ike-port / ike-natt-port move the audited flows: the IKE service (500/4500) no longer covers them", () => {
    const fixed = readFileSync(join(EXAMPLES, "site2-fixed.conf"), "utf8");
    const withPorts = (lines: string[]) =>
      fixed.replace(
        "config firewall local-in-policy",
        `config system settings\n${lines.join("\n")}\nend\nconfig firewall local-in-policy`,
      );
    const moved = loadFortios(withPorts(["    set ike-port 5000"]), { file: "p.conf" }).model;
    const vpn = discoverVpns(moved)[0]!;
    const s = vpnScenarioInput(moved, vpn);
    expect(s.input.ikePort).toBe(5000);
    expect(s.notes.join("\n")).toMatch(
      /system settings ike-port 5000 \(p\.conf:\d+\): the IKE daemon listens on UDP 5000/,
    );
    // Policy 3 accepts service IKE (UDP 500/4500) from the peer; UDP 5000 falls to policy 2's deny.
    const f = audit(moved, "site2");
    expect(f.map((x) => x.id)).toEqual(["ike-reply-only"]);
    expect(f[0]!.message).toMatch(/^UDP 5000 from 10\.56\.240\.208 is accepted only as a reply/);
    expect(planFlows(makeScenario(s.input)).flows.find((x) => x.id === "ike-in")?.port).toBe(5000);
    // NAT-T moved too: required once NAT is on the path, and UDP 4500 no longer stands for it.
    const both = loadFortios(withPorts(["    set ike-port 5000", "    set ike-natt-port 5001"]), {
      file: "p.conf",
    }).model;
    const sb = vpnScenarioInput(both, discoverVpns(both)[0]!);
    const plan = planFlows(makeScenario({ ...sb.input, nat: "peer" }));
    expect(
      plan.flows.filter((x) => x.direction === "inbound" && x.protocol === "udp").map((x) => x.port),
    ).toEqual([5000, 5001]);
    // Back at the defaults (also when written out): nothing changes.
    const same = loadFortios(withPorts(["    set ike-port 500", "    set ike-natt-port 4500"]), {
      file: "p.conf",
    }).model;
    expect(vpnScenarioInput(same, discoverVpns(same)[0]!).input.ikePort).toBeUndefined();
    expect(audit(same, "site2")).toEqual([]);
  });
});

describe("the corpus configs with phase1-interface", () => {
  it("40net ipsec-test: 16 IKEv2 tunnels each way, local-gw as the local address, keylife 28800", () => {
    for (const [f, lo, re] of [
      ["40net_ipsec-test_fgt-a.conf", "172.16.136", "172.16.137"],
      ["40net_ipsec-test_fgt-b.conf", "172.16.137", "172.16.136"],
    ] as const) {
      const model = load(join(CORPUS, f), f);
      const vpns = discoverVpns(model);
      expect(vpns).toHaveLength(16);
      vpns.forEach((v, i) => {
        expect(v).toMatchObject({
          name: `VPN${i + 1}`,
          type: "static",
          interface: "port1",
          peer: `${re}.${i + 4}`,
          localAddress: `${lo}.${i + 4}`,
          localAddressFrom: "local-gw",
          ikeVersion: 2,
          keylife: 28800,
          unknown: [],
        });
        expect(v.phase2).toHaveLength(1);
        expect(v.phase2[0]!).toMatchObject({ autoNegotiate: true, keylifeseconds: 3600 });
        const s = vpnScenarioInput(model, v);
        const sc = makeScenario(s.input);
        expect([sc.vpn, sc.ike, sc.mobike, sc.peers.length]).toEqual(["site-to-site", 2, false, 1]);
      });
    }
  });

  it("Aviatrix templates: the peer is a template placeholder and port1 is not in the file — said, not guessed", () => {
    for (const f of ["aviatrix-sdwan_headend-ha.conf.tpl", "aviatrix-sdwan_headend-single.conf.tpl"]) {
      const model = load(join(CORPUS, f), f);
      const vpns = discoverVpns(model);
      expect(vpns.length).toBeGreaterThan(0);
      for (const v of vpns) {
        expect(v.peer).toBeNull();
        expect(v.localAddress).toBeNull();
        expect(v.dpd.retryinterval).toBe(5);
        expect(v.unknown[0]).toMatch(/remote-gw '\$\{transit_gw(_ha)?\}' is not an IPv4 address \(aviatrix/);
        expect(v.unknown[1]).toMatch(/interface port1 of phase1 .* is not in the config/);
        const s = vpnScenarioInput(model, v);
        expect(s.input.peers).toEqual([]);
        expect(makeScenario(s.input).vpn).toBe("site-to-site");
      }
    }
  });
});

const IFACES = [
  "config system interface",
  '  edit "wan1"',
  "    set ip 198.51.100.1 255.255.255.0",
  "  next",
  '  edit "wan2"',
  "    set mode dhcp",
  "  next",
  "end",
];
const phase1 = (name: string, ...lines: string[]) => [
  "config vpn ipsec phase1-interface",
  `  edit "${name}"`,
  ...lines.map((l) => `    ${l}`),
  "  next",
  "end",
];

describe("dial-up, ddns, IPv6 and what cannot be derived", () => {
  it("IKEv2 dial-up → ikev2-remote-access for clients from anywhere", () => {
    const m = inline(
      [...IFACES, ...phase1("ra", "set type dynamic", 'set interface "wan1"', "set ike-version 2")].join(
        "\n",
      ),
    );
    const [vpn] = discoverVpns(m);
    expect([vpn!.type, vpn!.peer, vpn!.localAddress]).toEqual(["dynamic", null, "198.51.100.1"]);
    const s = vpnScenarioInput(m, vpn!);
    expect([s.input.vpn, s.input.peers, s.approximate]).toEqual(["ikev2-remote-access", [], false]);
    expect(makeScenario(s.input).ike).toBe(2);
  });

  it("IKEv1 dial-up with config vpn l2tp enabled → l2tp-ipsec, saying so", () => {
    const m = inline(
      [
        ...IFACES,
        ...phase1("l2tp", "set type dynamic", 'set interface "wan1"'),
        "config vpn ipsec phase2-interface",
        '  edit "l2tp_p2"',
        '    set phase1name "l2tp"',
        "    set encapsulation transport-mode",
        "  next",
        "end",
        "config vpn l2tp",
        "  set status enable",
        "  set eip 10.9.0.100",
        "  set sip 10.9.0.1",
        "end",
      ].join("\n"),
    );
    const [vpn] = discoverVpns(m);
    const s = vpnScenarioInput(m, vpn!);
    expect(s.input.vpn).toBe("l2tp-ipsec");
    expect(s.notes[0]).toMatch(/config vpn l2tp is enabled \(t\.conf:\d+\): audited as L2TP\/IPsec/);
    expect(s.notes).toContain(
      "config vpn l2tp has enforce-ipsec disable (the default): L2TP without IPsec is refused only if local-in policies drop plain UDP 1701",
    );
    expect(vpn!.phase2[0]!.encapsulation).toBe("transport-mode");
    expect(makeScenario(s.input).vpn).toBe("l2tp-ipsec");
  });

  it("IKEv1 dial-up without L2TP: approximated, and flagged as such", () => {
    const m = inline([...IFACES, ...phase1("fct", "set type dynamic", 'set interface "wan1"')].join("\n"));
    const s = vpnScenarioInput(m, discoverVpns(m)[0]!);
    expect(s.approximate).toBe(true);
    expect(s.notes[0]).toMatch(/not one of tunnelcheck's VPN types/);
    expect(() => makeScenario(s.input)).not.toThrow();
  });

  it("ddns peer, DHCP interface, forced NAT-T, remote-gw6 under ip-version 4: unknowns and notes", () => {
    const m = inline(
      [
        ...IFACES,
        ...phase1(
          "dd",
          "set type ddns",
          'set interface "wan2"',
          'set remotegw-ddns "peer.example.net"',
          "set nattraversal forced",
          "set remote-gw6 2001:db8::7",
        ),
      ].join("\n"),
    );
    const [vpn] = discoverVpns(m);
    expect([vpn!.peer, vpn!.peerFqdn, vpn!.localAddress, vpn!.nattraversal]).toEqual([
      null,
      "peer.example.net",
      null,
      "forced",
    ]);
    expect(vpn!.unknown).toEqual([
      'phase1 "dd" is type ddns: the peer\'s address is resolved from "peer.example.net" at run time, so it is not known statically',
      'phase1 "dd" sets remote-gw6 2001:db8::7 but ip-version is 4: FortiOS uses remote-gw; the IPv6 gateway is not audited',
      "interface wan2 has no static IPv4 address in the config (mode dhcp): the local address is assigned at run time",
    ]);
    const s = vpnScenarioInput(m, vpn!);
    expect(s.input).toMatchObject({ vpn: "site-to-site", peers: [], encap: true, wan: "wan2" });
    expect(s.input.local).toBeUndefined();
    expect(s.notes).toContain(
      "nattraversal forced: IKE and ESP always run on UDP 4500 (raw ESP is not used)",
    );
    expect(makeScenario(s.input).encap).toBe(true);
  });

  it("ip-version 6: the peer is remote-gw6, the local address the interface's IPv6 address", () => {
    const m = inline(
      [
        "config system interface",
        '  edit "wan1"',
        "    config ipv6",
        "      set ip6-address 2001:db8::1/64",
        "    end",
        "  next",
        "end",
        ...phase1(
          "v6",
          'set interface "wan1"',
          "set ip-version 6",
          "set remote-gw6 2001:db8::7",
          "set ike-version 2",
        ),
      ].join("\n"),
    );
    const [vpn] = discoverVpns(m);
    expect([vpn!.ipVersion, vpn!.peer, vpn!.localAddress]).toEqual([6, "2001:db8::7", "2001:db8::1"]);
    const sc = makeScenario(vpnScenarioInput(m, vpn!).input);
    expect([sc.family, sc.peers.length]).toEqual([6, 1]);
  });

  it("a multi-VDOM config: each VPN carries its VDOM, and discovery can be restricted to one", () => {
    const m = inline(
      [
        "config vdom",
        "edit root",
        "next",
        "edit cust",
        "next",
        "end",
        "config global",
        ...IFACES,
        "end",
        "config vdom",
        "edit cust",
        ...phase1("c1", 'set interface "wan1"', "set remote-gw 203.0.113.9"),
        "next",
        "end",
      ].join("\n"),
    );
    expect(discoverVpns(m).map((v) => [v.vdom, v.name, v.peer])).toEqual([["cust", "c1", "203.0.113.9"]]);
    expect(discoverVpns(m, { vdom: "root" })).toEqual([]);
  });
});

describe("no secret in any output of the engine", () => {
  it("VPN discovery, scenarios, partitions, traces and audit findings of the seed examples", () => {
    for (const f of ["site1.conf", "site2.conf", "site2-fixed.conf"]) {
      const text = readFileSync(join(EXAMPLES, f), "utf8");
      // The secret values of the file: ENC blobs, the PEM body, the SNMP community name.
      const secrets = [
        ...[...text.matchAll(/ ENC (\S+)/g)].map((m) => m[1]!),
        ...[...text.matchAll(/-----BEGIN [^-]+-----\n([^\n]+)/g)].map((m) => m[1]!),
        ...[...text.matchAll(/config system snmp community\n\s+edit \d+\n\s+set name "([^"]+)"/g)].map(
          (m) => m[1]!,
        ),
      ];
      expect(secrets.length).toBeGreaterThanOrEqual(4);
      const model = example(f);
      const ev = fortiosEvaluator(model);
      const outputs: unknown[] = [];
      for (const vpn of discoverVpns(model)) outputs.push(vpn, vpnScenarioInput(model, vpn));
      for (const state of ["new", "established"] as const)
        for (const [proto, dport] of [
          [17, 500],
          [6, 443],
          [50, undefined],
        ] as const) {
          const q = {
            family: 4 as const,
            proto,
            dport,
            sources: AddrSet.all(4),
            iif: "port1",
            state,
            ipsec: false,
          };
          outputs.push(
            ev.partition(q).map((p) => ({ ...p, sources: p.sources.toString() })),
            ev.stateTimeout(q),
          );
          for (const src of ["any", "10.56.240.208", "10.56.100.25"]) {
            const t = traceFortios(model, { src, proto, ...(dport ? { dport } : {}), iif: "port1", state });
            outputs.push(t, renderTraceText(t));
          }
        }
      outputs.push(audit(model, f));
      const all = JSON.stringify(outputs);
      for (const s of secrets) expect(all.includes(s), `${f}: ${s.slice(0, 12)}…`).toBe(false);
    }
  });
});

describe("dial-up servers in the zero-config audit", () => {
  const run = (lines: string[]) =>
    runAudit(
      {
        gateways: [{ name: "fgt", platform: "fortios", file: "t.conf", text: lines.join("\n") }],
        tunnels: [],
      },
      { fortios: loadFortiosGateway, iptables: loadIptablesGateway },
    );
  const localIn = [
    "config firewall local-in-policy",
    "  edit 1",
    '    set intf "wan1"',
    '    set srcaddr "all"',
    '    set dstaddr "all"',
    '    set service "IKE"',
    '    set schedule "always"',
    "    set action accept",
    "  next",
    "  edit 2",
    '    set intf "wan1"',
    '    set srcaddr "all"',
    '    set dstaddr "all"',
    '    set service "ALL"',
    '    set schedule "always"',
    "  next",
    "end",
  ];
  const dialup = phase1("fct", "set type dynamic", 'set interface "wan1"', "set ike-version 1");
  const s2s = phase1("s2s", 'set interface "wan1"', "set remote-gw 203.0.113.7", "set ike-version 2");

  it("ESP denied by local-in (detect-unknown-esp disable) on a dial-up server: esp-blocked, not unknown", () => {
    const settings = ["config system settings", "  set detect-unknown-esp disable", "end"];
    const r = run([...IFACES, ...settings, ...dialup, ...localIn]);
    const esp = r.findings.filter((f) => f.flow === "esp-in");
    expect(esp.map((f) => f.id)).toEqual(["esp-blocked"]);
    // The clients start it, so whether a reply would pass does not matter, and is said.
    expect(esp[0]!.message).toMatch(
      /whether it would pass as a reply is unknown.*the clients always start it/,
    );
    expect(esp[0]!.rules.map((x) => x.line)).toHaveLength(1);
  });

  it("a static phase1 sharing its interface with a dial-up phase1: IKE from any source is expected there", () => {
    const shared = run([...IFACES, ...s2s, ...dialup]);
    expect(shared.findings.filter((f) => f.id === "ike-open-to-any")).toEqual([]);
    expect(shared.notes.join("\n")).toMatch(/dial-up phase1 "fct" serves its clients there/);
    // Without the dial-up, the same static phase1 is over-exposed.
    const alone = run([...IFACES, ...s2s]);
    expect(alone.findings.filter((f) => f.id === "ike-open-to-any").map((f) => f.tunnel)).toEqual(["s2s"]);
  });
});
