import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.js";

const ex = (f: string) => resolve("examples/seed001", f);
const dirs: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("tunnelcheck audit (FortiOS, seed 001)", () => {
  it("finds ike-reply-only on site 2, explains when it bites, and exits 1", async () => {
    const r = await cli(["audit", ex("site2.conf"), "--format", "json"]);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    const ids = j.findings.map((f: { id: string }) => f.id);
    expect(ids).toEqual(["ike-reply-only"]);
    const f = j.findings[0];
    expect(f).toMatchObject({ severity: "error", gateway: "site2", flow: "ike-in" });
    expect(f.rules[0].text).toMatch(/^edit 2/);
    expect(f.message).toMatch(/after 180 s/);
    expect(f.fix.target).toBe("fortios");
    expect(f.fix.text).toMatch(/config firewall local-in-policy/);
  });

  it("site 1 has no reply-only finding (it has no local-in policy), only the open-to-any warning", async () => {
    const r = await cli(["audit", ex("site1.conf"), "--format", "json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings.map((f: { id: string }) => f.id)).toEqual(["ike-open-to-any"]);
    expect((await cli(["audit", ex("site1.conf"), "--fail-on", "warning"])).code).toBe(1);
  });

  it("the seed's resolution makes site 2 clean", async () => {
    const r = await cli(["audit", ex("site2-fixed.conf"), "--format", "json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).findings).toEqual([]);
    // The text summary tells findings from the input warnings printed above it.
    const text = (await cli(["audit", ex("site2-fixed.conf")])).stdout;
    expect(text).toMatch(/^warning: .*whether NAT is on the path/m);
    expect(text.trimEnd().split("\n").at(-1)).toBe(
      "No findings: every required flow is accepted as new traffic from its peers; 1 input warning(s) above.",
    );
  });

  it("audits both FortiGates from a topology file", async () => {
    const dir = tmp("tc-topo-");
    const topo = join(dir, "topo.yaml");
    writeFileSync(
      topo,
      `gateways:\n  site1: { platform: fortios, config: ${ex("site1.conf")} }\n  site2: { platform: fortios, config: ${ex("site2.conf")} }\ntunnels:\n  - { type: site-to-site, between: [site1, site2] }\n`,
    );
    const r = await cli(["audit", "--topology", topo, "--format", "json"]);
    expect(r.code).toBe(1);
    const byGw = JSON.parse(r.stdout).findings.map(
      (f: { id: string; gateway: string }) => `${f.gateway}:${f.id}`,
    );
    expect(byGw.sort()).toEqual(["site1:ike-open-to-any", "site2:ike-reply-only"]);
  });

  it("prints SARIF pointing at the config line", async () => {
    const r = await cli(["audit", ex("site2.conf"), "--format", "sarif"]);
    const s = JSON.parse(r.stdout);
    expect(s.version).toBe("2.1.0");
    const loc = s.runs[0].results[0].locations[0].physicalLocation;
    expect(loc.region.startLine).toBe(
      JSON.parse((await cli(["audit", ex("site2.conf"), "--format", "json"])).stdout).findings[0].rules[0]
        .line,
    );
  });

  it("text output groups by gateway and has no colour in a pipe", async () => {
    const r = await cli(["audit", ex("site2.conf")]);
    expect(r.stdout).toMatch(/site2 — tunnel site2/);
    expect(r.stdout).toMatch(/ERROR ike-reply-only/);
    expect(r.stdout.includes("\u001b[")).toBe(false);
  });

  it("bad input exits 2 with a clear message", async () => {
    expect(await cli(["audit", "no-such.conf"])).toMatchObject({
      code: 2,
      stderr: "tunnelcheck: cannot read no-such.conf: no such file\n",
    });
    expect((await cli(["audit"])).code).toBe(2);
    const dir = tmp("tc-bad-");
    const bad = join(dir, "bad.conf");
    writeFileSync(bad, 'config firewall address\n    edit "x\n');
    const r = await cli(["audit", "--fortios", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.conf:\d+:\d+: /);
  });

  it("refuses flags a topology file would silently override (exit 2), keeps --format and --fail-on", async () => {
    const topo = ex("topology.yaml");
    for (const extra of [
      [ex("site1.conf")],
      ["--vdom", "foo"],
      ["--vpn", "site-to-site", "--peer", "1.2.3.4"],
      ["--nat", "none"],
    ]) {
      const r = await cli(["audit", "--topology", topo, ...extra]);
      expect(r.code, extra.join(" ")).toBe(2);
      expect(r.stderr).toMatch(/cannot be combined with it \(set (it|them) in the topology\)/);
    }
    expect((await cli(["audit", "--topology", topo, "--format", "json", "--fail-on", "none"])).code).toBe(0);
  });
});

describe("judged by semantics, not by rule text (FortiOS)", () => {
  const site2 = readFileSync(ex("site2.conf"), "utf8");
  const policy2 = /(?<=config firewall local-in-policy\n[\s\S]*?)( {4}edit 2\n[\s\S]*?\n {4}next)/;
  const variant = (name: string, edit: (p2: string) => string) => {
    const f = join(tmp("tc-variant-"), name);
    writeFileSync(
      f,
      site2.replace(policy2, (m) => edit(m)),
    );
    return f;
  };
  const idsOf = async (f: string) =>
    JSON.parse((await cli(["audit", f, "--format", "json"])).stdout).findings.map(
      (x: { id: string }) => x.id,
    );

  it("a deny policy on another interface does not catch IKE on port1 (the seed's literal port2)", async () => {
    expect(
      await idsOf(variant("port2.conf", (p) => p.replace('set intf "port1"', 'set intf "port2"'))),
    ).toEqual(["ike-open-to-any"]);
  });
  it("a disabled deny policy does not apply", async () => {
    expect(
      await idsOf(
        variant("disabled.conf", (p) =>
          p.replace("set schedule", "set status disable\n        set schedule"),
        ),
      ),
    ).toEqual(["ike-open-to-any"]);
  });
  it("a deny on interface any does", async () => {
    expect(await idsOf(variant("any.conf", (p) => p.replace('set intf "port1"', 'set intf "any"')))).toEqual([
      "ike-reply-only",
    ]);
  });
  it("source objects and negation decide: a deny of office1 only lets site 1 in; its negation catches site 1", async () => {
    const only = variant("office1.conf", (p) => p.replace('set srcaddr "all"', 'set srcaddr "office1"'));
    expect(await idsOf(only)).toEqual(["ike-open-to-any"]);
    const negated = variant("negate.conf", (p) =>
      p.replace('set srcaddr "all"', 'set srcaddr "office1"\n        set srcaddr-negate enable'),
    );
    // Everyone but office1 is denied: site 1 only as a reply, office1 still gets IKE in as new.
    expect(await idsOf(negated)).toEqual(["ike-reply-only", "ike-open-to-any"]);
  });
});

describe("FortiOS L2TP dial-up", () => {
  it("enforce-ipsec enable: plain UDP 1701 is refused by the L2TP daemon, so no l2tp-unprotected", async () => {
    const conf = resolve("test/fixtures/fortios/l2tp-enforce-ipsec.conf");
    const r = await cli(["audit", conf, "--format", "json"]);
    expect(JSON.parse(r.stdout).findings.map((f: { id: string }) => f.id)).not.toContain("l2tp-unprotected");
    const t = await cli([
      ..."trace --fortios".split(" "),
      conf,
      ..."--src 198.51.100.7 --proto udp --dport 1701 --iif port1 --format json".split(" "),
    ]);
    expect(JSON.parse(t.stdout)).toMatchObject({ verdict: "drop", rule: { line: 13 } });
  });
  it("--ipsec --iif may name the tunnel interface (the phase1) as well as the physical one", async () => {
    const conf = resolve("test/fixtures/fortios/l2tp-dialup.conf");
    for (const iif of ["l2tpdial", "port1"]) {
      const t = await cli([
        ..."trace --fortios".split(" "),
        conf,
        ..."--src any --proto udp --dport 1701 --iif".split(" "),
        iif,
        ..."--ipsec --format json".split(" "),
      ]);
      expect(
        JSON.parse(t.stdout).parts.map((p: { verdict: string }) => p.verdict),
        iif,
      ).toEqual(["accept"]);
    }
  });
  it("IKE fragments as replies follow IKE (a dial-up server has no session with its clients)", async () => {
    const r = await cli(["audit", resolve("test/fixtures/fortios/l2tp-dialup.conf"), "--format", "json"]);
    const v = JSON.parse(r.stdout).verdicts as Array<{
      flow: string;
      parts: Array<{ established?: string }>;
    }>;
    const est = (flow: string) => v.find((x) => x.flow === flow)!.parts.map((p) => p.established);
    expect(est("ike-fragments-in")).toEqual(est("ike-in"));
  });
});

describe("a port forward that takes IKE away from the gateway", () => {
  it("FortiOS VIP: named, with no local-in fix (local-in is never looked at)", async () => {
    const r = await cli(["audit", resolve("test/fixtures/fortios/vip-steals-ike.conf"), "--format", "json"]);
    const f = (
      JSON.parse(r.stdout).findings as Array<{ id: string; flow: string; message: string; fix?: unknown }>
    ).find((x) => x.flow === "ike-in")!;
    expect(f.message).toMatch(/taken by .*vip-steals-ike\.conf:\d+, a port forward to 192\.168\.1\.10:500/);
    expect(f.message).toMatch(/No input accept can help/);
    expect(f.fix ?? null).toBeNull();
  });
  it("a VIP that is disabled, or filtered to other sources / interfaces, leaves IKE to local-in", async () => {
    const base = readFileSync(resolve("test/fixtures/fortios/vip-ike.conf"), "utf8");
    const dir = tmp("tc-vip-");
    const trace = async (extra: string, src = "198.51.100.7") => {
      const f = join(dir, "v.conf");
      writeFileSync(f, base.replace("        set extport 500\n", `        set extport 500\n${extra}`));
      const r = await cli([
        ..."trace --fortios".split(" "),
        f,
        ..."--src".split(" "),
        src,
        ..."--proto udp --dport 500 --iif port1".split(" "),
      ]);
      return r.stdout;
    };
    expect(await trace("")).toMatch(/not for the FortiGate: VIP 'fwd-ike'/);
    expect(await trace("        set status disable\n")).toMatch(/^accepted: no local-in policy/m);
    expect(await trace('        set srcintf-filter "port2"\n')).toMatch(/^accepted: no local-in policy/m);
    expect(await trace('        set src-filter "10.0.0.0/8"\n')).toMatch(/^accepted: no local-in policy/m);
    expect(await trace('        set src-filter "10.0.0.0/8"\n', "10.1.2.3")).toMatch(
      /not for the FortiGate: VIP 'fwd-ike'/,
    );
  });

  it("Linux DNAT to another host: the same", async () => {
    const dir = tmp("tc-dnat-");
    const rules = join(dir, "gw.rules");
    writeFileSync(
      rules,
      "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A PREROUTING -i eth0 -p udp --dport 500 -j DNAT --to-destination 10.0.0.5:500\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp --dport 500 -j ACCEPT\n-A INPUT -p esp -j ACCEPT\nCOMMIT\n",
    );
    const r = await cli([
      ..."audit --iptables".split(" "),
      rules,
      ..."--vpn site-to-site --peer 203.0.113.7 --local 198.51.100.1 --wan eth0 --nat none --no-mobike --format json".split(
        " ",
      ),
    ]);
    const f = (
      JSON.parse(r.stdout).findings as Array<{ id: string; flow: string; message: string; fix?: unknown }>
    ).find((x) => x.flow === "ike-in")!;
    // As a reply it depends on the connection's direction (its DNAT binding): unknown, said so.
    expect(f.id).toBe("verdict-unknown");
    expect(f.message).toMatch(/taken by .*gw\.rules:6, a port forward to 10\.0\.0\.5:500/);
    expect(f.message).toMatch(/No input accept can help/);
    expect(f.fix ?? null).toBeNull();
  });
});

describe("multi-VDOM backups: a packet is judged by the VDOM of its interface", () => {
  const conf = resolve("test/fixtures/fortios/multi-vdom.conf");
  it("audit: the tunnel in VDOM cust is checked against cust's local-in table (root has none for port5)", async () => {
    const r = await cli(["audit", conf, "--format", "json"]);
    expect(r.code).toBe(1);
    const f = JSON.parse(r.stdout).findings as Array<{ id: string; rules: Array<{ line: number }> }>;
    expect(f.map((x) => x.id)).toEqual(["ike-reply-only"]);
    expect(f[0]!.rules[0]!.line).toBe(55); // cust's policy 1, not root's
  });
  it("trace: without --vdom the interface's VDOM decides; a --vdom that disagrees with --iif is an error", async () => {
    const args = ["trace", "--fortios", conf, "--src", "198.51.100.20", "--proto", "udp", "--dport", "500"];
    const t = await cli([...args, "--iif", "port5"]);
    expect(t.stdout).toMatch(/^vd-cust received a packet/);
    expect(t.stdout).toMatch(/denied by local-in policy 1, .*multi-vdom\.conf:55/);
    const bad = await cli([...args, "--iif", "port1", "--vdom", "cust"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("interface port1 belongs to VDOM root, not cust");
  });
});

describe("tunnelcheck trace --fortios", () => {
  /** Site 1's IKE to site 2, as the seed traces it. */
  const ikeToSite2 = (...extra: string[]) =>
    cli([
      "trace",
      "--fortios",
      ex("site2.conf"),
      ..."--src 10.56.240.208 --proto udp --dport 500".split(" "),
      ...extra,
    ]);

  it("says so when --iif names no interface of the config (a typo would pass the implicit accept quietly)", async () => {
    const r = await ikeToSite2("--iif", "port9");
    expect(r.stdout).toMatch(/^note: interface port9 is not defined in the config .*have port1, port2/m);
    const ok = await ikeToSite2("--iif", "port1");
    expect(ok.stdout).not.toMatch(/is not defined in the config/);
  });

  it("reproduces the seed's verdicts", async () => {
    const ike = await ikeToSite2("--iif", "port1", "--format", "json");
    expect(ike.code).toBe(0);
    expect(JSON.parse(ike.stdout)).toMatchObject({
      verdict: "drop",
      rule: { text: expect.stringMatching(/^edit 2/) },
    });
    const https = await cli([
      "trace",
      "--fortios",
      ex("site2.conf"),
      "--src",
      "office1",
      "--proto",
      "tcp",
      "--dport",
      "443",
      "--iif",
      "port1",
      "--format",
      "json",
    ]);
    // office1 is an object name, not an address: a usage error, never a guess.
    expect(https.code).toBe(2);
  });
  it("an established reply bypasses local-in", async () => {
    const r = await cli([
      "trace",
      "--fortios",
      ex("site2.conf"),
      "--src",
      "10.56.240.208",
      "--dport",
      "500",
      "--iif",
      "port1",
      "--state",
      "established",
      "--format",
      "json",
    ]);
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: "accept", rule: null });
  });
  it("symbolic --src any partitions the sources", async () => {
    const r = await cli([
      "trace",
      "--fortios",
      ex("site2.conf"),
      "--proto",
      "tcp",
      "--dport",
      "443",
      "--iif",
      "port1",
      "--format",
      "json",
    ]);
    const j = JSON.parse(r.stdout);
    expect(j.kind).toBe("symbolic");
    expect(j.parts.map((p: { verdict: string }) => p.verdict).sort()).toEqual(["accept", "drop"]);
  });
});
