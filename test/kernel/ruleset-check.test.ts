/**
 * Every generated ruleset must load. iptables: `iptables-restore --test` (parser only with the nft backend)
 * over the core product, and the legacy backend (--test and a real load, whose kernel checkentry hooks are
 * the strict ones) over the full product; the commands format must build exactly the same ruleset and be
 * safe to re-run. nftables: `nft -c` (checked by the kernel) over the core product.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { generateIptables } from "../../src/platforms/iptables/generate.js";
import { generateNftables } from "../../src/platforms/nftables/generate.js";
import { type GenerateOptions, TargetError } from "../../src/platforms/types.js";
import { planFlows } from "../../src/vpn/flows.js";
import { makeScenario, NAT_MODES, type ScenarioInput, VPN_TYPES } from "../../src/vpn/scenario.js";
import { extractIptablesNatDevice } from "./backends.js";
import { describeKernel, inNs, run, scratchNamespace, sweepNamespaces } from "./netns.js";

interface Combo {
  name: string;
  input: ScenarioInput;
  opts: GenerateOptions;
  /** Part of the core product (every VPN type x NAT mode x AH x family x generator option). */
  core: boolean;
}

const SWITCHES: Partial<ScenarioInput>[] = [
  {},
  { ikeTcp: true },
  { encap: true, ikeFragmentation: false },
  { mobike: false },
  { ike: 1 },
];

function* combos(): Generator<Combo> {
  for (const vpn of VPN_TYPES)
    for (const nat of NAT_MODES)
      for (const ah of [false, true])
        for (const ipv6 of [false, true])
          for (const [si, sw] of SWITCHES.entries()) {
            if (sw.ike === 1 && vpn === "ikev2-remote-access") continue;
            // Known peers come with local/public/wan addresses, unknown peers without (both halves of each).
            for (const [peersKnown, addressed] of [
              [false, false],
              [true, true],
            ] as const)
              for (let o = 0; o < 8; o++) {
                const peers = peersKnown
                  ? ipv6
                    ? ["2001:db8:7::1", "2001:db8:8::/64"]
                    : ["203.0.113.7", "198.51.100.0/24"]
                  : [];
                const input: ScenarioInput = {
                  vpn,
                  nat,
                  ah,
                  ipv6,
                  peers,
                  ...sw,
                  ...(addressed
                    ? {
                        local: ipv6 ? "2001:db8:1::1" : "192.0.2.1",
                        publicAddress: ipv6 ? "2001:db8:2::1" : "198.51.100.1",
                        wan: o % 2 ? "eth0" : "ppp+",
                      }
                    : {}),
                };
                const opts = { defaultDrop: !!(o & 1), egress: !!(o & 2), requiredOnly: !!(o & 4) };
                // Core: every option set once per scenario, alternating between known/any peers.
                const core = si === 0 && (o + (peersKnown ? 1 : 0)) % 2 === 0;
                yield { name: JSON.stringify({ input, opts }), input, opts, core };
              }
          }
}

const ALL = [...combos()];

interface Batch {
  text: string;
  /** First line (1-based) of each file in the concatenation. */
  starts: number[];
  names: string[];
}

/**
 * Concatenates restore files. `reset` goes between them when loading for real: it empties the built-in
 * chains, so thousands of jumps do not pile up (the legacy backend rewrites the whole table per COMMIT).
 */
function batch(files: { name: string; text: string }[], reset = ""): Batch {
  const b: Batch = { text: "", starts: [], names: [] };
  let line = 1;
  for (const f of files) {
    b.starts.push(line);
    b.names.push(f.name);
    const text = f.text + reset;
    b.text += text;
    line += text.split("\n").length - 1;
  }
  return b;
}

const RESET = "*filter\n-F INPUT\n-F FORWARD\n-F OUTPUT\nCOMMIT\n*nat\n-F PREROUTING\nCOMMIT\n";

/** Runs one restore over a whole batch; on failure names the file the failing line belongs to. */
async function restoreBatch(ns: string, tool: string, args: string[], b: Batch): Promise<void> {
  const r = await inNs(ns, [tool, ...args], { input: b.text, check: false, timeoutMs: 55_000 });
  if (r.code === 0) return;
  const m =
    /line (\d+) failed/.exec(r.stderr) ?? /line (\d+)/.exec(r.stderr) ?? /stdin:(\d+):/.exec(r.stderr);
  let culprit = "(unknown file)";
  if (m) {
    const n = Number(m[1]);
    let i = b.starts.length - 1;
    while (i > 0 && b.starts[i]! > n) i--;
    const lines = b.text.split("\n");
    culprit = `${b.names[i]}\n  line: ${lines[n - 1]}`;
  }
  throw new Error(`${tool} ${args.join(" ")} failed: ${r.stderr.trim()}\n  file: ${culprit}`);
}

