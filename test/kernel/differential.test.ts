/**
 * Differential test of the iptables engine against the Linux kernel: random filter rulesets are loaded with
 * `iptables-restore` into a gateway namespace, random packets (NEW, ESTABLISHED, RELATED, INVALID) are sent
 * from two client namespaces, and what the kernel did with each (delivered, rejected, dropped) must be what
 * the engine says. See docs/differential.md.
 *
 * Environment: DIFF_SEED (number, or "random"), DIFF_RULESETS, DIFF_PROBES, DIFF_BACKEND (nft | legacy),
 * DIFF_KNOWN_GAPS=1 (also generate the constructs of KNOWN_GAPS), DIFF_MINIMIZE=0 (no shrinking of failing
 * rulesets), DIFF_REPLAY=test/.failures/diff-….json (replay one written failure instead of a random run).
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Ruleset } from "../../src/platforms/iptables/model.js";
import { genProbes, genRuleset, KNOWN_GAPS, type Probe, Rng, rulesetSeed } from "./diff-gen.js";
import {
  type Backend,
  type CaseResult,
  createDiffNet,
  type DiffNet,
  describeProbe,
  evaluateCases,
  type FailureFile,
  loadPathEvaluator,
  parseRuleset,
  writeFailure,
} from "./diff-harness.js";
import { describeKernel, sweepNamespaces } from "./netns.js";

const env = process.env;
const SEED =
  env.DIFF_SEED === "random" ? (Math.random() * 2 ** 32) >>> 0 : Number(env.DIFF_SEED ?? 20_260_601) >>> 0;
const RULESETS = Number(env.DIFF_RULESETS ?? 120);
const PROBES = Number(env.DIFF_PROBES ?? 24);
const BACKEND = (env.DIFF_BACKEND ?? "nft") as Backend;
const KNOWN = env.DIFF_KNOWN_GAPS === "1";
const MINIMIZE = env.DIFF_MINIMIZE !== "0";
/** At most this many failing rulesets are shrunk per run (each step is a kernel round trip). */
const MAX_MINIMIZE = 3;

const replayCmd = (path: string) => `DIFF_REPLAY=${path} npx vitest run test/kernel/differential.test.ts`;

/** One ruleset against the kernel and the engine. */
async function runCase(
  net: DiffNet,
  text: string,
  probes: readonly Probe[],
  rs: Ruleset,
): Promise<CaseResult[]> {
  await net.load(text);
  const kernel = await net.probe(probes);
  return evaluateCases(rs, probes, kernel, { pathBroadcast: KNOWN });
}

/**
 * Drops `-A` lines one at a time while the mismatch of `probe` persists: what is left is (close to) the
 * smallest ruleset showing it.
 */
async function minimize(
  net: DiffNet,
  text: string,
  probe: Probe,
): Promise<{ ruleset: string; mismatch: string }> {
  let lines = text.split("\n");
  let last = "";
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!lines[i]!.startsWith("-A ")) continue;
    const candidate = [...lines.slice(0, i), ...lines.slice(i + 1)];
    const t = candidate.join("\n");
    let rs: Ruleset;
    try {
      rs = parseRuleset(t);
      const r = await runCase(net, t, [probe], rs);
      if (r[0]!.mismatch) {
        lines = candidate;
        last = r[0]!.mismatch;
      }
    } catch {
      // A load or parse failure is not the same failure: keep the line.
    }
  }
  const ruleset = lines.join("\n");
  if (!last) {
    const r = await runCase(net, ruleset, [probe], parseRuleset(ruleset));
    last = r[0]!.mismatch ?? "(no longer fails alone)";
  }
  return { ruleset, mismatch: last };
}

