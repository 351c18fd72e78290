/**
 * Ground truth for the simulator: real strongSwan charons in network namespaces, iptables on site2 as the
 * FortiGate local-in policy of seed 001, and the sequence of states each variant must show. The variants run
 * concurrently (about 100 s in all). The measured times go to test/lab/.out/strongswan-lab.json, the charon
 * logs to test/lab/.out/logs/. See docs/lab.md.
 *
 * Then the simulator predicts each of these runs from the run's own timers, script and iptables rules, and the
 * prediction is compared with the measurement (test/lab/sim-vs-lab.ts; the table goes to
 * test/lab/.out/sim-vs-lab.md). No second lab run: the comparison reuses the results of the first block.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { simulate } from "../../src/sim/index.js";
import { checkVariant, LAB_TOLERANCE, measure } from "./checks.js";
import {
  type Comparison,
  compareRun,
  comparisonTable,
  labScenario,
  retransmitSummary,
  SIM_TOLERANCE,
  scriptedRun,
  simAsLab,
} from "./sim-vs-lab.js";
import {
  cleanupLabs,
  DEFAULT_TIMERS,
  LAB_ARTEFACT,
  LAB_OUT_DIR,
  type LabResult,
  labUnavailable,
  runLabVariant,
  VARIANTS,
} from "./strongswan-lab.js";

const unavailable = labUnavailable();

// The simulator on the scripted variants needs no lab: it runs everywhere.
describe("simulator: the lab's variants as scripted (no lab needed)", () => {
  it.each(Object.values(VARIANTS))("$name: the prediction passes the lab's own checks", (variant) => {
    const run = scriptedRun(variant);
    const { scenario, counters } = labScenario(run);
    expect(checkVariant(simAsLab(run, simulate(scenario), counters))).toEqual([]);
  });
});

if (unavailable && process.env.CI) {
  describe("strongSwan lab", () => {
    it("has its prerequisites (CI must run the lab)", () => {
      throw new Error(`strongSwan lab cannot run: ${unavailable}`);
    });
  });
} else if (unavailable) {
  describe.skip(`strongSwan lab (skipped: ${unavailable})`, () => {
    it("runs", () => {});
  });
} else {
  /** Filled by the lab runs, read by the comparison with the simulator (which runs after them). */
  const results = new Map<string, LabResult>();

  describe("strongSwan lab: real charon in network namespaces", () => {
    afterAll(async () => {
      await cleanupLabs();
      if (results.size === 0) return;
      await mkdir(LAB_OUT_DIR, { recursive: true });
      const variants = Object.fromEntries(
        [...results.entries()]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([name, r]) => [name, { measured: measure(r), result: r }]),
      );
      const artefact = {
        generatedAt: new Date().toISOString(),
        defaults: DEFAULT_TIMERS,
        tolerance: LAB_TOLERANCE,
        variants,
      };
      await writeFile(LAB_ARTEFACT, `${JSON.stringify(artefact, null, 1)}\n`);
    });

    it.concurrent.each(Object.keys(VARIANTS))(
      "%s",
      async (name) => {
        const r = await runLabVariant(name, { logDir: join(LAB_OUT_DIR, "logs") });
        results.set(name, r);
        expect(checkVariant(r), `${name}: ${VARIANTS[name]?.description}`).toEqual([]);
      },
      (Math.max(...Object.values(VARIANTS).map((v) => v.duration)) + 60) * 1000,
    );
  });

  describe("simulator vs real charon: the prediction of each run above", () => {
    const comparisons = new Map<string, Comparison>();

    afterAll(async () => {
      if (comparisons.size === 0) return;
      await mkdir(LAB_OUT_DIR, { recursive: true });
      const cs = [...comparisons.values()].sort((a, b) => a.variant.localeCompare(b.variant));
      const text = [
        `# Simulator vs real charon (${new Date().toISOString()})`,
        "",
        `Tolerances: ${JSON.stringify(SIM_TOLERANCE)}`,
        "",
        comparisonTable(cs, { events: "all" }),
        "",
        ...cs.map((c) => `* ${c.variant}: ${retransmitSummary(c)}`),
        "",
      ].join("\n");
      await writeFile(join(LAB_OUT_DIR, "sim-vs-lab.md"), text);
    });

    it.each(Object.keys(VARIANTS))(
      "%s: same states and event times, from the run's own timers, script and iptables rules",
      (name) => {
        const r = results.get(name);
        if (!r) throw new Error(`${name}: no lab result to compare with (the lab run failed, see above)`);
        const c = compareRun(r);
        comparisons.set(name, c);
        expect(
          c.problems,
          `simulator vs lab, ${name} (agreeing retransmissions left out):\n${comparisonTable([c], { events: "key" })}\n`,
        ).toEqual([]);
      },
    );

    it("can fail: predicted with dpd_delay + 10 s, V1 and V3 disagree with their runs", () => {
      for (const name of ["V1", "V3"]) {
        const r = results.get(name);
        if (!r) throw new Error(`${name}: no lab result to compare with (the lab run failed, see above)`);
        expect(compareRun(r, { dpdDelay: 10 }).problems.length, name).toBeGreaterThan(0);
      }
    });
  });
}
