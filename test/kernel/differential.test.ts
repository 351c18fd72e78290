/**
 * Differential test of the iptables engine against the Linux kernel: random rulesets (filter; also raw,
 * mangle, nat and security when the whole-path evaluator exists) are loaded with `iptables-restore` into a
 * gateway namespace, random packets (NEW, ESTABLISHED, RELATED, INVALID) are sent from two client namespaces,
 * and what the kernel did with each (delivered, rejected, dropped) must be what the engine says. See
 * docs/differential.md.
 *
 * Environment: DIFF_SEED (number, or "random"), DIFF_RULESETS (for iptables-nft, the default backend),
 * DIFF_LEGACY_RULESETS (for iptables-legacy; 0 skips it), DIFF_PROBES (per ruleset), DIFF_KNOWN_GAPS=1 (also
 * generate the constructs of KNOWN_GAPS), DIFF_TABLES=0 (filter only), DIFF_MINIMIZE=0 (no shrinking of
 * failing rulesets),
 * DIFF_REPLAY=test/.failures/diff-….json (replay one written failure instead of a random run;
 * DIFF_REPLAY_MINIMIZED=1: its minimized ruleset and probe).
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
import { describeKernel, kernelUnavailable, sweepNamespaces } from "./netns.js";

const env = process.env;
const SEED =
  env.DIFF_SEED === "random" ? (Math.random() * 2 ** 32) >>> 0 : Number(env.DIFF_SEED ?? 20_260_601) >>> 0;
const PROBES = Number(env.DIFF_PROBES ?? 24);
/** Rulesets per backend: iptables-nft is what `iptables-restore` is here; legacy x_tables gets a smaller share. */
const RUNS: Array<{ backend: Backend; rulesets: number }> = [
  { backend: "nft" as const, rulesets: Number(env.DIFF_RULESETS ?? 110) },
  { backend: "legacy" as const, rulesets: Number(env.DIFF_LEGACY_RULESETS ?? 30) },
].filter((r) => r.rulesets > 0);
const KNOWN = env.DIFF_KNOWN_GAPS === "1";
const MINIMIZE = env.DIFF_MINIMIZE !== "0";
/** At most this many failing rulesets are shrunk per run (each step is a kernel round trip). */
const MAX_MINIMIZE = 3;

const replayCmd = (path: string) => `DIFF_REPLAY=${path} npx vitest run test/kernel/differential.test.ts`;

/** Rulesets whose first run disagreed and whose second (slow) run agreed: timing, not the engine. */
let retriedClean = 0;

/**
 * One ruleset against the kernel and the engine. A disagreement is checked once more from scratch with a
 * long wait for the kernel's answers, so that a reply delayed on a loaded machine is not reported as a drop;
 * a real difference is deterministic and shows up again.
 */
