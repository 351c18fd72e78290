import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatPrefix } from "../src/model/address.js";
import { generateNftables, NFT_NAT_BEGIN, NFT_NAT_END } from "../src/platforms/nftables/generate.js";
import { type GenerateOptions, TargetError } from "../src/platforms/types.js";
import { activeFlows, planFlows } from "../src/vpn/flows.js";
import { makeScenario, type ScenarioInput } from "../src/vpn/scenario.js";
import { generatorGrid, gridInput } from "./helpers/generator-grid.js";

const nftFound = spawnSync("nft", ["--version"]).error === undefined;
// Missing nft only skips locally; in CI the syntax check is mandatory.
const checkWithNft = nftFound || Boolean(process.env.CI);

const dir = mkdtempSync(join(tmpdir(), "tc-nft-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

function nftCheck(text: string): { ok: boolean; err: string } {
  const file = join(dir, `r${fileNo++}.nft`);
  writeFileSync(file, text);
  const r = spawnSync("nft", ["-c", "-f", file], { encoding: "utf8" });
  if (r.error) return { ok: false, err: String(r.error) };
  return { ok: r.status === 0, err: r.stderr };
}

const OPTS: GenerateOptions = { defaultDrop: false, requiredOnly: false, egress: false };

const scenarioInput = (
  vpn: string,
  nat: string,
  ah: boolean,
  v6: boolean,
  peersKnown: boolean,
): ScenarioInput => gridInput(vpn, nat, ah, v6, peersKnown, "eth0");

/** The rules of one chain (lines, comments dropped) in the part before/after the NAT marker. */
function chainRules(text: string, chain: string, part: "gateway" | "nat" = "gateway"): string[] {
  const [gw, rest = ""] = text.split(`\n${NFT_NAT_BEGIN}\n`);
  const src = part === "gateway" ? (gw ?? "") : rest;
  const lines = src.split("\n");
  const start = lines.findIndex((l) => l.trim() === `chain ${chain} {`);
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.trim() === "}") break;
    if (l.trim() && !l.trim().startsWith("#")) out.push(l.trim());
  }
  return out;
}

const withId = (rules: string[], id: string) =>
  rules.filter((r) => r.endsWith(`comment "tunnelcheck: ${id}"`));

const ALL = generatorGrid("eth0");