const render = (c: Combo, format: "restore" | "commands") =>
  generateIptables(planFlows(makeScenario(c.input)), { ...c.opts, format });

describeKernel("iptables-restore accepts every generated file", () => {
  const scratch = scratchNamespace("restore");
  const ns = scratch.name;

  beforeAll(scratch.create);

  for (const family of [4, 6] as const) {
    const tool = family === 6 ? "ip6tables" : "iptables";
    const all = ALL.filter((c) => (family === 6) === !!c.input.ipv6);
    const core = all.filter((c) => c.core);
    const gateway = (cs: Combo[], reset = "") =>
      batch(
        cs.map((c) => ({ name: c.name, text: render(c, "restore") })),
        reset,
      );
    const natDevice = (cs: Combo[], reset = "") =>
      batch(
        cs.flatMap((c) => {
          const text = extractIptablesNatDevice(render(c, "restore"));
          return text ? [{ name: `${c.name} (NAT-device part)`, text }] : [];
        }),
        reset,
      );

    // The nft backend takes ~12 ms per file, so it gets the core product; legacy is fast and gets everything.
    it(`${tool}-restore --test: ${core.length} core files and their NAT-device parts`, async () => {
      await restoreBatch(ns, `${tool}-restore`, ["--test", "--noflush"], gateway(core));
      const nd = natDevice(core);
      expect(nd.names.length).toBeGreaterThan(0);
      await restoreBatch(ns, `${tool}-restore`, ["--test", "--noflush"], nd);
    }, 60_000);

    // --test with the nft backend only parses. Real loads: the legacy run below (all files; its kernel
    // checkentry hooks are the stricter ones) and the nft-backend loads of the packet tests.
    it(`${tool}-legacy-restore --test and real load: all ${all.length} files`, async (ctx) => {
      const has = await run(`${tool}-legacy-restore`, ["--version"], { check: false }).catch(() => undefined);
      if (has?.code !== 0) {
        if (process.env.CI) throw new Error(`${tool}-legacy-restore is missing`);
        ctx.skip();
      }
      await restoreBatch(ns, `${tool}-legacy-restore`, ["--test", "--noflush"], gateway(all));
      await restoreBatch(ns, `${tool}-legacy-restore`, ["--noflush"], gateway(all, RESET));
      await restoreBatch(ns, `${tool}-legacy-restore`, ["--noflush"], natDevice(all, RESET));
    }, 60_000);
  }

  it("the core product has every VPN type, NAT mode, AH setting, family and option set", () => {
    const core = ALL.filter((c) => c.core);
    const seen = new Set(
      core.map((c) => JSON.stringify([c.input.vpn, c.input.nat, c.input.ah, c.input.ipv6, c.opts])),
    );
    expect(seen.size).toBe(VPN_TYPES.length * NAT_MODES.length * 2 * 2 * 8);
    expect(core.length).toBe(seen.size);
  });
});

/** Normalised `iptables-save` of the filter and nat tables: no counters, no timestamps. */
async function saved(ns: string, family: 4 | 6): Promise<string> {
  const r = await inNs(ns, [family === 6 ? "ip6tables-save" : "iptables-save"]);
  return r.stdout
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/, "[0:0]"))
    .join("\n");
}

