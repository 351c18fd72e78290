import { describe, expect, it } from "vitest";
import { GatewayInputError } from "../src/analysis/gateway.js";
import { runAudit } from "../src/analysis/run-audit.js";
import { loadFortiosGateway } from "../src/platforms/fortios/gateway.js";
import { loadIptablesGateway, parseIpsetSave } from "../src/platforms/iptables/gateway.js";
import { generateIptables } from "../src/platforms/iptables/generate.js";
import { parseIptables } from "../src/platforms/iptables/parse.js";
import { defaultGenerateOptions } from "../src/platforms/types.js";
import { planFlows } from "../src/vpn/flows.js";
import type { ScenarioInput } from "../src/vpn/scenario.js";
import { makeScenario } from "../src/vpn/scenario.js";
import { filterRules } from "./helpers/rulesets.js";
import { seed } from "./kernel/seed000.js";

const LOADERS = { fortios: loadFortiosGateway, iptables: loadIptablesGateway };
const PEER = "203.0.113.7";
const GW = "198.51.100.1";
const S2S: ScenarioInput = { vpn: "site-to-site", ike: 1, peers: [PEER], local: GW, wan: "eth0" };

function audit(
  text: string,
  scenario: ScenarioInput = S2S,
  extra: { ipset?: string; addresses?: string[] } = {},
) {
  return runAudit(
    {
      gateways: [
        {
          name: "gw",
          platform: "iptables",
          file: "gw.rules",
          text,
          addresses: extra.addresses ?? [GW],
          ...(extra.ipset ? { ipset: { file: "sets.save", text: extra.ipset } } : {}),
        },
      ],
      tunnels: [{ kind: "scenario", gateway: "gw", scenario }],
    },
    LOADERS,
  );
}

const rules = filterRules;
const ids = (r: ReturnType<typeof audit>) => r.findings.map((f) => f.id).sort();
const errors = (r: ReturnType<typeof audit>) => r.findings.filter((f) => f.severity === "error");