describe("generateNftables: every scenario combination", () => {
  it.skipIf(!checkWithNft)("passes nft -c -f", () => {
    const failures: string[] = [];
    for (const c of ALL) {
      const r = nftCheck(generateNftables(c.plan, c.opts));
      if (!r.ok) failures.push(`${c.name}: ${r.err.split("\n")[0]}`);
    }
    expect(failures).toEqual([]);
    expect(ALL.length).toBe(3 * 4 * 2 * 2 * 2 * 2);
  });

  it("accepts each active inbound flow exactly once, from the peers, without requiring conntrack state", () => {
    for (const c of ALL) {
      const text = generateNftables(c.plan, c.opts);
      const input = chainRules(text, "input");
      const s = c.plan.scenario;
      for (const f of activeFlows(c.plan, c.opts)) {
        if (f.location !== "gateway" || f.direction !== "inbound") continue;
        const rules = withId(input, f.id);
        expect(rules, `${c.name} ${f.id}`).toHaveLength(1);
        const rule = rules[0]!;
        expect(rule).not.toMatch(/ct state/);
        expect(rule, `${c.name} ${f.id}`).toMatch(
          f.action === "accept" ? / accept comment/ : / drop comment/,
        );
        if (f.action === "accept") {
          const sel = s.family === 4 ? "ip" : "ip6";
          if (f.peers.length > 0) expect(rule).toContain(`${sel} saddr @peers`);
          else expect(rule).not.toMatch(/saddr/);
          expect(rule).toContain(`${sel} daddr ${formatPrefix(s.local!)}`);
          expect(rule).toContain('iifname "eth0"');
        }
      }
      // Nothing the plan does not list for the gateway's input may be accepted.
      const expected = activeFlows(c.plan, c.opts)
        .filter((f) => f.location === "gateway" && f.direction === "inbound")
        .map((f) => f.id);
      const emitted = input
        .map((r) => /comment "tunnelcheck: ([^"]+)"$/.exec(r)?.[1])
        .filter(
          (id) => id && !["loopback", "established", "ipv6-nd", "ipv6-mld", "default-drop"].includes(id),
        );
      expect(emitted.sort(), c.name).toEqual([...expected].sort());
      if (s.peers.length > 0) {
        const elems = s.peers.map((p) => formatPrefix(p)).join(", ");
        expect(text).toContain(`elements = { ${elems} }`);
      }
    }
  });

  it("emits ESP iff the plan requires it, and AH never under NAT", () => {
    for (const c of ALL) {
      const input = chainRules(generateNftables(c.plan, c.opts), "input");
      const espRequired = c.plan.flows.some((f) => f.id === "esp-in" && f.requirement === "required");
      expect(
        input.some((r) => r.includes("meta l4proto esp")),
        c.name,
      ).toBe(espRequired);
      if (c.plan.scenario.nat !== "none")
        expect(
          input.some((r) => r.includes("meta l4proto ah")),
          c.name,
        ).toBe(false);
    }
  });

  it("matches UDP 1701 only together with the IPsec policy match", () => {
    for (const c of ALL) {
      const text = generateNftables(c.plan, c.opts);
      const rules = [...chainRules(text, "input"), ...chainRules(text, "output")];
      const l2tp = rules.filter((r) => r.includes("dport 1701"));
      for (const r of l2tp) {
        if (r.endsWith(' accept comment "tunnelcheck: l2tp-in"')) expect(r).toContain("meta ipsec exists");
        else expect(r).toMatch(/meta ipsec missing .* drop comment "tunnelcheck: l2tp-plain-in"$/);
      }
      expect(l2tp.length, c.name).toBe(c.plan.scenario.vpn === "l2tp-ipsec" ? 2 : 0);
      // The NAT device never forwards 1701 (L2TP rides inside NAT-T).
      expect(text).not.toMatch(/1701 .*dnat/);
    }
  });

  it("default drop: a final drop of the plan's family, loopback first, plain L2TP dropped before the established accept", () => {
    const plan = planFlows(makeScenario(scenarioInput("l2tp-ipsec", "none", false, false, true)));
    const text = generateNftables(plan, { ...OPTS, defaultDrop: true });
    const input = chainRules(text, "input");
    expect(input[0]).toBe("type filter hook input priority filter; policy accept;");
    expect(input.at(-1)).toMatch(/^meta nfproto ipv[46] counter drop comment "tunnelcheck: default-drop"$/);
    expect(input[1]).toMatch(/^iif "lo" accept/);
    const plain = input.findIndex((r) => r.includes("l2tp-plain-in"));
    const est = input.findIndex((r) => r.startsWith("ct state established,related accept"));
    const firstAccept = input.findIndex((r) => r.includes("tunnelcheck: ike-in"));
    expect(plain).toBeGreaterThan(1);
    expect(est).toBeGreaterThan(plain);
    expect(firstAccept).toBeGreaterThan(est);

    const additive = chainRules(generateNftables(plan, OPTS), "input");
    expect(additive[0]).toBe("type filter hook input priority filter; policy accept;");
    expect(additive.some((r) => r.includes("ct state"))).toBe(false);
  });

  it("comments optional flows and leaves them out with requiredOnly", () => {
    const plan = planFlows(makeScenario({ vpn: "l2tp-ipsec", nat: "none", peers: ["192.0.2.1"] }));
    const natt = plan.flows.find((f) => f.id === "natt-in")!;
    expect(natt.requirement).toBe("optional");
    const text = generateNftables(plan, OPTS);
    expect(text).toContain(`# natt-in (optional): ${natt.reason}`);
    expect(withId(chainRules(text, "input"), "natt-in")).toHaveLength(1);
    expect(
      withId(chainRules(generateNftables(plan, { ...OPTS, requiredOnly: true }), "input"), "natt-in"),
    ).toEqual([]);
  });

  it("one inet table per plan family (tunnelcheck4 / tunnelcheck6): a dual-stack gateway loads both; maps the iptables wildcard", () => {
    const plan = planFlows(makeScenario({ vpn: "ikev2-remote-access", ipv6: true, wan: "ppp+" }));
    const text = generateNftables(plan, { ...OPTS, defaultDrop: true });
    expect(text).toMatch(/^table inet tunnelcheck6 \{$/m);
    expect(text).toMatch(/icmpv6 type \{ nd-router-solicit, .* comment "tunnelcheck: ipv6-nd"/);
    expect(text).toMatch(
      /ip6 saddr fe80::\/10 icmpv6 type \{ mld-listener-query,.* comment "tunnelcheck: ipv6-mld"/,
    );
    const input = chainRules(text, "input");
    expect(withId(input, "ike-in")[0]).toBe(
      'iifname "ppp*" meta nfproto ipv6 udp dport 500 counter accept comment "tunnelcheck: ike-in"',
    );
    // The default drop only drops this plan's family: the other plan's table decides for its own.
    expect(text).toContain("type filter hook input priority filter; policy accept;");
    expect(input.at(-1)).toBe('meta nfproto ipv6 counter drop comment "tunnelcheck: default-drop"');
    const v4 = generateNftables(planFlows(makeScenario({ vpn: "ikev2-remote-access", wan: "ppp+" })), {
      ...OPTS,
      defaultDrop: true,
    });
    expect(v4).toMatch(/^table inet tunnelcheck4 \{$/m);
    expect(v4).not.toMatch(/icmpv6/); // neighbour discovery belongs to the IPv6 plan
  });

  it("egress: an L2TP server's own L2TP leaves only through IPsec (rt ipsec exists)", () => {
    const plan = planFlows(makeScenario({ vpn: "l2tp-ipsec", peers: ["192.0.2.0/24"], wan: "eth0" }));
    const output = chainRules(generateNftables(plan, { ...OPTS, egress: true }), "output");
    expect(withId(output, "l2tp-out")).toEqual([
      'oifname "eth0" ip daddr @peers rt ipsec exists udp sport 1701 counter accept comment "tunnelcheck: l2tp-out"',
    ]);
  });

  it("egress: outbound flows in an output chain, IKE matched on the gateway's source port", () => {
    const plan = planFlows(makeScenario({ vpn: "site-to-site", peers: ["192.0.2.1"], ikeTcp: true }));
    const text = generateNftables(plan, { ...OPTS, egress: true });
    const output = chainRules(text, "output");
    expect(withId(output, "ike-out")).toEqual([
      'ip daddr @peers udp sport 500 counter accept comment "tunnelcheck: ike-out"',
    ]);
    expect(withId(output, "esp-out")).toEqual([
      'ip daddr @peers meta l4proto esp counter accept comment "tunnelcheck: esp-out"',
    ]);
    expect(withId(output, "ike-tcp-out")).toHaveLength(2);
    expect(chainRules(generateNftables(plan, OPTS), "output")).toEqual([]);
  });

  it("puts the NAT device's port forwards in a separate, marked table", () => {
    const plan = planFlows(makeScenario(scenarioInput("l2tp-ipsec", "local", false, false, true)));
    const text = generateNftables(plan, OPTS);
    expect(text).toContain(NFT_NAT_BEGIN);
    expect(text.trimEnd().endsWith(NFT_NAT_END)).toBe(true);
    const [gatewayPart] = text.split(`\n${NFT_NAT_BEGIN}\n`);
    expect(gatewayPart).not.toContain("dnat");
    const pre = chainRules(text, "prerouting", "nat");
    expect(withId(pre, "ike-forward")).toEqual([
      'ip saddr @peers ip daddr 203.0.113.1 udp dport 500 counter dnat to 10.0.0.10 comment "tunnelcheck: ike-forward"',
    ]);
    expect(withId(pre, "natt-forward")).toHaveLength(1);
    const fwd = chainRules(text, "forward", "nat");
    expect(withId(fwd, "natt-forward")[0]).toMatch(
      /^ct status dnat ip saddr @peers ip daddr 10\.0\.0\.10 udp dport 4500/,
    );
    expect(text).toMatch(/^table ip tunnelcheck-nat \{$/m);

    const none = generateNftables(
      planFlows(makeScenario(scenarioInput("l2tp-ipsec", "peer", false, false, true))),
      OPTS,
    );
    expect(none).not.toContain(NFT_NAT_BEGIN);
  });

  it("refuses a NAT-device part without the gateway's private address", () => {
    const plan = planFlows(makeScenario({ vpn: "site-to-site", nat: "local", peers: ["192.0.2.1"] }));
    expect(() => generateNftables(plan, OPTS)).toThrow(TargetError);
  });

  it.skipIf(!checkWithNft)("accepts overlapping and duplicate peers (auto-merge)", () => {
    const plan = planFlows(
      makeScenario({
        vpn: "site-to-site",
        peers: ["10.0.0.0/8", "10.1.0.0/16", "10.1.0.0/16"],
        local: "192.0.2.1",
      }),
    );
    const r = nftCheck(generateNftables(plan, { ...OPTS, defaultDrop: true }));
    expect(r.err).toBe("");
    expect(r.ok).toBe(true);
  });
});
