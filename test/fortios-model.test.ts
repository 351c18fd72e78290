import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatPrefix, parsePrefix } from "../src/model/address.js";
import { type LocalInQuery, LocalInQueryError, lookupLocalIn } from "../src/platforms/fortios/localin.js";
import { addrExprHas, expandAddress, serviceHas } from "../src/platforms/fortios/match.js";
import {
  type AddrMatch,
  buildModel,
  type FortiosModel,
  loadFortios,
  parsePortSpec,
  type VdomModel,
} from "../src/platforms/fortios/model.js";
import { formatDiagnostic, parseFortios } from "../src/platforms/fortios/parse.js";

const CORPUS = "/work/shared/corpus/fortios";
const EXAMPLES = new URL("../examples/seed001/", import.meta.url).pathname;

function load(path: string, name: string): { text: string; model: FortiosModel } {
  const text = readFileSync(path, "utf8");
  const { parse, model } = loadFortios(text, { file: name });
  expect(parse.diagnostics.map(formatDiagnostic)).toEqual([]);
  return { text, model };
}
const example = (f: string) => load(join(EXAMPLES, f), `examples/seed001/${f}`);
const corpus = (f: string) => load(join(CORPUS, f), f).model.vdoms.get("root")!;
const inline = (text: string): FortiosModel => {
  const r = parseFortios(text, { file: "t.conf" });
  expect(r.diagnostics.map(formatDiagnostic)).toEqual([]);
  return buildModel(r.tree);
};

/** 1-based line of the first line containing `needle` after the line containing `after`. */
function lineOf(text: string, needle: string, after?: string): number {
  const ls = text.split("\n");
  let i = after === undefined ? 0 : ls.findIndex((l) => l.includes(after));
  expect(i).toBeGreaterThanOrEqual(0);
  for (; i < ls.length; i++) if (ls[i]!.includes(needle)) return i + 1;
  throw new Error(`'${needle}' not found`);
}

const show = (m: AddrMatch): string =>
  m.kind === "prefix"
    ? formatPrefix(m.prefix, { alwaysLen: true })
    : m.kind === "range"
      ? `${m.first}-${m.last}`
      : m.kind === "wildcard"
        ? `wildcard ${m.addr}/${m.mask}`
        : `unknown: ${m.reason}`;
const ip = (v: string) => parsePrefix(v).addr;