async function runCase(
  net: DiffNet,
  text: string,
  probes: readonly Probe[],
  rs: Ruleset,
  retry = true,
): Promise<CaseResult[]> {
  await net.load(text);
  const first = evaluateCases(rs, probes, await net.probe(probes));
  if (!retry || !first.some((r) => r.mismatch)) return first;
  await net.load(text);
  const second = evaluateCases(rs, probes, await net.probe(probes, 0.5));
  if (!second.some((r) => r.mismatch)) retriedClean++;
  return second;
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
      const r = await runCase(net, t, [probe], rs, false);
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

/** The namespaces of one backend, made before and removed after the tests of its block. */
function useNet(backend: Backend): { net: () => DiffNet; withPath: () => boolean } {
  let net: DiffNet | undefined;
  let withPath = false;
  beforeAll(async () => {
    net = await createDiffNet({ backend });
    withPath = await loadPathEvaluator();
  }, 60_000);
  afterAll(async () => {
    await net?.destroy();
  });
  return { net: () => net!, withPath: () => withPath };
}

afterAll(async () => {
  if (!kernelUnavailable) await sweepNamespaces();
});

const REPLAY = env.DIFF_REPLAY ? (JSON.parse(readFileSync(env.DIFF_REPLAY, "utf8")) as FailureFile) : null;

if (REPLAY) {
  describeKernel(`differential: replay of ${env.DIFF_REPLAY} (${REPLAY.backend})`, () => {
    const ctx = useNet(REPLAY.backend);
    it("kernel and engine agree", async () => {
      const net = ctx.net();
      const f = REPLAY;
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
  });
} else {
  describeKernel("differential: engine vs kernel, self-checks (iptables-nft)", () => {
    const ctx = useNet("nft");

    it("probes arrive in the conntrack state the generator claims", async () => {
      const probes = genProbes(new Rng(SEED ^ 0x5eed), { prefix: "cal", count: 80 });
      for (const st of ["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"]) {
        const text = `*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m state --state ${st} -j ACCEPT\nCOMMIT\n`;
        const results = await runCase(ctx.net(), text, probes, parseRuleset(text));
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
      const net = ctx.net();
      const results = await runCase(net, text, probes, flipped);
      const bad = results.filter((r) => r.mismatch);
      expect(bad.length).toBeGreaterThan(0);
      expect(bad.every((r) => r.kernel.verdict === "drop" && r.engine.verdict === "accept")).toBe(true);
      const path = writeFailure(fileFor(net, -1, text, probes, results), "diff-selftest");
      const back = JSON.parse(readFileSync(path, "utf8")) as FailureFile;
      expect(back.results.filter((r) => r.mismatch).length).toBe(bad.length);
      expect(back.ruleset).toBe(text);
    });
  });

  for (const { backend, rulesets: RULESETS } of RUNS) {
    describeKernel(`differential: engine vs kernel, iptables filter INPUT (${backend})`, () => {
      const ctx = useNet(backend);
      it(`${RULESETS} random rulesets x ${PROBES} probes (seed ${SEED}): the engine agrees with the kernel`, async () => {
        const net = ctx.net();
        const withPath = ctx.withPath();
        const BACKEND = backend;
        const t0 = performance.now();
        // Tables other than filter only when the whole-path evaluator is there to judge them.
        const features = {
          ipset: net.ipset,
          tables: withPath && env.DIFF_TABLES !== "0",
          nftBackend: backend === "nft",
        };
        const failures: string[] = [];
        const tally = new Map<string, number>();
        const bump = (k: string) => tally.set(k, (tally.get(k) ?? 0) + 1);
        let packets = 0;
        let byRule = 0;
        let minimized = 0;
        for (let i = 0; i < RULESETS; i++) {
          // Each backend draws its own rulesets (index offset), so two backends are not the same run twice.
          const index = backend === "nft" ? i : 1_000_000 + i;
          const rng = new Rng(rulesetSeed(SEED, index));
          const text = genRuleset(rng, { features, includeKnownGaps: KNOWN });
          const probes = genProbes(rng, { prefix: `r${i}p`, count: PROBES });
          let rs: Ruleset;
          try {
            rs = parseRuleset(text, `diff-${SEED}-${index}.rules`);
          } catch (e) {
            // The generator also writes what iptables refuses (a tcp service name netbase lists for udp
            // only, multiport 500:500): then both must refuse it.
            const refused = await net.load(text).then(
              () => null,
              (le: Error) => le.message,
            );
            if (refused !== null) bump("refused by both");
            else
              failures.push(
                `ruleset ${index}: the engine cannot parse it, iptables-restore accepts it:\n${String(e)}\n${text}`,
              );
            continue;
          }
          let results: CaseResult[];
          try {
            results = await runCase(net, text, probes, rs);
          } catch (e) {
            failures.push(
              `ruleset ${index}: the engine parses it but the kernel refuses it: ${String(e)}\n${text}`,
            );
            continue;
          }
          for (const r of results) {
            if (r.engine.skipped) {
              bump("not compared");
              continue;
            }
            packets++;
            bump(`kernel ${r.kernel.verdict}`);
            bump(`state ${r.probe.state}`);
            if (r.engine.rule) byRule++;
          }
          if (results.some((r) => r.mismatch)) {
            const file = fileFor(net, index, text, probes, results);
            const first = results.find((r) => r.mismatch)!;
            if (MINIMIZE && minimized++ < MAX_MINIMIZE) {
              const m = await minimize(net, text, first.probe);
              file.minimized = { ruleset: m.ruleset, probe: first.probe.id, mismatch: m.mismatch };
            }
            const path = writeFailure(file);
            failures.push(
              `ruleset ${index} (seed ${SEED}, ruleset seed ${file.rulesetSeed}, ${backend}): ${results.filter((r) => r.mismatch).length} mismatches\n` +
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
          (retriedClean > 0 ? `; rulesets that agreed only on a slow second run: ${retriedClean}` : "") +
          (KNOWN ? "" : `; known gaps not generated: ${KNOWN_GAPS.map((g) => g.id).join(", ") || "none"}`);
        console.log(summary);
        expect(failures.join("\n\n"), `seed ${SEED}`).toBe("");
        expect(packets).toBeGreaterThanOrEqual(Math.min(2000, Math.floor(RULESETS * PROBES * 0.8)));
        // The comparison must mean something: every verdict and state occurs often enough.
        for (const k of ["kernel accept", "kernel drop", "kernel reject"])
          expect(tally.get(k) ?? 0, k).toBeGreaterThan(packets * 0.05);
        for (const k of ["state new", "state established", "state related", "state invalid"])
          expect(tally.get(k) ?? 0, k).toBeGreaterThan(packets * 0.03);
      }, 240_000);
    });
  }
}
