import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";

/** The package's single entry point must be enough to do what the CLI does. */
describe("library API (src/index.ts, the package's only export)", () => {
  const rules =
    "*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p esp -j ACCEPT\nCOMMIT\n";

  it("audits an iptables gateway with the default loaders", () => {
    const r = api.runAudit(
      {
        gateways: [
          { name: "gw", platform: "iptables", file: "gw.rules", text: rules, addresses: ["198.51.100.1"] },
        ],
        tunnels: [
          {
            kind: "scenario",
            gateway: "gw",
            scenario: { vpn: "site-to-site", peers: ["203.0.113.7"], local: "198.51.100.1", wan: "eth0" },
          },
        ],
      },
      api.defaultLoaders,
    );
    expect(r.findings.map((f) => f.id).sort()).toEqual(["ike-reply-only", "natt-reply-only"]);
  });

  it("parses and traces iptables, concrete and symbolic", () => {
    const { ruleset, errors } = api.parseIptables(rules, { file: "gw.rules" });
    expect(errors).toEqual([]);
    const one = api.traceIptables(ruleset, {
      src: "203.0.113.7",
      dst: "198.51.100.1",
      proto: "udp",
      dport: 500,
      state: "new",
    });
    expect(one.kind === "symbolic" ? "?" : one.verdict).toBe("drop");
    const any = api.traceIptables(ruleset, { src: "any", dst: "198.51.100.1", proto: 50, state: "new" });
    expect(any.kind).toBe("symbolic");
    expect(api.renderIptablesTrace(any)).toMatch(/accept/);
  });

  it("loads a FortiOS config and evaluates its local-in policies", () => {
    const { model } = api.loadFortios(
      'config system interface\n    edit "port1"\n        set ip 198.51.100.1 255.255.255.0\n    next\nend\n',
      {
        file: "fgt.conf",
      },
    );
    const ev = api.fortiosEvaluator(model);
    const parts = ev.evaluate({
      family: 4,
      proto: 17,
      dport: 500,
      sources: api.AddrSet.all(4),
      iif: "port1",
      state: "new",
      ipsec: false,
    });
    expect(parts.map((p) => p.verdict)).toEqual(["accept"]); // no local-in policy: implicit accept
  });
});