describe("seed 001 examples", () => {
  const site1 = example("site1.conf");
  const site2 = example("site2.conf");
  const fixed = example("site2-fixed.conf");
  const v1 = site1.model.vdoms.get("root")!;
  const v2 = site2.model.vdoms.get("root")!;

  it("load without a single diagnostic", () => {
    for (const m of [site1.model, site2.model, fixed.model]) {
      expect(m.diagnostics.map(formatDiagnostic)).toEqual([]);
      expect(m.multiVdom).toBe(false);
      expect(m.header).toMatchObject({ platform: "FGVMK6", version: "7.2.5", build: "1517" });
    }
  });

  it("site 1: phase 1 to 10.56.240.221 on port1 with the FortiOS defaults the seed relies on", () => {
    const p1 = v1.phase1.get("site1")!;
    expect(p1.interface).toBe("port1");
    expect(p1.remoteGw).toBe("10.56.240.221");
    expect(p1.dpd).toEqual({ value: "on-demand", isDefault: true });
    expect(p1.dpdRetryinterval).toEqual({ value: 20, isDefault: true });
    expect(p1.dpdRetrycount).toEqual({ value: 3, isDefault: true });
    expect(p1.ikeVersion).toEqual({ value: 1, isDefault: true });
    expect(p1.netDevice.value).toBe(false);
    expect(p1.netDevice.isDefault).toBe(false);
    expect(p1.netDevice.loc?.line).toBe(lineOf(site1.text, "set net-device disable"));
    expect(p1.psk).toBe("encrypted");
    expect(p1.proposal).toEqual(["aes128-sha256", "aes256-sha256", "aes128-sha1", "aes256-sha1"]);
    expect(v1.phase2.get("site1")).toMatchObject({
      phase1name: "site1",
      src: { type: "name", name: "site1_local" },
    });
    expect(v1.localIn).toEqual([]);
    expect(site1.model.interfaces.get("port1")!.ip).toEqual({
      address: ip("10.56.240.208"),
      prefix: parsePrefix("10.56.240.0/24"),
    });
  });

  it("site 2: two local-in policies; policy 2 denies ALL on port1 by the default action", () => {
    expect(v2.localIn.map((p) => p.id)).toEqual(["1", "2"]);
    const [p1, p2] = v2.localIn;
    expect(p1).toMatchObject({
      intf: ["port1"],
      srcaddr: ["office1", "office2"],
      dstaddr: ["all"],
      service: ["HTTPS"],
      action: { value: "accept", isDefault: false },
    });
    expect(p2).toMatchObject({
      intf: ["port1"],
      srcaddr: ["all"],
      service: ["ALL"],
      action: { value: "deny", isDefault: true },
      comments: "implicit deny",
    });
    expect(p2!.loc.line).toBe(lineOf(site2.text, "edit 2", "config firewall local-in-policy"));
    expect(p2!.fields.intf!.text).toBe('set intf "port1"');
    expect(v2.phase1.get("site2")!.remoteGw).toBe("10.56.240.208");
  });

  it("site 2 fixed: policy 3 is evaluated before policy 2 although its ID is higher", () => {
    const v = fixed.model.vdoms.get("root")!;
    expect(v.localIn.map((p) => [p.id, p.position])).toEqual([
      ["1", 0],
      ["3", 1],
      ["2", 2],
    ]);
  });

  const ike = (src: string, dst: string, extra: Partial<LocalInQuery> = {}): LocalInQuery => ({
    src,
    dst,
    protocol: "udp",
    sport: 500,
    dport: 500,
    iif: "port1",
    ...extra,
  });

  it("reproduces the seed's verdict: IKE from site 1 on port1 is denied by policy 2", () => {
    const d = lookupLocalIn(site2.model, ike("10.56.240.208", "10.56.240.221"));
    const line = lineOf(site2.text, "edit 2", "config firewall local-in-policy");
    expect(d.verdict).toBe("deny");
    expect(d.reason).toBe("policy");
    expect(d.policy?.id).toBe("2");
    expect(d.loc).toMatchObject({ file: "examples/seed001/site2.conf", line });
    expect(d.explanation).toBe(
      `denied by local-in policy 2 "implicit deny" (action deny: no 'set action', FortiOS default), examples/seed001/site2.conf:${line}`,
    );
    expect(d.steps.map((s) => [s.policy.id, s.result])).toEqual([
      ["1", false],
      ["2", true],
    ]);
    expect(d.steps[0]!.why).toBe("source not in srcaddr office1 office2");
    // NAT-T and the DPD/DELETE messages on 4500 fare the same.
    expect(
      lookupLocalIn(site2.model, ike("10.56.240.208", "10.56.240.221", { sport: 4500, dport: 4500 })).verdict,
    ).toBe("deny");
  });

  it("reproduces the seed's verdict: HTTPS from office1 is accepted by policy 1", () => {
    const d = lookupLocalIn(site2.model, {
      src: "10.56.100.25",
      dst: "10.56.240.221",
      protocol: "tcp",
      sport: 51515,
      dport: 443,
      iif: "port1",
    });
    expect(d.verdict).toBe("accept");
    expect(d.policy?.id).toBe("1");
    expect(d.notes).toEqual([]);
    const other = lookupLocalIn(site2.model, {
      src: "10.56.102.25",
      dst: "10.56.240.221",
      protocol: 6,
      dport: 443,
      iif: "port1",
    });
    expect([other.verdict, other.policy?.id]).toEqual(["deny", "2"]);
  });

  it("accepts the same IKE packet while site 2's own session exists, and ESP always", () => {
    const reply = lookupLocalIn(site2.model, ike("10.56.240.208", "10.56.240.221", { state: "reply" }));
    expect([reply.verdict, reply.reason, reply.policy]).toEqual(["accept", "local-session", null]);
    const esp = lookupLocalIn(site2.model, {
      src: "10.56.240.208",
      dst: "10.56.240.221",
      protocol: "esp",
      iif: "port1",
    });
    expect([esp.verdict, esp.reason]).toEqual(["accept", "esp-not-checked"]);
  });

  it("site 1 accepts site 2's IKE by the implicit accept; the fix makes site 2 accept site 1's", () => {
    const s1 = lookupLocalIn(site1.model, ike("10.56.240.221", "10.56.240.208"));
    expect([s1.verdict, s1.reason]).toEqual(["accept", "implicit-accept"]);
    const f = lookupLocalIn(fixed.model, ike("10.56.240.208", "10.56.240.221"));
    expect([f.verdict, f.policy?.id]).toEqual(["accept", "3"]);
    // Anyone else's IKE is still denied after the fix.
    const g = lookupLocalIn(fixed.model, ike("198.51.100.7", "10.56.240.221"));
    expect([g.verdict, g.policy?.id]).toEqual(["deny", "2"]);
  });

  it("with the seed's literal `intf port2` the incident could not happen (why the example uses port1)", () => {
    const t = site2.text;
    const at = t.indexOf(
      'set intf "port1"',
      t.indexOf("edit 2", t.indexOf("config firewall local-in-policy")),
    );
    const literal = `${t.slice(0, at)}set intf "port2"${t.slice(at + 'set intf "port1"'.length)}`;
    const m = loadFortios(literal, { file: "literal.conf" }).model;
    expect(m.vdoms.get("root")!.localIn[1]!.intf).toEqual(["port2"]);
    const d = lookupLocalIn(m, ike("10.56.240.208", "10.56.240.221"));
    expect([d.verdict, d.reason]).toEqual(["accept", "implicit-accept"]);
  });
});