describeKernel("the commands format builds the same ruleset as the restore format", () => {
  afterAll(sweepNamespaces);
  // A representative spread: every VPN type, NAT mode and family, with options rotating.
  // One case per VPN type x NAT mode, family alternating, option set rotating (all 8 appear).
  const base = ALL.filter(
    (c) => !c.input.ikeTcp && !c.input.encap && c.input.mobike === undefined && !c.input.ike,
  ).filter((c) => !!c.input.peers?.length && !!c.input.local && !c.input.ah);
  const picks = VPN_TYPES.flatMap((vpn, v) =>
    NAT_MODES.map((nat, n) => {
      const k = v * NAT_MODES.length + n;
      const o = k % 8;
      const pick = base.find(
        (c) =>
          c.input.vpn === vpn &&
          c.input.nat === nat &&
          !!c.input.ipv6 === (k % 2 === 1) &&
          c.opts.defaultDrop === !!(o & 1) &&
          c.opts.egress === !!(o & 2) &&
          c.opts.requiredOnly === !!(o & 4),
      );
      if (!pick) throw new Error(`no combination for ${vpn} ${nat}`);
      return pick;
    }),
  );

  it.concurrent.each(picks.map((c) => [c.name, c] as const))(
    "%s",
    async (_n, c) => {
      const family = c.input.ipv6 ? 6 : 4;
      const a = `tc-${process.pid}-cmd-${picks.indexOf(c)}-a`;
      const b = `tc-${process.pid}-cmd-${picks.indexOf(c)}-b`;
      try {
        await run("ip", ["netns", "add", a]);
        await run("ip", ["netns", "add", b]);
        const restore = render(c, "restore");
        const commands = render(c, "commands");
        await inNs(a, [family === 6 ? "ip6tables-restore" : "iptables-restore", "--noflush"], {
          input: restore,
        });
        // -e: any failing command (other than the guarded -N/-C probes) fails the test.
        await inNs(b, ["sh", "-e"], { input: commands });
        const viaRestore = await saved(a, family);
        expect(await saved(b, family)).toBe(viaRestore);
        await inNs(b, ["sh", "-e"], { input: commands });
        expect(await saved(b, family), "re-running the commands changes nothing").toBe(viaRestore);
        // The NAT-device part, extracted as documented, must run as well.
        const nd = extractIptablesNatDevice(commands);
        if (nd) await inNs(b, ["sh", "-e"], { input: nd });
      } finally {
        await run("ip", ["netns", "del", a], { check: false });
        await run("ip", ["netns", "del", b], { check: false });
      }
    },
    30_000,
  );

  it("picks cover every VPN type, NAT mode, both families and every option set", () => {
    expect(new Set(picks.map((c) => `${c.input.vpn} ${c.input.nat}`)).size).toBe(
      VPN_TYPES.length * NAT_MODES.length,
    );
    expect(new Set(picks.map((c) => !!c.input.ipv6)).size).toBe(2);
    expect(new Set(picks.map((c) => JSON.stringify(c.opts))).size).toBe(8);
  });
});

describeKernel("nft -c accepts every generated nftables file (core product)", () => {
  const ns = `tc-${process.pid}-nftcheck`;
  beforeAll(async () => {
    await run("ip", ["netns", "add", ns]);
  });
  afterAll(async () => {
    await run("ip", ["netns", "del", ns], { check: false });
  });

  it("nft -c -f over every core combination", async () => {
    const files: { name: string; text: string }[] = [];
    let refused = 0;
    for (const c of ALL.filter((x) => x.core)) {
      try {
        files.push({ name: c.name, text: generateNftables(planFlows(makeScenario(c.input)), c.opts) });
      } catch (e) {
        // The nftables generator refuses NAT-device forwards without --local (a usage error, by design).
        if (!(e instanceof TargetError) || c.input.local) throw e;
        refused++;
      }
    }
    expect(files.length).toBeGreaterThan(refused);
    await restoreBatch(ns, "nft", ["-c", "-f", "/dev/stdin"], batch(files));
  }, 60_000);

  it("a dual-stack gateway: the IPv4 and IPv6 default-drop plans load side by side, each keeps its accepts", async () => {
    const opts = { defaultDrop: true, requiredOnly: false, egress: false };
    const v4 = generateNftables(
      planFlows(makeScenario({ vpn: "site-to-site", peers: ["203.0.113.7"], local: "198.51.100.1" })),
      opts,
    );
    const v6 = generateNftables(
      planFlows(makeScenario({ vpn: "site-to-site", peers: ["2001:db8:1::7"], local: "2001:db8::1" })),
      opts,
    );
    for (const text of [v4, v6]) await inNs(ns, ["nft", "-f", "/dev/stdin"], { input: text });
    const listed = (await inNs(ns, ["nft", "list", "ruleset"])).stdout;
    await inNs(ns, ["nft", "flush", "ruleset"]);
    expect(listed).toMatch(/^table inet tunnelcheck4 \{$/m);
    expect(listed).toMatch(/^table inet tunnelcheck6 \{$/m);
    // Each default drop is a rule for its own family, not the chain policy.
    expect(listed).not.toMatch(/policy drop/);
    expect(listed).toMatch(
      /meta nfproto ipv4 counter packets \d+ bytes \d+ drop comment "tunnelcheck: default-drop"/,
    );
    expect(listed).toMatch(
      /meta nfproto ipv6 counter packets \d+ bytes \d+ drop comment "tunnelcheck: default-drop"/,
    );
    expect(listed).toContain("ip saddr @peers");
    expect(listed).toContain("ip6 saddr @peers");
    expect(listed).toContain("203.0.113.7");
    expect(listed).toContain("2001:db8:1::7");
  }, 30_000);
});
