/**
 * The port part of the NAT targets (`--to-destination a:p-q/b`, `--to-source`, `--to-ports`) against
 * iptables-restore: every spelling the parser takes must load, every one it refuses must be refused, and
 * what loads must mean the same ports (read back from iptables-save, whose form is canonical).
 */
import { expect, it } from "vitest";
import type { NatRange, PortRange, Target } from "../../src/platforms/iptables/model.js";
import { parseIptables } from "../../src/platforms/iptables/parse.js";
import { describeKernel, inNs, scratchNamespace } from "./netns.js";

const PORTS = [
  "80",
  "http",
  "0x50",
  "010",
  "+80",
  "80x",
  "80-90",
  "80-0x5a",
  "90-80",
  "80-http",
  "http-90",
  "80-",
  "80-90-100",
  "80:90",
  "80/100",
  "80-90/100",
  "80-90/100x",
  "80-90/100/7",
  "80-90/http",
  "80-90/abc",
  "80-90/70000",
  "80-90/",
  "70000",
  "80-90/0",
  "80-90/08",
  ":80",
];

/**
 * iptables-save writes a SNAT/MASQUERADE base port as `/0` (the kernel ignores it there), and
 * iptables-restore 1.8.9 refuses its own output: the parser takes it, with a warning.
 */
const KNOWN = new Set([
  "SNAT --to-source 10.0.0.1:80-90/0",
  "SNAT --to-source 10.0.0.1:80-90/08",
  "MASQUERADE --to-ports 80-90/0",
  "MASQUERADE --to-ports 80-90/08",
]);

const TARGETS = [
  { chain: "PREROUTING", target: (p: string) => `DNAT --to-destination 10.0.0.1:${p}` },
  { chain: "POSTROUTING", target: (p: string) => `SNAT --to-source 10.0.0.1:${p}` },
  { chain: "PREROUTING", target: (p: string) => `REDIRECT --to-ports ${p}` },
  { chain: "POSTROUTING", target: (p: string) => `MASQUERADE --to-ports ${p}` },
];

const file = (chain: string, target: string) =>
  `*nat\n:${chain} ACCEPT [0:0]\n-A ${chain} -p tcp -j ${target}\nCOMMIT\n`;

/** The ports a NAT target translates to (the base port only where the kernel keeps it: DNAT). */
function ports(t: Target | null): { lo: number | null; hi: number | null; base: number | null } {
  if (t?.kind === "DNAT" || t?.kind === "SNAT") {
    const r: NatRange = t.ranges[0]!;
    return { lo: r.portLo, hi: r.portHi, base: t.kind === "DNAT" ? r.basePort : null };
  }
  if (t?.kind === "REDIRECT" || t?.kind === "MASQUERADE") {
    const p: PortRange | null = t.ports;
    return { lo: p?.lo ?? null, hi: p?.hi ?? null, base: null };
  }
  throw new Error(`not a NAT target: ${t?.kind}`);
}

describeKernel("NAT target ports against iptables-restore", () => {
  const scratch = scratchNamespace("natports");
  const ns = scratch.name;

  it("accepts and refuses the spellings iptables does, with the same ports", async () => {
    await scratch.create();
    const disagreements: string[] = [];
    let accepted = 0;
    let refused = 0;
    for (const { chain, target } of TARGETS) {
      for (const p of PORTS) {
        const text = file(chain, target(p));
        const ours = parseIptables(text, { file: "t.rules" });
        const kernel = await inNs(ns, ["iptables-restore"], { input: text, check: false });
        if ((ours.errors.length === 0) !== (kernel.code === 0) && !KNOWN.has(target(p))) {
          disagreements.push(
            `${target(p)}: iptables ${kernel.code === 0 ? "loads it" : `refuses it (${kernel.stderr.trim()})`}, the parser ${ours.errors.length ? `refuses it (${ours.errors[0]!.message})` : "takes it"}`,
          );
          continue;
        }
        if (kernel.code !== 0) {
          if (KNOWN.has(target(p)))
            expect(ours.warnings.map((w) => w.message).join()).toContain("base port 0");
          refused++;
          continue;
        }
        accepted++;
        const saved = (await inNs(ns, ["iptables-save", "-t", "nat"])).stdout;
        await inNs(ns, ["iptables", "-t", "nat", "-F"]);
        const back = parseIptables(saved, { file: "saved.rules" });
        expect(back.errors).toEqual([]);
        const rule = (r: typeof ours) => r.ruleset.tables.get("nat")!.chains.get(chain)!.rules[0]!;
        expect(ports(rule(ours).target), `${target(p)} against\n${saved}`).toEqual(ports(rule(back).target));
      }
    }
    expect(disagreements).toEqual([]);
    // Both sides of the comparison are exercised.
    expect(accepted).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(30);
  }, 60_000);
});