describe("objects from the corpus", () => {
  it("addresses: every type, defaults, and a later block redefining an entry", () => {
    const v = corpus("batfish_testconfig_address.conf");
    const got = Object.fromEntries([...v.addresses.values()].map((a) => [a.name, show(a.match)]));
    expect(got).toMatchObject({
      ipmask: "1.1.1.0/24",
      iprange: `${ip("1.1.1.0")}-${ip("1.1.1.255")}`,
      "interface-subnet": "1.1.1.0/24",
      wildcard: `wildcard ${ip("2.0.0.2")}/${ip("255.0.0.255")}`,
      "ipmask-default": "0.0.0.0/0",
      "iprange-default": `0-${ip("1.1.1.1")}`,
      "wildcard-default": "wildcard 0/0",
    });
    for (const n of ["fqdn", "geography", "dynamic", "mac", "undefined-refs"]) {
      expect(v.addresses.get(n)!.match.kind, n).toBe("unknown");
    }
    expect(show(v.addresses.get("fqdn")!.match)).toContain("google.com");
    expect(v.addresses.get("ipmask")!.associatedInterface).toBe("port1");
  });

  it("address groups: append, exclude-member replacement, exclude toggling, nesting", () => {
    const v = corpus("batfish_testconfig_addrgrp.conf");
    const g1 = v.addrgrps.get("grp1")!;
    expect(g1).toMatchObject({
      members: ["addr1", "addr5"],
      exclude: true,
      excludeMembers: ["addr4", "addr5"],
    });
    expect(v.addrgrps.get("grp2")).toMatchObject({ members: ["addr4", "grp1"], exclude: false });
    const has = (g: string, a: string) => addrExprHas(expandAddress(v, 4, g), 4, ip(a));
    expect(has("grp1", "1.1.1.9")).toBe(true);
    expect(has("grp1", "5.5.5.5")).toBe(false); // member, but excluded
    expect(has("grp2", "1.1.1.9")).toBe(true); // through grp1
    expect(has("grp2", "4.4.4.4")).toBe(true);
    expect(has("grp2", "2.2.2.2")).toBe(false); // replaced by the second `set member`
  });

  it("services: port ranges with source ports, ICMP, IP protocols, protocol changes and unset", () => {
    const v = corpus("batfish_testconfig_service_custom.conf");
    const s = (n: string) => v.services.get(n)!;
    expect(s("explicit_tcp").match).toEqual({
      kind: "l4",
      tcp: [
        { dst: { lo: 1, hi: 2 }, src: { lo: 3, hi: 4 } },
        { dst: { lo: 10, hi: 11 }, src: { lo: 0, hi: 65535 } },
        { dst: { lo: 13, hi: 13 }, src: { lo: 6, hi: 7 } },
      ],
      udp: [{ dst: { lo: 100, hi: 100 }, src: { lo: 0, hi: 65535 } }],
      sctp: [
        { dst: { lo: 200, hi: 200 }, src: { lo: 0, hi: 65535 } },
        { dst: { lo: 201, hi: 201 }, src: { lo: 300, hi: 300 } },
      ],
    });
    expect(s("custom_icmp").match).toEqual({ kind: "icmp", family: 4, type: 255, code: 255 });
    expect(s("custom_icmp6").match).toEqual({ kind: "icmp", family: 6 });
    expect(s("custom_ip").match).toEqual({ kind: "ip", protocol: 254 });
    // Switching protocol drops the fields of the previous one: back to IP means protocol 0 (all).
    expect(s("change_protocol").match).toEqual({ kind: "ip", protocol: 0 });
    expect(s("unset_icmp_1").match).toEqual({ kind: "icmp", family: 4, type: 5 });
    expect(s("unset_icmp_2").match).toEqual({ kind: "icmp", family: 4, type: 3 });
    expect(s("unset_icmp_3").match).toEqual({ kind: "icmp", family: 4 });
    const pkt = { family: 4 as const, protocol: 6, dst: 0n, sport: 3, dport: 2 };
    expect(serviceHas(s("explicit_tcp"), pkt)).toBe(true);
    expect(serviceHas(s("explicit_tcp"), { ...pkt, sport: 5 })).toBe(false);
    expect(serviceHas(s("explicit_tcp"), { ...pkt, sport: undefined })).toBe("unknown");
  });

  it("policies: move, delete and clone change the table as the CLI would", () => {
    expect(corpus("batfish_testconfig_policy_move.conf").policies.map((p) => p.id)).toEqual([
      "5",
      "1",
      "2",
      "4",
      "3",
    ]);
    // "Creating 1 after deleting it should put it at the end".
    expect(corpus("batfish_testconfig_policy_delete.conf").policies.map((p) => p.id)).toEqual(["2", "1"]);
    const clone = corpus("batfish_testconfig_policy_clone.conf").policies;
    expect(clone.map((p) => p.id)).toEqual(["1", "2", "3", "4"]);
    expect(clone[2]!.service).toEqual(clone[0]!.service);
  });

  it("policies: append, defaults and edit 0", () => {
    const v = corpus("batfish_testconfig_firewall_policy.conf");
    // `edit 0` creates the entry with the next unused ID (FortiOS "Subcommands"): 1 here, so the
    // later `edit 1` block edits that same policy.
    expect(v.policies.map((p) => p.id)).toEqual(["1", "4294967294", "2", "3"]);
    expect(v.policies[0]!.loc.text).toBe("edit 0");
    expect(v.policies[0]!.status.value).toBe("enable");
    const p1 = v.policies.find((p) => p.id === "1")!;
    expect(p1).toMatchObject({
      srcintf: ["port1", "port2"],
      dstintf: ["port2", "port1"],
      srcaddr: ["addr1", "addr2"],
      service: ["custom_tcp_11", "custom_tcp_12_from_11"],
      action: { value: "accept", isDefault: false },
    });
    expect(v.policies[1]!.action).toEqual({ value: "deny", isDefault: true });
    expect(v.policies.find((p) => p.id === "3")!.dstintf).toEqual(["zone1", "zone3"]);
  });

  it("renames: invalid ones are refused, references written before a rename follow it", () => {
    const { model } = loadFortios(
      readFileSync(join(CORPUS, "batfish_testconfig_addrgrp_rename.conf"), "utf8"),
      {
        file: "r",
      },
    );
    const v = model.vdoms.get("root")!;
    expect([...v.addrgrps.keys()]).toEqual(["new_group1", "new_group2"]);
    expect([...v.addresses.keys()]).toEqual(["addr1", "addr2"]);
    expect(model.diagnostics.map(formatDiagnostic)).toEqual([
      "r:42:9: warning: firewall policy 1: address 'old_group1' is not defined",
      "r:55:5: warning: 'rename' in 'config firewall addrgrp': no entry 'undefined' (ignored)",
      "r:60:5: warning: 'rename' in 'config firewall addrgrp': 'a name that is very very very very very …' is longer than 79 characters (ignored)",
      "r:63:5: warning: 'rename' in 'config firewall addrgrp': entry 'new_group2' already exists (ignored)",
      "r:64:5: warning: 'rename' in 'config firewall addrgrp': entry 'addr1' already exists (ignored)",
      "r:68:5: warning: 'rename' in 'config firewall address': entry 'new_group1' already exists (ignored)",
    ]);
    const m = inline(
      [
        "config firewall address",
        '  edit "a"',
        "    set subnet 10.0.0.0 255.0.0.0",
        "  next",
        "end",
        "config firewall addrgrp",
        '  edit "g"',
        '    set member "a"',
        "  next",
        "end",
        "config firewall address",
        '  rename "a" to "b"',
        "end",
        "",
      ].join("\n"),
    );
    expect(m.vdoms.get("root")!.addrgrps.get("g")!.members).toEqual(["b"]);
    expect(m.diagnostics).toEqual([]);
  });

  it("IPsec: 16 tunnels with explicit values, plaintext PSKs detected without keeping them", () => {
    const v = corpus("40net_ipsec-test_fgt-a.conf");
    const p1 = v.phase1.get("VPN1")!;
    expect(p1).toMatchObject({
      ikeVersion: { value: 2, isDefault: false },
      keylife: { value: 28800, isDefault: false },
      localGw: "172.16.136.4",
      remoteGw: "172.16.137.4",
      psk: "plaintext",
    });
    expect(JSON.stringify([...v.phase1.values()])).not.toContain("fortinet");
    expect(v.phase2.get("VPN1")).toMatchObject({
      autoNegotiate: { value: true, isDefault: false },
      keepalive: { value: true, isDefault: false },
      keylifeseconds: { value: 3600, isDefault: false },
    });
  });

  it("interfaces: both address forms, secondary addresses, IPv6 block", () => {
    const m = inline(
      [
        "config system interface",
        '  edit "port1"',
        "    set ip 10.0.1.1/24",
        "    set allowaccess ping https",
        "    set secondary-IP enable",
        "    config secondaryip",
        "      edit 1",
        "        set ip 10.9.9.1 255.255.255.252",
        "        set allowaccess ssh",
        "      next",
        "    end",
        "    config ipv6",
        "      set ip6-address 2001:db8::1/64",
        "      set ip6-allowaccess ping",
        "    end",
        "  next",
        '  edit "port2"',
        "    set mode dhcp",
        "  next",
        "end",
        "",
      ].join("\n"),
    );
    const p1 = m.interfaces.get("port1")!;
    expect(formatPrefix(p1.ip!.prefix)).toBe("10.0.1.0/24");
    expect(p1.secondary.map((s) => [formatPrefix(s.prefix), s.allowaccess])).toEqual([
      ["10.9.9.0/30", ["ssh"]],
    ]);
    expect(formatPrefix(p1.ip6!.prefix)).toBe("2001:db8::/64");
    expect(p1.allowaccess6).toEqual(["ping"]);
    expect(m.interfaces.get("port2")).toMatchObject({ mode: "dhcp", type: "physical" });
    expect(m.interfaces.get("port2")!.ip).toBeUndefined();
  });

  it("session timers: session-ttl default and ports, udp-idle-timer, per-service and per-policy TTLs", () => {
    const m = inline(
      [
        "config system global",
        "  set udp-idle-timer 60",
        "end",
        "config system session-ttl",
        "  set default 7200",
        "  config port",
        "    edit 1",
        "      set protocol 17",
        "      set start-port 500",
        "      set end-port 500",
        "      set timeout 900",
        "    next",
        "    edit 2",
        "      set protocol 17",
        "      set start-port 4500",
        "      set end-port 4500",
        "      set timeout never",
        "    next",
        "  end",
        "end",
        "config firewall service custom",
        '  edit "ike-long"',
        "    set udp-portrange 500",
        "    set udp-idle-timer 600",
        "    set session-ttl 1200",
        "  next",
        "end",
        "",
      ].join("\n"),
    );
    expect(m.udpIdleTimer.value).toBe(60);
    const v = m.vdoms.get("root")!;
    expect(v.sessionTtl.default.value).toBe(7200);
    expect(v.sessionTtl.ports.map((p) => [p.protocol, p.startPort, p.endPort, p.timeout])).toEqual([
      [17, 500, 500, 900],
      [17, 4500, 4500, "never"],
    ]);
    expect(v.services.get("ike-long")).toMatchObject({ udpIdleTimer: 600, sessionTtl: 1200 });
    const d = inline("config system global\nend\n");
    expect(d.udpIdleTimer).toEqual({ value: 180, isDefault: true });
    expect(d.vdoms.get("root")!.sessionTtl.default).toEqual({ value: 3600, isDefault: true });
  });

  it("port specs", () => {
    expect(parsePortSpec("500")).toEqual({ dst: { lo: 500, hi: 500 }, src: { lo: 0, hi: 65535 } });
    expect(parsePortSpec("513:512-1023")).toEqual({ dst: { lo: 513, hi: 513 }, src: { lo: 512, hi: 1023 } });
    expect(parsePortSpec("2-1")).toMatch(/ends before it starts/);
    expect(parsePortSpec("70000")).toMatch(/0-65535/);
    expect(parsePortSpec("a")).toMatch(/not dst/);
  });
});

