/**
 * The audit's per-finding iptables fixes, applied for real: each broken ruleset is loaded into a
 * throwaway network namespace, every fix is run there with `sh -e` in the order the audit prints
 * them, and the namespace's `iptables-save` is audited again. The fixes must add up (one fix must
 * not undo another) and re-running them must change nothing.
 */
import { afterAll, expect, it } from "vitest";
import { runAudit } from "../../src/analysis/run-audit.js";
import { loadFortiosGateway } from "../../src/platforms/fortios/gateway.js";
import { loadIptablesGateway } from "../../src/platforms/iptables/gateway.js";
import type { ScenarioInput } from "../../src/vpn/scenario.js";
import { filterRules } from "../helpers/rulesets.js";
import { describeKernel, inNs, run, sweepNamespaces } from "./netns.js";

const LOADERS = { fortios: loadFortiosGateway, iptables: loadIptablesGateway };
const PEER = "203.0.113.7";
const GW = "198.51.100.1";

function audit(text: string, scenario: ScenarioInput) {
  return runAudit(
    {
      gateways: [{ name: "gw", platform: "iptables", file: "gw.rules", text, addresses: [GW] }],
      tunnels: [{ kind: "scenario", gateway: "gw", scenario }],
    },
    LOADERS,
  );
}

const ruleset = (lines: string[]) => filterRules(lines);

const CASES: Array<{ name: string; scenario: ScenarioInput; rules: string[]; before: string[] }> = [
  {
    // Seed 001's trap on Linux, NAT-T included: two errors, two fixes into the same chain.
    name: "site-to-site, IKE and NAT-T only as replies",
    scenario: { vpn: "site-to-site", ike: 2, nat: "both", peers: [PEER], local: GW, wan: "eth0" },
    rules: [
      "-A INPUT -i lo -j ACCEPT",
      "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A INPUT -p esp -j ACCEPT",
    ],
    before: ["ike-reply-only", "natt-reply-only"],
  },
  {
    name: "site-to-site without NAT: IKE, ESP blocked outright",
    scenario: { vpn: "site-to-site", ike: 1, nat: "none", peers: [PEER], local: GW, wan: "eth0" },
    rules: ["-A INPUT -i lo -j ACCEPT"],
    before: ["esp-blocked", "ike-blocked"],
  },
  {
    name: "L2TP/IPsec server with plain UDP 1701 open",
    scenario: { vpn: "l2tp-ipsec", nat: "peer", local: GW, wan: "eth0" },
    rules: [
      "-A INPUT -i lo -j ACCEPT",
      "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A INPUT -p udp -m udp --dport 1701 -j ACCEPT",
    ],
    before: ["ike-blocked", "l2tp-unprotected", "natt-blocked"],
  },
];

describeKernel("audit fixes applied in a network namespace add up", () => {
  afterAll(sweepNamespaces);
  it.concurrent.each(CASES.map((c, i) => [c.name, c, i] as const))(
    "%s",
    async (_n, c, i) => {
      const errorsOf = (r: ReturnType<typeof audit>) =>
        r.findings.filter((f) => f.severity === "error").map((f) => f.id);
      const first = audit(ruleset(c.rules), c.scenario);
      expect(errorsOf(first).sort()).toEqual(c.before);
      const fixes = [...new Set(first.findings.flatMap((f) => (f.fix ? [f.fix.text] : [])))];
      expect(fixes.length).toBeGreaterThan(1);
      const ns = `tc-${process.pid}-fix-${i}`;
      try {
        await run("ip", ["netns", "add", ns]);
        await inNs(ns, ["iptables-restore"], { input: ruleset(c.rules) });
        for (const fix of fixes) await inNs(ns, ["sh", "-e"], { input: fix });
        const saved = (await inNs(ns, ["iptables-save"])).stdout;
        expect(errorsOf(audit(saved, c.scenario)), saved).toEqual([]);
        for (const fix of fixes) await inNs(ns, ["sh", "-e"], { input: fix });
        const strip = (s: string) => s.replace(/^#.*\n/gm, "").replace(/\[\d+:\d+\]/g, "");
        expect(strip((await inNs(ns, ["iptables-save"])).stdout), "running the fixes again").toBe(
          strip(saved),
        );
      } finally {
        await run("ip", ["netns", "del", ns], { check: false });
      }
    },
    30_000,
  );
});