/** Seed 000's shell lines as iptables-save input, INPUT policy DROP (what the seed relies on). */
function seedRules(section: string, edit: (l: string) => string = (l) => l): string {
  const s = seed(section);
  const lines = [...s.lines, ...(s.plus ?? [])].map((l) =>
    edit(l.replace(/^iptables /, "").replace(/\s+#.*$/, "")),
  );
  return rules(lines);
}

describe("audit on Linux: real iptables semantics", () => {
  it("the Linux trap: ESTABLISHED,RELATED and ESP accepted, no NEW rule for UDP 500 → ike-reply-only", () => {
    const r = audit(
      rules([
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", // 5
        "-A INPUT -i eth0 -p esp -j ACCEPT", // 6
      ]),
    );
    expect(ids(r)).toEqual(["ike-reply-only"]);
    const f = r.findings[0]!;
    expect(f).toMatchObject({ severity: "error", gateway: "gw", flow: "ike-in" });
    expect(f.message).toMatch(/dropped by policy DROP of filter INPUT when new/);
    expect(f.message).toMatch(/let in by gw\.rules:5/);
    expect(f.message).toMatch(
      /after 120 s without packets \(Linux conntrack default nf_conntrack_udp_timeout_stream/,
    );
    expect(f.rules.map((x) => x.line)).toEqual([5]);
    expect(f.fix?.target).toBe("iptables");
    expect(f.fix?.text).toMatch(/--dport 500/);
    // Accepting NEW IKE from the peer clears it.
    const fixed = audit(
      rules([
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        `-A INPUT -s ${PEER} -p udp --dport 500 -m conntrack --ctstate NEW -j ACCEPT`,
        "-A INPUT -i eth0 -p esp -j ACCEPT",
      ]),
    );
    expect(ids(fixed)).toEqual([]);
  });

  it("seed 000 §6.1, §6.2, §7.5 audited for their own scenario: no error", () => {
    for (const sec of ["6.1", "6.2", "7.5a", "7.5b"]) {
      const r = audit(seedRules(sec), seed(sec).scenario);
      expect(errors(r).map((f) => `${sec}: ${f.id} ${f.message}`)).toEqual([]);
      expect(r.verdicts.length).toBeGreaterThan(0);
    }
  });

  it("seed 000 §6.1 without the policy match on the 1701 rule → l2tp-unprotected, pointing at it", () => {
    const text = seedRules("6.1", (l) => l.replace(" -m policy --dir in --pol ipsec", ""));
    const r = audit(text, seed("6.1").scenario);
    expect(ids(r)).toEqual(["l2tp-unprotected"]);
    const f = r.findings[0]!;
    expect(f.rules.map((x) => x.text)).toEqual(["-A INPUT -i eth0 -p udp -m udp --dport 1701 -j ACCEPT"]);
    expect(f.rules[0]!.line).toBe(9);
  });

  it("`-m policy --proto esp --mode transport` on the 1701 rule is judged against L2TP's transport-mode SA", () => {
    const with_ = (opts: string) =>
      seedRules("6.1", (l) =>
        l.replace(" -m policy --dir in --pol ipsec", ` -m policy --dir in --pol ipsec ${opts}`),
      );
    const espOnly = { ...seed("6.1").scenario, ah: false };
    const l2tpIds = (r: ReturnType<typeof audit>) =>
      ids(r).filter((id) => id.startsWith("l2tp") || id === "verdict-unknown");
    // What L2TP/IPsec guides write: accepted, exactly, no "unknown".
    for (const opts of [
      "--proto esp",
      "--mode transport",
      "--proto esp --mode transport",
      "--strict --proto esp --mode transport",
    ])
      expect([opts, ...l2tpIds(audit(with_(opts), espOnly))]).toEqual([opts]);
    // A rule for another SA does not let L2TP in.
    for (const opts of ["--mode tunnel", "--proto ah", "! --proto esp"])
      expect([opts, ...l2tpIds(audit(with_(opts), espOnly))]).toEqual([opts, "l2tp-blocked"]);
    // What the scenario cannot know stays unknown, with the reason: the reqid, and with AH in use
    // whether an AH SA is bundled around the ESP one.
    const reqid = audit(with_("--reqid 7"), espOnly);
    expect(reqid.findings.find((f) => f.id === "verdict-unknown")!.message).toMatch(
      /IPsec SA details unknown/,
    );
    const ah = seed("6.1").scenario;
    expect(ah.ah).toBe(true);
    expect(l2tpIds(audit(with_("--proto esp"), ah))).toEqual([]);
    expect(l2tpIds(audit(with_("--proto ah"), ah))).toEqual(["verdict-unknown"]);
    expect(l2tpIds(audit(with_("--strict --proto esp"), ah))).toEqual(["verdict-unknown"]);
  });

  it("ike-open-to-any names the sources as prefixes when tidy, as address ranges when not", () => {
    const open = (drop: string) =>
      audit(
        rules([
          `-A INPUT ${drop} -p udp --dport 500 -j DROP`,
          "-A INPUT -p udp --dport 500 -j ACCEPT",
          "-A INPUT -p esp -j ACCEPT",
        ]),
      ).findings.find((f) => f.id === "ike-open-to-any")!.message;
    expect(open("-s 10.0.0.0/8")).toMatch(/any source except 10\.0\.0\.0\/8, 203\.0\.113\.7\)/);
    expect(open("-m iprange --src-range 10.0.0.5-10.0.0.9")).toMatch(
      /any source except 10\.0\.0\.5-10\.0\.0\.9, 203\.0\.113\.7\)/,
    );
  });

  it("a user chain that RETURNs for non-peers: the peer is accepted, nobody else", () => {
    const chain = (peer: string) =>
      [
        "*filter",
        ":INPUT DROP [0:0]",
        ":IKE - [0:0]",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -p udp --dport 500 -j IKE",
        "-A INPUT -p esp -j ACCEPT",
        `-A IKE ! -s ${peer} -j RETURN`,
        "-A IKE -j ACCEPT", // reads like "accept any IKE", it is not
        "COMMIT",
        "",
      ].join("\n");
    const ok = audit(chain(PEER));
    expect(ids(ok)).toEqual([]); // clean: no ike-open-to-any either
    const other = audit(chain("203.0.113.8"));
    expect(ids(other)).toEqual(["ike-open-to-any", "ike-reply-only"]);
    expect(other.findings.find((f) => f.id === "ike-open-to-any")!.message).toMatch(/203\.0\.113\.8/);
  });

  it("a negated source: `! -s` the peer's network opens IKE to everyone but the peer", () => {
    const r = audit(
      rules(["-A INPUT ! -s 203.0.113.0/24 -p udp --dport 500 -j ACCEPT", "-A INPUT -p esp -j ACCEPT"]),
    );
    expect(ids(r)).toEqual(["ike-blocked", "ike-open-to-any"]);
    expect(r.findings.find((f) => f.id === "ike-blocked")!.message).toMatch(/policy DROP of filter INPUT/);
  });

  it("a multiport accept further down, behind a DROP for a range containing the peer → ike-blocked", () => {
    const r = audit(
      rules([
        "-A INPUT -m iprange --src-range 203.0.113.0-203.0.113.99 -j DROP", // 5
        "-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT", // 6
        "-A INPUT -p esp -j ACCEPT",
      ]),
    );
    expect(ids(r)).toEqual(["esp-blocked", "ike-blocked", "ike-open-to-any"]);
    const f = r.findings.find((x) => x.id === "ike-blocked")!;
    expect(f.rules.map((x) => x.line)).toEqual([5]);
    // The same accept with the peer outside the dropped range: only the over-exposure remains.
    expect(
      ids(
        audit(
          rules([
            "-A INPUT -s 203.0.113.128/25 -j DROP",
            "-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT",
            "-A INPUT -p esp -j ACCEPT",
          ]),
        ),
      ),
    ).toEqual(["ike-open-to-any"]);
  });

  it("a rule with -m limit deciding IKE → verdict-unknown, naming the rule", () => {
    const r = audit(
      rules([
        `-A INPUT -s ${PEER} -p udp --dport 500 -m limit --limit 10/s -j ACCEPT`, // 5
        "-A INPUT -p esp -j ACCEPT",
      ]),
    );
    expect(ids(r)).toEqual(["verdict-unknown"]);
    const f = r.findings[0]!;
    expect(f).toMatchObject({ severity: "error", flow: "ike-in" });
    expect(f.rules.map((x) => x.line)).toEqual([5]);
    expect(f.message).toMatch(/limit/);
  });

  it("ipset contents make -m set exact; without them the gateway warns and IKE is unknown", () => {
    const text = rules([
      "-A INPUT -p udp --dport 500 -m set --match-set peers src -j ACCEPT",
      "-A INPUT -p esp -j ACCEPT",
    ]);
    const ipset = `create peers hash:net family inet hashsize 1024 maxelem 65536\nadd peers 203.0.113.0/24\nadd peers 203.0.113.0/28 nomatch\n`;
    // The peer 203.0.113.7 is in the nomatch /28: blocked, while the rest of the /24 may open IKE.
    expect(ids(audit(text, S2S, { ipset }))).toEqual(["ike-blocked", "ike-open-to-any"]);
    const none = audit(text);
    expect(ids(none)).toEqual(["verdict-unknown"]);
    expect(none.warnings.join("\n")).toMatch(/gw\.rules:5:\d+: warning: -m set --match-set peers/);
    const sets = parseIpsetSave(ipset, "sets.save", 4).sets.get("peers")!;
    expect(sets.toString()).toBe("203.0.113.16/28, 203.0.113.32/27, 203.0.113.64/26, 203.0.113.128/25");
    expect(ids(audit(text, { ...S2S, peers: ["203.0.113.20"] }, { ipset }))).toEqual(["ike-open-to-any"]);
  });

  it("input errors: every parse error with file:line:col; an IPv6 rule set for an IPv4 VPN", () => {
    let err: unknown;
    try {
      audit("*filter\n-A INPUT -p tcp --dport 99999 -j ACCEPT\n-A INPUT -j NOPE\nCOMMIT\n");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayInputError);
    const lines = (err as Error).message.split("\n");
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(/^gw\.rules:2:\d+: /);
    expect(lines[1]).toMatch(/^gw\.rules:3:\d+: /);
    expect(() =>
      audit("# Generated by ip6tables-save\n*filter\n:INPUT DROP [0:0]\nCOMMIT\n", S2S, {
        addresses: ["2001:db8::1"],
      }),
    ).toThrow(/IPv6\) rule set, but the VPN on gateway gw is IPv4/);
    expect(() => audit(rules([]), S2S, { addresses: ["not-an-ip"] })).toThrow(GatewayInputError);
  });

  it("firewalld's iptables skeleton (RELATED,ESTABLISHED,DNAT first): decided, not unknown — no DNAT rule, no DNAT state", () => {
    const r = audit(
      rules([
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -p esp -j ACCEPT",
        "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
      ]),
    );
    expect(ids(r)).toEqual(["ike-reply-only"]);
  });

  it("IKE fragments are judged as the reassembled IKE datagram (IPv4 reassembles before INPUT), not waved through", () => {
    const row = (r: ReturnType<typeof audit>, flow: string) =>
      r.verdicts.find((v) => v.flow === flow)?.status;
    const trap = audit(
      rules([
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -i eth0 -p esp -j ACCEPT",
      ]),
    );
    expect(row(trap, "ike-in")).toBe("reply-only");
    expect(row(trap, "ike-fragments-in")).toBe("reply-only");
    const open = audit(
      rules([
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        `-A INPUT -s ${PEER} -p udp --dport 500 -j ACCEPT`,
        "-A INPUT -i eth0 -p esp -j ACCEPT",
      ]),
    );
    expect(row(open, "ike-fragments-in")).toBe("accepted-new");
  });

  it("IPv6: our own -m frag rules are judged exactly (non-first fragments meet them one by one), not unknown", () => {
    const scenario: ScenarioInput = {
      vpn: "site-to-site",
      ike: 2,
      peers: ["2001:db8::7"],
      local: "2001:db8:1::1",
      wan: "eth0",
    };
    const generated = generateIptables(planFlows(makeScenario(scenario)), {
      ...defaultGenerateOptions,
      format: "restore",
    }).split("\n");
    const own = generated.filter((l) => l.startsWith("-A TC-IPSEC-IN"));
    expect(own.some((l) => l.includes("-m frag --fragfirst"))).toBe(true);
    const ruleset = (conntrack: boolean) =>
      [
        "*filter",
        ":INPUT DROP [0:0]",
        ":TC-IPSEC-IN - [0:0]",
        ...(conntrack ? ["-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"] : []),
        "-A INPUT -j TC-IPSEC-IN",
        ...own,
        "COMMIT",
        "",
      ].join("\n");
    for (const conntrack of [false, true]) {
      const r = audit(ruleset(conntrack), scenario, { addresses: ["2001:db8:1::1"] });
      expect(
        r.warnings.filter((w) => w.includes("frag")),
        `conntrack ${conntrack}`,
      ).toEqual([]);
      const row = r.verdicts.find((v) => v.flow === "ike-fragments-in");
      expect(row?.status, `conntrack ${conntrack}`).toBe("accepted-new");
      // Without conntrack the fragment meets the frag accept; with it, nf_defrag_ipv6 reassembles first
      // and the port rule of the datagram decides (IKE_AUTH, on UDP 4500 once MOBIKE has floated).
      const line = row?.parts[0]?.rule?.text ?? "";
      if (conntrack) expect(line).toMatch(/--dport 4500/);
      else expect(line).toMatch(/-m frag -m comment/);
      expect(errors(r)).toEqual([]);
    }
  });

  it("-m frag --fraglen is loaded and ignored by the kernel: a warning, not an unknown", () => {
    const parsed = parseIptables(
      "*filter\n:INPUT DROP [0:0]\n-A INPUT -m frag --fraglen 8 -j ACCEPT\nCOMMIT\n",
      {
        file: "f.rules",
        family: 6,
      },
    );
    expect(parsed.errors).toEqual([]);
    expect(parsed.warnings.map((w) => w.message)).toEqual([
      "--fraglen has no effect: the kernel's frag match does not read it",
    ]);
    expect(parsed.ruleset.tables.get("filter")!.chains.get("INPUT")!.rules[0]!.unknown).toEqual([]);
    // ip6tables refuses --fragmore with --fraglast (M set and clear); so does the parser.
    const both = parseIptables("*filter\n-A INPUT -m frag --fragmore --fraglast -j DROP\nCOMMIT\n", {
      file: "g.rules",
      family: 6,
    });
    expect(both.errors.map((e) => `${e.line}:${e.col} ${e.message}`)).toEqual([
      "2:29 --fraglast: cannot be used together with --fragmore",
    ]);
  });

  it("strongSwan's textbook --sport 500 --dport 500: exact without NAT at the peer, unknown behind it", () => {
    const text = rules([
      `-A INPUT -s ${PEER} -i eth0 -p udp --sport 500 --dport 500 -j ACCEPT`,
      `-A INPUT -s ${PEER} -i eth0 -p udp --sport 4500 --dport 4500 -j ACCEPT`,
      `-A INPUT -s ${PEER} -i eth0 -p esp -j ACCEPT`,
    ]);
    // No NAT (or only a port forward in front of this gateway): the peer sends from 500 and 4500.
    expect(ids(audit(text, { ...S2S, nat: "none" }))).toEqual([]);
    expect(ids(audit(text, { ...S2S, nat: "local", publicAddress: "192.0.2.1" }))).not.toContain(
      "verdict-unknown",
    );
    // Behind a NAT the peer's source port is whatever the NAT picked: the rule's --sport decides, unknown.
    const natted = audit(text, { ...S2S, ike: 2, nat: "peer" });
    expect(natted.findings.filter((f) => f.id === "verdict-unknown").map((f) => f.flow)).toEqual([
      "ike-in",
      "natt-in",
    ]);
  });

  it("a hub with 500 peers and IKE open to all: one ike-open-to-any finding, short enough to read", () => {
    const peers = Array.from({ length: 500 }, (_, i) => `10.${i >> 8}.${i & 255}.9`);
    // One ACCEPT per peer, then one for everybody: the non-peers are split across many parts.
    const text = rules([
      ...peers.map((p) => `-A INPUT -s ${p}/32 -p udp -m udp --dport 500 -j ACCEPT`),
      "-A INPUT -p udp -m multiport --dports 500,4500 -j ACCEPT",
      "-A INPUT -p esp -j ACCEPT",
    ]);
    const r = audit(text, { ...S2S, peers });
    const open = r.findings.filter((f) => f.id === "ike-open-to-any");
    expect(open).toHaveLength(1);
    expect(open[0]!.message.length).toBeLessThan(600); // was ~40 kB per part, hundreds of parts
    // Said as what it is: the sources let in are the non-peers, not "any source except" the peers.
    expect(open[0]!.message).toMatch(
      /^IKE \(UDP 500\) is accepted as new from every source that is not a peer,/,
    );
    expect(open[0]!.message).toMatch(/peers are known \(10\.0\.0\.9, .* … and 492 more\)/);
    expect(open[0]!.rules.map((x) => x.line)).toEqual([505]); // the multiport ACCEPT for everybody
  });
});