describe("diagnostics instead of crashes", () => {
  it("reports unknown references, bad values and undecidable objects with their lines", () => {
    const text = [
      "config firewall address",
      '  edit "h"',
      "    set subnet 10.0.0.1 255.255.255.0",
      "  next",
      '  edit "badmask"',
      "    set subnet 10.0.0.0 255.0.255.0",
      "  next",
      "end",
      "config firewall local-in-policy",
      "  edit 1",
      '    set intf "port9"',
      '    set srcaddr "nope"',
      '    set dstaddr "all"',
      '    set service "NOSUCH"',
      "    set action maybe",
      "  next",
      "end",
      "config vpn ipsec phase2-interface",
      '  edit "p2"',
      '    set phase1name "ghost"',
      "  next",
      "end",
      "",
    ].join("\n");
    const m = inline(text);
    expect(m.diagnostics.map(formatDiagnostic)).toEqual([
      "t.conf:3:5: warning: firewall address 'h': subnet has host bits set; FortiOS matches the whole network",
      "t.conf:6:5: warning: firewall address 'badmask': invalid subnet: invalid address '10.0.0.0/255.0.255.0': netmask is not contiguous",
      "t.conf:10:3: info: firewall address 'all' is not defined in the config; using the FortiOS predefined definition",
      "t.conf:11:5: warning: local-in-policy 1: interface 'port9' is not defined",
      "t.conf:12:5: warning: local-in-policy 1: address 'nope' is not defined",
      "t.conf:14:5: warning: local-in-policy 1: service 'NOSUCH' is not defined",
      "t.conf:15:5: warning: firewall local-in-policy 1: invalid action 'maybe'; using the FortiOS default deny",
      "t.conf:20:5: warning: phase2-interface 'p2': phase1-interface 'ghost' is not defined",
    ]);
    // The lookup still answers, and says what it cannot know.
    const d = lookupLocalIn(m, { src: "1.2.3.4", dst: "10.0.0.1", protocol: "tcp", dport: 22, iif: "port9" });
    expect(d.verdict).toBe("unknown");
    expect(d.explanation).toMatch(/unless local-in policy 1 matches/);
  });
});