function fileFor(
  net: DiffNet,
  index: number,
  text: string,
  probes: Probe[],
  results: CaseResult[],
): FailureFile {
  const sorted = [...results].sort((a, b) => Number(!a.mismatch) - Number(!b.mismatch));
  return {
    seed: SEED,
    index,
    rulesetSeed: rulesetSeed(SEED, index),
    backend: net.backend,
    ipset: net.ipset,
    ruleset: text,
    probes,
    results: sorted.map((r) => ({
      id: r.probe.id,
      kind: r.probe.kind,
      packet: describeProbe(r.probe),
      engine: r.engine,
      kernel: r.kernel,
      ...(r.mismatch ? { mismatch: r.mismatch } : {}),
    })),
  };
}

function report(results: CaseResult[]): string {
  return results
    .filter((r) => r.mismatch)
    .map(
      (r) =>
        `  ${describeProbe(r.probe)}\n    ${r.mismatch}; engine's deciding rule: ${
          r.engine.rule ? `line ${r.engine.rule.line}: ${r.engine.rule.text}` : "policy"
        }`,
    )
    .join("\n");
}

describeKernel(`differential: engine vs kernel, iptables filter INPUT (${BACKEND})`, () => {
  let net: DiffNet;
  let withPath = false;

  beforeAll(async () => {
    await sweepNamespaces();
    net = await createDiffNet({ backend: BACKEND });
    withPath = await loadPathEvaluator();
  }, 60_000);

  afterAll(async () => {
    await net?.destroy();
    await sweepNamespaces();
  });

  if (env.DIFF_REPLAY) {
    it(`replays ${env.DIFF_REPLAY}`, async () => {
      const f = JSON.parse(readFileSync(env.DIFF_REPLAY!, "utf8")) as FailureFile;
      const text = env.DIFF_REPLAY_MINIMIZED === "1" && f.minimized ? f.minimized.ruleset : f.ruleset;
      const probes =
        env.DIFF_REPLAY_MINIMIZED === "1" && f.minimized
          ? f.probes.filter((p) => p.id === f.minimized!.probe)
          : f.probes;
      const results = await runCase(net, text, probes, parseRuleset(text));
      console.log(
        `replay of seed ${f.seed} ruleset ${f.index} (${f.backend}):\n${text}\n` +
          results
            .map(
              (r) =>
                `${r.mismatch ? "MISMATCH" : "ok      "} ${describeProbe(r.probe)}: kernel ${r.kernel.verdict}${r.kernel.reject ? ` (${r.kernel.reject})` : ""}, engine ${r.engine.verdict}${r.mismatch ? ` — ${r.mismatch}` : ""}`,
            )
            .join("\n"),
      );
      expect(report(results)).toBe("");
    });
    return;
  }

  it("probes arrive in the conntrack state the generator claims", async () => {
    const probes = genProbes(new Rng(SEED ^ 0x5eed), { prefix: "cal", count: 80 });
    for (const st of ["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"]) {
      const text = `*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m state --state ${st} -j ACCEPT\nCOMMIT\n`;
      const results = await runCase(net, text, probes, parseRuleset(text));
      const wrong = results.filter(
        (r) => (r.kernel.verdict === "accept") !== (r.probe.state.toUpperCase() === st),
      );
      expect(
        wrong.map((r) => `${describeProbe(r.probe)}: kernel ${r.kernel.verdict} under --state ${st}`),
      ).toEqual([]);
    }
  });

  it("catches a wrong engine and writes a replayable failure", async () => {
    // Sabotage: the engine is given the ruleset with its INPUT policy flipped; the kernel gets the real one.
    const rng = new Rng(SEED ^ 0xbad);
    const text =
      "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p udp --dport 500 -j ACCEPT\nCOMMIT\n";
    const flipped = parseRuleset(text.replace(":INPUT DROP", ":INPUT ACCEPT"));
    const probes = genProbes(rng, { prefix: "sab", count: 30 });
    const results = await runCase(net, text, probes, flipped);
    const bad = results.filter((r) => r.mismatch);
    expect(bad.length).toBeGreaterThan(0);
    expect(bad.every((r) => r.kernel.verdict === "drop" && r.engine.verdict === "accept")).toBe(true);
    const path = writeFailure(fileFor(net, -1, text, probes, results), "diff-selftest");
    const back = JSON.parse(readFileSync(path, "utf8")) as FailureFile;
    expect(back.results.filter((r) => r.mismatch).length).toBe(bad.length);
    expect(back.ruleset).toBe(text);
  });

  it(`${RULESETS} random rulesets x ${PROBES} probes (seed ${SEED}): the engine agrees with the kernel`, async () => {
    const t0 = performance.now();
    const features = { ipset: net.ipset };
    const failures: string[] = [];
    const tally = new Map<string, number>();
    const bump = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
    let packets = 0;
    let byRule = 0;
    let minimized = 0;
    for (let i = 0; i < RULESETS; i++) {
      const rng = new Rng(rulesetSeed(SEED, i));
      const text = genRuleset(rng, { features, includeKnownGaps: KNOWN });
      const probes = genProbes(rng, { prefix: `r${i}p`, count: PROBES });
      let rs: Ruleset;
      try {
        rs = parseRuleset(text, `diff-${SEED}-${i}.rules`);
      } catch (e) {
        const loads = await net.load(text).then(
          () => "iptables-restore accepts it",
          (le: Error) => `iptables-restore refuses it too: ${le.message}`,
        );
        failures.push(`ruleset ${i}: the engine cannot parse it (${loads}):\n${String(e)}\n${text}`);
        continue;
      }
      let results: CaseResult[];
      try {
        results = await runCase(net, text, probes, rs);
      } catch (e) {
        failures.push(`ruleset ${i}: the engine parses it but the kernel refuses it: ${String(e)}\n${text}`);
        continue;
      }
      packets += results.length;
      for (const r of results) {
        bump(`kernel ${r.kernel.verdict}`);
        bump(`state ${r.probe.state}`);
        if (r.engine.rule) byRule++;
      }
      if (results.some((r) => r.mismatch)) {
        const file = fileFor(net, i, text, probes, results);
        const first = results.find((r) => r.mismatch)!;
        if (MINIMIZE && minimized++ < MAX_MINIMIZE) {
          const m = await minimize(net, text, first.probe);
          file.minimized = { ruleset: m.ruleset, probe: first.probe.id, mismatch: m.mismatch };
        }
        const path = writeFailure(file);
        failures.push(
          `ruleset ${i} (seed ${SEED}, ruleset seed ${file.rulesetSeed}): ${results.filter((r) => r.mismatch).length} mismatches\n` +
            `${report(results)}\n` +
            (file.minimized
              ? `  minimized ruleset (${file.minimized.mismatch}):\n${file.minimized.ruleset}\n`
              : "") +
            `  written to ${path}; replay: ${replayCmd(path)}`,
        );
      }
    }
    const secs = (performance.now() - t0) / 1000;
    const summary =
      `differential (${BACKEND}, seed ${SEED}, engine: filter INPUT${withPath ? " + whole path" : ""}): ${packets} packets over ${RULESETS} rulesets in ${secs.toFixed(1)} s; ` +
      `${[...tally]
        .sort()
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ")}; decided by a rule: ${byRule}, by a policy: ${packets - byRule}` +
      (KNOWN ? "" : `; known gaps not generated: ${KNOWN_GAPS.map((g) => g.id).join(", ") || "none"}`);
    console.log(summary);
    expect(failures.join("\n\n"), `seed ${SEED}`).toBe("");
    expect(packets).toBeGreaterThanOrEqual(Math.min(2000, RULESETS * PROBES));
    // The comparison must mean something: every verdict and state occurs often enough.
    for (const k of ["kernel accept", "kernel drop", "kernel reject"])
      expect(tally.get(k) ?? 0, k).toBeGreaterThan(packets * 0.05);
    for (const k of ["state new", "state established", "state related", "state invalid"])
      expect(tally.get(k) ?? 0, k).toBeGreaterThan(packets * 0.03);
  }, 240_000);
});
