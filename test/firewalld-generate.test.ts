import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { formatPrefix } from "../src/model/address.js";
import { FIREWALLD_EGRESS_POLICY, generateFirewalld } from "../src/platforms/firewalld/generate.js";
import { type GenerateOptions, TargetError } from "../src/platforms/types.js";
import { activeFlows, type Flow, planFlows } from "../src/vpn/flows.js";
import { makeScenario, type ScenarioInput } from "../src/vpn/scenario.js";
import { generatorGrid, gridInput } from "./helpers/generator-grid.js";

const OPTS: GenerateOptions = { defaultDrop: false, requiredOnly: false, egress: false };

const input = (vpn: string, nat: string, ah: boolean, v6: boolean, peersKnown: boolean): ScenarioInput =>
  gridInput(vpn, nat, ah, v6, peersKnown, "eth0");

const ALL = generatorGrid("eth0");

const commands = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("firewall-cmd "));
const richRules = (text: string, scope = "") =>
  [...text.matchAll(/(--zone="\$ZONE"|--policy=\S+) --add-rich-rule='([^']*)'/g)]
    .filter((m) => scope === "" || m[1] === scope)
    .map((m) => m[2]!);
const ZONE = '--zone="$ZONE"';
const directRules = (text: string) =>
  [...text.matchAll(/--direct --add-rule (ipv[46]) filter INPUT (\d+) (.*)$/gm)].map((m) => ({
    ipv: m[1]!,
    args: m[3]!,
  }));

function element(f: Flow): string {
  return f.protocol === "esp" || f.protocol === "ah"
    ? `protocol value="${f.protocol}"`
    : `port port="${f.port}" protocol="${f.protocol}"`;
}