describe("local-in lookup rules", () => {
  const base = [
    "config system interface",
    '  edit "wan"',
    "    set ip 203.0.113.1 255.255.255.0",
    "    set allowaccess ping",
    "  next",
    '  edit "lan"',
    "    set ip 192.168.1.1 255.255.255.0",
    "  next",
    "end",
    "config system zone",
    '  edit "outside"',
    '    set interface "wan"',
    "  next",
    "end",
    "config firewall address",
    '  edit "all"',
    "  next",
    '  edit "peer"',
    "    set subnet 198.51.100.7 255.255.255.255",
    "  next",
    '  edit "cdn"',
    "    set type fqdn",
    '    set fqdn "cdn.example.com"',
    "  next",
    "end",
  ];
  const withPolicies = (...policies: string[][]): FortiosModel =>
    inline(
      [
        ...base,
        "config firewall local-in-policy",
        ...policies.flatMap((p, i) => [`  edit ${i + 1}`, ...p.map((l) => `    ${l}`), "  next"]),
        "end",
        "",
      ].join("\n"),
    );
  const q = (extra: Partial<LocalInQuery> = {}): LocalInQuery => ({
    src: "198.51.100.7",
    dst: "203.0.113.1",
    protocol: "udp",
    sport: 500,
    dport: 500,
    iif: "wan",
    ...extra,
  });
  const deny = [
    'set intf "any"',
    'set srcaddr "all"',
    'set dstaddr "all"',
    'set service "ALL"',
    'set schedule "always"',
  ];

  it("skips disabled policies", () => {
    const m = withPolicies([...deny, "set status disable"]);
    const d = lookupLocalIn(m, q());
    expect([d.verdict, d.reason]).toEqual(["accept", "implicit-accept"]);
    expect(d.steps[0]!.why).toBe("status disable: skipped");
  });

  it("matches `any`, the interface itself or a zone holding it", () => {
    for (const intf of ['"any"', '"wan"', '"outside"']) {
      const m = withPolicies(deny.map((l) => (l.startsWith("set intf") ? `set intf ${intf}` : l)));
      expect(lookupLocalIn(m, q()).verdict, intf).toBe("deny");
      expect(lookupLocalIn(m, q({ iif: "lan", dst: "192.168.1.1" })).verdict, intf).toBe(
        intf === '"any"' ? "deny" : "accept",
      );
    }
  });

  it("honours srcaddr-negate and service-negate", () => {
    const m = withPolicies(
      deny
        .map((l) => (l.startsWith("set srcaddr") ? 'set srcaddr "peer"' : l))
        .concat("set srcaddr-negate enable"),
    );
    expect(lookupLocalIn(m, q()).verdict).toBe("accept"); // the peer is exempt
    expect(lookupLocalIn(m, q({ src: "198.51.100.8" })).verdict).toBe("deny");
    const s = withPolicies(
      deny
        .map((l) => (l.startsWith("set service") ? 'set service "IKE"' : l))
        .concat("set service-negate enable"),
    );
    expect(lookupLocalIn(s, q()).verdict).toBe("accept");
    expect(lookupLocalIn(s, q({ protocol: "tcp", dport: 22 })).verdict).toBe("deny");
  });

  it("is first-match: an accept before the deny wins", () => {
    const m = withPolicies(
      ['set intf "wan"', 'set srcaddr "peer"', 'set dstaddr "all"', "set action accept", 'set service "IKE"'],
      deny,
    );
    expect(lookupLocalIn(m, q()).policy?.id).toBe("1");
    expect(lookupLocalIn(m, q({ dport: 4500, sport: 4500 })).policy?.id).toBe("1");
    expect(lookupLocalIn(m, q({ dport: 501 })).policy?.id).toBe("2");
  });

  it("says unknown when an undecidable policy could change the outcome, not when it could not", () => {
    const m = withPolicies(
      ['set intf "any"', 'set srcaddr "cdn"', 'set dstaddr "all"', "set action accept", 'set service "ALL"'],
      deny,
    );
    const d = lookupLocalIn(m, q());
    expect(d.verdict).toBe("unknown");
    expect(d.steps[0]!.result).toBe("unknown");
    expect(d.steps[0]!.why).toMatch(/srcaddr 'cdn' is not decidable/);
    const same = withPolicies(
      ['set intf "any"', 'set srcaddr "cdn"', 'set dstaddr "all"', 'set service "ALL"'],
      deny,
    );
    expect(lookupLocalIn(same, q()).verdict).toBe("deny");
    const sched = withPolicies(
      deny.map((l) => (l.startsWith("set schedule") ? 'set schedule "weekdays"' : l)),
    );
    expect(lookupLocalIn(sched, q()).verdict).toBe("unknown");
  });

  it("checks ESP against local-in only when detect-unknown-esp is disabled", () => {
    const m = withPolicies(deny);
    expect(lookupLocalIn(m, q({ protocol: 50, sport: undefined, dport: undefined })).reason).toBe(
      "esp-not-checked",
    );
    const strict = inline(
      [
        ...base,
        "config system settings",
        "  set detect-unknown-esp disable",
        "end",
        "config firewall local-in-policy",
        "  edit 1",
        ...deny.map((l) => `    ${l}`),
        "  next",
        "end",
        "",
      ].join("\n"),
    );
    const d = lookupLocalIn(strict, q({ protocol: "esp", sport: undefined, dport: undefined }));
    expect([d.verdict, d.policy?.id]).toEqual(["deny", "1"]);
  });

  it("uses local-in-policy6 for IPv6 packets", () => {
    const m = inline(
      [
        "config firewall address6",
        '  edit "all"',
        "  next",
        "end",
        "config firewall local-in-policy6",
        "  edit 1",
        '    set intf "any"',
        '    set srcaddr "all"',
        '    set dstaddr "all"',
        '    set service "ALL"',
        '    set schedule "always"',
        "  next",
        "end",
        "",
      ].join("\n"),
    );
    expect(lookupLocalIn(m, q({ src: "2001:db8::7", dst: "2001:db8::1" })).verdict).toBe("deny");
    expect(lookupLocalIn(m, q()).verdict).toBe("accept");
  });

  it("notes what the local-in verdict alone does not say", () => {
    const m = withPolicies();
    const d = lookupLocalIn(m, q({ protocol: "tcp", dport: 443, sport: 40000 }));
    expect(d.notes).toEqual([
      "interface wan does not list 'https' in allowaccess: the FortiGate does not offer it there",
    ]);
    expect(lookupLocalIn(m, q()).notes).toEqual([
      "no phase1-interface is bound to wan: the IKE daemon has no gateway for this packet",
    ]);
  });

  it("rejects bad queries with a typed error", () => {
    const m = withPolicies();
    expect(() => lookupLocalIn(m, q({ src: "not-an-ip" }))).toThrow(LocalInQueryError);
    expect(() => lookupLocalIn(m, q({ src: "10.0.0.0/8" }))).toThrow(/single IP address/);
    expect(() => lookupLocalIn(m, q({ dst: "2001:db8::1" }))).toThrow(/different address families/);
    expect(() => lookupLocalIn(m, q({ protocol: "bogus" }))).toThrow(/unknown protocol/);
    expect(() => lookupLocalIn(m, q({ vdom: "nope" }))).toThrow(/no VDOM 'nope'/);
  });
});

describe("scale", () => {
  it("parses and models 10,000 policies, 20,000 addresses and 2,000 groups without blowing up", () => {
    const out: string[] = ["config firewall address"];
    for (let i = 0; i < 20000; i++) {
      out.push(
        `    edit "h${i}"`,
        `        set subnet 10.${(i >> 8) & 255}.${i & 255}.0 255.255.255.0`,
        "    next",
      );
    }
    out.push("end", "config firewall addrgrp");
    for (let i = 0; i < 2000; i++) {
      const members = Array.from({ length: 10 }, (_, k) => `"h${(i * 10 + k) % 20000}"`).join(" ");
      out.push(`    edit "g${i}"`, `        set member ${members}`, "    next");
    }
    out.push("end", "config firewall policy");
    for (let i = 1; i <= 10000; i++) {
      out.push(
        `    edit ${i}`,
        '        set srcintf "port2"',
        '        set dstintf "port1"',
        "        set action accept",
        `        set srcaddr "g${i % 2000}" "h${i}"`,
        '        set dstaddr "all"',
        '        set schedule "always"',
        '        set service "HTTPS" "SSH"',
        "    next",
      );
    }
    out.push("end", "config firewall local-in-policy");
    for (let i = 1; i <= 500; i++) {
      out.push(
        `    edit ${i}`,
        '        set intf "any"',
        `        set srcaddr "g${i}"`,
        '        set dstaddr "all"',
      );
      out.push(
        "        set action accept",
        '        set service "HTTPS"',
        '        set schedule "always"',
        "    next",
      );
    }
    out.push("end", "");
    const text = out.join("\n");
    const t0 = performance.now();
    const { parse, model } = loadFortios(text, { file: "big.conf" });
    const d = lookupLocalIn(model, {
      src: "10.0.0.1",
      dst: "10.255.255.1",
      protocol: "tcp",
      dport: 22,
      iif: "port1",
    });
    const ms = performance.now() - t0;
    expect(parse.ok).toBe(true);
    const v: VdomModel = model.vdoms.get("root")!;
    expect([v.addresses.size, v.addrgrps.size, v.policies.length, v.localIn.length]).toEqual([
      20001, 2000, 10000, 500,
    ]);
    expect(d.verdict).toBe("accept");
    // Generous: the point is catching quadratic behaviour, not timing a loaded CI machine.
    expect(ms).toBeLessThan(15_000);
  });
});