describe("generateFirewalld", () => {
  it("is valid sh and ends with a reload", () => {
    for (const c of ALL) {
      const text = generateFirewalld(c.plan, c.opts);
      const r = spawnSync("sh", ["-n"], { input: text, encoding: "utf8" });
      expect(r.status, `${c.name}: ${r.stderr}`).toBe(0);
      expect(commands(text).at(-1), c.name).toBe("firewall-cmd --reload");
      for (const cmd of commands(text).slice(0, -1))
        expect(cmd, c.name).toMatch(/^firewall-cmd --permanent /);
    }
  });

  it("accepts each active inbound flow once per peer, restricted to the peers and the local address", () => {
    for (const c of ALL) {
      const s = c.plan.scenario;
      const text = generateFirewalld(c.plan, c.opts);
      const rich = richRules(text, ZONE).filter((r) => r.endsWith(" accept"));
      const inbound = activeFlows(c.plan, c.opts).filter(
        (f) =>
          f.location === "gateway" &&
          f.direction === "inbound" &&
          f.action === "accept" &&
          f.protocol !== "fragment",
      );
      for (const f of inbound) {
        const mine = rich.filter((r) => r.includes(` ${element(f)} accept`));
        const want = f.peers.length ? f.peers.map((p) => `source address="${formatPrefix(p)}"`) : [""];
        expect(mine, `${c.name} ${f.id}`).toHaveLength(want.length);
        for (const w of want) {
          expect(
            mine.filter(
              (r) => r.includes(w) && r.includes(`destination address="${formatPrefix(s.local!)}"`),
            ),
            `${c.name} ${f.id} ${w}`,
          ).toHaveLength(1);
        }
        for (const r of mine) expect(r.startsWith(`rule family="ipv${s.family}"`)).toBe(true);
      }
      // Nothing beyond the plan: count of inbound accepts equals flows × peers.
      const expected = inbound.reduce((n, f) => n + Math.max(1, f.peers.length), 0);
      expect(rich.length, c.name).toBe(expected);
      if (!c.opts.egress) expect(text).not.toContain("--policy=");
      const espInPlan = activeFlows(c.plan, c.opts).some((f) => f.id === "esp-in");
      expect(text.includes('protocol value="esp"') || text.includes("--add-protocol=esp"), c.name).toBe(
        espInPlan,
      );
    }
  });

  it("uses the IPsec policy match for L2TP: a direct DROP without IPsec, a direct ACCEPT with it", () => {
    for (const c of ALL) {
      const text = generateFirewalld(c.plan, c.opts);
      const direct = directRules(text);
      if (c.plan.scenario.vpn !== "l2tp-ipsec") {
        expect(direct, c.name).toEqual([]);
        continue;
      }
      const ipv = `ipv${c.plan.scenario.family}`;
      const drop = direct.filter((d) => d.args.endsWith("-j DROP"));
      expect(drop, c.name).toEqual([
        { ipv, args: "-p udp --dport 1701 -m policy --dir in --pol none -j DROP" },
      ]);
      const accept = direct.filter((d) => d.args.endsWith("-j ACCEPT"));
      expect(accept.length, c.name).toBe(Math.max(1, c.plan.scenario.peers.length));
      for (const a of accept)
        expect(a.args).toMatch(/-p udp --dport 1701 -m policy --dir in --pol ipsec -j ACCEPT$/);
      // Every zone rule for 1701 is backed by the DROP and checked after the reload.
      expect(text).toMatch(/grep -Eq -- "--dport 1701 \.\*--pol none -j DROP"/);
      expect(text).toContain("deprecated");
    }
  });

  it("uses the predefined ipsec service only when it opens exactly what the plan needs", () => {
    const exact = planFlows(makeScenario({ vpn: "site-to-site", ah: true, ikeTcp: true }));
    expect(generateFirewalld(exact, OPTS)).toContain(
      'firewall-cmd --permanent --zone="$ZONE" --add-service=ipsec',
    );
    // Without AH the service would open protocol 51 for nothing.
    const noAh = generateFirewalld(planFlows(makeScenario({ vpn: "site-to-site", ikeTcp: true })), OPTS);
    expect(noAh).not.toContain("--add-service=ipsec");
    expect(noAh).toContain("--add-port=500/udp");
    expect(noAh).toContain("--add-protocol=esp");
    expect(noAh).not.toContain("ah");
    // With peers the service cannot be restricted: rich rules instead.
    const peers = planFlows(
      makeScenario({ vpn: "site-to-site", ah: true, ikeTcp: true, peers: ["192.0.2.1"] }),
    );
    expect(generateFirewalld(peers, OPTS)).not.toContain("--add-service=ipsec");
  });

  it("default drop sets the zone target; optional flows are commented and dropped with requiredOnly", () => {
    const plan = planFlows(makeScenario({ vpn: "l2tp-ipsec", peers: ["192.0.2.1"], wan: "eth0" }));
    expect(generateFirewalld(plan, { ...OPTS, defaultDrop: true })).toContain("--set-target=DROP");
    expect(generateFirewalld(plan, OPTS)).not.toContain("--set-target");
    const natt = plan.flows.find((f) => f.id === "natt-in")!;
    expect(natt.requirement).toBe("optional");
    expect(generateFirewalld(plan, OPTS)).toContain(`# natt-in (optional): ${natt.reason}`);
    expect(generateFirewalld(plan, { ...OPTS, requiredOnly: true })).not.toContain('port="4500"');
  });

  it("egress rules live in a HOST policy and match IKE on the gateway's source port", () => {
    const plan = planFlows(makeScenario({ vpn: "site-to-site", peers: ["192.0.2.1"] }));
    const text = generateFirewalld(plan, { ...OPTS, egress: true });
    expect(text).toContain(`--policy=${FIREWALLD_EGRESS_POLICY} --add-ingress-zone=HOST`);
    expect(text).toContain(
      `--policy=${FIREWALLD_EGRESS_POLICY} --add-rich-rule='rule family="ipv4" destination address="192.0.2.1" source-port port="500" protocol="udp" accept'`,
    );
    expect(generateFirewalld(plan, OPTS)).not.toContain(FIREWALLD_EGRESS_POLICY);
  });

  it("egress L2TP from the server: direct OUTPUT rules decide by IPsec policy, plus the egress policy", () => {
    const plan = planFlows(makeScenario({ vpn: "l2tp-ipsec", peers: ["192.0.2.0/24"], local: "10.0.0.10" }));
    const text = generateFirewalld(plan, { ...OPTS, egress: true });
    expect(text).toContain(
      "firewall-cmd --permanent --direct --add-rule ipv4 filter OUTPUT 0 -p udp --sport 1701 -m policy --dir out --pol none -j DROP",
    );
    expect(text).toContain(
      "firewall-cmd --permanent --direct --add-rule ipv4 filter OUTPUT 1 -s 10.0.0.10 -d 192.0.2.0/24 -p udp --sport 1701 -m policy --dir out --pol ipsec -j ACCEPT",
    );
    expect(text).toContain(`source-port port="1701" protocol="udp" accept'`);
  });

  it("puts the NAT device's forward-ports in a separate part selected by an argument", () => {
    const plan = planFlows(makeScenario(input("l2tp-ipsec", "local", false, false, true)));
    const text = generateFirewalld(plan, OPTS);
    const [gw, nat] = text.split('if [ "$PART" = nat-device ]; then');
    expect(gw).not.toContain("forward-port");
    expect(nat).toContain(
      `rule family="ipv4" source address="192.0.2.0/24" destination address="203.0.113.1" forward-port port="500" protocol="udp" to-port="500" to-addr="10.0.0.10"`,
    );
    expect(nat).not.toContain('port="1701"');
    const open = planFlows(makeScenario({ vpn: "ikev2-remote-access", nat: "local", local: "10.0.0.10" }));
    expect(generateFirewalld(open, OPTS)).toContain(
      "--add-forward-port=port=4500:proto=udp:toport=4500:toaddr=10.0.0.10",
    );
    expect(() =>
      generateFirewalld(planFlows(makeScenario({ vpn: "ikev2-remote-access", nat: "local" })), OPTS),
    ).toThrow(TargetError);
  });

  // firewalld's own rich-rule parser (Debian's python3-firewall; .ci/run installs it, so CI never skips).
  // The system python first: a python3 on PATH (pyenv, venv) may not see Debian's packages.
  const py = ["/usr/bin/python3", "python3"].find(
    (bin) => spawnSync(bin, ["-c", "import firewall.core.rich"], { encoding: "utf8" }).status === 0,
  );
  it.skipIf(!py && !process.env.CI)("every rich rule parses with firewalld's Rich_Rule", () => {
    expect(py, "python3-firewall is not importable").toBeDefined();
    const rules = [...new Set(ALL.flatMap((c) => richRules(generateFirewalld(c.plan, c.opts))))];
    const script = [
      "import sys",
      "from firewall.core.rich import Rich_Rule",
      "bad = []",
      "for line in sys.stdin.read().splitlines():",
      "    try:",
      "        Rich_Rule(rule_str=line).check()",
      "    except Exception as e:",
      "        bad.append(f'{line}: {e}')",
      "print('\\n'.join(bad))",
    ].join("\n");
    const r = spawnSync(py!, ["-c", script], { input: rules.join("\n"), encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("");
    expect(rules.length).toBeGreaterThan(50);
  });

  // The direct rules are iptables arguments: append them in a throwaway network namespace.
  const canNetns =
    process.getuid?.() === 0 &&
    spawnSync("ip", ["-V"]).status === 0 &&
    spawnSync("iptables", ["--version"]).status === 0;
  it.skipIf(!canNetns)("every direct rule is accepted by iptables/ip6tables", () => {
    const ns = `tcfw${process.pid}`;
    expect(spawnSync("ip", ["netns", "add", ns]).status).toBe(0);
    try {
      const seen = new Set<string>();
      for (const c of ALL) {
        for (const d of directRules(generateFirewalld(c.plan, c.opts))) {
          const key = `${d.ipv} ${d.args}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const cmd = d.ipv === "ipv4" ? "iptables" : "ip6tables";
          const r = spawnSync("ip", ["netns", "exec", ns, cmd, "-A", "INPUT", ...d.args.split(" ")], {
            encoding: "utf8",
          });
          expect(r.status, `${key}: ${r.stderr}`).toBe(0);
        }
      }
      expect(seen.size).toBeGreaterThan(4);
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  });
});
